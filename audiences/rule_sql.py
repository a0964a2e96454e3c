"""The SQL of one rule comparison, for PostgreSQL (JSONB) and SQLite (JSON1).

An attribute is read as `attributes -> 'name'` on PostgreSQL (Django's KeyTransform, so a key named like a
lookup is still a key), which is exactly the expression audiences.indexes indexes: equality, ranges and
IN compare JSONB with JSONB and can use that index; list membership is `@>` / `?|`, served by a GIN index.
On SQLite the value is JSON_EXTRACT's, and list membership an EXISTS over json_each.

Values are always parameters. A comparison with a missing attribute is NULL or false; under `not` it is
wrapped in NOT COALESCE(..., FALSE), so a `not` of a comparison matches the profiles that lack it.
"""

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import F, Lookup
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from audiences.rule_values import Type, parse_stored_datetime, period_start, present_moment

if TYPE_CHECKING:
    from audiences.rules import Comparison

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

    def __init__(self, node: "Comparison", *, now: datetime, negated: bool = False):
        self.node, self.now, self.negated = node, now, negated
        super().__init__(F(node.attribute if node.builtin else "attributes"), None)

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
