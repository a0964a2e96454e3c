"""The rule builder's form state: a rule as a tree of form fields, and back.

The browser never holds the rule as JSON while building it: every node is a set of named inputs
(`rule[r.0][attribute]`, `rule[r.0][op]`, ...), and each htmx action posts them all and gets the builder
re-rendered from them. `tree_from_post` reads those inputs, `tree_to_rule` turns the tree into the rule
language's JSON (see audiences.rules.tree) and `tree_from_rule` goes the other way, for the JSON editor and for
editing a saved audience. A group "none of" is written as `not`: `{"not": x}` for one child,
`{"not": {"any": [...]}}` for several, which keeps every rule the builder can show round-tripping exactly.

Values travel as text and are typed by the attribute's declared type on the way to JSON; text that does not
fit the type is passed on unchanged, so the rule language's own validation names the problem and its path.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from audiences.attributes import attribute_types
from audiences.models import Audience, Channel, Consent
from audiences.rules.tree import ALL_OPERATORS, BUILTIN_FIELDS, OPERATORS
from audiences.rules.values import LIST_OPERATORS, PERIOD_OPERATORS, PERIOD_UNITS

# The operators and the profile fields come from the rule language (audiences.rules.tree); how the page names them is
# the builder's.
OPERATOR_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
    "contains_any": "contains any of",
    "starts_with": "starts with",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between",
    "before": "is before",
    "after": "is after",
    "in_last": "is in the last",
    "more_than_ago": "is more than … ago",
    "exists": "is set",
}
COMBINATORS = {"all": "all of", "any": "any of", "none": "none of"}
JOINERS = {"all": "and", "any": "or", "none": "or"}

# Bounds on what a posted form may build: the builder is a page, not a way to send the server huge trees.
MAX_NODES = 200
MAX_DEPTH = 8
# Groups can be added down to this depth from the page; deeper rules still load from JSON.
MAX_GROUP_DEPTH = 4

_PATH = re.compile(r"^r(?:\.\d{1,3})*$")
_FIELD = re.compile(r"^rule\[(r(?:\.\d{1,3})*)\]\[(\w+)\]$")


@dataclass
class Attribute:
    name: str
    type: str | None  # None: not declared (any more)
    builtin: bool = False

    @property
    def operators(self) -> list[str]:
        return OPERATORS.get(self.type, ALL_OPERATORS)


class Schema:
    """The attributes a rule may compare, by name: built-ins first, then the declared schema."""

    def __init__(self, declared: dict[str, str] | None = None):
        declared = attribute_types() if declared is None else declared
        self.builtins = [Attribute(name, type_, builtin=True) for name, type_ in BUILTIN_FIELDS.items()]
        # A profile field wins over a declared attribute of the same name, as in the rule language.
        self.declared = [
            Attribute(name, type_) for name, type_ in sorted(declared.items()) if name not in BUILTIN_FIELDS
        ]
        self._by_name = {attribute.name: attribute for attribute in [*self.declared, *self.builtins]}

    def get(self, name: str) -> Attribute:
        return self._by_name.get(name) or Attribute(name, None)

    def first(self) -> Attribute:
        return (self.declared or self.builtins)[0]


@dataclass
class Node:
    """One node of the builder's tree. `kind` is "group" or "condition"; a condition's `subject` is
    "attribute", "consent" or "member"."""

    path: str
    kind: str = "condition"
    combinator: str = "all"
    children: list["Node"] = field(default_factory=list)
    subject: str = "attribute"
    attribute: str = ""
    op: str = ""
    value: str = ""
    value_to: str = ""
    amount: str = ""
    unit: str = "days"
    channel: str = Channel.EMAIL
    state: str = Consent.State.OPTED_IN
    audience: str = ""
    # The attribute's declared type (None: not declared), set by `annotate` for the templates.
    type: str | None = None
    known: bool = True
    # Filled when the tree is checked: the rule language's problems with this node ("value: expected ...").
    errors: list[str] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return self.kind == "group"

    @property
    def depth(self) -> int:
        return self.path.count(".")

    @property
    def field_id(self) -> str:
        return "rule-" + self.path.replace(".", "-")

    @property
    def joiner(self) -> str:
        return JOINERS.get(self.combinator, "and")

    @property
    def subject_choice(self) -> str:
        return f"attribute:{self.attribute}" if self.subject == "attribute" else self.subject

    @property
    def period_units(self) -> list[str]:
        # Hours only mean something for a date-time.
        return PERIOD_UNITS if self.type in ("datetime", None) else [unit for unit in PERIOD_UNITS if unit != "hours"]

    @property
    def operator_choices(self) -> list[tuple[str, str]]:
        return [(op, OPERATOR_LABELS.get(op, op)) for op in OPERATORS.get(self.type, ALL_OPERATORS)]

    @property
    def error_pairs(self) -> list[tuple[str, str]]:
        return [split_error(error) for error in self.errors]

    @property
    def value_shape(self) -> str:
        """Which inputs the value takes: none, list, range, period or single."""
        if self.op == "exists":
            return "none"
        if self.op in LIST_OPERATORS:
            return "list"
        if self.op == "between":
            return "range"
        if self.op in PERIOD_OPERATORS:
            return "period"
        return "single"

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()


class BuilderError(ValueError):
    """A posted builder form that cannot be a rule tree (too big, too deep, or tampered with)."""


def new_group(path: str = "r", combinator: str = "all") -> Node:
    return Node(path=path, kind="group", combinator=combinator)


def new_condition(path: str, schema: Schema) -> Node:
    attribute = schema.first()
    return Node(path=path, attribute=attribute.name, op=attribute.operators[0])


# Form state -> tree ----------------------------------------------------------------------------------------


def tree_from_post(data) -> Node:
    """The tree the builder's inputs describe. Nodes are ordered by their path's indexes; gaps (a removed
    node) close up when the tree is renumbered."""
    fields: dict[str, dict[str, str]] = {}
    for name in data:
        match = _FIELD.match(name)
        if match:
            path, attr = match.groups()
            fields.setdefault(path, {})[attr] = data.get(name, "")
    if len(fields) > MAX_NODES:
        raise BuilderError(f"A rule has at most {MAX_NODES} conditions and groups.")
    if "r" not in fields:
        return new_group()
    nodes = {}
    for path, values in fields.items():
        if path.count(".") > MAX_DEPTH:
            raise BuilderError(f"Groups nest at most {MAX_DEPTH} deep.")
        nodes[path] = _node_from_fields(path, values)
    for path in sorted(nodes, key=_path_key):
        if path == "r":
            continue
        parent = nodes.get(path.rsplit(".", 1)[0])
        if parent is None or not parent.is_group:
            raise BuilderError("The rule form is incomplete: reload the page.")
        parent.children.append(nodes[path])
    root = nodes["r"]
    renumber(root)
    return root


def _path_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in path.split(".")[1:])


def _node_from_fields(path: str, values: dict[str, str]) -> Node:
    if values.get("kind") == "group":
        combinator = values.get("combinator", "all")
        return new_group(path, combinator if combinator in COMBINATORS else "all")
    subject = values.get("subject", "")
    node = Node(path=path)
    if subject.startswith("attribute:"):
        node.attribute = subject.removeprefix("attribute:")
    elif subject in ("consent", "member"):
        node.subject = subject
    for name in ("op", "value", "value_to", "amount", "unit", "channel", "state", "audience"):
        if name in values:
            setattr(node, name, values[name].strip() if name != "value" else values[name])
    return node


def annotate(root: Node, schema: Schema) -> None:
    """Give each condition its attribute's type, for choosing its operators and value inputs."""
    for node in root.walk():
        if not node.is_group and node.subject == "attribute":
            attribute = schema.get(node.attribute)
            node.type, node.known = attribute.type, attribute.type is not None


