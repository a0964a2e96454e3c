"""Issue 11 in a browser: a manager creates an API-triggered transactional campaign (the form offers only the
configurations the category may use, and asks for no schedule), declares the context its calls carry on the
campaign page, and sees the contract's example in the preview."""

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign
from tests.conftest import make_email_configuration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RESET_URL = "https://shop.example/r/abc"


def test_manager_creates_an_api_triggered_campaign_and_previews_its_context(log_in):
    make_email_configuration(port=25, name="Newsletter relay", purpose="marketing")
    make_email_configuration(port=25, name="Receipts relay", purpose="transactional")

    manny = log_in("manny")
    manny.get_by_role("link", name="New campaign").click()
    configurations = manny.get_by_label("Channel configuration")
    newsletter = configurations.locator("option", has_text="Newsletter relay")
    receipts = configurations.locator("option", has_text="Receipts relay")
    # Marketing is chosen at first: the relay kept for transactional mail is not offered.
    expect(receipts).to_be_disabled()
    expect(newsletter).to_be_enabled()

    manny.get_by_label("Name", exact=True).fill("Password reset")
    manny.get_by_label("API-triggered").check()
    manny.get_by_label("Transactional").check()
    expect(newsletter).to_be_disabled()
    assert newsletter.evaluate("option => option.hidden")
    expect(receipts).to_be_enabled()
    configurations.select_option(label="Email · Receipts relay")
    # Switching back hides the relay just chosen and clears the choice; the server would refuse it anyway.
    manny.get_by_label("Marketing").check()
    expect(configurations).to_have_value("")
    manny.get_by_label("Transactional").check()
    configurations.select_option(label="Email · Receipts relay")

    # Sent when called: no schedule, only the window in which calls are accepted.
    expect(manny.get_by_label("When activated")).to_be_hidden()
    expect(manny.get_by_label("Cron", exact=True)).to_be_hidden()
    expect(manny.get_by_label("Accept calls from")).to_be_visible()
    expect(manny.get_by_label("Accept calls until")).to_be_visible()
    manny.get_by_label("Create profiles for unknown recipients").check()
    manny.get_by_label("Subject").fill("Reset your password")
    manny.get_by_label("HTML body").fill('<p><a href="{{ context.reset_url }}">Reset</a> {{ context.reset_url }}</p>')
    manny.get_by_label("Text body").fill("Reset: {{ context.reset_url }}")
    manny.get_by_role("button", name="Create draft").click()

    expect(manny.get_by_role("heading", name="Password reset", level=1)).to_be_visible()
    expect(manny.get_by_role("status")).to_contain_text("Campaign created as a draft")
    expect(manny.locator("#trigger")).to_contain_text("activate it to accept calls")
    expect(manny.locator("#preview .notice")).to_contain_text("context.reset_url")

    contract = manny.locator("#contract")
    contract.get_by_label("Name of row 1").fill("reset_url")
    contract.get_by_label("Required of row 1").check()
    contract.get_by_label("Example of row 1").fill("reset link")  # not JSON: refused, nothing stored
    contract.get_by_role("button", name="Save contract").click()
    expect(manny.locator("#contract .form-errors")).to_contain_text("Row 1 (reset_url): The example is not JSON")
    assert Campaign.objects.get().context_contract == []

    manny.locator("#contract").get_by_label("Example of row 1").fill(f'"{RESET_URL}"')
    manny.locator("#contract").get_by_role("button", name="Save contract").click()

    expect(manny.get_by_role("status")).to_contain_text("Context contract saved: 1 field.")
    expect(manny.locator("#preview .notice")).to_have_count(0)
    frame = manny.frame_locator("iframe.preview")
    expect(frame.locator("p")).to_have_text(f"Reset {RESET_URL}")
    expect(frame.get_by_role("link", name="Reset")).to_have_attribute("href", RESET_URL)
    expect(manny.locator("#preview pre.text-body")).to_have_text(f"Reset: {RESET_URL}")

    campaign = Campaign.objects.get()
    assert (campaign.kind, campaign.category, campaign.audience_id) == ("api_triggered", "transactional", None)
    assert campaign.channel_configuration.name == "Receipts relay" and campaign.create_profiles
    assert campaign.context_contract == [
        {"name": "reset_url", "type": "string", "required": True, "example": RESET_URL, "description": ""}
    ]
