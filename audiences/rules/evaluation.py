"""A rule evaluated in Python, on one profile: the same meaning as the compiled query (audiences.rules.sql),
which the tests check on random profiles and rules."""

from datetime import UTC, datetime
from typing import Any

from audiences.models import Consent
from audiences.rules.tree import BUILTIN_FIELDS, All, Any_, Comparison, ConsentTest, MemberOf, Not, Rule, RuleError
from audiences.rules.values import DATETIME_FORMAT, Type, period_start, present_moment


def evaluate(rule: Rule, profile, *, consents: dict[str, str], memberships: set[int], now: datetime) -> bool:
    """Whether `profile` matches `rule`, with the same meaning as the compiled query: `consents` maps a
    channel to its state (absent: unknown), `memberships` holds the ids of the audiences the profile is in."""
    match rule:
        case All():
            return all(
                evaluate(child, profile, consents=consents, memberships=memberships, now=now) for child in rule.all
            )
        case Any_():
            return any(
                evaluate(child, profile, consents=consents, memberships=memberships, now=now) for child in rule.any
            )
        case Not():
            return not evaluate(rule.not_, profile, consents=consents, memberships=memberships, now=now)
        case ConsentTest():
            return consents.get(rule.consent.channel, Consent.State.UNKNOWN) == rule.consent.state
        case MemberOf():
            return rule.member_of in memberships
    return _compare(rule, profile_value(profile, rule.attribute), now)


def profile_value(profile, attribute: str) -> Any:
    """The value a rule compares, in stored form; None when missing ("" counts as missing for profile fields)."""
    if attribute == "created_at":
        return profile.created_at.astimezone(UTC).strftime(DATETIME_FORMAT) if profile.created_at else None
    if attribute in BUILTIN_FIELDS:
        return getattr(profile, attribute) or None
    return (profile.attributes or {}).get(attribute)


def _compare(node: Comparison, actual: Any, now: datetime) -> bool:
    if actual is None:
        return False
    op, expected = node.op, node.value
    match op:
        case "exists":
            return True
        case "equals":
            return actual == expected
        case "not_equals":
            return actual != expected
        case "in":
            return actual in expected
        case "not_in":
            return actual not in expected
        case "contains" if node.type == Type.STRING_LIST:
            return isinstance(actual, list) and expected in actual
        case "contains":
            return isinstance(actual, str) and expected in actual
        case "contains_any":
            return isinstance(actual, list) and any(item in actual for item in expected)
        case "starts_with":
            return isinstance(actual, str) and actual.startswith(expected)
        case "gt" | "after":
            return actual > expected
        case "gte":
            return actual >= expected
        case "lt" | "before":
            return actual < expected
        case "lte":
            return actual <= expected
        case "between":
            return expected[0] <= actual <= expected[1]
        case "in_last":
            return period_start(now, expected, node.type) <= actual <= present_moment(now, node.type)
        case "more_than_ago":
            return actual < period_start(now, expected, node.type)
    raise RuleError([f"{node.attribute}: unknown operator {op!r}"])