def renumber(node: Node, path: str = "r") -> None:
    node.path = path
    for index, child in enumerate(node.children):
        renumber(child, f"{path}.{index}")


def find(root: Node, path: str) -> Node | None:
    return next((node for node in root.walk() if node.path == path), None)


def fit_to_schema(root: Node, schema: Schema) -> None:
    """After an attribute changes, keep each condition's operator and value inputs fitting its type: an operator
    the type does not have becomes the type's first, and the value is cleared."""
    for node in root.walk():
        if node.is_group or node.subject != "attribute":
            continue
        if not node.attribute:
            node.attribute = schema.first().name
        operators = schema.get(node.attribute).operators
        if node.op not in operators:
            node.op = operators[0]
            node.value = node.value_to = node.amount = ""
        if node.value_shape == "period" and node.unit not in PERIOD_UNITS:
            node.unit = "days"
        if node.value_shape == "period" and schema.get(node.attribute).type == "date" and node.unit == "hours":
            node.unit = "days"


# Builder actions -------------------------------------------------------------------------------------------


def apply_action(root: Node, action: str, schema: Schema) -> Node:
    """Apply one builder button ("add-condition:r.1", "add-group:r", "remove:r.0.2") and return the new root.
    An unknown action or path changes nothing: the form is re-rendered as posted."""
    verb, _, path = action.partition(":")
    target = find(root, path) if _PATH.match(path) else None
    if target is None:
        return root
    if verb in ("add-condition", "add-group"):
        if not target.is_group:
            # A rule whose root is one condition grows into a group around it.
            root = new_group()
            root.children.append(target)
            target = root
        if sum(1 for _ in root.walk()) >= MAX_NODES:
            return root
        if verb == "add-condition":
            target.children.append(new_condition("", schema))
        elif target.depth < MAX_GROUP_DEPTH:
            group = new_group("", "any" if target.combinator == "all" else "all")
            group.children.append(new_condition("", schema))
            target.children.append(group)
    elif verb == "remove" and path != "r":
        parent = find(root, path.rsplit(".", 1)[0])
        parent.children = [child for child in parent.children if child.path != path]
    renumber(root)
    return root


