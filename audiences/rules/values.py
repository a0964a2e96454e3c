"""The values of rule comparisons: each checked against its attribute's type and its operator's shape, and
turned into the attribute's stored form (audiences.attributes), so they compare with stored values as they are;
and the moments that relative periods ("in the last 30 days") stand for."""

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any

from audiences.attributes import MAX_NUMBER, AttributeValueError, coerce
from audiences.models import AttributeDefinition

Type = AttributeDefinition.Type

LIST_OPERATORS = {"in", "not_in", "contains_any"}
PERIOD_OPERATORS = {"in_last", "more_than_ago"}
PERIOD_UNITS = ["hours", "days", "weeks", "months"]
TYPE_NAMES = {
    Type.STRING: "a text",
    Type.NUMBER: "a number",
    Type.BOOLEAN: "a yes/no",
    Type.DATE: "a date",
    Type.DATETIME: "a date-time",
    Type.STRING_LIST: "a list",
}
MAX_LIST_VALUES = 1000
MAX_PERIOD = 10_000
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class ValueProblem(ValueError):
    """What is wrong with a value, and where inside it (`[1]`, `.amount`)."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(message)
        self.where = where


def typed_value(type_: str, op: str, value: Any) -> Any:
    """The value of a comparison in its stored form, checked against the operator's shape; ValueProblem if not."""
    if op == "exists":
        if value is not None:
            raise ValueProblem("'exists' takes no value")
        return None
    if value is None:
        raise ValueProblem("required")
    if op in LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            raise ValueProblem(f"expected a non-empty list of {_scalar_name(type_)}s")
        if len(value) > MAX_LIST_VALUES:
            raise ValueProblem(f"more than {MAX_LIST_VALUES} values")
        return list(dict.fromkeys(_item(type_, item, f"[{n}]") for n, item in enumerate(value)))
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueProblem(f"expected [low, high]: two {_scalar_name(type_)}s")
        low, high = (_item(type_, item, f"[{n}]") for n, item in enumerate(value))
        if low > high:
            raise ValueProblem("the low bound is above the high bound")
        return [low, high]
    if op in PERIOD_OPERATORS:
        return _period(type_, value)
    return _item(type_, value)


def _scalar_name(type_: str) -> str:
    return "text" if type_ == Type.STRING_LIST else TYPE_NAMES[type_].removeprefix("a ").removeprefix("an ")


def _item(type_: str, value: Any, where: str = "") -> Any:
    """One scalar of a comparison: the JSON kind must fit the type (no "42" for a number)."""
    match type_:
        case Type.STRING | Type.STRING_LIST:
            if not isinstance(value, str):
                raise ValueProblem("expected a text", where)
            return _coerced(Type.STRING, value, where)
        case Type.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueProblem("expected a number", where)
            if abs(value) > MAX_NUMBER:  # 1e308 as well as 10**400: neither database compares them
                raise ValueProblem(f"expected a number between -{MAX_NUMBER:,} and {MAX_NUMBER:,}", where)
            return _coerced(type_, value, where)
        case Type.BOOLEAN:
            if not isinstance(value, bool):
                raise ValueProblem("expected true or false", where)
            return value
        case Type.DATE:
            if not isinstance(value, str) or len(value.strip()) != 10:
                raise ValueProblem("expected a date as YYYY-MM-DD", where)
            return _coerced(type_, value, where)
        case Type.DATETIME:
            if not isinstance(value, str):
                raise ValueProblem("expected a date-time as YYYY-MM-DDTHH:MM:SSZ (or a date, meaning 00:00 UTC)", where)
            if len(value.strip()) == 10:  # a plain date: that day's midnight, UTC
                return _coerced(Type.DATE, value, where) + "T00:00:00Z"
            return _coerced(type_, value, where)
    raise ValueProblem(f"unknown attribute type {type_!r}", where)


def _coerced(type_: str, value: Any, where: str) -> Any:
    try:
        return coerce(type_, value)
    except AttributeValueError as exc:
        raise ValueProblem(str(exc), where) from None


def _period(type_: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueProblem('expected {"amount": 30, "unit": "days"}')
    if unknown := sorted(set(value) - {"amount", "unit"}):
        raise ValueProblem("unknown key", f".{unknown[0]}")
    amount, unit = value.get("amount"), value.get("unit")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_PERIOD:
        raise ValueProblem(f"expected a whole number from 1 to {MAX_PERIOD}", ".amount")
    units = PERIOD_UNITS if type_ == Type.DATETIME else [unit for unit in PERIOD_UNITS if unit != "hours"]
    if unit not in units:
        raise ValueProblem(f"expected one of {', '.join(units)}", ".unit")
    return {"amount": amount, "unit": unit}


# Time ---------------------------------------------------------------------------------------------------


def period_start(now: datetime, period: dict, type_: str) -> str:
    """The stored form of the moment `period` before `now` (for a date: that day, in UTC)."""
    now = now.astimezone(UTC).replace(microsecond=0)
    amount, unit = period["amount"], period["unit"]
    if unit == "months":
        start = _months_before(now, amount)
    else:
        start = now - timedelta(**{unit: amount})
    return start.date().isoformat() if type_ == Type.DATE else start.strftime(DATETIME_FORMAT)


def present_moment(now: datetime, type_: str) -> str:
    """The stored form of `now` for an attribute of `type_`: today (UTC) for a date, the second for a date-time."""
    now = now.astimezone(UTC)
    return now.date().isoformat() if type_ == Type.DATE else now.strftime(DATETIME_FORMAT)


def _months_before(moment: datetime, months: int) -> datetime:
    # The same day of the month, or the month's last day when it is shorter (31 March - 1 month = 28/29 Feb).
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    if year < 1:
        return datetime(1, 1, 1, tzinfo=UTC)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def parse_stored_datetime(value: str) -> datetime:
    return datetime.strptime(value, DATETIME_FORMAT).replace(tzinfo=UTC)
