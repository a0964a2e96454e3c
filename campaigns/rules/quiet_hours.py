"""Quiet hours: a window of each profile's local time in which no marketing message goes out on a channel."""

from datetime import datetime, time, timedelta

from campaigns.models import Delivery, QuietHours
from campaigns.rules.base import Batch, Candidate, Rule
from campaigns.rules.business import business_rules
from campaigns.schedules import resolve_local


def in_window(at: time, start: time, end: time) -> bool:
    """Whether local time `at` falls in [start, end); a window whose end comes before its start spans midnight."""
    if start < end:
        return start <= at < end
    return at >= start or at < end


def window_end(local: datetime, end: time) -> datetime:
    """The naive local wall time at which the window holding `local` closes: today's `end`, or tomorrow's."""
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end)


def window_for(channel: str) -> QuietHours | None:
    """The channel's active window, if it has one that holds anything (one opening and closing at once does not)."""
    window = business_rules().quiet_hours.get(channel)
    return None if window is None or window.start == window.end else window


class QuietHoursRule(Rule):
    """A marketing message due inside the channel's window, in the profile's zone, is delayed to the window's end or
    discarded with the reason `quiet_hours`, as the window says. Applied when the message is planned, at the time it
    is due (after delivery in the profile's zone has set it), and again when a worker is about to send it, at that
    moment: a run still sending when the window opens, a backlog resumed at night or a retry stops there.
    Transactional campaigns are exempt."""

    name = "Quiet hours"

    def applies(self, batch: Batch) -> bool:
        return batch.marketing

    def decide(self, batch: Batch, candidates: list[Candidate]) -> None:
        window = window_for(batch.channel)
        if window is None:
            return
        for candidate in candidates:
            zone = batch.zone_of(candidate)
            local = candidate.due_at.astimezone(zone).replace(tzinfo=None)
            if not in_window(local.time(), window.start, window.end):
                continue
            if window.action == QuietHours.Action.DISCARD:
                candidate.reason = Delivery.Reason.QUIET_HOURS
            else:
                candidate.due_at = resolve_local(window_end(local, window.end), zone)
