"""The campaign list: status labels as the campaign page gives them, search, filters, sorting, pagination, and
hostile query strings answered with a message, never a server error."""

import html
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audiences.models import Audience
from campaigns import selectors
from campaigns.models import Campaign
from campaigns.services import approval, lifecycle
from tests.channels.conftest import make_configuration
from tests.conftest import make_email_configuration

LIST = "/campaigns/"


@pytest.fixture
def audience(db):
    return Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)


@pytest.fixture
def relay(db):
    return make_email_configuration(port=1025, name="Relay")


@pytest.fixture
def make(personas, audience, relay):
    def make_(name, *, actor="manny", **kwargs):
        kwargs.setdefault("channel_configuration", relay)
        return lifecycle.campaign_create(
            actor=personas[actor],
            name=name,
            audience=audience,
            content=lifecycle.Content("Hello", "<p>Hi</p>", "Hi"),
            **kwargs,
        )

    return make_


@pytest.fixture
def vera(client, personas):
    client.force_login(personas["vera"])
    return client


def rows(response) -> list[str]:
    """The campaign names of the list's rows, in order."""
    names = re.findall(r'<a class="strong" href="/campaigns/\d+/">([^<]*)</a>', response.content.decode())
    return [html.unescape(name) for name in names]


def status_cell(response, name: str) -> str:
    """The text of the status cell of the row named `name`, whitespace collapsed."""
    page = html.unescape(response.content.decode())
    row = page[page.index(f">{name}</a>") :]
    cell = re.search(r'<td class="status-cell">(.*?)</td>', row, re.DOTALL).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", cell).split())


# Status labels


def test_a_draft_in_review_reads_in_review_in_the_list_as_on_its_page(vera, personas, make):
    campaign = make("Spring sale")
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])

    response = vera.get(LIST)

    assert status_cell(response, "Spring sale") == "In review"
    assert selectors.campaign_status_label(campaign=Campaign.objects.get()) == selectors.StatusLabel(
        "in_review", "In review"
    )


def test_a_draft_sent_back_for_changes_says_so(vera, personas, make):
    campaign = make("Spring sale")
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
    approval.campaign_request_changes(campaign=campaign, actor=personas["april"], comment="Fix the subject")

    assert status_cell(vera.get(LIST), "Spring sale") == "Draft changes requested"


def test_a_live_campaign_with_a_new_version_in_draft_stays_active_and_notes_the_draft(vera, personas, make):
    campaign = make("Newsletter")
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    lifecycle.campaign_update_content(
        campaign=campaign, actor=personas["manny"], content=lifecycle.Content("Hello again", "<p>Hi</p>", "Hi")
    )

    assert status_cell(vera.get(LIST), "Newsletter") == "Active version 2 in draft"


def test_a_live_campaign_with_a_new_version_in_review_notes_it(vera, personas, make):
    campaign = make("Newsletter")
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    lifecycle.campaign_update_content(
        campaign=campaign, actor=personas["manny"], content=lifecycle.Content("Hello again", "<p>Hi</p>", "Hi")
    )
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])

    response = vera.get(LIST)

    assert status_cell(response, "Newsletter") == "Active version 2 in review"
    assert rows(vera.get(LIST, {"status": "in_review"})) == ["Newsletter"]


def test_a_paused_campaign_reads_paused_and_shows_no_next_run(vera, personas, make):
    campaign = make("Weekly digest", schedule="daily", send_time=datetime(2026, 1, 1, 9).time())
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    lifecycle.campaign_pause(campaign=campaign, actor=personas["april"])

    response = vera.get(LIST)

    assert status_cell(response, "Weekly digest") == "Paused"
    assert b"none while paused" in response.content  # the scheduler starts no run of a paused campaign


def test_archived_campaigns_leave_the_default_list_and_are_listed_under_archived(vera, personas, make):
    make("Current")
    old = make("Last year's sale")
    lifecycle.campaign_activate(campaign=old, actor=personas["april"])
    lifecycle.campaign_stop(campaign=old, actor=personas["april"])
    Campaign.objects.filter(pk=old.pk).update(archived_at=datetime(2026, 1, 5, tzinfo=UTC))

    assert rows(vera.get(LIST)) == ["Current"]
    archived = vera.get(LIST, {"status": "archived"})
    assert rows(archived) == ["Last year's sale"]
    assert status_cell(archived, "Last year's sale") == "Archived was stopped"


