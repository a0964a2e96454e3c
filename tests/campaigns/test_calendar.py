"""The calendar: four weeks of the sends still to come of active scheduled campaigns, each on its own wall clock."""

import html
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.models import Audience
from campaigns import schedules
from campaigns.models import Campaign
from campaigns.services import lifecycle
from tests.conftest import make_email_configuration

CALENDAR = "/campaigns/calendar/"
# A Monday, 06:00 UTC.
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def make(frozen, personas):
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    relay = make_email_configuration(port=1025, name="Relay")

    def make_(name, *, state="active", **kwargs):
        campaign = lifecycle.campaign_create(
            actor=personas["manny"],
            name=name,
            channel_configuration=relay,
            audience=audience,
            content=lifecycle.Content("Hello", "<p>Hi</p>", "Hi"),
            **kwargs,
        )
        if state != "draft":
            lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
        if state == "paused":
            lifecycle.campaign_pause(campaign=campaign, actor=personas["april"])
        if state in ("stopped", "archived"):
            lifecycle.campaign_stop(campaign=campaign, actor=personas["april"])
        if state == "archived":
            Campaign.objects.filter(pk=campaign.pk).update(archived_at=NOW)
        return campaign

    return make_


@pytest.fixture
def vera(client, personas):
    client.force_login(personas["vera"])
    return client


def days(response) -> dict[str, list[tuple[str, str, str]]]:
    """{"2026-03-02": [(time, zone abbreviation, campaign name), ...]} for each day of the page, in order."""
    page = response.content.decode()
    found = {}
    for day, body in re.findall(r'<h2 id="day-([\d-]+)".*?</h2>(.*?)</section>', page, re.DOTALL):
        found[day] = [
            (at, abbreviation, html.unescape(name))
            for at, abbreviation, name in re.findall(
                r'<time [^>]*>([^<]*)</time>\s*<abbr class="calendar-zone" title="[^"]*">([^<]*)</abbr>\s*'
                r'<a class="calendar-name" href="[^"]*">([^<]*)</a>',
                body,
            )
        ]
    return found


def of(period: dict, name: str) -> dict[str, list[tuple[str, str]]]:
    """One campaign's entries: {day: [(time, zone abbreviation), ...]} for the days it has some."""
    entries = {day: [(at, zone) for at, zone, named in listed if named == name] for day, listed in period.items()}
    return {day: listed for day, listed in entries.items() if listed}


def span(first: date, count: int = 28) -> list[str]:
    return [f"{first + timedelta(days=offset):%Y-%m-%d}" for offset in range(count)]


PERIOD = span(date(2026, 3, 2))  # Monday 2 to Sunday 29 March 2026


def test_four_weeks_from_this_monday_as_a_grid_of_four_rows_of_seven_days(vera, make):
    response = vera.get(CALENDAR)

    page = response.content.decode()
    assert list(days(response)) == PERIOD
    rows = re.findall(r'<div class="calendar-week" role="list"(.*?)</div>', page, re.DOTALL)
    assert [len(re.findall(r'<h2 id="day-', row)) for row in rows] == [7, 7, 7, 7]
    assert "Calendar <span" in page and "2 Mar 2026 – 29 Mar 2026" in page
    assert "4 weeks, Monday to Sunday, from Monday 2 March 2026 to Sunday 29 March 2026" in page


def test_daily_weekly_monthly_cron_and_once_campaigns_fall_on_their_days_in_their_zones(vera, make):
    make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")
    make("NY Mon Thu", schedule="weekly", send_time=time(18, 30), weekdays=[0, 3], timezone_name="America/New_York")
    make("Monthly 5th", schedule="monthly", send_time=time(12), month_days=[5, 20])
    make("Noon cron", schedule="recurring", cron="0 12 * * 6,0", timezone_name="UTC")
    make("Tokyo once", schedule="at", start_at=datetime(2026, 3, 3, 15, 30, tzinfo=UTC), timezone_name="Asia/Tokyo")

    period = days(vera.get(CALENDAR))

    assert list(period) == PERIOD
    # Paris moves to summer time on Sunday 29 March: the same 09:00, another abbreviation.
    assert of(period, "Paris daily") == {day: [("09:00", "CET")] for day in PERIOD[:-1]} | {
        "2026-03-29": [("09:00", "CEST")]
    }
    # New York moves on Sunday 8 March.
    assert of(period, "NY Mon Thu") == {"2026-03-02": [("18:30", "EST")], "2026-03-05": [("18:30", "EST")]} | {
        f"2026-03-{day:02}": [("18:30", "EDT")] for day in (9, 12, 16, 19, 23, 26)
    }
    assert of(period, "Monthly 5th") == {"2026-03-05": [("12:00", "UTC")], "2026-03-20": [("12:00", "UTC")]}
    assert of(period, "Noon cron") == {
        f"2026-03-{day:02}": [("12:00", "UTC")] for day in (7, 8, 14, 15, 21, 22, 28, 29)
    }
    # 15:30 UTC on Tuesday is 00:30 on Wednesday in Tokyo: the campaign's own day.
    assert of(period, "Tokyo once") == {"2026-03-04": [("00:30", "JST")]}


