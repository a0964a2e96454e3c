"""The context contract of an API-triggered campaign: the context fields a trigger call carries, each with a type,
whether it is required, and an example. Calls are checked against it (a violation is a 422 naming the field), and
the content editor previews with the examples.

Stored on the campaign as a list of dicts: `{"name": "reset_url", "type": "string", "required": true,
"example": "https://example.com/r/abc", "description": "..."}`. Fields the contract does not name are allowed.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from config import untrusted

TYPES = ("string", "number", "integer", "boolean", "object", "array")
MAX_FIELDS = 50
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_EXAMPLE_BYTES = 10_000
MAX_DESCRIPTION = 500


@dataclass(frozen=True)
class ContextField:
    name: str
    type: str
    required: bool = False
    example: Any = None
    description: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "example": self.example,
            "description": self.description,
        }


def type_problem(kind: str, value) -> str | None:
    """Why `value` is not of the contract type `kind`, or None."""
    fits = {
        "string": isinstance(value, str),
        # JSON has one number type: 3 and 3.5 are numbers; true is not.
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }[kind]
    if fits:
        return None
    article = "an" if kind[0] in "aeiou" else "a"
    return f"must be {article} {kind}, not {_json_type(value)}"


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def parse_contract(raw) -> list[ContextField]:
    """The contract as declared, or ValidationError naming each entry's problem ("field 2 (order_id): ...")."""
    if not isinstance(raw, list):
        raise ValidationError({"context_contract": "The contract is a list of fields."})
    if len(raw) > MAX_FIELDS:
        raise ValidationError({"context_contract": f"At most {MAX_FIELDS} context fields."})
    fields, problems, seen = [], [], set()
    for number, entry in enumerate(raw, start=1):
        where = f"Field {number}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object with a name and a type.")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(
                f"{where}: the name must be 1 to 64 letters, digits or underscores, not starting with a digit."
            )
            continue
        where = f"{where} ({name})"
        if name in seen:
            problems.append(f"{where}: the name is used twice.")
            continue
        seen.add(name)
        kind = entry.get("type")
        if kind not in TYPES:
            problems.append(f"{where}: the type must be one of {', '.join(TYPES)}.")
            continue
        required = entry.get("required", False)
        if not isinstance(required, bool):
            problems.append(f"{where}: required must be true or false.")
            continue
        example = entry.get("example")
        description = entry.get("description") or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            problems.append(f"{where}: the description must be text of at most {MAX_DESCRIPTION} characters.")
            continue
        try:
            untrusted.check_json_value(example, where="example")
            untrusted.check_text(description, where="description")
        except untrusted.UntrustedInputError as refusal:
            problems.append(f"{where}: the {refusal.where} {refusal.problem}.")
            continue
        if len(json.dumps(example)) > MAX_EXAMPLE_BYTES:
            problems.append(f"{where}: the example is longer than {MAX_EXAMPLE_BYTES:,} bytes.")
            continue
        if example is not None and (problem := type_problem(kind, example)):
            problems.append(f"{where}: the example {problem}.")
            continue
        fields.append(ContextField(name, kind, required, example, description))
    if problems:
        raise ValidationError({"context_contract": problems})
    return fields


def contract_of(campaign) -> list[ContextField]:
    """The campaign's stored contract (checked when it was saved)."""
    return [ContextField(**entry) for entry in campaign.context_contract]


def violations(contract: list[ContextField], context: dict, *, pointer: str = "/context") -> list[tuple[str, str]]:
    """(JSON pointer, problem) for each way `context` breaks the contract: a required field missing or null, a
    field of the wrong type."""
    found = []
    for field in contract:
        where = f"{pointer}/{field.name}"
        if field.name not in context or context[field.name] is None:
            if field.required:
                found.append((where, f"is required by the campaign's context contract ({field.type})"))
            continue
        if problem := type_problem(field.type, context[field.name]):
            found.append((where, problem))
    return found


def example_context(contract: list[ContextField]) -> dict:
    """The context the contract's examples make, for previews and the ready curl command."""
    return {field.name: field.example for field in contract if field.example is not None}
