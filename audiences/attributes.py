"""The attribute schema in use: turning raw values (CSV text, JSON) into the one stored form of each type,
and guessing a type for a new attribute from sample values.

Stored forms, chosen so that JSON comparison orders them correctly on PostgreSQL and SQLite:
string -> JSON string; number -> JSON number; boolean -> JSON true/false; date -> "YYYY-MM-DD";
datetime -> "YYYY-MM-DDTHH:MM:SSZ" in UTC; string_list -> JSON array of strings.
"""

import math
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from audiences.models import AttributeDefinition
from config import untrusted

Type = AttributeDefinition.Type
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
MAX_STRING = 2000
MAX_LIST_ITEMS = 200
# The largest magnitude kept: past 2**53 numbers lose precision in JSON readers, and much larger ones overflow
# SQLite's integers (1e308 as a whole number has 309 digits).
MAX_NUMBER = 2**53


class AttributeValueError(ValueError):
    """A value that does not fit the attribute's type; the message says what was expected."""


def coerce(type_: str, value):
    """The stored form of `value` for an attribute of `type_`, or AttributeValueError.

    Text from CSV files and typed JSON values are both accepted: "42" is a number, "yes" a boolean.
    None (or an empty CSV cell, which callers pass as None) means "no value" and is returned as None.
    """
    if value is None:
        return None
    match type_:
        case Type.STRING:
            if isinstance(value, bool | int | float):
                value = str(value)
            if not isinstance(value, str):
                raise AttributeValueError("expected text")
            if len(value) > MAX_STRING:
                raise AttributeValueError(f"text longer than {MAX_STRING} characters")
            return _storable(value)
        case Type.NUMBER:
            return _number(value)
        case Type.BOOLEAN:
            return _boolean(value)
        case Type.DATE:
            return _date(value).isoformat()
        case Type.DATETIME:
            # isoformat pads the year to four digits (strftime's %Y does not before 1000), so values sort.
            return _datetime(value).replace(microsecond=0, tzinfo=None).isoformat() + "Z"
        case Type.STRING_LIST:
            return _string_list(value)
    raise AttributeValueError(f"unknown attribute type {type_!r}")


def _number(value):
    if isinstance(value, bool):
        raise AttributeValueError("expected a number, got a boolean")
    if isinstance(value, int):
        return _bounded(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AttributeValueError("expected a finite number")
        return _bounded(int(value) if value.is_integer() else value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        if len(text) > 100:
            raise AttributeValueError(f"expected a number, got {len(text):,} characters")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise AttributeValueError(f"expected a number, got {value[:40]!r}") from None
        if not number.is_finite():
            raise AttributeValueError("expected a finite number")
        if abs(number) > MAX_NUMBER:
            return _bounded(MAX_NUMBER + 1)
        return _bounded(int(number) if number == number.to_integral_value() else float(number))
    raise AttributeValueError("expected a number")


def _bounded(number: int | float) -> int | float:
    if abs(number) > MAX_NUMBER:
        raise AttributeValueError(f"expected a number between -{MAX_NUMBER:,} and {MAX_NUMBER:,}")
    return number


def _boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise AttributeValueError(f"expected yes/no (true, false, 1, 0), got {str(value)[:40]!r}")


def _date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
        except ValueError:
            pass
    raise AttributeValueError(f"expected a date as YYYY-MM-DD, got {str(value)[:40]!r}")


def _datetime(value) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise AttributeValueError(
                f"expected a date and time as YYYY-MM-DDTHH:MM:SS with a UTC offset, got {value[:40]!r}"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise AttributeValueError("expected a date and time with a UTC offset (e.g. 2026-01-31T09:00:00Z)")
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59-12:00 is past the last representable moment in UTC
            raise AttributeValueError("expected a date and time between the years 1 and 9999 in UTC") from None
    raise AttributeValueError("expected a date and time")


def list_items(text: str, separator: str = "|") -> list[str]:
    """The items of a list written as text ("red|green"): split on `separator`, each stripped of the spaces
    around it, empty ones left out. The import's preview of a list column splits the same way."""
    return [item.strip() for item in text.split(separator) if item.strip()]


def _string_list(value):
    if isinstance(value, str):
        value = list_items(value)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AttributeValueError("expected a list of texts")
    if len(value) > MAX_LIST_ITEMS:
        raise AttributeValueError(f"more than {MAX_LIST_ITEMS} items")
    for index, item in enumerate(value):
        # Each item is held to the limit of a text attribute: a whole cell read as one item is refused, not kept.
        if len(item) > MAX_STRING:
            raise AttributeValueError(
                f"item {index + 1} ({untrusted.excerpt(item, 20)!r}, {len(item):,} characters) "
                f"is longer than {MAX_STRING:,} characters"
            )
        _storable(item)
    return list(dict.fromkeys(value))


def _storable(text: str) -> str:
    if (problem := untrusted.text_problem(text)) is not None:
        raise AttributeValueError(f"the text {problem}")
    return text


def infer_type(samples) -> str:
    """The narrowest type every non-empty sample fits: boolean, number, date, datetime, else string.

    A list is never guessed from text; the user confirms or changes the guess before the import runs.
    """
    values = [sample for sample in samples if sample not in (None, "")]
    if not values:
        return Type.STRING
    for candidate in (Type.BOOLEAN, Type.NUMBER, Type.DATE, Type.DATETIME):
        try:
            for value in values:
                if candidate == Type.DATE and isinstance(value, str) and len(value.strip()) != 10:
                    raise AttributeValueError("not a plain date")
                coerce(candidate, value)
        except AttributeValueError:
            continue
        return candidate
    return Type.STRING


def attribute_types() -> dict[str, str]:
    """Every declared attribute's type, by name."""
    return dict(AttributeDefinition.objects.values_list("name", "type"))
