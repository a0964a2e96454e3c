"""The calendar in a browser: reached from the list, weeks navigated, an occurrence clicked to reach its campaign."""

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


def test_weeks_are_navigated_and_an_occurrence_leads_to_its_campaign(log_in, weekly):
    vera = log_in("vera")
    vera.get_by_role("link", name="Calendar").click()
    expect(vera.get_by_role("heading", name="Calendar", level=1)).to_be_visible()

    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    next_wednesday = monday + timedelta(days=9)
    expect(vera.get_by_role("heading", level=1)).to_contain_text(f"{monday.day} {monday:%b %Y}")

    vera.get_by_role("link", name="Next week →").click()
    expect(vera.get_by_role("heading", level=1)).to_contain_text(f"{next_wednesday - timedelta(days=2):%-d %b %Y}")
    wednesday = vera.locator(f"#day-{next_wednesday:%Y-%m-%d}").locator("xpath=..")
    expect(wednesday.locator(".calendar-entry")).to_have_count(1)
    expect(wednesday).to_contain_text("12:00")
    expect(wednesday).to_contain_text("Asia/Tokyo")
    expect(vera.locator(".calendar-week")).not_to_contain_text("Paused digest")

    vera.get_by_role("link", name="Next week →").click()
    vera.get_by_role("link", name="← Previous week").click()
    expect(vera.get_by_role("heading", level=1)).to_contain_text(f"{next_wednesday - timedelta(days=2):%-d %b %Y}")
    vera.get_by_role("link", name="This week").click()
    expect(vera.get_by_role("heading", level=1)).to_contain_text(f"{monday.day} {monday:%b %Y}")

    vera.get_by_role("link", name="Next week →").click()
    vera.get_by_role("link", name="Wednesday digest").click()
    expect(vera.get_by_role("heading", name="Wednesday digest", level=1)).to_be_visible()
    assert vera.url.endswith(weekly.get_absolute_url())