# Tree -> rule JSON -----------------------------------------------------------------------------------------


def tree_to_rule(root: Node, schema: Schema) -> tuple[dict, dict[tuple, str]]:
    """The rule JSON of the tree, and where each node landed in it: {JSON location: builder path}, a location
    being the tuple of keys and indexes from the root ("all", 0, "not")."""
    locations: dict[tuple, str] = {}

    def build(node: Node, location: tuple) -> dict:
        locations[location] = node.path
        if node.is_group:
            if node.combinator == "none":
                if len(node.children) == 1:
                    return {"not": build(node.children[0], (*location, "not"))}
                inner = (*location, "not", "any")
                return {"not": {"any": [build(child, (*inner, i)) for i, child in enumerate(node.children)]}}
            key = node.combinator
            return {key: [build(child, (*location, key, i)) for i, child in enumerate(node.children)]}
        if node.subject == "consent":
            return {"consent": {"channel": node.channel, "state": node.state}}
        if node.subject == "member":
            return {"member_of": _integer(node.audience)}
        return _comparison(node, schema.get(node.attribute).type)

    return build(root, ()), locations


def _comparison(node: Node, type_: str | None) -> dict:
    comparison = {"attribute": node.attribute, "op": node.op}
    shape = node.value_shape
    if shape == "list":
        comparison["value"] = [_typed(item, type_) for item in split_list(node.value)]
    elif shape == "range":
        comparison["value"] = [_typed(node.value, type_), _typed(node.value_to, type_)]
    elif shape == "period":
        comparison["value"] = {"amount": _integer(node.amount), "unit": node.unit}
    elif shape == "single":
        # string_list "contains" takes one text, like a string.
        comparison["value"] = _typed(node.value, "string" if type_ == "string_list" else type_)
    return comparison


def _typed(text: str, type_: str | None):
    if type_ == "number":
        stripped = text.strip()
        if stripped == "":
            return None
        for convert in (int, float):
            try:
                return convert(stripped)
            except ValueError:
                pass
        return text
    if type_ == "boolean":
        return {"true": True, "false": False}.get(text.strip().lower(), text)
    if type_ == "datetime":
        return _datetime_from_input(text)
    if type_ == "date":
        return text.strip()
    return text


def _integer(text: str):
    try:
        return int(text.strip())
    except ValueError:
        return text.strip() or None


