"""Delivery in each profile's time zone: a scheduled occurrence at 09:00 is due at 09:00 in Paris for a profile in
Paris and at 09:00 in New York for one in New York."""

from campaigns.rules.base import Batch, Candidate, Rule, Stage
from campaigns.schedules import resolve_local


class LocalTime(Rule):
    """Sets each message's `due_at` to the occurrence's local wall time in the profile's zone (the campaign's when the
    profile has none). The scheduler starts such a run early enough for that time to lie ahead in every zone
    (campaigns.schedules); a zone where it has passed all the same (a run started late) is sent at once."""

    name = "Delivery in the profile's time zone"
    stages = (Stage.PLAN,)

    def applies(self, batch: Batch) -> bool:
        return batch.local_occurrence is not None

    def decide(self, batch: Batch, candidates: list[Candidate]) -> None:
        for candidate in candidates:
            due = resolve_local(batch.local_occurrence, batch.zone_of(candidate))
            candidate.due_at = max(due, batch.now)
