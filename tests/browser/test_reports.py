"""Reports read in a browser: the report of a sent campaign shows the ledger's numbers and its charts render (drawn,
with a size, their labels readable); a viewer reads it without any action, an administrator may download the
deliveries."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.campaigns.test_reports import _campaign_with_run, _engage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _row(page, heading: str):
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=heading, exact=True)).first


def test_the_report_of_a_sent_campaign_shows_its_numbers_and_charts(log_in, personas, redis):
    campaign, run = _campaign_with_run(personas)
    _engage(Client(), run)
    page = log_in("vera")
    page.goto(campaign.get_absolute_url())
    page.get_by_role("link", name="Report", exact=True).click()

    expect(page.get_by_role("heading", name=f"Run: {run.occurrence[:10]} 09:00", level=1)).to_be_visible()
    expect(_row(page, "Targeted").get_by_role("cell")).to_have_text(["10"])
    expect(_row(page, "Sent").get_by_role("cell")).to_have_text(["6"])
    expect(_row(page, "Bounced, hard").get_by_role("cell")).to_have_text(["2"])
    expect(_row(page, "Opens").get_by_role("cell")).to_have_text(["2", "3", "1", "1"])
    expect(_row(page, "Clicks").get_by_role("cell")).to_have_text(["2", "4", "1", "1"])
    expect(_row(page, "Unsubscribes").get_by_role("cell").first).to_have_text("1")
    expect(_row(page, "Open rate").get_by_role("cell").first).to_have_text("40.0%")

    timeline = page.get_by_role("img", name="Sends and engagement over time")
    expect(timeline).to_be_visible()
    box = timeline.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100
    # Each series is named on the chart itself, not by colour alone.
    for name in ("Sent", "Failed", "Opened (people)", "Clicked (people)"):
        expect(timeline.get_by_text(name, exact=True).first).to_be_attached()
    domains = page.get_by_role("img", name="Recipient domains")
    expect(domains).to_be_visible()
    expect(domains.get_by_text("gmail.com", exact=True)).to_be_visible()
    # The numbers beside the charts.
    expect(
        page.locator("#domains").get_by_role("row").filter(has_text="gmail.com").get_by_role("cell").nth(1)
    ).to_have_text("3")
    expect(page.locator("#links").get_by_role("row").nth(1)).to_contain_text("https://shop.example/sale")

    page.locator(".breadcrumb").get_by_role("link", name="Report").click()  # every run together
    expect(page.get_by_role("heading", name="Report", level=1)).to_be_visible()
    expect(_row(page, "Targeted").get_by_role("cell")).to_have_text(["10"])


def test_a_viewer_reads_the_report_without_actions_and_an_administrator_may_download(log_in, personas, redis):
    campaign, run = _campaign_with_run(personas)
    page = log_in("vera")
    page.goto(f"/campaigns/{campaign.pk}/runs/{run.pk}/report/")
    expect(page.get_by_role("heading", name="Messages")).to_be_visible()
    main = page.get_by_role("main")
    expect(main.get_by_role("button")).to_have_count(0)
    expect(main.get_by_role("link", name="Download deliveries (CSV)")).to_have_count(0)

    admin = log_in("ada")
    admin.goto(f"/campaigns/{campaign.pk}/runs/{run.pk}/report/")
    expect(admin.get_by_role("link", name="Download deliveries (CSV)")).to_be_visible()
