"""Issue 14 in a browser: a manager previews a campaign as a profile found by email, then sends a proof of it rendered
as that profile to two addresses (a bad one first: named, nothing sent); each address's result shows in the card,
and the proof reaches a real SMTP server with "[Proof] " before its subject. Then the proof goes to that profile itself
(`#id` in "Send to", as the card says), rendered as itself though the typed addresses' rendering is the sample's."""

import pytest
from playwright.sync_api import expect

from audiences.models import Audience, Profile
from campaigns.models import Delivery, Run
from campaigns.services import lifecycle
from permissions.models import AuditEvent
from tests.conftest import make_email_configuration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_sends_a_proof_rendered_as_a_profile(log_in, personas, smtp_server):
    relay = make_email_configuration(port=smtp_server.port, name="Loopback relay")
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=relay,
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=lifecycle.Content("Sale for {{ profile.first_name }}", "<p>Hi {{ profile.first_name }}</p>", "Hi"),
    )
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})

    manny = log_in("manny")
    manny.goto(campaign.get_absolute_url())
    manny.get_by_label("Preview as").fill("ann@example.com")
    manny.get_by_role("button", name="Find").click()
    expect(manny.locator("#preview")).to_contain_text("Sale for Ann")

    card = manny.locator("#proof")
    expect(card.get_by_label("ann@example.com")).to_be_checked()
    card.get_by_label("Send to").fill("qa@example.com, not-an-address")
    card.get_by_role("button", name="Send proof").click()
    expect(card.locator(".field-errors")).to_contain_text("'not-an-address' is not an email address")
    assert not smtp_server.messages

    card.get_by_label("Send to").fill("qa@example.com\nboss@example.com")
    card.get_by_role("button", name="Send proof").click()

    expect(card.get_by_role("status").filter(has_text="qa@example.com")).to_contain_text("Proof sent to qa@example.com")
    expect(card.get_by_role("status").filter(has_text="boss@example.com")).to_contain_text("Proof sent to")
    expect(card).to_contain_text("9 left now")
    subjects = sorted((item["rcpt_tos"][0], item["message"]["Subject"]) for item in smtp_server.messages)
    assert subjects == [("boss@example.com", "[Proof] Sale for Ann"), ("qa@example.com", "[Proof] Sale for Ann")]
    assert not Run.objects.exists() and not Delivery.objects.exists()
    assert AuditEvent.objects.filter(action="campaign.proof_sent").count() == 1

    # To the profile itself: the card says which id to type.
    expect(card).to_contain_text(f"type #{ann.pk} for ann@example.com, the profile the preview shows")
    card.get_by_label("the sample profile").check()
    card.get_by_label("Send to").fill(f"#{ann.pk}")
    card.get_by_role("button", name="Send proof").click()

    expect(card.get_by_role("status").filter(has_text=f"#{ann.pk}")).to_contain_text(
        f"Proof sent to #{ann.pk} ann@example.com"
    )
    expect(card.get_by_role("status")).to_have_count(1)
    expect(card).to_contain_text("8 left now")
    latest = smtp_server.messages[-1]
    assert (latest["rcpt_tos"], latest["message"]["Subject"]) == (["ann@example.com"], "[Proof] Sale for Ann")
    assert AuditEvent.objects.filter(action="campaign.proof_sent").order_by("pk").last().after["profiles"] == [ann.pk]
