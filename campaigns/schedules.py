"""When a campaign's occurrences fall: every kind of schedule, read on the wall clock of the campaign's time zone.

The rules across daylight-saving changes (docs/campaigns.md, "Schedules"): a wall time that does not exist (clocks
go forward) runs once, shifted forward by the gap; a wall time that repeats (clocks go back) runs once, the first
time, except for a cron whose hour field is every hour, which runs at every real hour, the repeated one twice.
"""

import bisect
import calendar
import functools
import heapq
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

# Years of a start or an end. Near year 9999 the date in UTC, or the next occurrence, overflowed Python's dates (a
# server error); far from both ends, no time zone or cron reaches them.
SCHEDULE_YEARS = (1970, 2999)

# How far ahead an occurrence is looked for: a schedule with none in this time has none (e.g. 30 February).
HORIZON = timedelta(days=5 * 366)

# The zone whose clocks are the first to show a given wall time (UTC+14): a run starting at a wall time read there
# starts before that wall time is reached in any profile's zone.
EARLIEST_ZONE = ZoneInfo("Etc/GMT-14")

# No zone is ahead of UTC by more than 14 hours, so no wall time later than `wall` falls before `wall - 15 h`.
_AHEAD = timedelta(hours=15)

WEEKDAY_NAMES = list(calendar.day_name)  # 0 = Monday, as `Campaign.weekdays`
LAST_DAY = -1


def valid_cron(expression: str) -> bool:
    """Five fields (minute hour day-of-month month day-of-week) that croniter reads, without its random (`R`) and
    hashed (`H`) values: each reading would give another time, so the preview, the scheduler and a second scheduler
    would disagree on when the campaign runs."""
    fields = expression.split()
    if len(fields) != 5 or any(_RANDOM_OR_HASHED.search(field.upper()) for field in fields):
        return False
    return croniter.is_valid(expression)


# `R`, `H`, `H(0-29)`, `H/15` as a value of a field; not the R of MAR or the H of THU.
_RANDOM_OR_HASHED = re.compile(r"(^|[,/-])[RH](\(|/|,|$)")


def resolve_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in `zone`. A wall time that clocks skip (spring forward) moves
    forward by the gap (02:30 in Paris on that day is 03:30 CEST); one that repeats (fall back) is the first."""
    # With fold=0, Python reads a skipped time with the offset before the change: the same as moving it forward.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _second_instance(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """The second instant of a wall time that repeats when clocks go back, or None."""
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return None
    second_utc = second.astimezone(UTC)
    # A skipped time also has two offsets; it repeats only if the second instant reads back as the same wall time.
    if second_utc.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return second_utc


def zone_of(campaign) -> ZoneInfo | None:
    try:
        return ZoneInfo(campaign.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def _every_hour(cron: str) -> bool:
    return croniter(cron).expanded[1] == ["*"]


def _walls(campaign, first_day: date, last_day: date) -> Iterator[datetime]:
    """The schedule's wall-clock times from `first_day` to `last_day`, in order."""
    from campaigns.models import Campaign

    schedule = campaign.schedule
    if schedule == Campaign.Schedule.RECURRING:
        walls = croniter(campaign.cron, datetime.combine(first_day, time()) - timedelta(seconds=1))
        while True:
            try:
                wall = walls.get_next(datetime)
            except CroniterError:
                return  # no date matches (e.g. 30 February), or none before year 9999
            if wall.date() > last_day:
                return
            yield wall
    send_time = campaign.send_time
    if send_time is None:
        return
    send_time = send_time.replace(tzinfo=None)
    if schedule == Campaign.Schedule.MONTHLY:
        wanted = set(campaign.month_days or [])
        year, month = first_day.year, first_day.month
        while date(year, month, 1) <= last_day:
            length = calendar.monthrange(year, month)[1]
            days = {length if day == LAST_DAY else day for day in wanted if day == LAST_DAY or 1 <= day <= length}
            for day in sorted(days):
                if first_day <= date(year, month, day) <= last_day:
                    yield datetime.combine(date(year, month, day), send_time)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return
    weekdays = set(range(7)) if schedule == Campaign.Schedule.DAILY else set(campaign.weekdays or [])
    if not weekdays:
        return
    day = first_day
    while day <= last_day:
        if day.weekday() in weekdays:
            yield datetime.combine(day, send_time)
        day += timedelta(days=1)