def test_the_zone_abbreviation_names_its_zone(vera, make):
    make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")

    page = vera.get(CALENDAR).content.decode()

    assert '<abbr class="calendar-zone" title="Europe/Paris">CET</abbr>' in page


def test_a_weekly_newsletter_11_days_away_is_on_the_page_that_opens(vera, make):
    make("Newsletter", schedule="weekly", send_time=time(10), weekdays=[4], start_at=datetime(2026, 3, 13, tzinfo=UTC))

    assert of(days(vera.get(CALENDAR)), "Newsletter") == {
        "2026-03-13": [("10:00", "UTC")],
        "2026-03-20": [("10:00", "UTC")],
        "2026-03-27": [("10:00", "UTC")],
    }


def test_only_sends_still_to_come_are_listed(vera, make):
    make("Early daily", schedule="daily", send_time=time(5))  # 05:00 UTC today has passed at 06:00

    assert list(of(days(vera.get(CALENDAR)), "Early daily")) == PERIOD[1:]


def test_paused_stopped_archived_draft_and_triggered_campaigns_are_not_on_the_calendar(vera, make):
    for state in ("draft", "paused", "stopped", "archived"):
        make(f"Daily {state}", state=state, schedule="daily", send_time=time(9))
    make("Triggered", state="draft", kind=Campaign.Kind.API_TRIGGERED)
    make("Active daily", schedule="daily", send_time=time(9))

    response = vera.get(CALENDAR)

    names = {name for listed in days(response).values() for _, _, name in listed}
    assert names == {"Active daily"}
    assert b"Drafts, paused, stopped and archived" in response.content


def test_a_cron_every_minute_lists_a_few_a_day_and_counts_the_rest(vera, make):
    make("Every minute", schedule="recurring", cron="* * * * *")
    make("Paris minute", schedule="recurring", cron="* * * * *", timezone_name="Europe/Paris")

    response = vera.get(CALENDAR)

    period = days(response)
    minute = of(period, "Every minute")
    assert list(minute) == PERIOD
    assert minute["2026-03-02"] == [("06:01", "UTC"), ("06:02", "UTC"), ("06:03", "UTC"), ("06:04", "UTC")]
    assert minute["2026-03-03"] == [("00:00", "UTC"), ("00:01", "UTC"), ("00:02", "UTC"), ("00:03", "UTC")]
    paris = of(period, "Paris minute")
    assert paris["2026-03-02"][0] == ("07:01", "CET")
    assert paris["2026-03-29"] == [("00:00", "CET"), ("00:01", "CET"), ("00:02", "CET"), ("00:03", "CET")]
    assert response.content.decode().count("and 96+ more that day") == 2 * 28


def test_a_cron_ending_in_the_period_counts_only_its_sends_before_the_end(vera, make):
    make("Half hourly", schedule="recurring", cron="*/30 * * * *", end_at=datetime(2026, 3, 3, 1, 10, tzinfo=UTC))

    response = vera.get(CALENDAR)

    half = of(days(response), "Half hourly")
    assert half == {
        "2026-03-02": [("06:30", "UTC"), ("07:00", "UTC"), ("07:30", "UTC"), ("08:00", "UTC")],
        "2026-03-03": [("00:00", "UTC"), ("00:30", "UTC"), ("01:00", "UTC")],
    }
    assert "and 31 more that day" in response.content.decode()  # 06:30 to 23:30: 35 sends


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "America/Havana"])
@pytest.mark.parametrize("cron", ["*/20 * * * *", "0,30 0-3 * * *", "15 2 * * *", "0 0 * * 0", "59 23 L * *"])
@pytest.mark.parametrize("first_day", [date(2026, 3, 2), date(2026, 10, 19)])
def test_a_crons_days_are_those_of_its_occurrences_across_clock_changes(zone, cron, first_day):
    """The calendar reads a cron's ordinary days from its times of day: the same sends `occurrences` gives, on
    days when clocks change too (spring and autumn changes in both periods, for the zones above)."""
    campaign = Campaign(schedule="recurring", cron=cron, timezone=zone)
    local = ZoneInfo(zone)
    now = datetime.combine(first_day, time(6), tzinfo=UTC)
    end = first_day + timedelta(days=28)
    expected = defaultdict(list)
    for instant in schedules.occurrences(campaign, after=now):
        day = instant.astimezone(local).date()
        if day >= end:
            break
        expected[day].append(instant)
    shown = {
        day: (found[:4], min(len(found) - len(found[:4]), 96)) for day, found in expected.items() if day >= first_day
    }

    assert (
        schedules.local_day_occurrences(campaign, first_day=first_day, days=28, after=now, shown=4, counted=100)
        == shown
    )


