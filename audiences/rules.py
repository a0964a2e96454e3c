"""The audience rule language: a typed tree, validated by pydantic and compiled to an ORM filter.

    {"all": [{"attribute": "country", "op": "equals", "value": "FR"},
             {"not": {"attribute": "vip", "op": "equals", "value": true}}]}

A missing attribute matches no comparison, so `not` of a comparison matches profiles that lack it.
"""

from typing import Annotated, Any, Literal

from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

Operator = Literal["equals", "not_equals", "in", "gt", "gte", "lt", "lte", "exists", "starts_with"]
_ORDERING = {"gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
Scalar = str | int | float | bool


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attribute: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
    op: Operator
    value: Scalar | list[Scalar] | None = None

    @field_validator("attribute")
    @classmethod
    def _no_lookup_separator(cls, name: str) -> str:
        if "__" in name:
            raise ValueError("attribute names cannot contain '__'")
        return name

    @model_validator(mode="after")
    def _value_fits_operator(self):
        if self.op == "exists":
            if self.value is not None:
                raise ValueError("'exists' takes no value")
        elif self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("'in' needs a non-empty list of values")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"'{self.op}' needs a single value")
        if self.op in _ORDERING and isinstance(self.value, bool):
            raise ValueError(f"'{self.op}' compares numbers or text, not booleans")
        if self.op == "starts_with" and not isinstance(self.value, str):
            raise ValueError("'starts_with' needs a text value")
        return self


class All(BaseModel):
    model_config = ConfigDict(extra="forbid")
    all: list["Rule"]


class Any_(BaseModel):
    model_config = ConfigDict(extra="forbid")
    any: list["Rule"] = Field(min_length=1)


class Not(BaseModel):
    model_config = ConfigDict(extra="forbid")
    not_: "Rule" = Field(alias="not")


def _node_kind(data: Any) -> str:
    if isinstance(data, dict):
        return next((key for key in ("all", "any", "not") if key in data), "comparison")
    return "comparison"


# A node's keys say which kind it is, so an error names that node's own problem, not every branch's.
Rule = Annotated[
    Annotated[All, Tag("all")]
    | Annotated[Any_, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Comparison, Tag("comparison")],
    Discriminator(_node_kind),
]
_RULE = TypeAdapter(Rule)


class RuleError(ValueError):
    """A rule that does not validate; `errors` lists "path: problem" strings."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def parse_rule(data: Any) -> All | Any_ | Not | Comparison:
    try:
        return _RULE.validate_python(data)
    except ValidationError as exc:
        raise RuleError(_describe(exc)) from None


def _describe(exc: ValidationError) -> list[str]:
    described = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        described.append(f"{_path(error['loc']) or 'rule'}: {message}")
    return list(dict.fromkeys(described))


def _path(loc: tuple) -> str:
    # The location interleaves discriminator tags with real keys (`all`, `all`, 0, ...): drop the tags.
    parts, keys = [], iter(loc)
    for part in keys:
        if part in ("all", "any", "not"):
            next(keys, None)  # the tag is followed by the field of the same name
            parts.append(f".{part}")
        elif part == "comparison":
            continue
        elif isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}")
    return "".join(parts).lstrip(".")


def compile_rule(rule) -> tuple[dict, Q]:
    """Compile a parsed rule to (aliases, Q) for `Profile.objects.alias(**aliases).filter(q)`.

    Attribute values are reached through KeyTransform aliases, so an attribute named like a lookup
    ("contains") is still read as a key.
    """
    aliases: dict = {}

    def visit(node) -> Q:
        if isinstance(node, All):
            q = Q()
            for child in node.all:
                q &= visit(child)
            return q
        if isinstance(node, Any_):
            q = Q(pk__in=[])
            for child in node.any:
                q |= visit(child)
            return q
        if isinstance(node, Not):
            return ~visit(node.not_)
        alias = f"_attr_{node.attribute}"
        aliases[alias] = KeyTransform(node.attribute, "attributes")
        present = Q(**{"attributes__has_key": node.attribute})
        match node.op:
            case "exists":
                return present
            case "equals":
                return present & Q(**{alias: node.value})
            case "not_equals":
                return present & ~Q(**{alias: node.value})
            case "in":
                return present & Q(**{f"{alias}__in": node.value})
            case "starts_with":
                return present & Q(**{f"{alias}__startswith": node.value})
            case op:
                return present & Q(**{f"{alias}__{_ORDERING[op]}": node.value})

    q = visit(rule)
    return aliases, q


All.model_rebuild()
Any_.model_rebuild()
Not.model_rebuild()
