"""The campaign pages, through Django's test client, for each persona."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from audiences.models import Audience, Profile
from campaigns.models import Campaign, CampaignVersion, Delivery, Run
from campaigns.services import lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from permissions.roles import Role
from tests.conftest import PASSWORD, TEST_FOOTERS

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def profiles(db):
    return Profile.objects.bulk_create(
        Profile(email=f"p{n}@example.com", attributes={"first_name": f"P{n}", "plan": "pro" if n % 2 else "free"})
        for n in range(6)
    )


@pytest.fixture
def audience(profiles):
    return Audience.objects.create(
        name="Pro customers", kind=Audience.Kind.RULE, rule={"attribute": "plan", "op": "equals", "value": "pro"}
    )


@pytest.fixture
def configuration(db):
    configuration = ChannelConfiguration(name="Relay", channel="email")
    configuration.set_settings(
        EmailSettings(from_email="news@example.com", host="127.0.0.1", port=1025, **TEST_FOOTERS)
    )
    configuration.save()
    return configuration


@pytest.fixture
def draft(personas, audience, configuration):
    return lifecycle.campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content("Hello {{ profile.first_name }}", "<p>Hi</p>", "Hi"),
    )


def _form(audience, configuration, **overrides):
    return {
        "name": "Spring sale",
        "audience": audience.pk,
        "channel_configuration": configuration.pk,
        "category": "marketing",
        "subject": "Hello {{ profile.first_name }}",
        "html_body": "<p>Hello {{ profile.first_name }}</p>",
        "text_body": "Hello {{ profile.first_name }}",
        "schedule": "on_activation",
        "start_at": "",
        "cron": "",
        "timezone": "UTC",
        "end_at": "",
        "tags": "spring, sale, spring",
        **overrides,
    }


def _login(client, user):
    client.force_login(user)
    return client


# Creating


def test_manager_creates_a_campaign_through_the_form(client, personas, audience, configuration):
    response = _login(client, personas["manny"]).post(
        reverse("campaigns:create"), _form(audience, configuration), follow=True
    )

    campaign = Campaign.objects.get()
    assert response.redirect_chain == [(campaign.get_absolute_url(), 302)]
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.owner == personas["manny"]
    assert (campaign.audience, campaign.channel_configuration) == (audience, configuration)
    assert campaign.tags == ["spring", "sale"]
    version = CampaignVersion.objects.get(campaign=campaign)
    assert (version.number, version.subject) == (1, "Hello {{ profile.first_name }}")
    assert version.html_body == "<p>Hello {{ profile.first_name }}</p>"
    assert version.created_by == personas["manny"]
    assert b"Campaign created as a draft" in response.content


@time_machine.travel(NOW, tick=False)
def test_start_is_read_in_the_chosen_time_zone(client, personas, audience, configuration):
    data = _form(audience, configuration, schedule="at", start_at="2026-07-01T09:30", timezone="Europe/Paris")

    _login(client, personas["manny"]).post(reverse("campaigns:create"), data)

    campaign = Campaign.objects.get()
    assert campaign.start_at == datetime(2026, 7, 1, 7, 30, tzinfo=UTC)
    assert campaign.timezone == "Europe/Paris"


@time_machine.travel(NOW, tick=False)
def test_a_weekly_schedule_is_created_from_its_inputs(client, personas, audience, configuration):
    data = _form(
        audience,
        configuration,
        schedule="weekly",
        send_time="09:00",
        weekdays=["3", "0"],
        month_days=["31"],  # of another schedule: ignored
        timezone="Europe/Paris",
        end_at="2026-06-30T00:00",
        in_profile_timezone="on",
    )

    _login(client, personas["manny"]).post(reverse("campaigns:create"), data)

    campaign = Campaign.objects.get()
    assert (campaign.schedule, campaign.send_time.isoformat(), campaign.weekdays) == ("weekly", "09:00:00", [0, 3])
    assert campaign.month_days == []
    assert campaign.in_profile_timezone is True
    assert campaign.end_at == datetime(2026, 6, 29, 22, 0, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"schedule": "at", "start_at": "2026-03-02T12:59", "timezone": "Europe/Paris"}, "start_at", "has passed"),
        ({"schedule": "daily", "send_time": "09:00", "end_at": "2026-03-01T00:00"}, "end_at", "has passed"),
        ({"schedule": "weekly", "send_time": "09:00"}, "weekdays", "at least one day"),
        ({"schedule": "daily"}, "send_time", "time of day"),
    ],
)
def test_a_schedule_with_nothing_to_send_is_refused_at_creation(
    client, personas, audience, configuration, overrides, field, message
):
    response = _login(client, personas["manny"]).post(
        reverse("campaigns:create"), _form(audience, configuration, **overrides)
    )

    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert not Campaign.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_the_form_lists_the_next_five_occurrences_of_the_schedule_as_typed(client, personas):
    query = {"schedule": "weekly", "send_time": "09:00", "weekdays": ["0", "3"], "timezone": "Europe/Paris"}

    response = _login(client, personas["manny"]).get(reverse("campaigns:schedule_preview"), query)

    assert response.status_code == 200
    text = response.content.decode()
    # Monday 2 March 2026, 13:00 in Paris: the first is Thursday.
    assert "Weekly on Monday and Thursday at 09:00 Europe/Paris" in text
    assert text.count("<li><time") == 5
    assert "Thu 2026-03-05 09:00 CET" in text and "Mon 2026-03-16 09:00 CET" in text
    assert "more often than hourly" not in text


@time_machine.travel(NOW, tick=False)
def test_the_form_warns_of_a_schedule_more_frequent_than_hourly(client, personas):
    query = {"schedule": "recurring", "cron": "*/10 9 * * *", "timezone": "UTC"}

    response = _login(client, personas["manny"]).get(reverse("campaigns:schedule_preview"), query)

    assert "more often than hourly" in response.content.decode()
    assert response.content.decode().count("<li><time") == 5


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"schedule": "at", "start_at": "99999-01-01T00:00"}, "Start: Enter a date and time"),
        ({"schedule": "at", "start_at": "9999-12-31T23:59", "timezone": "Pacific/Pago_Pago"}, "between 1970 and 2999"),
        ({"schedule": "daily", "send_time": "25:99"}, "At: Enter a valid time"),
        ({"schedule": "daily", "send_time": "09:00", "timezone": "Mars/Olympus"}, "Time zone: Select a valid"),
        ({"schedule": "weekly", "send_time": "09:00", "weekdays": ["9", "x"]}, "On: Select a valid choice"),
        ({"schedule": "recurring", "cron": "0 0 30 2 *", "timezone": "UTC"}, "no occurrence in the next five years"),
        ({"schedule": "at", "start_at": "2026-03-01T09:00", "timezone": "UTC"}, "has passed"),
        ("schedule=%00&start_at=%ED%A0%80&timezone=UTC", "When to send: Select a valid choice"),
        ("schedule=daily&send_time=%00&timezone=" + "A" * 5000, "Time zone: Select a valid choice"),
    ],
)
def test_a_hostile_preview_query_gets_a_message_not_an_error(client, personas, query, says):
    url = reverse("campaigns:schedule_preview")
    if isinstance(query, str):
        url, query = f"{url}?{query}", None
    response = _login(client, personas["manny"]).get(url, query)

    assert response.status_code == 200
    assert says in response.content.decode()


def test_the_detail_page_shows_the_schedule_in_words_and_its_next_occurrences(
    personas, client, audience, configuration
):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Digest",
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content("Digest", "<p>Digest</p>", "Digest"),
        schedule=Campaign.Schedule.MONTHLY,
        send_time=datetime(2026, 1, 1, 8, 0).time(),
        month_days=[-1],
        timezone_name="America/New_York",
        now=NOW,
    )

    with time_machine.travel(NOW, tick=False):
        text = _login(client, personas["vera"]).get(campaign.get_absolute_url()).content.decode()

    assert "Monthly on the last day at 08:00 America/New_York" in text
    assert "Tue 2026-03-31 08:00 EDT" in text and "Sun 2026-05-31 08:00 EDT" in text
    assert text.count("<li><time") == 5


def test_fields_of_another_schedule_are_ignored(client, personas, audience, configuration):
    data = _form(audience, configuration, start_at="2026-07-01T09:30", cron="not a cron")

    _login(client, personas["manny"]).post(reverse("campaigns:create"), data)

    campaign = Campaign.objects.get()
    assert (campaign.schedule, campaign.start_at, campaign.cron) == ("on_activation", None, "")


def test_bad_cron_is_shown_next_to_the_field_and_nothing_is_stored(client, personas, audience, configuration):
    data = _form(audience, configuration, schedule="recurring", cron="every monday")

    response = _login(client, personas["manny"]).post(reverse("campaigns:create"), data)

    assert response.status_code == 200
    assert "is not a cron expression" in response.context["form"].errors["cron"][0]
    assert b'class="field field-cron has-error' in response.content
    assert not Campaign.objects.exists()
    assert not CampaignVersion.objects.exists()


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        # 10000-01-01 in UTC, past what Python's dates hold: a server error on saving
        ("start_at", {"schedule": "at", "start_at": "9999-12-31T23:59", "timezone": "Pacific/Pago_Pago"}),
        ("start_at", {"schedule": "at", "start_at": "0001-01-01T00:00", "timezone": "Pacific/Kiritimati"}),
        # the next occurrence, computed on activation, fell past year 9999
        ("start_at", {"schedule": "recurring", "cron": "0 0 * * *", "start_at": "9999-12-30T00:00"}),
        (
            "end_at",
            {
                "schedule": "recurring",
                "cron": "0 0 * * *",
                "start_at": "2026-01-01T00:00",
                "end_at": "3000-01-01T00:00",
            },
        ),
    ],
)
def test_a_date_out_of_the_scheduling_years_is_shown_next_to_its_field(
    client, personas, audience, configuration, field, overrides
):
    response = _login(client, personas["manny"]).post(
        reverse("campaigns:create"), _form(audience, configuration, **overrides)
    )

    assert response.status_code == 200
    assert response.context["form"].errors[field] == ["Enter a date and time between 1970 and 2999."]
    assert not Campaign.objects.exists()


def test_bad_liquid_subject_is_shown_next_to_the_field_and_nothing_is_stored(client, personas, audience, configuration):
    data = _form(audience, configuration, subject="Hello {{ profile.first_name ")

    response = _login(client, personas["manny"]).post(reverse("campaigns:create"), data)

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["subject"]
    assert b'class="field field-subject has-error' in response.content
    assert not Campaign.objects.exists()
    assert not CampaignVersion.objects.exists()


def test_create_form_offers_only_active_configurations_of_any_channel(client, personas, configuration):
    ChannelConfiguration.objects.create(name="Old relay", channel="email", is_active=False)
    texts = ChannelConfiguration.objects.create(name="Texts", channel="sms", is_active=True)

    response = _login(client, personas["manny"]).get(reverse("campaigns:create"))

    assert set(response.context["form"].fields["channel_configuration"].queryset) == {configuration, texts}
    assert b"{{ profile.first_name }}" in response.content


# Who may do what


def test_viewer_sees_the_list_without_the_new_campaign_button(client, personas, draft):
    response = _login(client, personas["vera"]).get(reverse("campaigns:list"))

    assert response.status_code == 200
    assert b"Spring sale" in response.content
    assert reverse("campaigns:create").encode() not in response.content


def test_manager_sees_the_new_campaign_button(client, personas, draft):
    response = _login(client, personas["manny"]).get(reverse("campaigns:list"))

    assert reverse("campaigns:create").encode() in response.content


def test_viewer_cannot_create(client, personas, audience, configuration):
    client = _login(client, personas["vera"])

    assert client.get(reverse("campaigns:create")).status_code == 403
    assert client.post(reverse("campaigns:create"), _form(audience, configuration)).status_code == 403
    assert not Campaign.objects.exists()


def test_viewer_cannot_activate(client, personas, draft):
    response = _login(client, personas["vera"]).post(reverse("campaigns:activate", args=[draft.pk]))

    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


def test_outsider_gets_the_forbidden_page_naming_roles_and_administrators(client, personas):
    response = _login(client, personas["otto"]).get(reverse("campaigns:list"))

    assert response.status_code == 403
    content = response.content.decode()
    for role in Role:
        assert role.value in content
    assert "ada@example.com" in content


def test_anonymous_is_redirected_to_login(client, db):
    response = client.get(reverse("campaigns:list"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('campaigns:list')}"


def test_login_page_logs_in_and_shows_the_roles(client, personas):
    response = client.post(reverse("login"), {"username": "april", "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("campaigns:list")
    assert Role.APPROVER.value in response.content.decode()


def test_every_campaign_view_requires_a_permission():
    from django.urls import get_resolver

    patterns = get_resolver().url_patterns
    campaign_patterns = next(p for p in patterns if getattr(p, "app_name", None) == "campaigns").url_patterns
    for pattern in campaign_patterns:
        assert pattern.callback.required_permissions, pattern.name


# Actions


@time_machine.travel(NOW, tick=False)
def test_approver_activates(client, personas, draft):
    response = _login(client, personas["april"]).post(reverse("campaigns:activate", args=[draft.pk]), follow=True)

    draft.refresh_from_db()
    assert draft.status == Campaign.Status.ACTIVE
    assert draft.next_run_at == NOW
    assert b"Activated: the scheduler starts the first run within seconds." in response.content


def test_activate_by_get_is_refused(client, personas, draft):
    response = _login(client, personas["april"]).get(reverse("campaigns:activate", args=[draft.pk]))

    assert response.status_code == 405
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


def test_a_refused_action_is_shown_as_an_error_message(client, personas, draft):
    response = _login(client, personas["april"]).post(reverse("campaigns:pause", args=[draft.pk]), follow=True)

    assert b"Only an active campaign can be paused." in response.content
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


def test_approver_pauses_and_stops(client, personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    client = _login(client, personas["april"])

    client.post(reverse("campaigns:pause", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.PAUSED

    client.post(reverse("campaigns:stop", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.STOPPED


def test_action_buttons_follow_the_state_and_the_permission(client, personas, draft):
    activate = reverse("campaigns:activate", args=[draft.pk]).encode()
    pause = reverse("campaigns:pause", args=[draft.pk]).encode()

    page = _login(client, personas["april"]).get(draft.get_absolute_url()).content
    assert activate in page and pause not in page

    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    page = client.get(draft.get_absolute_url()).content
    assert activate not in page and pause in page

    page = _login(client, personas["manny"]).get(draft.get_absolute_url()).content
    assert activate not in page and pause not in page


# Editing content


def edit_form_data(client, campaign, **changes) -> dict:
    """What the edit page's form posts as it comes (every setting and the content of the latest version), with
    `changes`: a person changing some fields and saving."""
    form = client.get(reverse("campaigns:edit", args=[campaign.pk])).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() not in (None, False)}
    return {**data, **changes}


def test_manager_edits_the_draft_content_in_place(client, personas, draft):
    client = _login(client, personas["manny"])
    data = edit_form_data(
        client, draft, subject="Hello {{ profile.first_name }}!", html_body="<p>New</p>", text_body=""
    )
    response = client.post(reverse("campaigns:edit", args=[draft.pk]), data, follow=True)

    assert b"Version 1 saved." in response.content
    version = draft.versions.get()
    assert (version.subject, version.html_body, version.text_body) == (
        "Hello {{ profile.first_name }}!",
        "<p>New</p>",
        "",
    )
    assert version.edited_by == personas["manny"]


def test_edit_page_shows_the_current_content_and_checks_it(client, personas, draft):
    client = _login(client, personas["manny"])
    edit = reverse("campaigns:edit", args=[draft.pk])

    assert b"&lt;p&gt;Hi&lt;/p&gt;</textarea>" in client.get(edit).content
    response = client.post(edit, edit_form_data(client, draft, subject="Hi {% if %}", html_body="", text_body=""))

    assert response.status_code == 200
    # Every error at once: the form's own (no body) and the content's syntax the service checks.
    assert set(response.context["form"].errors) == {"html_body", "subject"}
    response = client.post(edit, edit_form_data(client, draft, subject="Hi {% if %}", html_body="<p>x</p>"))
    assert list(response.context["form"].errors) == ["subject"]
    assert draft.latest_version().subject == "Hello {{ profile.first_name }}"


def test_editing_a_live_campaign_after_a_pause_makes_a_new_version(client, personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])
    client = _login(client, personas["manny"])

    response = client.post(
        reverse("campaigns:edit", args=[draft.pk]),
        edit_form_data(client, draft, subject="Second", html_body="<p>2</p>"),
        follow=True,
    )

    assert b"Saved as version 2. Version 1 goes on sending until version 2 is activated." in response.content
    assert list(draft.versions.order_by("number").values_list("subject", flat=True)) == [
        "Hello {{ profile.first_name }}",
        "Second",
    ]


def test_an_active_campaign_is_edited_into_a_new_version_and_a_stopped_one_is_not(client, personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    client = _login(client, personas["manny"])
    edit = reverse("campaigns:edit", args=[draft.pk])

    assert b"saving makes version 2" in client.get(edit).content
    client.post(edit, edit_form_data(client, draft, subject="New", name="Renamed"))
    draft.refresh_from_db()
    assert draft.versions.count() == 2 and draft.live_version.number == 1 and draft.name != "Renamed"

    data = edit_form_data(client, draft, subject="Later")
    lifecycle.campaign_stop(campaign=draft, actor=personas["april"])
    assert b"cannot be edited: duplicate it instead" in client.get(edit).content
    response = client.post(edit, data)
    assert b"cannot be edited" in response.content
    assert draft.versions.count() == 2


def test_viewer_cannot_edit(client, personas, draft):
    client = _login(client, personas["vera"])

    assert client.get(reverse("campaigns:edit", args=[draft.pk])).status_code == 403
    assert (
        client.post(reverse("campaigns:edit", args=[draft.pk]), {"subject": "x", "text_body": "x"}).status_code == 403
    )
    assert draft.latest_version().subject == "Hello {{ profile.first_name }}"


def test_unknown_campaign_is_404(client, personas):
    assert _login(client, personas["vera"]).get(reverse("campaigns:detail", args=[999])).status_code == 404


# Detail and status


def test_status_panel_polls_while_active_and_not_when_draft(client, personas, draft):
    client = _login(client, personas["vera"])
    status_url = reverse("campaigns:status", args=[draft.pk])

    response = client.get(status_url)
    assert response.status_code == 200
    assert b"hx-trigger" not in response.content

    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    response = client.get(status_url)
    assert b'hx-trigger="every 30s"' in response.content  # waiting for the scheduler
    assert f'hx-get="{status_url}"'.encode() in response.content

    Run.objects.create(campaign=draft, version=draft.latest_version(), occurrence="x", state=Run.State.PLANNING)
    assert b'hx-trigger="every 2s"' in client.get(status_url).content


def test_expired_session_sends_an_htmx_poll_to_the_login_page_not_into_the_panel(client, draft):
    detail = reverse("campaigns:detail", args=[draft.pk])
    response = client.get(
        reverse("campaigns:status", args=[draft.pk]),
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{detail}"},
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == f"{reverse('login')}?next={detail}"


def test_status_panel_polls_while_a_run_is_sending(client, personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    run = Run.objects.create(campaign=draft, version=draft.latest_version(), occurrence="x", state=Run.State.SENDING)
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])
    run.refresh_from_db()
    assert run.state == Run.State.PAUSED
    client = _login(client, personas["vera"])

    assert b"hx-trigger" not in client.get(reverse("campaigns:status", args=[draft.pk])).content
    Run.objects.filter(pk=run.pk).update(state=Run.State.SENDING)
    assert b"hx-trigger" in client.get(reverse("campaigns:status", args=[draft.pk])).content


def _ledger(run, profiles, statuses):
    """One delivery of the run a profile, with these statuses (an exclusion for want of consent)."""
    Delivery.objects.bulk_create(
        Delivery(
            run=run,
            version=run.version,
            profile=profile,
            channel="email",
            channel_configuration=run.campaign.channel_configuration,
            due_at=NOW,
            status=status,
            reason="no_consent" if status == "excluded" else "",
        )
        for profile, status in zip(profiles, statuses, strict=True)
    )


def test_status_panel_counts_the_ledger(client, personas, draft, profiles):
    run = Run.objects.create(campaign=draft, version=draft.latest_version(), occurrence="2026-03-02T12:00:00")
    _ledger(run, profiles, ["sent", "sent", "failed", "pending", "excluded", "unknown"])

    response = _login(client, personas["vera"]).get(reverse("campaigns:status", args=[draft.pk]))

    counts = response.context["counts"]
    assert (counts.targeted, counts.excluded, counts.sent, counts.failed, counts.pending, counts.unknown) == (
        6,
        1,
        2,
        1,
        1,
        1,
    )
    assert response.context["exclusions"] == [("No consent", 1)]
    assert b"2026-03-02 12:00:00 UTC</td>" in response.content  # the occurrence, with its zone
    assert b'<progress aria-label="Messages done" max="100" value="80">' in response.content


def test_a_stopped_campaigns_panel_counts_what_it_never_sent_as_cancelled(client, personas, draft, profiles):
    run = Run.objects.create(campaign=draft, version=draft.latest_version(), occurrence="x", state=Run.State.STOPPED)
    _ledger(run, profiles[:5], ["sent", "sent", "cancelled", "cancelled", "cancelled"])

    response = _login(client, personas["vera"]).get(reverse("campaigns:status", args=[draft.pk]))

    assert "<dd>3</dd>" in response.content.decode().split("Cancelled</dt>")[1][:20]
    assert "2 of 2 done (100%)" in response.content.decode()


def test_html_preview_is_sandboxed_and_scripts_stay_escaped(client, personas, audience, configuration):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Hostile",
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content("Hi", '<p>Hi</p><script>alert("owned")</script>', "<script>text</script>"),
    )

    client = _login(client, personas["vera"])
    content = client.get(campaign.get_absolute_url()).content.decode()

    assert "<script>alert" not in content
    assert "<script>text" not in content
    preview_url = reverse("campaigns:preview", args=[campaign.pk, 1])
    assert f'<iframe class="preview" sandbox src="{preview_url}"' in content
    assert "allow-scripts" not in content

    # The content is served on its own, as a sandboxed document: no script runs even if opened directly,
    # the marketer's inline styles still apply, and only our own pages may frame it.
    preview = client.get(preview_url)
    # With the relay's footer, as recipients of marketing mail get it (a link that unsubscribes nobody).
    footer = '<p><a href="#unsubscribe-link">Unsubscribe</a></p>'
    assert preview.content.decode() == f'<p>Hi</p><script>alert("owned")</script>\n{footer}'
    policy = preview["Content-Security-Policy"]
    assert "sandbox" in policy and "allow-scripts" not in policy
    assert "script-src" not in policy and "default-src 'none'" in policy
    assert "style-src 'unsafe-inline'" in policy
    assert "frame-ancestors 'self'" in policy
    assert preview["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get(reverse("campaigns:preview", args=[campaign.pk, 2])).status_code == 404


def test_detail_links_the_audience_for_those_who_may_see_it(client, personas, draft):
    link = f'href="{reverse("audiences:audience_detail", args=[draft.audience_id])}"'

    assert link in _login(client, personas["april"]).get(draft.get_absolute_url()).content.decode()
    client.logout()
    page = _login(client, personas["vera"]).get(draft.get_absolute_url()).content.decode()
    assert link not in page and draft.audience.name in page


# The messages of a profile (the partial its page loads)


@pytest.mark.both_databases  # SQLite raised OverflowError comparing the id to the deliveries' link
@pytest.mark.parametrize("profile_id", [987654321, 10**30])
def test_the_messages_of_a_profile_that_does_not_exist_are_not_found(client, personas, profile_id):
    response = _login(client, personas["ada"]).get(reverse("campaigns:profile_messages", args=[profile_id]))

    assert response.status_code == 404
