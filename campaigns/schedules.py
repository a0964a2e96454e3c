"""When a campaign's occurrences fall, in the campaign's time zone."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter


def resolve_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in `zone`. A wall time that clocks skip (spring forward) moves
    forward by the gap (02:30 in Paris on that day is 03:30 CEST); one that repeats (fall back) is the first."""
    # With fold=0, Python reads a skipped time with the offset before the change: the same as moving it forward.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def valid_cron(expression: str) -> bool:
    return croniter.is_valid(expression)


def next_occurrence(*, cron: str, timezone: str, after: datetime, end_at: datetime | None) -> datetime | None:
    """The first occurrence of `cron` strictly after `after`, in UTC, or None past `end_at`."""
    local_after = after.astimezone(ZoneInfo(timezone))
    upcoming = croniter(cron, local_after).get_next(datetime)
    upcoming = upcoming.astimezone(ZoneInfo("UTC"))
    if end_at is not None and upcoming > end_at:
        return None
    return upcoming


def occurrence_key(at: datetime, timezone: str) -> str:
    """The nominal local time of an occurrence: the same wall-clock time gives the same key, so the 01:30
    that repeats on the day clocks go back is one run."""
    return at.astimezone(ZoneInfo(timezone)).replace(tzinfo=None).isoformat(timespec="seconds")
