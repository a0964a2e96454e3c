"""Delivery in each profile's time zone: a scheduled occurrence at 09:00 is due at 09:00 in Paris for a profile in
Paris and at 09:00 in New York for one in New York."""

from datetime import timedelta

from campaigns.models import Delivery
from campaigns.rules.base import Batch, Candidate, Rule, Stage
from campaigns.schedules import resolve_local

# How late a message may still go out at once when its local time has passed in the profile's zone.
LATE_GRACE = timedelta(hours=1)


class LocalTime(Rule):
    """Sets each message's `due_at` to the occurrence's local wall time in the profile's zone (the campaign's when the
    profile has none). The scheduler starts such a run early enough for that time to lie ahead in every zone
    (campaigns.schedules). Where it has passed all the same (the campaign was activated, or its run started, late):
    sent at once if it passed less than LATE_GRACE ago, else excluded (`local_time_passed`) rather than delivered at
    the wrong hour; a recurring campaign reaches them at the next occurrence."""

    name = "Delivery in the profile's time zone"
    stages = (Stage.PLAN,)

    def applies(self, batch: Batch) -> bool:
        return batch.local_occurrence is not None

    def decide(self, batch: Batch, candidates: list[Candidate]) -> None:
        for candidate in candidates:
            due = resolve_local(batch.local_occurrence, batch.zone_of(candidate))
            if due < batch.now - LATE_GRACE:
                candidate.reason = Delivery.Reason.LOCAL_TIME_PASSED
            candidate.due_at = max(due, batch.now)
