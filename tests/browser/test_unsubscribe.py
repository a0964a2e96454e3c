"""Consent and suppression clicked in a browser: a recipient unsubscribes from a link without an account, and
an administrator keeps the suppression list."""

import pytest
from playwright.sync_api import expect

from audiences.models import Consent, Profile
from channels.models import Suppression
from channels.unsubscribe import unsubscribe_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_recipient_unsubscribes_from_the_link_without_an_account(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    zoe = Profile.objects.create(email="zoe@example.com")
    link = unsubscribe_url(profile_id=zoe.pk, channel="email", delivery_id=7)
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    try:
        page.goto(link)
        expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
        expect(page.get_by_text("z•••@example.com")).to_be_visible()
        assert not Consent.objects.exists()  # opening the link changes nothing

        page.get_by_role("button", name="Unsubscribe").click()

        expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
        assert page.url == link  # no redirect
        assert context.cookies() == []
        consent = Consent.objects.get(profile=zoe, channel="email")
        assert (consent.state, consent.source) == ("opted_out", "unsubscribe link")

        page.goto(link)  # back again later
        expect(page.get_by_text("You are already unsubscribed")).to_be_visible()

        assert errors == []

        page.goto(link.replace(f"/u/{zoe.pk}.", "/u/999."))  # answered 400, which the console reports
        expect(page.get_by_role("heading", name="This unsubscribe link is not valid")).to_be_visible()
    finally:
        context.close()


def test_administrator_suppresses_finds_and_removes_an_address(log_in):
    page = log_in("ada")

    navigation = page.get_by_role("navigation", name="Main")
    navigation.get_by_text("Settings", exact=True).click()  # the top bar's Settings menu
    navigation.get_by_role("link", name="Suppression").click()
    page.get_by_role("link", name="Suppress an address").click()
    page.get_by_label("Address").fill("Someone@Example.com")
    page.get_by_role("button", name="Suppress").click()

    expect(page.get_by_role("status")).to_contain_text("someone@example.com is suppressed")
    page.get_by_label("Address contains").fill("someone")
    page.get_by_role("button", name="Search").click()
    row = page.get_by_role("row").filter(has_text="someone@example.com")
    expect(row).to_contain_text("Added by hand")

    row.get_by_role("button", name="Remove").click()

    expect(page.get_by_role("status")).to_contain_text("is off the suppression list")
    assert not Suppression.objects.exists()