# Search, filters, sorting


def test_search_matches_name_and_description_case_insensitively(vera, make):
    make("Spring sale")
    make("Autumn news", description="The SPRING collection, again")
    make("Winter")

    assert sorted(rows(vera.get(LIST, {"q": "spring"}))) == ["Autumn news", "Spring sale"]
    assert rows(vera.get(LIST, {"q": "winter"})) == ["Winter"]
    assert b"No campaign matches these filters" in vera.get(LIST, {"q": "summer"}).content


def test_status_filter_separates_drafts_in_review_and_active(vera, personas, make):
    make("Plain draft")
    approval.campaign_submit_for_review(campaign=make("Reviewed"), actor=personas["manny"])
    lifecycle.campaign_activate(campaign=make("Live"), actor=personas["april"])

    assert rows(vera.get(LIST, {"status": "draft"})) == ["Plain draft"]
    assert rows(vera.get(LIST, {"status": "in_review"})) == ["Reviewed"]
    assert rows(vera.get(LIST, {"status": "active"})) == ["Live"]


def test_kind_category_and_channel_filters(vera, make, db):
    make("Email news")
    make("Receipts", kind=Campaign.Kind.API_TRIGGERED, category=Campaign.Category.TRANSACTIONAL)
    make("Hook news", channel_configuration=make_configuration("in_app", name="Inbox"))

    assert rows(vera.get(LIST, {"kind": "api_triggered"})) == ["Receipts"]
    assert sorted(rows(vera.get(LIST, {"category": "marketing"}))) == ["Email news", "Hook news"]
    assert rows(vera.get(LIST, {"channel": "in_app"})) == ["Hook news"]
    assert sorted(rows(vera.get(LIST, {"channel": "email"}))) == ["Email news", "Receipts"]


def test_tag_filter_offers_the_tags_in_use_and_filters_by_one(vera, make):
    make("Spring sale", tags=["spring", "sale"])
    make("Spring news", tags=["spring"])
    make("Untagged")

    response = vera.get(LIST)
    offered = re.findall(
        r'<option value="([^"]*)"', response.content.decode().split('name="tag"')[1].split("</select>")[0]
    )
    assert offered == ["", "sale", "spring"]
    assert sorted(rows(vera.get(LIST, {"tag": "spring"}))) == ["Spring news", "Spring sale"]
    assert rows(vera.get(LIST, {"tag": "sale"})) == ["Spring sale"]


def test_owner_filter_offers_only_users_who_own_campaigns(vera, personas, make):
    make("Manny's", actor="manny")
    make("Ada's", actor="ada")

    response = vera.get(LIST)
    owner_select = response.content.decode().split('name="owner"')[1].split("</select>")[0]
    assert re.findall(r">([^<]+)</option>", owner_select) == ["Anyone", "ada", "manny"]
    assert rows(vera.get(LIST, {"owner": personas["ada"].pk})) == ["Ada's"]


def test_sorting_by_name_created_next_run_and_status(vera, personas, make):
    bravo = make("Bravo")
    alpha = make("Alpha")
    charlie = make("Charlie")
    approval.campaign_submit_for_review(campaign=charlie, actor=personas["manny"])
    lifecycle.campaign_activate(campaign=bravo, actor=personas["april"])
    soon = datetime(2030, 1, 1, tzinfo=UTC)
    Campaign.objects.filter(pk=alpha.pk).update(next_run_at=soon + timedelta(days=1))
    Campaign.objects.filter(pk=bravo.pk).update(next_run_at=soon)
    Campaign.objects.filter(pk=charlie.pk).update(next_run_at=None)

    assert rows(vera.get(LIST, {"sort": "name"})) == ["Alpha", "Bravo", "Charlie"]
    assert rows(vera.get(LIST, {"sort": "-name"})) == ["Charlie", "Bravo", "Alpha"]
    assert rows(vera.get(LIST)) == ["Charlie", "Alpha", "Bravo"]  # newest first
    assert rows(vera.get(LIST, {"sort": "created"})) == ["Bravo", "Alpha", "Charlie"]
    # Nothing due comes last either way.
    assert rows(vera.get(LIST, {"sort": "next_run"})) == ["Bravo", "Alpha", "Charlie"]
    assert rows(vera.get(LIST, {"sort": "-next_run"})) == ["Alpha", "Bravo", "Charlie"]
    # Draft, in review, active.
    assert rows(vera.get(LIST, {"sort": "status"})) == ["Alpha", "Charlie", "Bravo"]


