"""The delivery rules administrators set: frequency caps and quiet hours.

How they apply is campaigns.rules' concern (frequency.py, quiet_hours.py); here they are created, changed and
deleted, each change audited. A change applies to the messages planned (and, for caps, claimed) after it; messages
already planned keep the time they were given. Permissions are checked by callers, as in campaigns.services.approval.
"""

from dataclasses import dataclass
from datetime import time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audiences.models import Channel
from campaigns.models import FrequencyCap, QuietHours
from permissions.services.audit import audit_record

LIMIT_MIN, LIMIT_MAX = 1, 1000


@dataclass(frozen=True)
class CapRules:
    """What an administrator sets on a frequency cap; `channel` "" counts across channels."""

    name: str
    limit: int
    period: str
    channel: str = ""
    is_active: bool = True


@dataclass(frozen=True)
class QuietHoursRules:
    """What an administrator sets on a quiet-hours window: `end` before `start` spans midnight."""

    channel: str
    start: time
    end: time
    action: str = QuietHours.Action.DELAY
    is_active: bool = True


# Frequency caps


def _cap_values(cap: FrequencyCap) -> dict:
    return {
        "name": cap.name,
        "is_active": cap.is_active,
        "limit": cap.limit,
        "period": cap.period,
        "channel": cap.channel,
    }


def _apply_cap_rules(cap: FrequencyCap, rules: CapRules) -> None:
    name = (rules.name or "").strip()
    errors = {}
    if not name:
        errors["name"] = "Name the cap."
    elif FrequencyCap.objects.filter(name=name).exclude(pk=cap.pk).exists():
        errors["name"] = f"A cap named “{name}” already exists."
    if isinstance(rules.limit, bool) or not isinstance(rules.limit, int) or not LIMIT_MIN <= rules.limit <= LIMIT_MAX:
        errors["limit"] = f"The limit is a whole number from {LIMIT_MIN} to {LIMIT_MAX}."
    if rules.period not in FrequencyCap.Period.values:
        errors["period"] = "Choose an hour, a day, a week or a month."
    if rules.channel not in ("", *Channel.values):
        errors["channel"] = "Choose a channel, or none to count across channels."
    if errors:
        raise ValidationError(errors)
    cap.name, cap.limit, cap.period = name, rules.limit, rules.period
    cap.channel, cap.is_active = rules.channel, rules.is_active
    cap.full_clean(exclude=["created_by"])
    _save(cap, {"name": f"A cap named “{name}” already exists."})


@transaction.atomic
def frequency_cap_create(*, actor, rules: CapRules) -> FrequencyCap:
    """Create a cap. Raises ValidationError naming the field: no name or a name taken, a limit outside 1 to 1000,
    an unknown period or channel."""
    cap = FrequencyCap(created_by=actor)
    _apply_cap_rules(cap, rules)
    audit_record(actor=actor, action="frequency_cap.created", obj=cap, after=_cap_values(cap))
    return cap


@transaction.atomic
def frequency_cap_update(*, actor, cap: FrequencyCap, rules: CapRules) -> FrequencyCap:
    """Change a cap, as frequency_cap_create checks it. Audited only when something changed."""
    cap = FrequencyCap.objects.select_for_update().get(pk=cap.pk)
    before = _cap_values(cap)
    _apply_cap_rules(cap, rules)
    after = _cap_values(cap)
    if before != after:
        audit_record(actor=actor, action="frequency_cap.changed", obj=cap, before=before, after=after)
    return cap


@transaction.atomic
def frequency_cap_delete(*, actor, cap: FrequencyCap) -> None:
    audit_record(actor=actor, action="frequency_cap.deleted", obj=cap, before=_cap_values(cap))
    cap.delete()


# Quiet hours


def _quiet_hours_values(window: QuietHours) -> dict:
    return {
        "channel": window.channel,
        "is_active": window.is_active,
        "start": window.start.strftime("%H:%M"),
        "end": window.end.strftime("%H:%M"),
        "action": window.action,
    }


def _apply_quiet_hours_rules(window: QuietHours, rules: QuietHoursRules) -> None:
    start, end = _minute(rules.start), _minute(rules.end)
    errors = {}
    if rules.channel not in Channel.values:
        errors["channel"] = "Choose a channel."
    elif QuietHours.objects.filter(channel=rules.channel).exclude(pk=window.pk).exists():
        errors["channel"] = _one_window(rules.channel)
    if start is None:
        errors["start"] = "Enter a time, e.g. 21:00."
    if end is None:
        errors["end"] = "Enter a time, e.g. 08:00."
    elif start == end:
        errors["end"] = "The window must end at another time than it starts."
    if rules.action not in QuietHours.Action.values:
        errors["action"] = "Choose to delay or to discard."
    if errors:
        raise ValidationError(errors)
    window.channel, window.start, window.end = rules.channel, start, end
    window.action, window.is_active = rules.action, rules.is_active
    window.full_clean(exclude=["created_by"])
    _save(window, {"channel": _one_window(rules.channel)})


def _minute(value) -> time | None:
    """A local wall time to the minute (what the window's words show), or None when it is not a time."""
    if not isinstance(value, time):
        return None
    return value.replace(second=0, microsecond=0, tzinfo=None)


def _one_window(channel: str) -> str:
    return f"{Channel(channel).label} already has quiet hours: one window per channel, edit that one."


@transaction.atomic
def quiet_hours_create(*, actor, rules: QuietHoursRules) -> QuietHours:
    """Create a channel's window. Raises ValidationError naming the field: an unknown channel or one that already
    has a window, a start equal to the end, an unknown action."""
    window = QuietHours(created_by=actor)
    _apply_quiet_hours_rules(window, rules)
    audit_record(actor=actor, action="quiet_hours.created", obj=window, after=_quiet_hours_values(window))
    return window


@transaction.atomic
def quiet_hours_update(*, actor, window: QuietHours, rules: QuietHoursRules) -> QuietHours:
    """Change a window, as quiet_hours_create checks it. Audited only when something changed."""
    window = QuietHours.objects.select_for_update().get(pk=window.pk)
    before = _quiet_hours_values(window)
    _apply_quiet_hours_rules(window, rules)
    after = _quiet_hours_values(window)
    if before != after:
        audit_record(actor=actor, action="quiet_hours.changed", obj=window, before=before, after=after)
    return window


@transaction.atomic
def quiet_hours_delete(*, actor, window: QuietHours) -> None:
    audit_record(actor=actor, action="quiet_hours.deleted", obj=window, before=_quiet_hours_values(window))
    window.delete()


def _save(rule, taken: dict[str, str]) -> None:
    """Save, reporting a unique value another request took since it was checked as the field's error."""
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError as error:
        raise ValidationError(taken) from error
