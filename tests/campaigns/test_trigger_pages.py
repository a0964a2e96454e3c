"""The pages of API-triggered campaigns, through Django's test client: the create form (kind, compatible
configurations, no schedule), the context contract editor, the preview with the contract's examples and a chosen
profile, and the trigger card (endpoint, a ready curl command, recent calls, the messages they made)."""

import json
import re
import shlex
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import quote

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audiences.models import Audience, Profile
from campaigns.models import Campaign, CampaignVersion, Delivery, Run, TriggerRequest
from campaigns.services import lifecycle
from permissions.models import AuditEvent
from tests.conftest import make_email_configuration

RESET_HTML = (
    '<p>Hi {{ profile.first_name }}, <a href="{{ context.reset_url }}">reset</a> within {{ context.hours }}h</p>'
)


@pytest.fixture
def relays(db):
    """An email configuration for each purpose."""
    return {
        purpose: make_email_configuration(port=25, name=f"{purpose.title()} relay", purpose=purpose)
        for purpose in ("marketing", "transactional", "both")
    }


@pytest.fixture
def reset(personas, relays):
    return lifecycle.campaign_create(
        actor=personas["manny"],
        name="Password reset",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=relays["transactional"],
        audience=None,
        content=lifecycle.Content("Reset for {{ profile.email }}", RESET_HTML, "Reset: {{ context.reset_url }}"),
    )


def _logged_in(client, user):
    client.force_login(user)
    return client


def _form(configuration, **overrides):
    return {
        "name": "Password reset",
        "kind": "api_triggered",
        "category": "transactional",
        "audience": "",
        "channel_configuration": configuration.pk,
        "subject": "Reset your password",
        "html_body": "<p>{{ context.reset_url }}</p>",
        "text_body": "{{ context.reset_url }}",
        "schedule": "on_activation",
        "start_at": "",
        "cron": "",
        "timezone": "UTC",
        "end_at": "",
        "tags": "",
        **overrides,
    }


def _contract_post(rows, *, initial=0):
    data = {
        "contract-TOTAL_FORMS": str(len(rows)),
        "contract-INITIAL_FORMS": str(initial),
        "contract-MIN_NUM_FORMS": "0",
        "contract-MAX_NUM_FORMS": "50",
    }
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"contract-{index}-{name}"] = value
    return data


RESET_URL_ROW = {"name": "reset_url", "type": "string", "required": "on", "example": '"https://shop.example/r/abc"'}
HOURS_ROW = {"name": "hours", "type": "integer", "example": "24", "description": "How long the link works"}


# Creating ------------------------------------------------------------------------------------------------------


def test_each_configuration_offered_says_which_category_it_serves(client, personas, relays):
    page = _logged_in(client, personas["manny"]).get(reverse("campaigns:create")).content.decode()

    for purpose, relay in relays.items():
        assert re.search(rf'<option value="{relay.pk}"[^>]*data-purpose="{purpose}"', page)
    assert 'name="kind" value="api_triggered"' in page
    assert "js/campaign_form.js" in page


def test_a_configuration_kept_for_the_other_category_is_refused_and_nothing_is_stored(client, personas, relays):
    response = _logged_in(client, personas["manny"]).post(reverse("campaigns:create"), _form(relays["marketing"]))

    assert response.status_code == 200
    assert "marketing messages only" in response.context["form"].errors["channel_configuration"][0]
    assert not Campaign.objects.exists()


def test_an_api_triggered_campaign_needs_no_audience_nor_schedule_and_keeps_its_call_window(client, personas, relays):
    data = _form(
        relays["transactional"],
        schedule="recurring",
        cron="not a cron",  # hidden for this kind: ignored
        start_at="2026-07-01T09:00",
        end_at="2026-12-31T18:00",
        timezone="Europe/Paris",
        create_profiles="on",
    )

    response = _logged_in(client, personas["manny"]).post(reverse("campaigns:create"), data, follow=True)

    campaign = Campaign.objects.get()
    assert response.redirect_chain == [(campaign.get_absolute_url(), 302)]
    assert (campaign.kind, campaign.category, campaign.audience) == ("api_triggered", "transactional", None)
    assert (campaign.schedule, campaign.cron, campaign.create_profiles) == ("on_activation", "", True)
    assert campaign.start_at == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert campaign.end_at == datetime(2026, 12, 31, 17, 0, tzinfo=UTC)


