"""The audience rule language: a typed tree, validated by pydantic against the attribute schema, compiled to
an ORM filter (by audiences.rules.sql), and evaluated in Python (by audiences.rules.evaluation) with the same
meaning.

    {"all": [{"attribute": "plan", "op": "equals", "value": "pro"},
             {"consent": {"channel": "email", "state": "opted_in"}},
             {"not": {"member_of": 7}}]}

A missing attribute (no key, or a JSON null) matches no comparison, so `not` of a comparison matches the
profiles that lack it. docs/audiences.md ("Rule language") is the reference.
"""

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictInt,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from audiences.attributes import attribute_types
from audiences.models import Audience, Channel
from audiences.rules.values import TYPE_NAMES, Type, ValueProblem, typed_value

# Profile fields every rule can compare, besides the declared attributes. They win over a declared
# attribute of the same name.
BUILTIN_FIELDS = {
    "email": Type.STRING,
    "phone": Type.STRING,
    "timezone": Type.STRING,
    "locale": Type.STRING,
    "created_at": Type.DATETIME,
}
_DATE_OPERATORS = ["equals", "before", "after", "between", "in_last", "more_than_ago", "exists"]
OPERATORS = {
    Type.STRING: ["equals", "not_equals", "in", "not_in", "contains", "starts_with", "exists"],
    Type.NUMBER: ["equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "between", "exists"],
    Type.BOOLEAN: ["equals", "not_equals", "exists"],
    Type.DATE: _DATE_OPERATORS,
    Type.DATETIME: _DATE_OPERATORS,
    Type.STRING_LIST: ["contains", "contains_any", "exists"],
}
ALL_OPERATORS = list(dict.fromkeys(op for ops in OPERATORS.values() for op in ops))

# Bounds on one rule: the JSON editor and the API accept any JSON, the database should not get a monster.
MAX_NODES = 500
MAX_DEPTH = 24


class RuleError(ValueError):
    """A rule that does not validate or compile; `errors` lists "path: problem" strings (path like
    `all[2].value`, or `rule` for the whole rule)."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


# The tree -----------------------------------------------------------------------------------------------


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Comparison(_Node):
    """An attribute (declared, or a built-in profile field) compared with a value by an operator of its type.

    After validation `value` holds the stored form (see audiences.attributes) and `type` the attribute's type.
    """

    attribute: str
    op: str
    value: Any = Field(default=None, validate_default=True)
    _type: str = PrivateAttr(default="")

    @property
    def type(self) -> str:
        return self._type

    @property
    def builtin(self) -> bool:
        return self.attribute in BUILTIN_FIELDS

    @field_validator("attribute")
    @classmethod
    def _known_attribute(cls, name: str, info: ValidationInfo) -> str:
        if not _NAME.match(name) or "__" in name:
            raise ValueError("expected an attribute name (lower-case letters, digits and single underscores)")
        if _schema(info).get(name) is None:
            raise ValueError(f"unknown attribute {name!r}")
        return name

    @field_validator("op")
    @classmethod
    def _operator_of_the_type(cls, op: str, info: ValidationInfo) -> str:
        type_ = _schema(info).get(info.data.get("attribute", ""))
        if type_ is None:
            if op not in ALL_OPERATORS:
                raise ValueError(f"unknown operator {op!r}")
        elif op not in OPERATORS[type_]:
            raise ValueError(
                f"{op!r} does not apply to {TYPE_NAMES[type_]} attribute; use one of {', '.join(OPERATORS[type_])}"
            )
        return op

    @field_validator("value")
    @classmethod
    def _value_of_the_type(cls, value: Any, info: ValidationInfo) -> Any:
        if "attribute" not in info.data or "op" not in info.data:
            return value  # their own errors are reported; the value cannot be judged without them
        try:
            return typed_value(_schema(info)[info.data["attribute"]], info.data["op"], value)
        except ValueProblem as problem:
            raise PydanticCustomError(
                "rule_value", "{problem}", {"problem": str(problem), "where": problem.where}
            ) from None

    @model_validator(mode="after")
    def _remember_type(self, info: ValidationInfo):
        self._type = _schema(info)[self.attribute]
        return self


class ConsentState(_Node):
    channel: Channel
    state: Literal["opted_in", "opted_out", "unknown"]


class ConsentTest(_Node):
    """The profile's consent on a channel is in this state ("unknown": no consent recorded, or unknown)."""

    consent: ConsentState


class MemberOf(_Node):
    """The profile is a member of another audience, of any kind. After validation `audience` holds that
    audience's (kind, rule) as parsing found it, so compiling reads it once."""

    member_of: StrictInt
    _audience: tuple[str, Any] | None = PrivateAttr(default=None)

    @property
    def audience(self) -> tuple[str, Any] | None:
        return self._audience

    @field_validator("member_of")
    @classmethod
    def _existing_audience_without_cycle(cls, audience_id: int, info: ValidationInfo) -> int:
        problem = info.context["audiences"].problem_with(audience_id) if info.context else None
        if problem:
            raise ValueError(problem)
        return audience_id

    @model_validator(mode="after")
    def _remember_audience(self, info: ValidationInfo):
        if info.context:
            self._audience = info.context["audiences"].stored(self.member_of)
        return self


class All(_Node):
    """Every child matches (an empty list matches every profile)."""

    all: list["Rule"]


class Any_(_Node):
    """At least one child matches."""

    any: list["Rule"] = Field(min_length=1)


class Not(_Node):
    """The child does not match."""

    not_: "Rule" = Field(alias="not")


_KINDS = ("all", "any", "not", "consent", "member_of")


def _node_kind(data: Any) -> str | None:
    if isinstance(data, dict):
        return next((key for key in _KINDS if key in data), "comparison")
    if isinstance(data, BaseModel):
        return {All: "all", Any_: "any", Not: "not", ConsentTest: "consent", MemberOf: "member_of"}.get(
            type(data), "comparison"
        )
    return None


# A node's keys say which kind it is, so an error names that node's own problem, not every branch's.
Rule = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[ConsentTest, Tag("consent")]
    | Annotated[MemberOf, Tag("member_of")]
    | Annotated[Comparison, Tag("comparison")],
    Discriminator(
        _node_kind,
        custom_error_type="rule_node",
        custom_error_message="expected a rule: an object with all, any, not, attribute, consent or member_of",
    ),
]
All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()
_RULE = TypeAdapter(Rule)


