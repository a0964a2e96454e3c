"""The rule compiler: a parsed rule to an ORM filter, and the SQL of one comparison for PostgreSQL (JSONB) and
SQLite (JSON1).

An attribute is read as `attributes -> 'name'` on PostgreSQL (Django's KeyTransform, so a key named like a
lookup is still a key), which is exactly the expression audiences.indexes indexes: equality, ranges and
IN compare JSONB with JSONB and can use that index; list membership is `@>` / `?|`, served by a GIN index.
On SQLite the value is JSON_EXTRACT's, and list membership an EXISTS over json_each.

Values are always parameters. `not` is pushed down to the comparisons (De Morgan), so every comparison knows
whether it stands negated: a comparison with a missing attribute is NULL or false, and a negated one is
NOT COALESCE(..., FALSE), so a `not` of a comparison matches the profiles that lack it, while the positive
comparisons stay plain conditions that an index can serve.
"""

import json
from datetime import datetime, timedelta

from django.db.models import Exists, F, Lookup, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone

from audiences.models import Audience, AudienceMember, Consent
from audiences.rules.tree import (
    All,
    Any_,
    Comparison,
    ConsentState,
    ConsentTest,
    MemberOf,
    Not,
    Rule,
    RuleError,
    parse_rule,
)
from audiences.rules.values import Type, parse_stored_datetime, period_start, present_moment

_TRUE, _FALSE = "true", "false"  # constants that fold away before they reach a Q


class RuleCompiler:
    """Compiles parsed rules to a filter on the rows that stand for a profile: Profile itself, or (with
    `through_list`) the AudienceMember rows of a list, whose profile is `profile_id` and `profile__...`.

    `after_id` keeps only greater profile ids, for keyset pages. The bound is repeated inside the consent and
    list subqueries: PostgreSQL carries equalities across a join, not inequalities, and without it each page
    would read a list's or a channel's rows from the start."""

    def __init__(self, *, now: datetime | None = None, after_id: int | None = None, through_list: bool = False):
        self.now = now or timezone.now()
        self.after_id = after_id
        self.profile_id = "profile_id" if through_list else "pk"
        self.prefix = "profile__" if through_list else ""
        self.bound = {} if after_id is None else {"profile_id__gt": after_id}

    def compile(self, rule: Rule) -> Q:
        folded = self._visit(rule, False, ())
        keyset = Q() if self.after_id is None else Q(**{f"{self.profile_id}__gt": self.after_id})
        if folded == _TRUE:
            return keyset
        if folded == _FALSE:
            return Q(pk__in=[])
        return keyset & folded

    def _visit(self, node, negated: bool, stack: tuple[int, ...]):
        if isinstance(node, All | Any_):
            children = node.all if isinstance(node, All) else node.any
            # De Morgan: under `not`, all becomes any and any becomes all.
            return _combine(
                [self._visit(child, negated, stack) for child in children], isinstance(node, All) != negated
            )
        if isinstance(node, Not):
            return self._visit(node.not_, not negated, stack)
        if isinstance(node, Comparison):
            return Q(AttributeCondition(node, now=self.now, negated=negated, prefix=self.prefix))
        if isinstance(node, ConsentTest):
            return self._consent(node.consent, negated)
        return self._membership(node, negated, stack)

    def _consent(self, consent: ConsentState, negated: bool) -> Q:
        recorded = Consent.objects.filter(profile_id=OuterRef(self.profile_id), channel=consent.channel, **self.bound)
        if consent.state == Consent.State.UNKNOWN:
            # Unknown: no row, or a row that says unknown. So: no row that says opted in or out.
            q = ~Q(Exists(recorded.filter(state__in=[Consent.State.OPTED_IN, Consent.State.OPTED_OUT])))
        else:
            q = Q(Exists(recorded.filter(state=consent.state)))
        return ~q if negated else q

    def _membership(self, node, negated: bool, stack: tuple[int, ...]):
        audience_id = node.member_of
        if audience_id in stack:
            path = " → ".join(map(str, (*stack, audience_id)))
            raise RuleError([f"member_of: audience {audience_id} includes itself ({path})"])
        kind, rule = node.audience or _stored_audience(audience_id)
        if kind == Audience.Kind.ALL:
            return _FALSE if negated else _TRUE
        if kind == Audience.Kind.UPLOADED:
            members = AudienceMember.objects.filter(
                audience_id=audience_id, profile_id=OuterRef(self.profile_id), **self.bound
            )
            return ~Q(Exists(members)) if negated else Q(Exists(members))
        try:
            included = parse_rule(rule, audience_id=audience_id)
        except RuleError as exc:
            raise RuleError([f"member_of: audience {audience_id}'s rule: {error}" for error in exc.errors]) from None
        return self._visit(included, negated, (*stack, audience_id))