def test_a_scheduled_campaign_still_needs_an_audience_and_never_creates_profiles(client, personas, relays):
    data = _form(relays["both"], kind="scheduled", category="marketing", create_profiles="on")

    response = _logged_in(client, personas["manny"]).post(reverse("campaigns:create"), data)

    assert response.context["form"].errors["audience"] == ["A scheduled campaign needs an audience."]
    assert not Campaign.objects.exists()

    data["audience"] = Audience.objects.create(name="All", kind=Audience.Kind.ALL).pk
    _logged_in(client, personas["manny"]).post(reverse("campaigns:create"), data)
    assert Campaign.objects.get().create_profiles is False


def test_the_service_refuses_to_create_profiles_for_a_scheduled_campaign(personas, relays):
    with pytest.raises(ValidationError) as raised:
        lifecycle.campaign_create(
            actor=personas["manny"],
            name="Newsletter",
            channel_configuration=relays["both"],
            audience=Audience.objects.create(name="All", kind=Audience.Kind.ALL),
            content=lifecycle.Content("Hi", "<p>Hi</p>", "Hi"),
            create_profiles=True,
        )
    assert set(raised.value.message_dict) == {"create_profiles"}


# The context contract ------------------------------------------------------------------------------------------


def test_a_manager_declares_the_context_and_the_change_is_audited(client, personas, reset):
    url = reverse("campaigns:contract", args=[reset.pk])

    response = _logged_in(client, personas["manny"]).post(url, _contract_post([RESET_URL_ROW, HOURS_ROW, {}]))

    assert response.status_code == 302 and response["Location"].endswith("#contract")
    assert "Context contract saved: 2 fields." in client.get(response["Location"]).content.decode()
    reset.refresh_from_db()
    assert reset.context_contract == [
        {
            "name": "reset_url",
            "type": "string",
            "required": True,
            "example": "https://shop.example/r/abc",
            "description": "",
        },
        {
            "name": "hours",
            "type": "integer",
            "required": False,
            "example": 24,
            "description": "How long the link works",
        },
    ]
    event = AuditEvent.objects.get(action="campaign.contract_changed")
    assert event.before == {"context_contract": []} and event.after == {"context_contract": reset.context_contract}

    page = client.get(reset.get_absolute_url()).content.decode()
    assert 'value="reset_url"' in page and 'value="&quot;https://shop.example/r/abc&quot;"' in page


def test_a_row_ticked_remove_is_dropped(client, personas, reset):
    lifecycle.campaign_update_contract(
        campaign=reset,
        actor=personas["manny"],
        contract=[{"name": "reset_url", "type": "string"}, {"name": "hours", "type": "integer"}],
    )
    rows = [{**RESET_URL_ROW, "DELETE": "on"}, {"name": "hours", "type": "integer", "example": "24"}]

    _logged_in(client, personas["manny"]).post(
        reverse("campaigns:contract", args=[reset.pk]), _contract_post(rows, initial=2)
    )

    reset.refresh_from_db()
    assert [field["name"] for field in reset.context_contract] == ["hours"]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({**HOURS_ROW, "example": "https://shop.example"}, "example", "The example is not JSON"),
        ({**HOURS_ROW, "example": '"24"'}, "example", "The example must be an integer, not a string."),
        ({**HOURS_ROW, "example": "9" * 400}, "example", "too large to store"),
        ({**HOURS_ROW, "example": "[" * 200}, "example", "nests deeper than 32 levels"),
        ({**HOURS_ROW, "example": '"\\ud800"'}, "example", "not valid Unicode"),
        ({**HOURS_ROW, "name": "2fast"}, "name", "not starting with a digit"),
        ({**HOURS_ROW, "type": "date"}, "type", "Select a valid choice"),
        ({**HOURS_ROW, "description": "a\x00b"}, "description", "Null characters are not allowed"),
    ],
)
def test_a_bad_row_is_refused_with_its_field_error_and_nothing_is_stored(client, personas, reset, row, field, message):
    response = _logged_in(client, personas["manny"]).post(
        reverse("campaigns:contract", args=[reset.pk]), _contract_post([RESET_URL_ROW, row])
    )

    assert response.status_code == 200
    formset = response.context["contract_formset"]
    assert formset.forms[0].errors == {}
    assert message in " ".join(formset.forms[1].errors[field])
    summary = formset.row_errors()
    assert len(summary) == 1 and summary[0].startswith("Row 2")
    assert "Nothing was saved" in response.content.decode()
    reset.refresh_from_db()
    assert reset.context_contract == []
    assert not AuditEvent.objects.filter(action="campaign.contract_changed").exists()