def test_the_next_run_is_shown_on_the_campaigns_wall_clock(vera, personas, make):
    campaign = make(
        "Paris morning", schedule="daily", send_time=datetime(2026, 1, 1, 9).time(), timezone_name="Europe/Paris"
    )
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    campaign.refresh_from_db()

    local = campaign.next_run_at.astimezone(ZoneInfo("Europe/Paris"))
    assert local.strftime("%H:%M") == "09:00"
    assert f"{local:%Y-%m-%d} 09:00 Europe/Paris" in vera.get(LIST).content.decode()


# Pages and query strings


def test_pagination_keeps_the_filters(vera, make):
    for number in range(55):
        make(f"Sale {number:02}", tags=["sale"])
    make("Other")

    response = vera.get(LIST, {"tag": "sale", "sort": "name"})

    assert len(rows(response)) == 50
    assert 'href="?tag=sale&amp;sort=name&amp;page=2"' in response.content.decode()
    second = vera.get(LIST, {"tag": "sale", "sort": "name", "page": 2})
    assert rows(second) == [f"Sale {number:02}" for number in range(50, 55)]


def test_the_page_costs_the_same_queries_for_5_or_60_campaigns(vera, make):
    for number in range(5):
        make(f"Campaign {number}")
    with CaptureQueriesContext(connection) as few:
        assert vera.get(LIST).status_code == 200
    for number in range(5, 60):
        make(f"Campaign {number}", tags=[f"tag{number}"])
    with CaptureQueriesContext(connection) as many:
        assert vera.get(LIST).status_code == 200

    assert len(many.captured_queries) == len(few.captured_queries)
    page_queries = [query["sql"] for query in many.captured_queries if "campaigns_campaignversion" in query["sql"]]
    assert len(page_queries) == 1  # the page's rows and their review states, in one query


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("sort=password", "sort", "Select a valid choice"),
        ("status=deleted", "status", "Select a valid choice"),
        ("owner=99999999999999999999999", "owner", "Select a valid choice"),
        ("q=a%00b", "q", "Null characters are not allowed"),
        ("tag=%FF%FE", "tag", "Select a valid choice"),
    ],
)
def test_a_hostile_filter_is_refused_by_name_and_the_list_still_shows(vera, make, query, field, message):
    make("Spring sale")

    response = vera.get(f"{LIST}?{query}")

    assert response.status_code == 200
    page = response.content.decode()
    if message:
        assert f'id="id_{field}_error"' in page
        assert message in page
        assert "A filter with an error is not applied." in page
    assert rows(response) == ["Spring sale"]


def test_invalid_utf8_in_the_search_is_read_as_replacement_characters(vera, make):
    make("Spring sale")

    response = vera.get(f"{LIST}?q=%ED%A0%80&status=%FF")

    assert response.status_code == 200
    assert 'id="id_status_error"' in response.content.decode()
    assert b"No campaign matches these filters" in response.content


@pytest.mark.parametrize("page", ["999999999999999999999999", "-1", "last", "0", "%00"])
def test_any_page_number_shows_a_page(vera, make, page):
    make("Spring sale")

    response = vera.get(f"{LIST}?page={page}")

    assert response.status_code == 200
    assert rows(response) == ["Spring sale"]


def test_the_list_links_the_calendar(vera):
    assert f'href="{reverse("campaigns:calendar")}"' in vera.get(LIST).content.decode()