def _datetime_from_input(text: str) -> str:
    """A datetime-local input's value ("2026-01-31T09:00"), read as UTC: "2026-01-31T09:00:00Z"."""
    stripped = text.strip()
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date-time, or none in UTC (9999-12-31T23:00-12:00): the rule says so
        return text
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _datetime_to_input(value) -> str:
    if not isinstance(value, str):
        return _text(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # shown as written, with the rule's error beside it
        return value
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


# Rule JSON -> tree -----------------------------------------------------------------------------------------


def tree_from_rule(rule, schema: Schema) -> Node:
    """The builder tree of a rule. An empty rule is an empty "all of" group (every profile)."""
    if not rule:
        return new_group()
    root = _node_from_rule(rule, schema, 0)
    renumber(root)
    return root


def _node_from_rule(data, schema: Schema, depth: int) -> Node:
    if depth > MAX_DEPTH or not isinstance(data, dict):
        raise BuilderError("The builder cannot show this rule: edit it as JSON.")
    if "all" in data or "any" in data:
        key = "all" if "all" in data else "any"
        group = new_group("", key)
        group.children = [_node_from_rule(child, schema, depth + 1) for child in _as_list(data[key])]
        return group
    if "not" in data:
        inner = data["not"]
        group = new_group("", "none")
        if isinstance(inner, dict) and isinstance(inner.get("any"), list) and len(inner["any"]) > 1:
            group.children = [_node_from_rule(child, schema, depth + 1) for child in inner["any"]]
        else:
            group.children = [_node_from_rule(inner, schema, depth + 1)]
        return group
    if "consent" in data:
        consent = data["consent"] if isinstance(data["consent"], dict) else {}
        return Node(
            path="",
            subject="consent",
            channel=_text(consent.get("channel", "")),
            state=_text(consent.get("state", "")),
        )
    if "member_of" in data:
        return Node(path="", subject="member", audience=_text(data["member_of"]))
    return _comparison_node(data, schema)


def _as_list(value) -> list:
    if not isinstance(value, list):
        raise BuilderError("The builder cannot show this rule: edit it as JSON.")
    return value


def _comparison_node(data: dict, schema: Schema) -> Node:
    attribute = schema.get(_text(data.get("attribute", "")))
    node = Node(path="", attribute=attribute.name, op=_text(data.get("op", "")))
    value = data.get("value")
    type_ = attribute.type
    to_text = _datetime_to_input if type_ == "datetime" else _text
    shape = node.value_shape
    if shape == "list" and isinstance(value, list):
        node.value = join_list([_text(item) for item in value])
    elif shape == "range" and isinstance(value, list) and len(value) == 2:
        node.value, node.value_to = to_text(value[0]), to_text(value[1])
    elif shape == "period" and isinstance(value, dict):
        node.amount, node.unit = _text(value.get("amount", "")), _text(value.get("unit", "days"))
    elif shape == "single":
        node.value = to_text(value)
    return node


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


# Lists as one line of text: comma-separated, double quotes around an item that holds a comma, a quote or
# spaces at its ends ("Paris, France"), a quote inside quotes doubled.


def join_list(items: list[str]) -> str:
    return ", ".join(_quote(item) for item in items)


def _quote(item: str) -> str:
    if item == "" or item != item.strip() or "," in item or '"' in item:
        return '"' + item.replace('"', '""') + '"'
    return item


def split_list(text: str) -> list[str]:
    items: list[tuple[list[str], bool]] = []
    current: list[str] = []
    quoted = in_quotes = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_quotes:
            if char == '"' and text[index + 1 : index + 2] == '"':
                current.append('"')
                index += 1
            elif char == '"':
                in_quotes = False
            else:
                current.append(char)
        elif char == '"' and not quoted and not "".join(current).strip():
            current, quoted, in_quotes = [], True, True
        elif char == ",":
            items.append((current, quoted))
            current, quoted = [], False
        elif not (quoted and char.isspace()):
            current.append(char)
        index += 1
    items.append((current, quoted))
    # An empty unquoted item ("a,,b", a trailing comma) is a typing habit, not a value; "" in quotes is one.
    values = []
    for chars, was_quoted in items:
        text_ = "".join(chars)
        if was_quoted:
            values.append(text_)
        elif text_.strip():
            values.append(text_.strip())
    return values


# Errors of the rule language -> nodes ----------------------------------------------------------------------

_TOKEN = re.compile(r"\[(\d+)\]|\.?([A-Za-z_][\w]*)")


def attach_errors(root: Node, errors: list[str], locations: dict[tuple, str]) -> list[str]:
    """Put each "path: problem" error on the builder node at that path (its deepest known ancestor), as
    "rest-of-path: problem". Returns the errors no node took (shown above the builder)."""
    by_path = {node.path: node for node in root.walk()}
    unplaced = []
    for error in errors:
        location, _, problem = error.partition(": ")
        tokens = _tokens(location)
        for cut in range(len(tokens), -1, -1):
            path = locations.get(tuple(tokens[:cut]))
            if path is not None and path in by_path and (cut or location in ("", "rule")):
                rest = "".join(f"[{token}]" if isinstance(token, int) else f".{token}" for token in tokens[cut:])
                rest = rest.lstrip(".")
                by_path[path].errors.append(f"{rest}: {problem}" if rest else problem)
                break
        else:
            unplaced.append(error)
    return unplaced


def split_error(error: str) -> tuple[str, str]:
    """("all[0].value", "expected a number") from "all[0].value: expected a number"."""
    location, separator, problem = error.partition(": ")
    return (location, problem) if separator else ("", error)


def _tokens(location: str) -> list:
    if location in ("", "rule"):
        return []
    tokens = []
    for index, name in _TOKEN.findall(location):
        tokens.append(int(index) if index else name)
    return tokens


def audience_choices(*, exclude: int | None = None) -> list[tuple[int, str]]:
    """The audiences a rule may name in `member_of`: every other one."""
    audiences = Audience.objects.order_by("name").values_list("pk", "name")
    return [(pk, name) for pk, name in audiences if pk != exclude]