def test_a_name_declared_twice_names_the_first_row(client, personas, reset):
    response = _logged_in(client, personas["manny"]).post(
        reverse("campaigns:contract", args=[reset.pk]), _contract_post([RESET_URL_ROW, {**RESET_URL_ROW}])
    )

    assert response.context["contract_formset"].forms[1].errors["name"] == ["Row 1 already declares reset_url."]
    reset.refresh_from_db()
    assert reset.context_contract == []


def test_a_service_refusal_lands_on_the_row_it_names(client, personas, reset):
    """The service's messages count the rows kept ("Field 2"): a removed row before it does not shift them."""
    from campaigns.forms.campaigns import ContractFormSet

    rows = [{**RESET_URL_ROW, "DELETE": "on"}, RESET_URL_ROW, HOURS_ROW]
    formset = ContractFormSet(_contract_post(rows), prefix="contract")
    assert formset.is_valid()
    formset.add_contract_errors(
        ValidationError({"context_contract": ["Field 2 (hours): the example must be an integer, not a."]})
    )
    assert formset.forms[2].errors["example"] == ["The example must be an integer, not a."]


def test_only_an_api_triggered_campaign_has_a_contract(client, personas, relays):
    scheduled = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Newsletter",
        channel_configuration=relays["both"],
        audience=Audience.objects.create(name="All", kind=Audience.Kind.ALL),
        content=lifecycle.Content("Hi", "<p>Hi</p>", "Hi"),
    )
    with pytest.raises(ValidationError, match="Only an API-triggered campaign"):
        lifecycle.campaign_update_contract(campaign=scheduled, actor=personas["manny"], contract=[])

    response = _logged_in(client, personas["manny"]).post(
        reverse("campaigns:contract", args=[scheduled.pk]), _contract_post([RESET_URL_ROW]), follow=True
    )
    assert "Only an API-triggered campaign has a context contract." in response.content.decode()
    scheduled.refresh_from_db()
    assert scheduled.context_contract == []
    assert 'id="contract"' not in response.content.decode()


def test_a_viewer_sees_the_contract_but_may_not_change_it(client, personas, reset):
    lifecycle.campaign_update_contract(campaign=reset, actor=personas["manny"], contract=[{**HOURS_ROW, "example": 24}])
    client = _logged_in(client, personas["vera"])

    page = client.get(reset.get_absolute_url()).content.decode()
    assert "How long the link works" in page and reverse("campaigns:contract", args=[reset.pk]) not in page

    response = client.post(reverse("campaigns:contract", args=[reset.pk]), _contract_post([RESET_URL_ROW]))
    assert response.status_code == 403
    reset.refresh_from_db()
    assert [field["name"] for field in reset.context_contract] == ["hours"]


# The preview ---------------------------------------------------------------------------------------------------


def _declare(campaign, actor):
    lifecycle.campaign_update_contract(
        campaign=campaign,
        actor=actor,
        contract=[
            {"name": "reset_url", "type": "string", "required": True, "example": "https://shop.example/r/abc"},
            {"name": "hours", "type": "integer", "example": 24},
        ],
    )


def test_the_preview_renders_the_contract_examples_for_a_sample_profile(client, personas, reset):
    _declare(reset, personas["manny"])
    client = _logged_in(client, personas["vera"])

    page = client.get(reset.get_absolute_url()).content.decode()
    assert "Reset for recipient@example.com" in page
    assert "Reset: https://shop.example/r/abc" in page
    assert "a sample profile without attributes" in page
    assert "does not declare" not in page

    frame = client.get(reverse("campaigns:preview", args=[reset.pk, 1])).content.decode()
    assert frame == '<p>Hi , <a href="https://shop.example/r/abc">reset</a> within 24h</p>'