def compile_rule(rule: Rule, *, now: datetime | None = None, after_id: int | None = None) -> Q:
    """An ORM filter on Profile selecting exactly the profiles `evaluate` accepts, relative dates taken at
    `now` (default: the present). Another audience named by `member_of` is inlined (a rule) or tested with
    EXISTS (an uploaded list); RuleError if it no longer validates. `after_id` keeps only greater ids, for
    keyset pages."""
    return RuleCompiler(now=now, after_id=after_id).compile(rule)


def list_members(rule: Rule, *, now: datetime | None = None, after_id: int | None = None) -> QuerySet | None:
    """For a rule that requires an uploaded list at its top level (`member_of` the list, alone or in an `all`):
    the list's AudienceMember rows that match the rest of the rule. Counting and paging those reads the list's
    own index in profile order, and a profile row only when the rest needs one. None for any other rule."""
    children = rule.all if isinstance(rule, All) else [rule]
    for child in children:
        if (
            isinstance(child, MemberOf)
            and (child.audience or _stored_audience(child.member_of))[0] == Audience.Kind.UPLOADED
        ):
            rest = All.model_construct(all=[other for other in children if other is not child])
            compiler = RuleCompiler(now=now, after_id=after_id, through_list=True)
            return AudienceMember.objects.filter(compiler.compile(rest), audience_id=child.member_of)
    return None


def _stored_audience(audience_id: int) -> tuple[str, object]:
    found = Audience.objects.filter(pk=audience_id).values_list("kind", "rule").first()
    if found is None:
        raise RuleError([f"member_of: audience {audience_id} no longer exists"])
    return found


def _combine(children: list, conjunction: bool):
    absorbing, neutral = (_FALSE, _TRUE) if conjunction else (_TRUE, _FALSE)
    if absorbing in children:
        return absorbing
    children = [child for child in children if child != neutral]
    if not children:
        return neutral
    combined = children[0]
    for child in children[1:]:
        combined = (combined & child) if conjunction else (combined | child)
    return combined


_SECOND = timedelta(seconds=1)
# In JSONB order null sorts below every number and string: `x > 'null'` keeps `x < value` off JSON nulls.
_NOT_NULL_JSON = "'null'::jsonb"


def _param(value) -> tuple[str, list]:
    return "%s", [value]


def _jsonb(value) -> tuple[str, list]:
    return "%s::jsonb", [json.dumps(value)]


def _sql(template: str, *pieces: tuple[str, list]) -> tuple[str, list]:
    """`template` with each `{}` filled by a piece's SQL; the parameters follow in the same order."""
    params: list = []
    for _, piece_params in pieces:
        params.extend(piece_params)
    return template.format(*(sql for sql, _ in pieces)), params


def _joined(pieces: list[tuple[str, list]]) -> tuple[str, list]:
    return ", ".join(sql for sql, _ in pieces), [param for _, params in pieces for param in params]