# Parsing ------------------------------------------------------------------------------------------------

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _schema(info: ValidationInfo) -> dict[str, str]:
    if not info.context:
        return BUILTIN_FIELDS
    if info.context["schema"] is None:  # read once, and only for a rule that compares attributes
        info.context["schema"] = {**attribute_types(), **BUILTIN_FIELDS}
    return info.context["schema"]


class _AudienceGraph:
    """The audiences a rule may name, loaded lazily: whether one exists, and whether naming it closes a cycle
    back to the audience whose rule is being checked."""

    def __init__(self, audience_id: int | None):
        self.audience_id = audience_id
        self._references: dict[int, set[int] | None] = {}
        self._stored: dict[int, tuple[str, Any]] = {}

    def stored(self, audience_id: int) -> tuple[str, Any] | None:
        """The (kind, rule) of an audience loaded while checking, if it exists."""
        return self._stored.get(audience_id)

    def problem_with(self, audience_id: int) -> str | None:
        if audience_id == self.audience_id:
            return "an audience cannot include itself"
        if self._load([audience_id])[audience_id] is None:
            return f"no audience {audience_id}"
        cycle = self._cycle_from(audience_id)
        if cycle and self.audience_id is not None and self.audience_id in cycle:
            return f"audience {audience_id} includes this audience"
        if cycle:
            return f"audience {audience_id} is part of a cycle ({' → '.join(map(str, cycle))})"
        return None

    def _cycle_from(self, start: int) -> list[int] | None:
        """A path of member_of references from `start` back to this audience or to an audience already on it."""
        path: list[int] = []
        on_path: set[int] = set()
        done: set[int] = set()

        def walk(audience_id: int) -> list[int] | None:
            if audience_id == self.audience_id:
                return [*path, audience_id]
            if audience_id in on_path:
                return [*path, audience_id]
            if audience_id in done:
                return None
            path.append(audience_id)
            on_path.add(audience_id)
            references = sorted(self._load([audience_id])[audience_id] or ())
            self._load(references)
            for reference in references:
                if found := walk(reference):
                    return found
            path.pop()
            on_path.discard(audience_id)
            done.add(audience_id)
            return None

        return walk(start)

    def _load(self, audience_ids) -> dict[int, set[int] | None]:
        missing = [pk for pk in audience_ids if pk not in self._references]
        if missing:
            found = {
                pk: (kind, rule)
                for pk, kind, rule in Audience.objects.filter(pk__in=missing).values_list("pk", "kind", "rule")
            }
            self._stored.update(found)
            for pk in missing:
                kind, rule = found.get(pk, (None, None))
                self._references[pk] = (
                    None if kind is None else (member_of_ids(rule) if kind == Audience.Kind.RULE else set())
                )
        return self._references