def test_the_preview_renders_for_the_profile_picked(client, personas, reset):
    _declare(reset, personas["manny"])
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})
    Profile.objects.create(email="anna@example.com")
    client = _logged_in(client, personas["manny"])

    several = client.get(reset.get_absolute_url(), {"preview_q": "ann"})
    assert [profile.pk for profile in several.context["preview_candidates"]] == sorted(
        Profile.objects.values_list("pk", flat=True), reverse=True
    )
    assert f"?preview_profile={ann.pk}#preview" in several.content.decode()

    for query in ({"preview_q": "ann@example.com"}, {"preview_q": f"#{ann.pk}"}, {"preview_profile": ann.pk}):
        page = client.get(reset.get_absolute_url(), query).content.decode()
        assert "Reset for ann@example.com" in page, query
        frame_url = f"{reverse('campaigns:preview', args=[reset.pk, 1])}?profile={ann.pk}"
        assert f'src="{frame_url}"' in page

    frame = client.get(frame_url).content.decode()
    assert frame.startswith("<p>Hi Ann, ")

    missing = client.get(reset.get_absolute_url(), {"preview_profile": 10**12})
    assert "There is no profile #1000000000000" in missing.content.decode()
    assert missing.context["preview"].profile is None


def test_only_those_who_may_read_profiles_pick_one(client, personas, reset):
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})
    client = _logged_in(client, personas["april"])  # an approver: campaigns, not profiles

    page = client.get(reset.get_absolute_url(), {"preview_profile": ann.pk})
    assert page.context["preview_picker"] is None and page.context["preview"].profile is None
    assert "Ann" not in page.content.decode()
    frame = client.get(reverse("campaigns:preview", args=[reset.pk, 1]), {"profile": ann.pk})
    assert frame.status_code == 403


def test_the_preview_names_context_the_contract_does_not_declare(client, personas, reset):
    lifecycle.campaign_update_contract(
        campaign=reset, actor=personas["manny"], contract=[{"name": "reset_url", "type": "string"}]
    )

    page = _logged_in(client, personas["vera"]).get(reset.get_absolute_url()).content.decode()

    assert "The content reads context the contract does not declare: <code>context.hours</code>." in page


def test_a_render_error_is_shown_with_the_part_it_comes_from(client, personas, reset):
    _declare(reset, personas["manny"])
    CampaignVersion.objects.filter(campaign=reset).update(text_body="{{ context.hours | divided_by: 0 }}")
    client = _logged_in(client, personas["vera"])

    page = client.get(reset.get_absolute_url()).content.decode()
    assert "Text body does not render:" in page
    frame = client.get(reverse("campaigns:preview", args=[reset.pk, 1])).content.decode()
    assert "Text body does not render:" in frame


# The trigger card ----------------------------------------------------------------------------------------------


def test_a_draft_says_to_activate_it_to_accept_calls(client, personas, reset):
    page = _logged_in(client, personas["vera"]).get(reset.get_absolute_url()).content.decode()

    assert "activate it to accept calls" in page
    assert "curl" not in page


def test_a_live_campaign_shows_its_endpoint_and_a_ready_curl_command(client, personas, reset):
    _declare(reset, personas["manny"])
    lifecycle.campaign_activate(campaign=reset, actor=personas["april"])

    page = _logged_in(client, personas["ada"]).get(reset.get_absolute_url()).content.decode()

    endpoint = f"http://testserver/api/v1/campaigns/{reset.pk}/trigger"
    assert f"POST {endpoint}" in page
    assert 'href="/api/docs"' in page and f'href="{reverse("permissions:api_key_list")}"' in page
    command = unescape(re.search(r'<pre class="code trigger-curl">(.*?)</pre>', page, re.DOTALL).group(1))
    words = shlex.split(command)
    assert words[:5] == ["curl", "-sS", "-X", "POST", endpoint]
    assert words[words.index("-H") + 1] == "Authorization: Bearer $CAMPAIGNS_API_KEY"
    assert "Content-Type: application/json" in words
    body = json.loads(words[words.index("--data-raw") + 1])
    assert body["context"] == {"reset_url": "https://shop.example/r/abc", "hours": 24}
    assert body["recipients"] == [{"identity": {"namespace": "email", "value": "ada@example.com"}}]
    assert re.fullmatch(r"req-[0-9a-f-]{36}", body["requestId"])


def test_a_context_with_quotes_survives_the_shell(client, personas, reset):
    lifecycle.campaign_update_contract(
        campaign=reset, actor=personas["manny"], contract=[{"name": "note", "type": "string", "example": "it's $HOME"}]
    )
    lifecycle.campaign_activate(campaign=reset, actor=personas["april"])

    page = _logged_in(client, personas["vera"]).get(reset.get_absolute_url()).content.decode()

    command = unescape(re.search(r'<pre class="code trigger-curl">(.*?)</pre>', page, re.DOTALL).group(1))
    words = shlex.split(command)
    assert json.loads(words[words.index("--data-raw") + 1])["context"] == {"note": "it's $HOME"}