def occurrences(campaign, *, after: datetime) -> Iterator[datetime]:
    """Every occurrence strictly after `after` (aware), in order, as UTC instants: at or after `start_at`, at or
    before `end_at`, within HORIZON of `after`. Nothing for a schedule that is not ready (no time, no day, a bad
    cron or zone) or that starts on activation."""
    from campaigns.models import Campaign

    zone = zone_of(campaign)
    if zone is None or campaign.schedule == Campaign.Schedule.ON_ACTIVATION:
        return
    start_at, end_at = campaign.start_at, campaign.end_at
    if start_at is not None and start_at > after:
        after = start_at - timedelta(microseconds=1)  # an occurrence at exactly start_at counts
    if campaign.schedule == Campaign.Schedule.AT:
        if start_at is not None and start_at > after and (end_at is None or start_at <= end_at):
            yield start_at.astimezone(UTC)
        return
    if campaign.schedule == Campaign.Schedule.RECURRING and not valid_cron(campaign.cron or ""):
        return
    first, last = SCHEDULE_YEARS
    if not first <= after.year <= last:
        return
    limit = after + HORIZON
    if end_at is not None:
        limit = min(limit, end_at)
    # A day early and late: the local date of an instant differs from its UTC date by up to a day.
    first_day = (after - timedelta(days=1)).date()
    last_day = min((limit + timedelta(days=1)).date(), date(last, 12, 31))
    repeat_hours = runs_repeated_hour(campaign)
    pending: list[datetime] = []
    previous = None

    def ready(bound: datetime | None) -> Iterator[datetime]:
        nonlocal previous
        while pending and (bound is None or pending[0] < bound):
            instant = heapq.heappop(pending)
            if instant == previous:
                continue  # a skipped wall time moved onto one that exists: one run
            previous = instant
            yield instant

    for wall in _walls(campaign, first_day, last_day):
        instants = [resolve_local(wall, zone)]
        if repeat_hours and (second := _second_instance(wall, zone)) is not None:
            instants.append(second)
        for instant in instants:
            if after < instant <= limit:
                heapq.heappush(pending, instant)
        for instant in ready(wall.replace(tzinfo=UTC) - _AHEAD):
            yield instant
        if wall.replace(tzinfo=UTC) - _AHEAD > limit:
            break
    yield from ready(None)


