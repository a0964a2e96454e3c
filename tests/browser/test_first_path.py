"""Issue 2's first path in a browser: a manager creates a scheduled email campaign, an approver activates it,
and the scheduler and the RQ worker pool send it to a real SMTP server on loopback. The scheduler pass and
the burst worker run in the test, as in tests/campaigns/test_execution.py: our real components, not mocks."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from audiences.models import Audience, Consent, Profile
from campaigns.models import Campaign
from campaigns.services import lifecycle
from config.scheduler import scheduler_tick
from tests.conftest import make_email_configuration, run_burst_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUBJECT = "Hello {{ profile.first_name }}"
HTML_BODY = "<p>Dear {{ profile.first_name }}, our autumn sale starts now.</p>"
TEXT_BODY = "Dear {{ profile.first_name }}, our autumn sale starts now."
# Whatever takes a campaign towards sending, or stops it: a viewer sees none of them.
PUBLISHING_BUTTONS = re.compile(r"submit|approve|activate|resume|pause|stop", re.IGNORECASE)


@pytest.fixture
def everyone(transactional_db):
    return Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)


def status_count(page: Page, label: str):
    return page.locator("#status-panel .counts > div").filter(has=page.locator("dt", has_text=label)).locator("dd")


def publish(*, manager: Page, approver: Page, campaign_url: str) -> None:
    """The review step: the manager submits the draft, the approver approves and activates it."""
    manager.get_by_role("button", name="Submit for review").click()
    expect(manager.get_by_role("status")).to_contain_text("Submitted for review")
    approver.goto(campaign_url)
    approver.get_by_role("link", name="Review", exact=True).click()
    approver.get_by_role("button", name="Approve and activate").click()
    expect(approver.get_by_role("status")).to_contain_text("Approved. Activated: the scheduler starts the first run")
    expect(approver.locator("#status-panel .badge")).to_have_text("Active")


@pytest.mark.smoke
def test_campaign_created_in_the_browser_reaches_each_recipient_once(log_in, redis, smtp_server, everyone):
    profiles = Profile.objects.bulk_create(
        Profile(email=f"person{n}@example.com", attributes={"first_name": f"Name{n}"}) for n in range(13)
    )
    opted_out = profiles[5]
    Consent.objects.create(profile=opted_out, channel="email", state=Consent.State.OPTED_OUT)
    make_email_configuration(port=smtp_server.port, name="Test relay")

    manny = log_in("manny")
    manny.get_by_role("link", name="New campaign").click()
    manny.get_by_label("Name", exact=True).fill("Autumn sale")
    manny.get_by_label("Audience").select_option(label="Everyone")
    manny.get_by_label("Channel configuration").select_option(label="Email · Test relay")
    manny.get_by_label("Subject").fill(SUBJECT)
    manny.get_by_label("HTML body").fill(HTML_BODY)
    manny.get_by_label("Text body").fill(TEXT_BODY)
    manny.get_by_label("When activated").check()
    manny.get_by_role("button", name="Create draft").click()

    expect(manny.get_by_role("heading", name="Autumn sale", level=1)).to_be_visible()
    expect(manny.get_by_role("status")).to_contain_text("Campaign created as a draft")
    expect(manny.locator("#status-panel .badge")).to_have_text("Draft")
    # Marketer HTML is untrusted: it is previewed, rendered for a sample profile (without attributes), in a
    # frame sandboxed from scripts.
    preview = manny.get_by_title("HTML body preview")
    sandbox = preview.get_attribute("sandbox")
    assert sandbox is not None and "allow-scripts" not in sandbox, f"preview iframe sandbox={sandbox!r}"
    frame = manny.frame_locator("iframe.preview")
    expect(frame.locator("p").first).to_have_text("Dear , our autumn sale starts now.")
    # Then the relay's footer, with the unsubscribe link every marketing email shows.
    expect(frame.get_by_role("link", name="Unsubscribe")).to_be_visible()

    april = log_in("april")
    publish(manager=manny, approver=april, campaign_url=manny.url)

    # A scheduler pass starts the run; while it plans and sends, the page polls its status panel.
    scheduler_tick()
    april.reload()
    panel = april.locator("#status-panel")
    expect(panel.locator(".live")).to_be_visible()
    run_burst_worker()

    # The panel updates itself (htmx, no reload), then stops polling: the only run is complete.
    expect(panel.locator("td .badge")).to_have_text(["Complete"], timeout=15_000)
    expect(status_count(april, "Targeted")).to_have_text("13")
    expect(status_count(april, "Excluded")).to_have_text("1")
    expect(status_count(april, "Sent")).to_have_text("12")
    expect(status_count(april, "Failed")).to_have_text("0")
    expect(panel.get_by_role("row", name="No consent")).to_contain_text("1")
    expect(panel.locator(".status-head .badge")).to_have_text("Completed")
    expect(panel.locator(".live")).to_have_count(0)

    received = smtp_server.by_recipient()
    expected = {p.email: p.attributes["first_name"] for p in profiles if p != opted_out}
    assert set(received) == set(expected)
    for address, messages in received.items():
        assert len(messages) == 1, f"{address} received {len(messages)} messages"
        first_name, message = expected[address], messages[0]
        assert message["Subject"] == f"Hello {first_name}"
        assert f"<p>Dear {first_name}, our autumn sale" in message.get_body(("html",)).get_content()
        assert f"Dear {first_name}, our autumn sale" in message.get_body(("plain",)).get_content()


def test_viewer_sees_campaigns_but_cannot_publish_them(log_in, personas, redis, smtp_server, everyone):
    configuration = make_email_configuration(port=smtp_server.port)
    content = lifecycle.Content(SUBJECT, HTML_BODY, TEXT_BODY)

    def create(name):
        return lifecycle.campaign_create(
            actor=personas["manny"], name=name, channel_configuration=configuration, audience=everyone, content=content
        )

    draft, active = create("Spring draft"), create("Summer sale")
    lifecycle.campaign_activate(campaign=active, actor=personas["april"])
    # The approver sees Pause and Stop here, so their absence below comes from the viewer's role.
    april = log_in("april")
    april.goto(active.get_absolute_url())
    expect(april.get_by_role("button", name=PUBLISHING_BUTTONS)).not_to_have_count(0)

    vera = log_in("vera")
    for campaign in (draft, active):
        vera.goto(campaign.get_absolute_url())
        expect(vera.get_by_role("heading", name=campaign.name, level=1)).to_be_visible()
        expect(vera.get_by_role("button", name=PUBLISHING_BUTTONS)).to_have_count(0)

    # Hidden buttons are no protection by themselves: the server refuses her requests.
    csrf_token = {cookie["name"]: cookie["value"] for cookie in vera.context.cookies()}[settings.CSRF_COOKIE_NAME]
    for campaign, action in ((draft, "activate"), (active, "pause"), (active, "stop")):
        response = vera.request.post(f"{campaign.get_absolute_url()}{action}/", headers={"X-CSRFToken": csrf_token})
        assert response.status == 403, f"{action}: {response.status}"
        assert "You don't have access to this" in response.text()  # refused for her role, not for CSRF

    assert dict(Campaign.objects.values_list("name", "status")) == {"Spring draft": "draft", "Summer sale": "active"}