def test_the_page_reads_the_same_few_queries_however_many_campaigns_and_sends(vera, make, django_assert_num_queries):
    make("Every minute", schedule="recurring", cron="* * * * *")
    vera.get(CALENDAR)
    with CaptureQueriesContext(connection) as one:
        vera.get(CALENDAR)
    for index in range(5):
        make(f"Every minute {index}", schedule="recurring", cron="* * * * *", timezone_name="Europe/Paris")
        make(f"Daily {index}", schedule="daily", send_time=time(9))

    with django_assert_num_queries(len(one.captured_queries)):
        vera.get(CALENDAR)


def test_a_campaign_in_profile_time_zones_says_so(vera, make):
    make("Local nine", schedule="daily", send_time=time(9), timezone_name="Europe/Paris", in_profile_timezone=True)

    response = vera.get(CALENDAR)

    assert of(days(response), "Local nine")["2026-03-03"] == [("09:00", "CET")]
    assert b"in each profile's zone" in response.content


def test_an_occurrence_links_to_its_campaign(vera, make):
    campaign = make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")

    page = vera.get(CALENDAR).content.decode()

    assert f'<a class="calendar-name" href="/campaigns/{campaign.pk}/">Paris daily</a>' in page


def test_start_shows_four_weeks_from_the_week_of_that_day_with_links_four_weeks_around_it(vera, make):
    make("Weekly Wed", schedule="weekly", send_time=time(9), weekdays=[2])

    response = vera.get(CALENDAR, {"start": "2026-03-12"})  # a Thursday

    period = days(response)
    assert list(period) == span(date(2026, 3, 9))
    assert of(period, "Weekly Wed") == {
        day: [("09:00", "UTC")] for day in ("2026-03-11", "2026-03-18", "2026-03-25", "2026-04-01")
    }
    page = response.content.decode()
    assert 'href="?start=2026-02-09" rel="prev">← Previous 4 weeks</a>' in page
    assert 'href="?start=2026-04-06" rel="next">Next 4 weeks →</a>' in page
    assert ">From this week</a>" in page
    assert ">From this week</a>" not in vera.get(CALENDAR).content.decode()


def test_past_days_list_nothing_and_the_page_says_where_past_runs_are(vera, make):
    make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")

    response = vera.get(CALENDAR, {"start": "2026-02-23"})

    period = days(response)
    assert list(period) == span(date(2026, 2, 23))
    assert list(of(period, "Paris daily")) == span(date(2026, 3, 2), 21)
    assert response.content.decode().count('<p class="muted calendar-empty">Past</p>') == 7
    text = " ".join(response.content.decode().split())
    assert "past days list nothing (the runs sent are on each campaign's page)" in text


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("yesterday", "Enter a valid date."),
        ("0001-01-01", "Enter a date between 1970 and 2998."),
        ("9999-12-31", "Enter a date between 1970 and 2998."),
        ("2026-02-30", "Enter a valid date."),
        ("%00", "Enter a valid date."),
        ("%ED%A0%80", "Enter a valid date."),
        ("9" * 400, "Enter a valid date."),
    ],
)
def test_a_bad_start_is_named_and_the_four_weeks_from_this_week_are_shown(vera, make, start, message):
    response = vera.get(f"{CALENDAR}?start={start}")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_start_error"' in page
    assert message in page
    assert "Showing the 4 weeks from this week instead." in page
    assert list(days(response)) == PERIOD


def test_the_last_weeks_before_the_limit_do_not_overflow(vera, make):
    make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")
    make("Every minute", schedule="recurring", cron="* * * * *")

    response = vera.get(CALENDAR, {"start": "2998-12-31"})

    assert response.status_code == 200
    assert list(days(response)) == span(date(2998, 12, 31))  # a Monday
