"""The interface every delivery rule implements, and what it decides about."""

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from campaigns.models import Campaign


class Stage:
    PLAN = "plan"  # a scheduled run's chunk of its audience, or the recipients of a trigger call
    SEND = "send"  # a slice a worker has just claimed, before it is rendered and handed over


@dataclass
class Candidate:
    """One message a rule decides about: excluded once `reason` is set, else sent at `due_at`."""

    profile_id: int | None
    address: str
    due_at: datetime
    timezone: str = ""  # the profile's IANA zone, "" when unknown
    delivery_id: int | None = None  # at the send stage: the ledger row
    reason: str = ""


@dataclass
class Batch:
    """What the rules know about the messages they decide on together: one campaign, one channel, one stage."""

    campaign: Campaign
    channel: str
    stage: str
    now: datetime
    # A scheduled run of a campaign delivered in each profile's zone: the occurrence's local wall time (naive).
    local_occurrence: datetime | None = None

    @cached_property
    def marketing(self) -> bool:
        return self.campaign.category == Campaign.Category.MARKETING

    def zone_of(self, candidate: Candidate) -> zoneinfo.ZoneInfo:
        """The candidate's own time zone, or the campaign's when the profile has none (or an unknown one)."""
        return _zone(candidate.timezone) or _zone(self.campaign.timezone) or _zone("UTC")


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # imported as written: "Paris", "GMT+2", "../x"
        return None


class Rule:
    """One delivery rule. `decide` sees only the candidates no earlier rule excluded, all at once: it reads what it
    needs for the whole batch (a query or two, never one per candidate), then excludes some (sets `reason`) or
    moves their `due_at`."""

    name = ""
    stages: tuple[str, ...] = (Stage.PLAN, Stage.SEND)

    def applies(self, batch: Batch) -> bool:
        return True

    def decide(self, batch: Batch, candidates: list[Candidate]) -> None:
        raise NotImplementedError
