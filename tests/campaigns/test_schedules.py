"""Occurrences of every kind of schedule (campaigns.schedules), on the wall clock of the campaign's zone, across
daylight-saving changes in Paris and New York. Unsaved campaigns: no database needed."""

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns import schedules
from campaigns.models import Campaign
from campaigns.schedules import (
    describe,
    more_often_than_hourly,
    next_occurrence,
    occurrence_key,
    resolve_local,
    run_start,
    schedule_errors,
    upcoming_occurrences,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def campaign(**fields) -> Campaign:
    return Campaign(kind=Campaign.Kind.SCHEDULED, **fields)


def local(instants, zone) -> list[str]:
    return [instant.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") for instant in instants]


def day_of(schedule: Campaign, zone: ZoneInfo, day: datetime) -> list[datetime]:
    """The occurrences whose local date is `day`."""
    start = resolve_local(day, zone)
    found = []
    for instant in schedules.occurrences(schedule, after=start - timedelta(seconds=1)):
        if instant.astimezone(zone).date() != day.date():
            break
        found.append(instant)
    return found


# resolve_local


def test_a_wall_time_clocks_skip_moves_forward_by_the_gap():
    instant = resolve_local(datetime(2026, 3, 29, 2, 30), PARIS)
    assert instant == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert local([instant], PARIS) == ["2026-03-29 03:30 CEST"]


def test_a_wall_time_that_repeats_is_the_first():
    assert resolve_local(datetime(2026, 10, 25, 2, 30), PARIS) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert resolve_local(datetime(2026, 11, 1, 1, 30), NEW_YORK) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


# Occurrence lists of each kind


def test_daily_lists_each_day_at_its_time():
    daily = campaign(schedule="daily", send_time=time(9, 0), timezone="Europe/Paris")
    found = upcoming_occurrences(daily, after=datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    assert local(found, PARIS) == [f"2026-12-{day:02} 09:00 CET" for day in range(4, 9)]


def test_weekly_lists_the_chosen_days():
    weekly = campaign(schedule="weekly", send_time=time(9, 0), weekdays=[3, 0], timezone="Europe/Paris")
    # Thursday 3 December 2026, after 09:00 Paris
    found = upcoming_occurrences(weekly, after=datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    assert local(found, PARIS) == [
        "2026-12-07 09:00 CET",
        "2026-12-10 09:00 CET",
        "2026-12-14 09:00 CET",
        "2026-12-17 09:00 CET",
        "2026-12-21 09:00 CET",
    ]


def test_monthly_on_the_31st_skips_the_months_without_one():
    monthly = campaign(schedule="monthly", send_time=time(8, 0), month_days=[31], timezone="America/New_York")
    found = upcoming_occurrences(monthly, after=datetime(2027, 1, 1, tzinfo=UTC))
    assert local(found, NEW_YORK) == [
        "2027-01-31 08:00 EST",
        "2027-03-31 08:00 EDT",
        "2027-05-31 08:00 EDT",
        "2027-07-31 08:00 EDT",
        "2027-08-31 08:00 EDT",
    ]


def test_monthly_on_the_last_day_gives_each_months_last_day_once():
    monthly = campaign(schedule="monthly", send_time=time(8, 0), month_days=[-1, 28], timezone="Europe/Paris")
    found = upcoming_occurrences(monthly, after=datetime(2027, 1, 30, tzinfo=UTC), count=6)
    # February 2027 ends on the 28th: one occurrence that day.
    assert local(found, PARIS) == [
        "2027-01-31 08:00 CET",
        "2027-02-28 08:00 CET",
        "2027-03-28 08:00 CEST",  # clocks went forward at 02:00
        "2027-03-31 08:00 CEST",
        "2027-04-28 08:00 CEST",
        "2027-04-30 08:00 CEST",
    ]


def test_cron_is_read_on_the_local_wall_clock():
    cron = campaign(schedule="recurring", cron="0 9 * * 1-5", timezone="America/New_York")
    found = upcoming_occurrences(cron, after=datetime(2027, 3, 12, tzinfo=UTC), count=3)
    # Clocks go forward on Sunday 14 March 2027: still 09:00 on the wall.
    assert local(found, NEW_YORK) == ["2027-03-12 09:00 EST", "2027-03-15 09:00 EDT", "2027-03-16 09:00 EDT"]


def test_once_at_a_date_and_time_is_one_occurrence():
    once = campaign(schedule="at", start_at=datetime(2027, 1, 5, 8, 0, tzinfo=UTC), timezone="Europe/Paris")
    assert upcoming_occurrences(once, after=datetime(2027, 1, 1, tzinfo=UTC)) == [once.start_at]
    assert next_occurrence(once, after=once.start_at) is None


def test_start_counts_its_own_instant_and_nothing_falls_after_the_end():
    daily = campaign(
        schedule="daily",
        send_time=time(9, 0),
        timezone="Europe/Paris",
        start_at=datetime(2027, 1, 5, 8, 0, tzinfo=UTC),  # 09:00 in Paris
        end_at=datetime(2027, 1, 7, 8, 0, tzinfo=UTC),
    )
    found = upcoming_occurrences(daily, after=datetime(2027, 1, 1, tzinfo=UTC))
    assert found == [datetime(2027, 1, day, 8, 0, tzinfo=UTC) for day in (5, 6, 7)]
    assert next_occurrence(daily, after=datetime(2027, 1, 7, 8, 0, tzinfo=UTC)) is None


def test_a_cron_matching_no_date_has_no_occurrence():
    never = campaign(schedule="recurring", cron="0 0 30 2 *", timezone="UTC")
    assert next_occurrence(never, after=datetime(2027, 1, 1, tzinfo=UTC)) is None


def test_a_weekly_schedule_without_days_has_no_occurrence_and_is_refused():
    weekly = campaign(schedule="weekly", send_time=time(9, 0), weekdays=[], timezone="UTC")
    assert next_occurrence(weekly, after=datetime(2027, 1, 1, tzinfo=UTC)) is None
    assert "weekdays" in schedule_errors(weekly, now=None)


# Daylight-saving changes


@pytest.mark.parametrize(
    ("zone", "spring", "autumn", "repeated_time"),
    [
        (PARIS, datetime(2026, 3, 29), datetime(2026, 10, 25), time(2, 30)),
        # New York repeats 01:00-02:00 when clocks go back
        (NEW_YORK, datetime(2026, 3, 8), datetime(2026, 11, 1), time(1, 30)),
    ],
)
def test_a_daily_time_clocks_skip_or_repeat_runs_once(zone, spring, autumn, repeated_time):
    # 02:30 does not exist on the spring day, in Paris and in New York.
    skipped = campaign(schedule="daily", send_time=time(2, 30), timezone=zone.key)
    repeated = campaign(schedule="daily", send_time=repeated_time, timezone=zone.key)

    spring_runs = day_of(skipped, zone, spring)
    autumn_runs = day_of(repeated, zone, autumn)

    assert [run.astimezone(zone).strftime("%H:%M") for run in spring_runs] == ["03:30"]
    first = datetime.combine(autumn.date(), repeated_time).replace(tzinfo=zone, fold=0)
    assert first.utcoffset() != first.replace(fold=1).utcoffset()  # the time does repeat that day
    assert autumn_runs == [first.astimezone(UTC)]  # once, the first
    assert [run.astimezone(zone).hour for run in day_of(repeated, zone, autumn + timedelta(days=1))] == [
        repeated_time.hour
    ]


@pytest.mark.parametrize(
    ("zone", "spring", "autumn", "repeated"),
    [
        (PARIS, datetime(2026, 3, 29), datetime(2026, 10, 25), "2026-10-25T02:00:00"),
        (NEW_YORK, datetime(2026, 3, 8), datetime(2026, 11, 1), "2026-11-01T01:00:00"),
    ],
)
def test_an_hourly_cron_runs_at_every_real_hour(zone, spring, autumn, repeated):
    hourly = campaign(schedule="recurring", cron="0 * * * *", timezone=zone.key)

    autumn_runs = day_of(hourly, zone, autumn)
    spring_runs = day_of(hourly, zone, spring)

    assert len(autumn_runs) == 25
    assert all(later - earlier == timedelta(hours=1) for earlier, later in itertools.pairwise(autumn_runs))
    keys = [occurrence_key(run, zone.key, repeated_hour=True) for run in autumn_runs]
    assert len(set(keys)) == 25
    offset = "+01:00" if zone is PARIS else "-05:00"
    assert [key for key in keys if key.startswith(repeated)] == [repeated, repeated + offset]
    assert all(len(key) == 19 or key[19] in "+-" for key in keys)
    # In spring the skipped hour resolves onto the next real one: one run, not two.
    assert len(spring_runs) == 23
    assert all(later - earlier == timedelta(hours=1) for earlier, later in itertools.pairwise(spring_runs))


def test_a_cron_at_fixed_hours_runs_a_repeated_time_once():
    cron = campaign(schedule="recurring", cron="30 2 * * *", timezone="Europe/Paris")
    assert len(day_of(cron, PARIS, datetime(2026, 10, 25))) == 1


def test_a_skipped_time_moved_onto_an_existing_one_runs_once():
    cron = campaign(schedule="recurring", cron="30 2,3 * * *", timezone="Europe/Paris")
    assert local(day_of(cron, PARIS, datetime(2026, 3, 29)), PARIS) == ["2026-03-29 03:30 CEST"]


def test_the_key_of_an_occurrence_is_its_wall_time():
    assert occurrence_key(datetime(2026, 12, 1, 8, 0, tzinfo=UTC), "Europe/Paris") == "2026-12-01T09:00:00"
    assert occurrence_key(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Europe/Paris") == "2026-10-25T02:30:00"
    second = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # the second 02:30
    assert occurrence_key(second, "Europe/Paris", repeated_hour=True) == "2026-10-25T02:30:00+01:00"
    # A schedule that runs a repeated time once gives its second instance the first's key: not run again.
    assert occurrence_key(second, "Europe/Paris") == "2026-10-25T02:30:00"


# Frequency, words, profile time zones


def test_more_often_than_hourly_is_a_cron_with_several_minutes_an_hour():
    assert more_often_than_hourly(campaign(schedule="recurring", cron="*/15 9 * * *", timezone="UTC"))
    assert more_often_than_hourly(campaign(schedule="recurring", cron="* * * * *", timezone="UTC"))
    assert not more_often_than_hourly(campaign(schedule="recurring", cron="0 * * * *", timezone="UTC"))
    assert not more_often_than_hourly(campaign(schedule="daily", send_time=time(9), timezone="UTC"))


def test_a_schedule_reads_in_words():
    weekly = campaign(
        schedule="weekly",
        send_time=time(9, 0),
        weekdays=[3, 0],
        timezone="Europe/Paris",
        start_at=datetime(2027, 1, 4, 8, 0, tzinfo=UTC),
        end_at=datetime(2027, 6, 30, 20, 0, tzinfo=UTC),
    )
    assert describe(weekly) == (
        "Weekly on Monday and Thursday at 09:00 Europe/Paris, from 2027-01-04 09:00 until 2027-06-30 22:00"
    )
    monthly = campaign(schedule="monthly", send_time=time(8, 0), month_days=[-1, 1, 22], timezone="UTC")
    assert describe(monthly) == "Monthly on the 1st, the 22nd and the last day at 08:00 UTC"


def test_in_profile_time_zones_a_run_starts_when_the_wall_time_is_first_reached():
    daily = campaign(schedule="daily", send_time=time(9, 0), timezone="Europe/Paris", in_profile_timezone=True)
    occurrence = next_occurrence(daily, after=datetime(2027, 1, 4, 12, 0, tzinfo=UTC))

    assert occurrence == datetime(2027, 1, 5, 8, 0, tzinfo=UTC)
    # 09:00 at UTC+14 is 19:00 UTC the day before: ahead of 09:00 in every zone.
    assert run_start(daily, occurrence) == datetime(2027, 1, 4, 19, 0, tzinfo=UTC)
    assert schedules.occurrence_of_run_start(daily, run_start(daily, occurrence)) == occurrence


# Refusals


def test_a_time_that_has_passed_is_refused():
    now = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)
    once = campaign(schedule="at", start_at=now - timedelta(minutes=1), timezone="UTC")
    ended = campaign(schedule="daily", send_time=time(9), timezone="UTC", end_at=now - timedelta(days=1))
    nothing_left = campaign(
        schedule="monthly", send_time=time(9), month_days=[31], timezone="UTC", end_at=datetime(2027, 4, 30, tzinfo=UTC)
    )
    later = campaign(schedule="at", start_at=now + timedelta(minutes=1), timezone="UTC")

    assert schedule_errors(once, now=now) == {"start_at": "This date and time has passed: choose a later one."}
    assert list(schedule_errors(ended, now=now)) == ["end_at"]
    assert list(schedule_errors(nothing_left, now=datetime(2027, 4, 1, tzinfo=UTC))) == ["end_at"]
    assert schedule_errors(later, now=now) == {}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"schedule": "daily"}, "send_time"),
        ({"schedule": "weekly", "send_time": time(9), "weekdays": [7]}, "weekdays"),
        ({"schedule": "monthly", "send_time": time(9), "month_days": [0]}, "month_days"),
        ({"schedule": "monthly", "send_time": time(9), "month_days": []}, "month_days"),
        ({"schedule": "recurring", "cron": "* * * * * *"}, "cron"),
    ],
)
def test_an_incomplete_schedule_names_its_field(fields, field):
    assert field in schedule_errors(campaign(timezone="UTC", **fields), now=None)


@pytest.mark.parametrize(
    ("cron", "valid"),
    [
        ("R 9 * * *", False),  # croniter's random minute: another time at each reading
        ("H 9 * * *", False),  # and its hashed one
        ("H(0-29) 9 * * *", False),
        ("*/15 H * * *", False),
        ("0,R 9 * * *", False),
        ("0 9 * * THU", True),  # the H of THU, the R of MAR and FRI are names, not values
        ("0 9 * MAR FRI", True),
        ("0 9 * * MON-FRI", True),
    ],
)
def test_a_cron_whose_times_would_change_at_each_reading_is_refused(cron, valid):
    assert schedules.valid_cron(cron) is valid
