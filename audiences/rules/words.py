"""A rule in words, for the audience's page: "plan is pro AND (country is one of FR, DE OR age is less than 30)".

Operators are named as the rule builder names them (audiences.rules.builder.OPERATOR_LABELS)."""

import json

from audiences.models import Channel, Consent
from audiences.rules.builder import OPERATOR_LABELS
from audiences.rules.values import PERIOD_OPERATORS


def rule_in_words(rule, audience_names: dict[int, str] | None = None) -> str:
    """The rule as a sentence; an empty rule is "every profile"."""
    if not rule:
        return "every profile"
    return _words(rule, audience_names or {}, top=True)


def _words(node, names: dict[int, str], top: bool = False) -> str:
    if not isinstance(node, dict):
        return "?"
    for key, joiner in (("all", " AND "), ("any", " OR ")):
        if key in node:
            children = node[key] if isinstance(node[key], list) else []
            if not children:
                return "every profile" if key == "all" else "no profile"
            text = joiner.join(_words(child, names) for child in children)
            return text if top or len(children) == 1 else f"({text})"
    if "not" in node:
        return f"NOT {_words(node['not'], names)}" if _is_group(node["not"]) else f"NOT ({_words(node['not'], names)})"
    if "consent" in node:
        consent = node["consent"] if isinstance(node["consent"], dict) else {}
        channel = _label(Channel, consent.get("channel"))
        state = _label(Consent.State, consent.get("state")).lower()
        return f"{channel} consent is {state}"
    if "member_of" in node:
        audience_id = node["member_of"]
        name = names.get(audience_id) if isinstance(audience_id, int) else None
        return f"member of “{name}”" if name else f"member of audience #{audience_id}"
    op = node.get("op", "")
    label = OPERATOR_LABELS.get(op, op)
    value = node.get("value")
    attribute = node.get("attribute", "?")
    if op == "exists":
        return f"{attribute} is set"
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return f"{attribute} is between {_word(value[0])} and {_word(value[1])}"
    if op in PERIOD_OPERATORS and isinstance(value, dict):
        period = f"{_word(value.get('amount'))} {_word(value.get('unit'))}"
        return f"{attribute} is in the last {period}" if op == "in_last" else f"{attribute} is more than {period} ago"
    if isinstance(value, list):
        return f"{attribute} {label} {', '.join(_word(item) for item in value)}"
    return f"{attribute} {label} {_word(value)}"


def _is_group(node) -> bool:
    return isinstance(node, dict) and ("all" in node or "any" in node)


def _word(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value if value and value == value.strip() else f"“{value}”"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _label(choices, value) -> str:
    try:
        return choices(value).label
    except ValueError:
        return str(value)