def test_a_paused_campaign_says_calls_are_refused(client, personas, reset):
    lifecycle.campaign_activate(campaign=reset, actor=personas["april"])
    lifecycle.campaign_pause(campaign=reset, actor=personas["april"])

    page = _logged_in(client, personas["vera"]).get(reset.get_absolute_url()).content.decode()

    assert "Paused: calls are refused until the campaign is resumed." in page
    assert "trigger-curl" in page


def test_the_recent_calls_and_the_messages_they_made_are_listed(client, personas, reset):
    lifecycle.campaign_activate(campaign=reset, actor=personas["april"])
    reset.refresh_from_db()
    now = datetime.now(UTC)
    calls = [
        TriggerRequest.objects.create(
            campaign=reset,
            request_id=f"order-{n}",
            body_hash="0" * 64,
            recipient_count=3,
            accepted_count=2,
            response_status=202,
            expires_at=now + timedelta(days=1),
        )
        for n in range(22)
    ]
    TriggerRequest.objects.create(
        campaign=reset,
        kind=TriggerRequest.Kind.AUDIENCE,
        request_id="everyone-1",
        body_hash="1" * 64,
        response_status=409,
        expires_at=now + timedelta(days=1),
    )
    run = Run.objects.create(campaign=reset, version=reset.live_version, kind=Run.Kind.UNITARY, occurrence="unitary")
    people = Profile.objects.bulk_create(Profile(email=f"p{n}@example.com") for n in range(3))
    for profile, status in zip(people, ["sent", "sent", "failed"], strict=True):
        Delivery.objects.create(
            run=run,
            version=reset.live_version,
            profile=profile,
            channel="email",
            channel_configuration=reset.channel_configuration,
            trigger_request=calls[-1],
            address=profile.email,
            due_at=now,
            status=status,
        )

    response = _logged_in(client, personas["vera"]).get(reset.get_absolute_url())

    page = response.content.decode()
    shown = response.context["trigger_requests"]
    assert len(shown) == 20 and shown[0].request_id == "everyone-1"
    assert "order-21" in page and "order-1<" not in page
    assert re.search(
        r"everyone-1</td>\s*<td>Audience</td>\s*<td class=\"num\">0</td>\s*<td class=\"num\">0</td>"
        r"\s*<td class=\"num\">409</td>",
        page,
    )
    assert response.context["trigger_counts"] == [("Sent", 2), ("Failed", 1)]


# Hostile input -------------------------------------------------------------------------------------------------

KILLERS = ["\ud800", "\x00", "9" * 400, "²", "-1", "1e999", "NaN", "[" * 5000, "x" * 100_000, ""]


def _encoded(pairs: dict) -> str:
    """As a client may send it: a lone surrogate goes out as the bytes Python's surrogatepass gives."""
    return "&".join(
        f"{quote(name, safe='', errors='surrogatepass')}={quote(str(value), safe='', errors='surrogatepass')}"
        for name, value in pairs.items()
    )


@pytest.mark.parametrize("value", KILLERS)
def test_no_hostile_row_or_search_reaches_a_server_error(personas, reset, value):
    client = Client(raise_request_exception=True)
    client.force_login(personas["ada"])
    row = {name: value for name in ("name", "type", "required", "example", "description", "DELETE")}
    data = _contract_post([RESET_URL_ROW, row]) | {"contract-TOTAL_FORMS": value or "2"}

    url = reverse("campaigns:contract", args=[reset.pk])
    response = client.generic("POST", url, _encoded(data), content_type="application/x-www-form-urlencoded")
    assert response.status_code in (200, 302)
    reset.refresh_from_db()
    assert reset.context_contract in (
        [],
        [{**RESET_URL_ROW, "required": True, "example": "https://shop.example/r/abc", "description": ""}],
    )

    for name in ("preview_q", "preview_profile"):
        assert client.get(f"{reset.get_absolute_url()}?{_encoded({name: value[:3000]})}").status_code == 200
    frame = client.get(f"{reverse('campaigns:preview', args=[reset.pk, 1])}?{_encoded({'profile': value[:3000]})}")
    assert frame.status_code in (200, 404)
