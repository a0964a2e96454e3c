"""Frequency capping: at most N marketing messages per profile within a rolling hour, day, week or month, on one
channel or across channels, counted from the ledger (so every process sees the same count)."""

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models.functions import Coalesce

from campaigns.models import Campaign, Delivery, FrequencyCap
from campaigns.rules.base import Batch, Candidate, Rule, Stage
from campaigns.rules.business import business_rules

PERIODS = {
    FrequencyCap.Period.HOUR: timedelta(hours=1),
    FrequencyCap.Period.DAY: timedelta(days=1),
    FrequencyCap.Period.WEEK: timedelta(days=7),
    FrequencyCap.Period.MONTH: timedelta(days=30),
}

# Messages handed to a provider, or about to be (claimed): what a worker about to send counts.
HANDED_OVER = (
    Delivery.Status.CLAIMED,
    Delivery.Status.IN_FLIGHT,
    Delivery.Status.SENT,
    Delivery.Status.UNKNOWN,  # it may have reached them
    Delivery.Status.DELIVERED,
    Delivery.Status.BOUNCED,
    Delivery.Status.COMPLAINED,
    Delivery.Status.OPENED,
    Delivery.Status.CLICKED,
)
# ... and, at planning, the messages other campaigns have planned: the first planned takes the slot.
PLANNED_OR_HANDED_OVER = (Delivery.Status.PENDING, *HANDED_OVER)

# pg_advisory_xact_lock keys: a namespace in the high bits, a bucket of profile ids below. A transaction holds at
# most LOCK_BUCKETS of them whatever the slice's size (PostgreSQL's lock table is shared and small: by default 64
# locks a connection), and a slice shares some with another only to wait while it decides.
_LOCK_BASE = 0x4643 << 48
LOCK_BUCKETS = 256

_CHUNK = 500


class FrequencyCapRule(Rule):
    """Excludes a marketing message (reason `frequency_cap`) when the profile already has `limit` messages in the cap's
    period before the time it is due, counting the marketing messages of every campaign in the ledger.

    At planning, messages other campaigns have planned count too. When a worker claims a message it counts again,
    what is handed over or claimed, holding a lock on each profile's bucket (PostgreSQL advisory locks, SQLite's one
    writer) until its decision is written: of two campaigns sending to a profile at once, one only passes its last slot.
    Transactional campaigns are exempt.
    """

    name = "Frequency caps"

    def applies(self, batch: Batch) -> bool:
        return batch.marketing

    def decide(self, batch: Batch, candidates: list[Candidate]) -> None:
        caps = caps_for(batch.channel)
        people = sorted({c.profile_id for c in candidates if c.profile_id})
        if not caps or not people:
            return
        sending = batch.stage == Stage.SEND
        if sending:
            _lock_profiles(people)
        longest = max(PERIODS[cap.period] for cap in caps)
        since = (batch.now if sending else min(c.due_at for c in candidates)) - longest
        own = [c.delivery_id for c in candidates if c.delivery_id]
        history = _history(people, since, HANDED_OVER if sending else PLANNED_OR_HANDED_OVER, own)
        for candidate in sorted(candidates, key=lambda c: c.due_at):
            if not candidate.profile_id or (sending and candidate.due_at > batch.now):
                continue  # no profile to count for; or held by quiet hours: counted when it is sent
            at = batch.now if sending else candidate.due_at
            seen = history[candidate.profile_id]
            # When sending, what another worker claimed a moment after this one read the clock counts too.
            if any(_count(seen, cap, at, upto=None if sending else at) >= cap.limit for cap in caps):
                candidate.reason = Delivery.Reason.FREQUENCY_CAP
            else:
                seen.append((batch.channel, at))


def caps_for(channel: str) -> list[FrequencyCap]:
    """The active caps that count messages on `channel`: its own, and those across channels."""
    return [cap for cap in business_rules().caps if cap.channel in ("", channel)]


def _count(seen: list[tuple[str, datetime]], cap: FrequencyCap, at: datetime, *, upto: datetime | None) -> int:
    """The messages `seen` that fill the cap's period before `at` (and, at planning, not after `upto`)."""
    since = at - PERIODS[cap.period]
    return sum(
        1
        for channel, when in seen
        if since < when and (upto is None or when <= upto) and (not cap.channel or channel == cap.channel)
    )


def _history(people: list[int], since: datetime, statuses, own: list[int]) -> dict[int, list]:
    """Each profile's marketing messages since `since`: (channel, when sent, claimed or due)."""
    history = defaultdict(list)
    for start in range(0, len(people), _CHUNK):
        rows = (
            Delivery.objects.filter(
                profile_id__in=people[start : start + _CHUNK],
                status__in=statuses,
                run__campaign__category=Campaign.Category.MARKETING,
            )
            .annotate(at=Coalesce("sent_at", "claimed_at", "due_at"))
            .filter(at__gt=since)
            .exclude(id__in=own)
            .values_list("profile_id", "channel", "at")
        )
        for profile_id, channel, at in rows:
            history[profile_id].append((channel, at))
    return history


def _lock_profiles(people: list[int]) -> None:
    """Hold, until the caller's transaction ends, the right to decide about these profiles' caps (their buckets). In
    ascending order, so two workers locking overlapping sets never wait on each other in a cycle."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("the send-time frequency cap check must run in the transaction that writes its decision")
    if connection.vendor != "postgresql":
        return  # SQLite: the transaction (IMMEDIATE) already holds the database's only write lock
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY k) AS keys",
            [sorted({_LOCK_BASE + pk % LOCK_BUCKETS for pk in people})],
        )
