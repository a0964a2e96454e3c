"""Issue 14 in a browser: a live campaign is edited (settings and content) into a new version that an approver
approves and activates while the live one goes on; a campaign is duplicated, then the copy deleted; a finished one
archived."""

from datetime import time

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from audiences.models import Audience
from campaigns.models import Campaign
from campaigns.services import approval, lifecycle
from permissions.roles import Role
from tests.conftest import make_email_configuration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONTENT = lifecycle.Content("Spring news", '<p>News</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>', "")


@pytest.fixture
def live(transactional_db, personas):
    """A weekly newsletter, approved and live, under a policy asking approvers to approve every version."""
    approval.approval_policy_create(
        actor=personas["ada"],
        rules=approval.PolicyRules(name="Everything", approver_groups=[Group.objects.get(name=Role.APPROVER.value)]),
    )
    Audience.objects.create(name="Newcomers", kind=Audience.Kind.ALL)
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Weekly news",
        channel_configuration=make_email_configuration(port=1, name="Test relay"),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=CONTENT,
        schedule=Campaign.Schedule.WEEKLY,
        send_time=time(9, 0),
        weekdays=[0],
        timezone_name="Europe/Paris",
    )
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
    return lifecycle.campaign_approve_and_activate(campaign=campaign, actor=personas["april"])


def test_a_live_campaign_is_edited_into_a_new_version_approved_and_activated(log_in, live):
    manny = log_in("manny")
    manny.goto(f"/campaigns/{live.pk}/")
    manny.get_by_role("link", name="Edit", exact=True).click()
    expect(manny.locator(".notice")).to_contain_text("saving makes version 2")
    manny.get_by_label("Name", exact=True).fill("Weekly digest")
    manny.get_by_label("Description").fill("The Monday letter")
    manny.get_by_label("Audience").select_option(label="Newcomers")
    manny.get_by_label("Thursday").check()
    manny.get_by_label("Subject").fill("Digest of the week")
    manny.get_by_role("button", name="Save version 2").click()

    expect(manny.get_by_role("status")).to_contain_text("Version 1 goes on sending until version 2 is submitted")
    expect(manny.locator("h1")).to_have_text("Weekly news")  # the live settings until version 2 is live
    expect(manny.locator(".notice")).to_contain_text("Version 2 (draft) changes name, description, audience")
    manny.get_by_role("link", name="Compare the versions").click()
    expect(manny.locator("#version-2 ins").first).to_be_visible()
    expect(manny.locator("#version-2")).to_contain_text("+Weekly digest")
    manny.go_back()
    manny.get_by_role("button", name="Submit for review").click()
    expect(manny.get_by_role("status")).to_contain_text("Submitted for review")

    april = log_in("april")
    april.goto(f"/campaigns/{live.pk}/review/")
    expect(april.locator("body")).to_contain_text("Newcomers")  # the reviewer sees version 2's settings
    expect(april.locator("body")).to_contain_text("+Weekly digest")
    april.get_by_role("button", name="Approve and activate").click()
    expect(april.get_by_role("status")).to_contain_text("Version 2 is live: the next occurrence sends it")
    expect(april.locator("h1")).to_have_text("Weekly digest")
    expect(april.locator("body")).to_contain_text("Weekly on Monday and Thursday at 09:00 Europe/Paris")
    live.refresh_from_db()
    assert (live.name, live.audience.name, live.weekdays, live.live_version.number) == (
        "Weekly digest",
        "Newcomers",
        [0, 3],
        2,
    )


def test_a_campaign_is_duplicated_the_copy_deleted_and_a_stopped_one_archived(log_in, live):
    ada = log_in("ada")
    ada.goto(f"/campaigns/{live.pk}/")
    ada.get_by_role("button", name="Duplicate").click()
    expect(ada.get_by_role("status")).to_contain_text("Duplicated as a new draft")
    expect(ada.locator("h1")).to_have_text("Copy of Weekly news")
    copy = Campaign.objects.get(name="Copy of Weekly news")
    assert copy.status == Campaign.Status.DRAFT and copy.latest_version().subject == "Spring news"

    ada.get_by_role("link", name="Delete").click()
    ada.get_by_role("button", name="Delete draft").click()
    expect(ada.get_by_role("status")).to_contain_text("Deleted the draft")
    assert not Campaign.objects.filter(pk=copy.pk).exists()

    ada.goto(f"/campaigns/{live.pk}/")
    ada.get_by_role("button", name="Archive").click()  # htmx asks first; the fixture accepts
    expect(ada.get_by_role("status")).to_contain_text("Archived: it is stopped")
    live.refresh_from_db()
    assert live.status == Campaign.Status.STOPPED and live.archived_at is not None
    ada.goto("/campaigns/")
    expect(ada.locator("body")).not_to_contain_text("Weekly news")
