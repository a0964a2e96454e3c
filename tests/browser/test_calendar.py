"""The calendar in a browser: reached from the list, four weeks as a grid, navigated by four weeks, an occurrence
clicked to reach its campaign."""

from datetime import time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audiences.models import Audience
from campaigns.services import lifecycle
from tests.conftest import make_email_configuration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def weekly(transactional_db, personas):
    """An active campaign sent on Wednesdays at 12:00 in Tokyo, and a paused one on the same days."""
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    relay = make_email_configuration(port=1, name="Relay")

    def campaign(name):
        created = lifecycle.campaign_create(
            actor=personas["manny"],
            name=name,
            channel_configuration=relay,
            audience=audience,
            content=lifecycle.Content("Hello", "<p>Hi</p>", "Hi"),
            schedule="weekly",
            send_time=time(12),
            weekdays=[2],
            timezone_name="Asia/Tokyo",
        )
        lifecycle.campaign_activate(campaign=created, actor=personas["april"])
        return created

    paused = campaign("Paused digest")
    lifecycle.campaign_pause(campaign=paused, actor=personas["april"])
    return campaign("Wednesday digest")


def test_four_weeks_are_a_grid_navigated_by_four_weeks_and_an_occurrence_leads_to_its_campaign(log_in, weekly):
    vera = log_in("vera")
    vera.set_viewport_size({"width": 1400, "height": 900})
    vera.get_by_role("link", name="Calendar").click()
    expect(vera.get_by_role("heading", name="Calendar", level=1)).to_be_visible()

    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    last = monday + timedelta(days=27)
    heading = vera.get_by_role("heading", level=1)
    expect(heading).to_contain_text(f"{monday.day} {monday:%b %Y} – {last.day} {last:%b %Y}")

    # Four rows of seven days, Monday first, the days of a row side by side.
    rows = vera.locator(".calendar-week")
    expect(rows).to_have_count(4)
    for row in range(4):
        expect(rows.nth(row).locator(".calendar-day")).to_have_count(7)
    expect(vera.locator(".calendar-weekdays")).to_contain_text("Monday")
    first_row = [rows.nth(0).locator(".calendar-day").nth(index).bounding_box() for index in range(7)]
    assert len({round(box["y"]) for box in first_row}) == 1
    assert [box["x"] for box in first_row] == sorted(box["x"] for box in first_row)
    assert rows.nth(1).bounding_box()["y"] > first_row[0]["y"] + first_row[0]["height"] - 1

    # The weekly send is on the page that opens: next week's Wednesday, 12:00 JST, its zone named in the tooltip.
    next_wednesday = monday + timedelta(days=9)
    wednesday = vera.locator(f"#day-{next_wednesday:%Y-%m-%d}").locator("xpath=..")
    expect(wednesday.locator(".calendar-entry")).to_have_count(1)
    expect(wednesday).to_contain_text("12:00")
    expect(wednesday.locator("abbr.calendar-zone")).to_have_text("JST")
    expect(wednesday.locator("abbr.calendar-zone")).to_have_attribute("title", "Asia/Tokyo")
    expect(vera.locator(f"#day-{next_wednesday + timedelta(days=14):%Y-%m-%d}").locator("xpath=..")).to_contain_text(
        "Wednesday digest"
    )
    expect(vera.locator(".calendar-grid")).not_to_contain_text("Paused digest")
    expect(vera.get_by_role("link", name="From this week")).to_have_count(0)

    vera.get_by_role("link", name="Next 4 weeks →").click()
    after = monday + timedelta(days=28)
    expect(heading).to_contain_text(f"{after.day} {after:%b %Y}")
    expect(vera.locator(f"#day-{after + timedelta(days=2):%Y-%m-%d}").locator("xpath=..")).to_contain_text(
        "Wednesday digest"
    )
    vera.get_by_role("link", name="Next 4 weeks →").click()
    vera.get_by_role("link", name="← Previous 4 weeks").click()
    expect(heading).to_contain_text(f"{after.day} {after:%b %Y}")
    vera.get_by_role("link", name="From this week").click()
    expect(heading).to_contain_text(f"{monday.day} {monday:%b %Y}")

    wednesday.get_by_role("link", name="Wednesday digest").click()
    expect(vera.get_by_role("heading", name="Wednesday digest", level=1)).to_be_visible()
    assert vera.url.endswith(weekly.get_absolute_url())
