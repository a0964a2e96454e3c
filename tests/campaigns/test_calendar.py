"""The calendar: a week of the sends still to come of active scheduled campaigns, each on its own wall clock."""

import html
import re
from datetime import UTC, datetime, time

import pytest
import time_machine

from audiences.models import Audience
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
    """{"2026-03-02": [(time, zone, campaign name), ...]} for each day of the page's week."""
    page = response.content.decode()
    found = {}
    for day, body in re.findall(r'<h2 id="day-([\d-]+)".*?</h2>(.*?)</section>', page, re.DOTALL):
        found[day] = [
            (at, zone, html.unescape(name))
            for at, zone, name in re.findall(
                r'<time [^>]*>([^<]*)</time>\s*<span class="calendar-zone">([^<]*)</span>\s*'
                r'<span class="calendar-name">([^<]*)</span>',
                body,
            )
        ]
    return found


def of(week: dict, name: str) -> dict[str, list[tuple[str, str]]]:
    """One campaign's entries: {day: [(time, zone), ...]} for the days it has some."""
    entries = {day: [(at, zone) for at, zone, named in listed if named == name] for day, listed in week.items()}
    return {day: listed for day, listed in entries.items() if listed}


WEEK = [f"2026-03-{day:02}" for day in range(2, 9)]


def test_daily_weekly_monthly_cron_and_once_campaigns_fall_on_their_days_in_their_zones(vera, make):
    make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")
    make("NY Mon Thu", schedule="weekly", send_time=time(18, 30), weekdays=[0, 3], timezone_name="America/New_York")
    make("Monthly 5th", schedule="monthly", send_time=time(12), month_days=[5, 20])
    make("Noon cron", schedule="recurring", cron="0 12 * * 6,0", timezone_name="UTC")
    make("Tokyo once", schedule="at", start_at=datetime(2026, 3, 3, 15, 30, tzinfo=UTC), timezone_name="Asia/Tokyo")

    week = days(vera.get(CALENDAR))

    assert list(week) == WEEK
    assert of(week, "Paris daily") == {day: [("09:00", "Europe/Paris")] for day in WEEK}
    assert of(week, "NY Mon Thu") == {
        "2026-03-02": [("18:30", "America/New_York")],
        "2026-03-05": [("18:30", "America/New_York")],
    }
    assert of(week, "Monthly 5th") == {"2026-03-05": [("12:00", "UTC")]}
    assert of(week, "Noon cron") == {"2026-03-07": [("12:00", "UTC")], "2026-03-08": [("12:00", "UTC")]}
    # 15:30 UTC on Tuesday is 00:30 on Wednesday in Tokyo: the campaign's own day.
    assert of(week, "Tokyo once") == {"2026-03-04": [("00:30", "Asia/Tokyo")]}


def test_only_sends_still_to_come_are_listed(vera, make):
    make("Early daily", schedule="daily", send_time=time(5))  # 05:00 UTC today has passed at 06:00

    assert list(of(days(vera.get(CALENDAR)), "Early daily")) == WEEK[1:]


def test_paused_stopped_archived_draft_and_triggered_campaigns_are_not_on_the_calendar(vera, make):
    for state in ("draft", "paused", "stopped", "archived"):
        make(f"Daily {state}", state=state, schedule="daily", send_time=time(9))
    make("Triggered", state="draft", kind=Campaign.Kind.API_TRIGGERED)
    make("Active daily", schedule="daily", send_time=time(9))

    response = vera.get(CALENDAR)

    names = {name for listed in days(response).values() for _, _, name in listed}
    assert names == {"Active daily"}
    assert b"drafts, paused, stopped and archived" in response.content


def test_a_cron_every_minute_lists_a_few_a_day_and_counts_the_rest(vera, make):
    make("Every minute", schedule="recurring", cron="* * * * *")

    response = vera.get(CALENDAR)

    week = of(days(response), "Every minute")
    assert list(week) == WEEK
    assert week["2026-03-02"] == [("06:01", "UTC"), ("06:02", "UTC"), ("06:03", "UTC"), ("06:04", "UTC")]
    assert response.content.decode().count("and 96+ more that day") == 7


def test_a_campaign_in_profile_time_zones_says_so(vera, make):
    make("Local nine", schedule="daily", send_time=time(9), timezone_name="Europe/Paris", in_profile_timezone=True)

    response = vera.get(CALENDAR)

    assert of(days(response), "Local nine")["2026-03-03"] == [("09:00", "Europe/Paris")]
    assert b"in each profile's zone" in response.content


def test_an_occurrence_links_to_its_campaign(vera, make):
    campaign = make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")

    assert f'href="/campaigns/{campaign.pk}/"' in vera.get(CALENDAR).content.decode()


def test_start_shows_the_week_of_that_day_with_links_to_the_weeks_around_it(vera, make):
    make("Weekly Wed", schedule="weekly", send_time=time(9), weekdays=[2])

    response = vera.get(CALENDAR, {"start": "2026-03-12"})  # a Thursday

    week = days(response)
    assert list(week) == [f"2026-03-{day:02}" for day in range(9, 16)]
    assert of(week, "Weekly Wed") == {"2026-03-11": [("09:00", "UTC")]}
    assert 'href="?start=2026-03-02" rel="prev"' in response.content.decode()
    assert 'href="?start=2026-03-16" rel="next"' in response.content.decode()


def test_a_past_week_lists_nothing_and_says_where_past_runs_are(vera, make):
    make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")

    response = vera.get(CALENDAR, {"start": "2026-02-23"})

    assert all(not listed for listed in days(response).values())
    assert b"Past: the runs sent are on each campaign's page." in response.content


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
def test_a_bad_start_is_named_and_this_week_is_shown(vera, make, start, message):
    response = vera.get(f"{CALENDAR}?start={start}")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_start_error"' in page
    assert message in page
    assert list(days(response)) == WEEK


def test_the_last_week_before_the_limit_does_not_overflow(vera, make):
    make("Paris daily", schedule="daily", send_time=time(9), timezone_name="Europe/Paris")

    response = vera.get(CALENDAR, {"start": "2998-12-31"})

    assert response.status_code == 200
    assert len(days(response)) == 7
