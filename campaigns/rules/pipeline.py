"""The delivery rules in the order they apply."""

from campaigns.rules.base import Batch, Candidate, Rule
from campaigns.rules.consent import ConsentAndSuppression
from campaigns.rules.frequency import FrequencyCapRule
from campaigns.rules.local_time import LocalTime
from campaigns.rules.quiet_hours import QuietHoursRule

# Who may receive it at all; then when (the profile's zone, then the quiet hours at that time); then whether the
# profile has room for it at that time (a cap counts what the earlier rules kept).
RULES: list[Rule] = [ConsentAndSuppression(), LocalTime(), QuietHoursRule(), FrequencyCapRule()]


def decide(batch: Batch, candidates: list[Candidate]) -> None:
    """Pass the candidates through every rule of the batch's stage: each ends excluded (`reason` set) or due at
    `due_at`. At the send stage, call it in the transaction that writes the exclusions (frequency caps hold their
    locks until it ends)."""
    for rule in RULES:
        if batch.stage not in rule.stages or not rule.applies(batch):
            continue
        eligible = [candidate for candidate in candidates if not candidate.reason]
        if not eligible:
            return
        rule.decide(batch, eligible)