def member_of_ids(rule) -> set[int]:
    """The audiences a stored rule names in `member_of`, at any depth (the rule need not be valid)."""
    found: set[int] = set()
    stack = [rule]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("member_of"), int) and not isinstance(node["member_of"], bool):
                found.add(node["member_of"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def parse_rule(data: Any, *, audience_id: int | None = None) -> Rule:
    """The rule tree of `data` (JSON), with every value in its attribute's stored form, or RuleError listing
    each problem with the path of its node. `audience_id` is the audience the rule belongs to, so that a
    `member_of` leading back to it is refused."""
    if data == {}:
        raise RuleError(['rule: empty; {"all": []} matches every profile'])
    _check_size(data)
    context = {
        "schema": None,
        "audiences": _AudienceGraph(audience_id),
    }
    try:
        return _RULE.validate_python(data, context=context)
    except ValidationError as exc:
        raise RuleError(_describe(exc)) from None


def _check_size(data: Any) -> None:
    nodes = 0
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RuleError([f"rule: nested deeper than {MAX_DEPTH} levels"])
        if isinstance(node, dict):
            nodes += 1
            children = node.get("all") or node.get("any") or ([node["not"]] if "not" in node else [])
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in children)
    if nodes > MAX_NODES:
        raise RuleError([f"rule: more than {MAX_NODES} conditions and groups"])


_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown key",
    "list_type": "expected a list",
    "int_type": "expected a whole number",
    "string_type": "expected a text",
    "model_type": "expected an object",
    "dict_type": "expected an object",
}


def _describe(exc: ValidationError) -> list[str]:
    described = []
    for error in exc.errors():
        context = error.get("ctx") or {}
        if error["type"] == "too_short" and error["loc"] and error["loc"][-1] == "any":
            message = "needs at least one rule"
        else:
            message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
        path = _path(error["loc"]) + context.get("where", "")
        described.append(f"{path or 'rule'}: {message}")
    return list(dict.fromkeys(described))


def _path(loc: tuple) -> str:
    # The location interleaves discriminator tags with real keys (`all`, `all`, 0, ...): drop the tags.
    parts: list[str] = []
    index = 0
    while index < len(loc):
        part = loc[index]
        following = loc[index + 1] if index + 1 < len(loc) else None
        if part == "comparison" or (part in _KINDS and following != part):
            index += 1  # a tag alone: the node's own field (or the node) follows
            continue
        if part in _KINDS:
            index += 1  # a tag followed by the field of the same name
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
        index += 1
    return "".join(parts).lstrip(".")
