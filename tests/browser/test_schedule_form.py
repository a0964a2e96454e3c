"""Issue 13's readable schedules in a browser: the campaign form shows only the chosen schedule's inputs, lists the
next occurrences as they are typed, warns about a schedule more frequent than hourly, and the campaign page puts
the schedule in words."""

import re

import pytest
from playwright.sync_api import expect

from audiences.models import Audience
from campaigns.models import Campaign
from tests.conftest import make_email_configuration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def everyone(transactional_db):
    return Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)


def test_a_weekly_schedule_is_built_from_its_inputs_and_its_next_occurrences_are_listed(log_in, everyone):
    make_email_configuration(port=1, name="Test relay")
    manny = log_in("manny")
    manny.get_by_role("link", name="New campaign").click()
    manny.get_by_label("Name", exact=True).fill("Weekly digest")
    manny.get_by_label("Audience").select_option(label="Everyone")
    manny.get_by_label("Channel configuration").select_option(label="Email · Test relay")
    manny.get_by_label("Subject").fill("This week")
    manny.get_by_label("Text body").fill("Hello")

    manny.get_by_label("Weekly, on chosen days").check()
    expect(manny.get_by_label("Monday")).to_be_visible()
    expect(manny.get_by_label("Last day")).to_be_hidden()  # the monthly inputs stay out of the way
    expect(manny.get_by_label("Cron expression", exact=False).first).to_be_visible()  # the radio, not the input
    manny.get_by_label("At", exact=True).fill("09:00")
    manny.get_by_label("Time zone", exact=True).fill("Europe/Paris")  # searched in its datalist
    manny.get_by_label("Monday").check()
    manny.get_by_label("Thursday").check()

    occurrences = manny.locator("#schedule-occurrences .occurrence-list li")
    expect(occurrences).to_have_count(5)
    for text in occurrences.all_inner_texts():
        assert re.match(r"(Mon|Thu) \d{4}-\d\d-\d\d 09:00 CES?T", text), text
    expect(manny.locator("#schedule-occurrences")).to_contain_text("Weekly on Monday and Thursday at 09:00")

    manny.get_by_label("Cron expression (advanced)").check()
    expect(manny.get_by_label("Monday")).to_be_hidden()
    manny.locator("input[name='cron']").fill("*/15 9 * * *")
    expect(manny.locator("#schedule-occurrences")).to_contain_text("more often than hourly")
    manny.get_by_label("Weekly, on chosen days").check()
    expect(manny.locator("#schedule-occurrences")).not_to_contain_text("more often than hourly")

    manny.get_by_role("button", name="Create draft").click()
    expect(manny.get_by_role("status")).to_contain_text("Campaign created as a draft")
    expect(manny.locator("body")).to_contain_text("Weekly on Monday and Thursday at 09:00 Europe/Paris")
    campaign = Campaign.objects.get(name="Weekly digest")
    assert (campaign.schedule, campaign.weekdays, campaign.timezone) == ("weekly", [0, 3], "Europe/Paris")