class AttributeCondition(Lookup):
    """A rule comparison as a WHERE condition on Profile (a Lookup, so it stands in a WHERE clause as it is).

    `now` fixes relative dates; `negated` renders the comparison's `not`."""

    lookup_name = "rule_comparison"
    prepare_rhs = False

    def __init__(self, node: Comparison, *, now: datetime, negated: bool = False, prefix: str = ""):
        self.node, self.now, self.negated = node, now, negated
        super().__init__(F(prefix + (node.attribute if node.builtin else "attributes")), None)

    @property
    def identity(self):
        return (self.__class__, self.lhs, self.node.model_dump_json(by_alias=True), self.now, self.negated)

    def __repr__(self):
        return f"{self.__class__.__name__}({self.node!r}, negated={self.negated})"

    def as_sql(self, compiler, connection):
        column = compiler.compile(self.lhs)
        if self.node.attribute == "created_at":
            sql, params = self._moment(column, connection)
        elif self.node.builtin:
            sql, params = self._text_column(column, connection.vendor)
        elif connection.vendor == "postgresql":
            sql, params = self._postgresql(compiler, connection)
        elif connection.vendor == "sqlite":
            sql, params = self._sqlite(column)
        else:
            raise NotImplementedError(f"rule comparisons are not written for {connection.vendor}")
        if self.negated:
            return f"NOT COALESCE({sql}, FALSE)", params
        return sql, params

    # The stored value of a relative period, and of "now", for this comparison.
    def _period(self) -> tuple[str, str]:
        type_ = self.node.type
        return period_start(self.now, self.node.value, type_), present_moment(self.now, type_)

    def _postgresql(self, compiler, connection) -> tuple[str, list]:
        node, value = self.node, self.node.value
        x = compiler.compile(KeyTransform(node.attribute, self.lhs))
        match node.op:
            case "exists":
                return _sql("{} <> " + _NOT_NULL_JSON, x)
            case "equals":
                return _sql("{} = {}", x, _jsonb(value))
            case "not_equals" if node.type == Type.BOOLEAN:
                return _sql("{} = {}", x, _jsonb(not value))
            case "not_equals":
                return _sql("({} <> {} AND {} <> " + _NOT_NULL_JSON + ")", x, _jsonb(value), x)
            case "in":
                return _sql("{} IN ({})", x, _joined([_jsonb(item) for item in value]))
            case "not_in":
                items = _joined([_jsonb(item) for item in value])
                return _sql("({} NOT IN ({}) AND {} <> " + _NOT_NULL_JSON + ")", x, items, x)
            case "contains" if node.type == Type.STRING_LIST:
                return _sql("{} @> {}", x, _jsonb([value]))
            case "contains_any":
                return _sql("{} ?| {}::text[]", x, _param(list(value)))
            case "contains":
                text = compiler.compile(KeyTextTransform(node.attribute, self.lhs))
                return _sql("strpos({}, {}) > 0", text, _param(value))
            case "starts_with":
                text = compiler.compile(KeyTextTransform(node.attribute, self.lhs))
                return _sql("starts_with({}, {})", text, _param(value))
            case "gt" | "after":
                return _sql("{} > {}", x, _jsonb(value))
            case "gte":
                return _sql("{} >= {}", x, _jsonb(value))
            case "lt" | "before":
                return _sql("({} < {} AND {} > " + _NOT_NULL_JSON + ")", x, _jsonb(value), x)
            case "lte":
                return _sql("({} <= {} AND {} > " + _NOT_NULL_JSON + ")", x, _jsonb(value), x)
            case "between":
                return _sql("{} BETWEEN {} AND {}", x, _jsonb(value[0]), _jsonb(value[1]))
            case "in_last":
                start, present = self._period()
                return _sql("{} BETWEEN {} AND {}", x, _jsonb(start), _jsonb(present))
            case "more_than_ago":
                start, _ = self._period()
                return _sql("({} < {} AND {} > " + _NOT_NULL_JSON + ")", x, _jsonb(start), x)
        raise NotImplementedError(node.op)

    def _sqlite(self, column: tuple[str, list]) -> tuple[str, list]:
        node, value = self.node, self.node.value
        path = _param(f'$."{node.attribute}"')  # the name is validated: lower-case letters, digits, "_"
        x = _sql("JSON_EXTRACT({}, {})", column, path)
        match node.op:
            case "exists":
                return _sql("{} IS NOT NULL", x)
            case "equals" | "not_equals" if node.type == Type.BOOLEAN:
                wanted = value if node.op == "equals" else not value
                return _sql("JSON_TYPE({}, {}) = {}", column, path, _param("true" if wanted else "false"))
            case "equals":
                return _sql("{} = {}", x, _param(value))
            case "not_equals":
                return _sql("{} <> {}", x, _param(value))
            case "in":
                return _sql("{} IN ({})", x, _joined([_param(item) for item in value]))
            case "not_in":
                return _sql("{} NOT IN ({})", x, _joined([_param(item) for item in value]))
            case "contains" if node.type == Type.STRING_LIST:
                return _sql(
                    "EXISTS (SELECT 1 FROM json_each({}, {}) AS item WHERE item.value = {})",
                    column,
                    path,
                    _param(value),
                )
            case "contains_any":
                items = _joined([_param(item) for item in value])
                return _sql(
                    "EXISTS (SELECT 1 FROM json_each({}, {}) AS item WHERE item.value IN ({}))", column, path, items
                )
            case "contains":
                return _sql("instr({}, {}) > 0", x, _param(value))
            case "starts_with":
                return _sql("substr({}, 1, length({})) = {}", x, _param(value), _param(value))
            case "gt" | "after":
                return _sql("{} > {}", x, _param(value))
            case "gte":
                return _sql("{} >= {}", x, _param(value))
            case "lt" | "before":
                return _sql("{} < {}", x, _param(value))
            case "lte":
                return _sql("{} <= {}", x, _param(value))
            case "between":
                return _sql("{} BETWEEN {} AND {}", x, _param(value[0]), _param(value[1]))
            case "in_last":
                start, present = self._period()
                return _sql("{} BETWEEN {} AND {}", x, _param(start), _param(present))
            case "more_than_ago":
                start, _ = self._period()
                return _sql("{} < {}", x, _param(start))
        raise NotImplementedError(node.op)

    def _text_column(self, column: tuple[str, list], vendor: str) -> tuple[str, list]:
        """email, phone, timezone, locale: text columns where "" means missing."""
        node, value = self.node, self.node.value
        match node.op:
            case "exists":
                return _sql("{} <> ''", column)
            case "equals":
                condition = _sql("{} = {}", column, _param(value))
            case "not_equals":
                condition = _sql("{} <> {}", column, _param(value))
            case "in":
                condition = _sql("{} IN ({})", column, _joined([_param(item) for item in value]))
            case "not_in":
                condition = _sql("{} NOT IN ({})", column, _joined([_param(item) for item in value]))
            case "contains" if vendor == "postgresql":
                condition = _sql("strpos({}, {}) > 0", column, _param(value))
            case "contains":
                condition = _sql("instr({}, {}) > 0", column, _param(value))
            case "starts_with" if vendor == "postgresql":
                condition = _sql("starts_with({}, {})", column, _param(value))
            case "starts_with":
                condition = _sql("substr({}, 1, length({})) = {}", column, _param(value), _param(value))
            case _:
                raise NotImplementedError(node.op)
        return _sql("({} <> '' AND {})", column, condition)

    def _moment(self, column: tuple[str, list], connection) -> tuple[str, list]:
        """created_at, compared at the second, as the stored form of a date-time attribute would be."""
        node, value = self.node, self.node.value

        def at(stored: str, later: timedelta = timedelta(0)) -> tuple[str, list]:
            moment = parse_stored_datetime(stored) + later
            return _param(connection.ops.adapt_datetimefield_value(moment))

        match node.op:
            case "exists":
                return _sql("{} IS NOT NULL", column)
            case "equals":
                return _sql("({} >= {} AND {} < {})", column, at(value), column, at(value, _SECOND))
            case "before":
                return _sql("{} < {}", column, at(value))
            case "after":
                return _sql("{} >= {}", column, at(value, _SECOND))
            case "between":
                return _sql("({} >= {} AND {} < {})", column, at(value[0]), column, at(value[1], _SECOND))
            case "in_last":
                start, present = self._period()
                return _sql("({} >= {} AND {} < {})", column, at(start), column, at(present, _SECOND))
            case "more_than_ago":
                start, _ = self._period()
                return _sql("{} < {}", column, at(start))
        raise NotImplementedError(node.op)