def next_occurrence(campaign, *, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` (UTC), honouring start_at (an occurrence at exactly start_at
    counts) and end_at (none after it); None when there is none."""
    return next(occurrences(campaign, after=after), None)


def upcoming_occurrences(campaign, *, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` occurrences after `after`, in UTC."""
    found = []
    for instant in occurrences(campaign, after=after):
        found.append(instant)
        if len(found) == count:
            break
    return found


def more_often_than_hourly(campaign) -> bool:
    """Whether two occurrences may fall less than an hour apart (a cron with several minutes in an hour). Worth a
    warning, not a refusal."""
    from campaigns.models import Campaign

    if campaign.schedule != Campaign.Schedule.RECURRING or not valid_cron(campaign.cron or ""):
        return False
    minutes = croniter(campaign.cron).expanded[0]
    return minutes == ["*"] or len(minutes) > 1


def runs_repeated_hour(campaign) -> bool:
    """Whether the schedule runs twice in the hour that repeats when clocks go back: a cron whose hour field is
    every hour, in the campaign's zone. Every other schedule runs a repeated wall time once."""
    from campaigns.models import Campaign

    return (
        campaign.schedule == Campaign.Schedule.RECURRING
        and not campaign.in_profile_timezone
        and valid_cron(campaign.cron or "")
        and _every_hour(campaign.cron)
    )


def occurrence_key(at: datetime, timezone: str, *, repeated_hour: bool = False) -> str:
    """The Run.occurrence key of the occurrence at `at`: its local wall time `YYYY-MM-DDTHH:MM:SS`. With
    `repeated_hour` (runs_repeated_hour), the second instance of a wall time that repeats when clocks go back is
    followed by its UTC offset (`2026-10-25T02:00:00+01:00`); otherwise it shares the first's key, so it is not run
    again. The key always starts with the 19 characters of the wall time."""
    local = at.astimezone(ZoneInfo(timezone))
    key = local.replace(tzinfo=None).isoformat(timespec="seconds")
    if repeated_hour and local.fold == 1 and _second_instance(local.replace(tzinfo=None), local.tzinfo) is not None:
        key += local.isoformat(timespec="seconds")[19:]
    return key


def run_start(campaign, occurrence: datetime) -> datetime:
    """When the run of `occurrence` starts: at the occurrence; or, for a campaign delivered in each profile's own
    time zone, when the occurrence's wall time is reached in the earliest zone (UTC+14), so it is still ahead
    everywhere."""
    if not campaign.in_profile_timezone:
        return occurrence
    wall = occurrence.astimezone(ZoneInfo(campaign.timezone)).replace(tzinfo=None)
    return resolve_local(wall, EARLIEST_ZONE)


def occurrence_of_run_start(campaign, start: datetime) -> datetime:
    """The occurrence whose run starts at `start` (the inverse of run_start)."""
    if not campaign.in_profile_timezone:
        return start
    wall = start.astimezone(EARLIEST_ZONE).replace(tzinfo=None)
    return resolve_local(wall, ZoneInfo(campaign.timezone))


def next_run_start(campaign, *, after: datetime) -> datetime | None:
    """When the scheduler starts the run of the first occurrence after `after`, or None."""
    occurrence = next_occurrence(campaign, after=after)
    return None if occurrence is None else run_start(campaign, occurrence)


def schedule_errors(campaign, *, now: datetime | None) -> dict[str, str]:
    """What is wrong with a scheduled campaign's schedule, by field. With `now`, a schedule with nothing left to
    send is refused too (a time that has passed, an end that has passed, no occurrence before the end)."""
    from campaigns.models import Campaign

    errors = {}
    first, last = SCHEDULE_YEARS
    for field in ("start_at", "end_at"):
        value = getattr(campaign, field)
        if value is not None and not first <= value.year <= last:
            errors[field] = f"Enter a date and time between {first} and {last}."
    if errors:
        return errors
    schedule, start_at, end_at = campaign.schedule, campaign.start_at, campaign.end_at
    if schedule == Campaign.Schedule.AT and start_at is None:
        errors["start_at"] = "A date and time is required for a campaign sent at a date and time."
    if schedule == Campaign.Schedule.RECURRING and not valid_cron(campaign.cron or ""):
        errors["cron"] = (
            f"{campaign.cron!r} is not a cron expression of five fields (e.g. '0 9 * * 1' for Mondays at 09:00)."
        )
    if schedule in (Campaign.Schedule.DAILY, Campaign.Schedule.WEEKLY, Campaign.Schedule.MONTHLY):
        if campaign.send_time is None:
            errors["send_time"] = "Choose the time of day to send at."
    if schedule == Campaign.Schedule.WEEKLY:
        days = campaign.weekdays
        if not days or not isinstance(days, list) or not all(type(day) is int and 0 <= day <= 6 for day in days):
            errors["weekdays"] = "Choose at least one day of the week."
    if schedule == Campaign.Schedule.MONTHLY:
        days = campaign.month_days
        if (
            not days
            or not isinstance(days, list)
            or not all(type(day) is int and (1 <= day <= 31 or day == LAST_DAY) for day in days)
        ):
            errors["month_days"] = "Choose at least one day of the month (1 to 31, or the last day)."
    if end_at and start_at and end_at <= start_at:
        errors["end_at"] = "The end must come after the start."
    if errors or now is None or campaign.kind != Campaign.Kind.SCHEDULED or zone_of(campaign) is None:
        return errors
    if schedule == Campaign.Schedule.AT and start_at < now:
        errors["start_at"] = "This date and time has passed: choose a later one."
    elif schedule in Campaign.REPEATING_SCHEDULES:
        if end_at is not None and end_at <= now:
            errors["end_at"] = "This end has passed: choose a later one."
        elif next_occurrence(campaign, after=now) is None:
            if end_at is not None:
                errors["end_at"] = "No occurrence falls before the end: choose a later end or other days."
            else:
                errors[_schedule_field(schedule)] = "This schedule has no occurrence in the next five years."
    return errors


def _schedule_field(schedule: str) -> str:
    return {"recurring": "cron", "weekly": "weekdays", "monthly": "month_days"}.get(schedule, "send_time")


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _day_of_month(day: int) -> str:
    if day == LAST_DAY:
        return "the last day"
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"the {day}{suffix}"


def describe(campaign) -> str:
    """The schedule in words: "Weekly on Monday and Thursday at 09:00 Europe/Paris, from … until …"."""
    from campaigns.models import Campaign

    zone = zone_of(campaign) or UTC
    schedule = campaign.schedule

    def moment(value: datetime) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    at = f"at {campaign.send_time:%H:%M} {campaign.timezone}" if campaign.send_time else ""
    match schedule:
        case Campaign.Schedule.ON_ACTIVATION:
            return "When activated"
        case Campaign.Schedule.AT:
            when = moment(campaign.start_at) if campaign.start_at else "—"
            return f"Once, on {when} {campaign.timezone}"
        case Campaign.Schedule.DAILY:
            words = f"Daily {at}"
        case Campaign.Schedule.WEEKLY:
            days = [WEEKDAY_NAMES[day] for day in sorted(set(campaign.weekdays or [])) if 0 <= day <= 6]
            words = f"Weekly on {_names(days) if days else '—'} {at}"
        case Campaign.Schedule.MONTHLY:
            days = sorted(set(campaign.month_days or []), key=lambda day: 32 if day == LAST_DAY else day)
            words = f"Monthly on {_names([_day_of_month(day) for day in days]) if days else '—'} {at}"
        case _:
            words = f"On the cron expression {campaign.cron} in {campaign.timezone}"
    if campaign.start_at:
        words += f", from {moment(campaign.start_at)}"
    if campaign.end_at:
        words += f" until {moment(campaign.end_at)}"
    return words.strip()


def local_day_occurrences(
    campaign, *, first_day: date, days: int, after: datetime, shown: int, counted: int
) -> dict[date, tuple[list[datetime], int]]:
    """The occurrences after `after` whose wall date in the campaign's zone falls on one of the `days` days from
    `first_day`: by day, the first `shown` (UTC instants) and how many more follow that day, counting no further
    than `counted` a day. The work is bounded a day: a cron's day is read from its times of day (one cron step finds
    the next day it runs; on a day its zone changes UTC offset, the wall times are resolved one by one, at most until
    `counted` are final), so a cron every minute costs about what a daily one does; any other schedule (at most one
    send a day) walks `occurrences`."""
    zone = zone_of(campaign)
    found: dict[date, tuple[list[datetime], int]] = {}
    if zone is None:
        return found
    first, last = SCHEDULE_YEARS
    end_day = first_day + timedelta(days=days)
    if not (first <= first_day.year and end_day.year <= last):
        return found
    minutes = _cron_times_of_day(campaign)
    cron = croniter(campaign.cron) if minutes else None
    every_day = cron is not None and cron.expanded[2:] == [["*"], ["*"], ["*"]]
    day = first_day
    while day < end_day:
        if cron is not None and not _steady_offset(day, zone):
            runs = [d for d in (day - timedelta(days=1), day) if _cron_runs_on(cron, every_day, d)]
            listed, more = _cron_changing_day(campaign, minutes, runs, day, zone, after=after, counted=counted)
            listed, more = listed[:shown], more + len(listed[shown:])
            next_day = day + timedelta(days=1)
        elif cron is not None:
            try:
                if every_day:
                    runs_on = day
                else:
                    cron.set_current(datetime.combine(day, time()) - timedelta(seconds=1))
                    runs_on = cron.get_next(datetime).date()
            except (CroniterError, OverflowError, ValueError):
                break  # the cron runs on no day left
            if runs_on != day:
                day = runs_on  # the next day it runs (a change of offset that day is read below)
                continue
            listed, more = _cron_day(campaign, minutes, day, zone, after=after, shown=shown, counted=counted)
            next_day = day + timedelta(days=1)
        else:
            listed, more, next_day = _day_by_occurrences(campaign, day, zone, after=after, shown=shown, counted=counted)
        if listed:
            found[day] = (listed, more)
        if next_day is None:
            break  # nothing more in the horizon
        day = max(next_day, day + timedelta(days=1))
    return found


def _cron_times_of_day(campaign) -> list[timedelta] | None:
    """A valid cron's times of day (from midnight, in order), or None for any other schedule."""
    from campaigns.models import Campaign

    if campaign.schedule != Campaign.Schedule.RECURRING or not valid_cron(campaign.cron or ""):
        return None
    minutes, hours = croniter(campaign.cron).expanded[:2]
    minutes = range(60) if minutes == ["*"] else minutes
    hours = range(24) if hours == ["*"] else hours
    return sorted(timedelta(hours=int(hour), minutes=int(minute)) for hour in hours for minute in minutes)


@functools.lru_cache(maxsize=4096)  # the same few zones and days for every campaign of a calendar page
def _steady_offset(day: date, zone: ZoneInfo) -> bool:
    """Whether the zone keeps one UTC offset from noon the day before to the next midnight: no wall time of `day` is
    skipped or repeated, and no skipped time of the evening before moves onto it."""
    points = [
        datetime.combine(day - timedelta(days=1), time(12)),
        datetime.combine(day, time()),
        datetime.combine(day, time(12)),
        datetime.combine(day + timedelta(days=1), time()),
    ]
    return len({point.replace(tzinfo=zone).utcoffset() for point in points}) == 1


def _cron_runs_on(cron, every_day: bool, day: date) -> bool:
    if every_day:
        return True
    try:
        cron.set_current(datetime.combine(day, time()) - timedelta(seconds=1))
        return cron.get_next(datetime).date() == day
    except (CroniterError, OverflowError, ValueError):
        return False


def _cron_changing_day(campaign, times, runs: list[date], day: date, zone: ZoneInfo, *, after, counted: int):
    """A cron's occurrences on a day its zone changes UTC offset, read as `occurrences` reads them (a skipped wall
    time moves forward by the gap, onto one run; a repeated one runs once, or twice when the hour field is every
    hour), from the wall times of the day and of the afternoon before (`runs`: those of the two days it runs on):
    the first `counted` after `after` (at or after `start_at`, at or before `end_at`) and how many more, up to
    `counted` in all. A wall time never resolves before an earlier one, so the walk stops once `counted` are final."""
    low = after if campaign.start_at is None else max(after, campaign.start_at - timedelta(microseconds=1))
    repeat = runs_repeated_hour(campaign)
    walls = [
        datetime.combine(run, time()) + at for run in runs for at in times if run == day or at >= timedelta(hours=12)
    ]
    # Walls resolving before `low` give nothing; a second instance is at most two hours after the first.
    start = bisect.bisect_right(walls, low - timedelta(hours=2), key=lambda wall: resolve_local(wall, zone))
    found: set[datetime] = set()
    for index, wall in enumerate(walls[start:]):
        first = resolve_local(wall, zone)
        if index % 50 == 49 and sum(1 for instant in found if instant < first) >= counted:
            break
        for instant in (first, _second_instance(wall, zone) if repeat else None):
            if (
                instant is not None
                and instant > low
                and (campaign.end_at is None or instant <= campaign.end_at)
                and instant.astimezone(zone).date() == day
            ):
                found.add(instant)
    ordered = sorted(found)[:counted]
    return ordered, 0


def _cron_day(campaign, times: list[timedelta], day: date, zone: ZoneInfo, *, after, shown: int, counted: int):
    """A cron's occurrences on a day it runs, with one UTC offset: the first `shown` after `after` (at or after
    `start_at`, at or before `end_at`), and how many more, up to `counted` in all."""
    offset = datetime.combine(day, time(12), tzinfo=zone).utcoffset()
    midnight = datetime.combine(day, time(), tzinfo=UTC) - offset
    low = after if campaign.start_at is None else max(after, campaign.start_at - timedelta(microseconds=1))
    first = bisect.bisect_right(times, low - midnight)
    stop = len(times) if campaign.end_at is None else bisect.bisect_right(times, campaign.end_at - midnight)
    listed = [midnight + at for at in times[first : min(stop, first + shown)]]
    more = min(max(stop - first - len(listed), 0), max(counted - len(listed), 0))
    return listed, more


def _day_by_occurrences(campaign, day: date, zone: ZoneInfo, *, after, shown: int, counted: int):
    """One day's occurrences read from `occurrences`: the first `shown`, how many more (up to `counted` in all), and
    the next day with one (None when there is none in the horizon)."""
    start = max(after, resolve_local(datetime.combine(day, time()), zone) - timedelta(microseconds=1))
    listed: list[datetime] = []
    more = 0
    for instant in occurrences(campaign, after=start):
        local_day = instant.astimezone(zone).date()
        if local_day != day:
            return listed, more, local_day
        if len(listed) < shown:
            listed.append(instant)
        else:
            more += 1
            if len(listed) + more >= counted:
                return listed, more, day + timedelta(days=1)
    return listed, more, None


def next_run_occurrence(campaign) -> datetime | None:
    """The occurrence a campaign's next run sends, on the campaign's wall clock (a run in profile time zones starts
    earlier than its occurrence); None when nothing is due (the scheduler starts runs of active campaigns only)."""
    if campaign.next_run_at is None or campaign.status != "active" or campaign.archived_at:
        return None
    zone = zone_of(campaign)
    if zone is None:
        return None
    return occurrence_of_run_start(campaign, campaign.next_run_at).astimezone(zone)
