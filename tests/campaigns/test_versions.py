"""Versions for everything: a campaign's name, description, tags, audience, channel configuration, schedule and
content are edited on a draft version; a live campaign sends its live version until a newer one is approved and
activated. And the lifecycle operations (duplicate, delete, archive, unarchive) in each state and role."""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audiences.models import AttributeDefinition, Audience
from campaigns.engine import planning, scheduler
from campaigns.models import Campaign, CampaignVersion, Run
from campaigns.services import approval, lifecycle
from channels.models import ChannelConfiguration
from permissions.models import AuditEvent
from permissions.roles import Role
from tests.campaigns.queued import received
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import RecordingSMTPServer

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
CONTENT = lifecycle.Content("Weekly {{ profile.first_name }}", "<p>News</p>", "News")
EDITED = lifecycle.Content("Daily {{ profile.first_name }}", "<p>Fresh news</p>", "Fresh news")


def _settings(version_or_campaign, **changes) -> dict:
    return {**version_or_campaign.settings_values(), **changes}


def _policy(personas):
    return approval.approval_policy_create(
        actor=personas["ada"],
        rules=approval.PolicyRules(
            name="Every campaign", approver_groups=[Group.objects.get(name=Role.APPROVER.value)]
        ),
    )


def _numbered_audience(name: str, op: str, value: int) -> Audience:
    """The profiles of make_profiles whose number `n` compares so."""
    AttributeDefinition.objects.get_or_create(name="n", defaults={"type": "number"})
    return Audience.objects.create(
        name=name, kind=Audience.Kind.RULE, rule={"attribute": "n", "op": op, "value": value}
    )


@pytest.fixture
def relays():
    first, second = RecordingSMTPServer().start(), RecordingSMTPServer().start()
    yield first, second
    first.stop()
    second.stop()


@pytest.mark.django_db(transaction=True)
def test_every_setting_of_a_live_recurring_campaign_changes_through_a_new_approved_version(redis, relays, personas):
    """Weekly to audience A through relay 1; version 2 changes every setting and the content. Until version 2 is
    approved and activated the campaign sends version 1; then the next occurrence sends version 2, to audience B
    through relay 2, on the new schedule."""
    first_relay, second_relay = relays
    manny, april = personas["manny"], personas["april"]
    _policy(personas)
    make_profiles(2)
    make_profiles(3, start=10)
    audience_a = Audience.objects.create(name="A", kind=Audience.Kind.ALL)
    audience_b = _numbered_audience("B", "gte", 10)
    relay_1 = make_email_configuration(port=first_relay.port, name="Relay 1")
    relay_2 = make_email_configuration(port=second_relay.port, name="Relay 2")
    with time_machine.travel(MONDAY_9 - timedelta(days=1), tick=False):
        campaign = make_campaign(
            manny,
            relay_1,
            audience_a,
            content=CONTENT,
            schedule=Campaign.Schedule.WEEKLY,
            send_time=time(9, 0),
            weekdays=[0],
            timezone_name="UTC",
            tags=["weekly"],
        )
        approval.campaign_submit_for_review(campaign=campaign, actor=manny)
        lifecycle.campaign_approve_and_activate(campaign=campaign, actor=april)
    campaign.refresh_from_db()
    assert campaign.next_run_at == MONDAY_9

    new_settings = {
        "name": "Daily digest",
        "description": "Every morning",
        "tags": ["daily", "digest"],
        "audience": audience_b,
        "channel_configuration": relay_2,
        "schedule": Campaign.Schedule.DAILY,
        "start_at": None,
        "cron": "",
        "send_time": time(7, 30),
        "weekdays": [],
        "month_days": [],
        "timezone": "Europe/Paris",
        "end_at": None,
        "in_profile_timezone": False,
    }
    with time_machine.travel(MONDAY_9 - timedelta(hours=12), tick=False):
        version = lifecycle.campaign_update(campaign=campaign, actor=manny, content=EDITED, settings=new_settings)
        assert version.number == 2
        campaign.refresh_from_db()
        # The campaign goes on with version 1's settings.
        assert (campaign.name, campaign.audience, campaign.channel_configuration) == (
            "Autumn sale",
            audience_a,
            relay_1,
        )
        assert campaign.live_version.number == 1 and campaign.next_run_at == MONDAY_9
        # Not approved yet: it cannot be activated.
        with pytest.raises(ValidationError, match="needs an approval"):
            lifecycle.campaign_activate(campaign=campaign, actor=april)

    # Monday's occurrence still sends version 1.
    [run_id] = scheduler.start_due_runs(now=MONDAY_9)
    planning.plan_run(run_id=run_id)
    run_burst_worker()
    assert Run.objects.get(pk=run_id).version.number == 1
    assert len(received(first_relay)) == 5  # audience A: everyone
    assert not second_relay.messages

    with time_machine.travel(MONDAY_9 + timedelta(hours=1), tick=False):
        approval.campaign_submit_for_review(campaign=campaign, actor=manny)
        lifecycle.campaign_approve_and_activate(campaign=campaign, actor=april)
    campaign.refresh_from_db()
    assert campaign.live_version.number == 2
    assert campaign.settings_values() == {**new_settings}
    tuesday_730_paris = datetime(2026, 3, 3, 6, 30, tzinfo=UTC)
    assert campaign.next_run_at == tuesday_730_paris

    [run_id] = scheduler.start_due_runs(now=tuesday_730_paris)
    planning.plan_run(run_id=run_id)
    run_burst_worker()
    assert sorted(received(second_relay)) == [f"person{n}@example.com" for n in (10, 11, 12)]
    subjects = {m["message"]["Subject"] for m in second_relay.messages}
    assert subjects == {"Daily Name10", "Daily Name11", "Daily Name12"}
    event = AuditEvent.objects.filter(action="campaign.updated").latest("pk")
    assert event.before["audience"].endswith("A") and event.after["audience"].endswith("B")
    assert event.after["schedule"] == "daily" and event.after["version"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_run_under_way_keeps_its_versions_audience_when_a_new_version_goes_live(redis, personas, everyone):
    manny = personas["manny"]
    make_profiles(4)
    few = _numbered_audience("Few", "lt", 2)
    campaign = make_campaign(manny, make_email_configuration(port=25), everyone)
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    lifecycle.campaign_update(
        campaign=campaign, actor=manny, content=EDITED, settings=_settings(campaign.latest_version(), audience=few)
    )
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])

    planning.plan_run(run_id=run_id)

    run = Run.objects.get(pk=run_id)
    assert run.version.number == 1
    assert run.deliveries.count() == 4  # version 1's audience, everyone


def test_editing_a_draft_changes_the_campaign_at_once_and_keeps_one_version(personas, everyone):
    campaign = make_campaign(personas["manny"], make_email_configuration(port=25), everyone)
    version = lifecycle.campaign_update(
        campaign=campaign,
        actor=personas["manny"],
        content=EDITED,
        settings=_settings(campaign, name="Renamed", description="Why", tags=["x"]),
    )
    campaign.refresh_from_db()
    assert version.number == 1 and CampaignVersion.objects.filter(campaign=campaign).count() == 1
    assert (campaign.name, campaign.description, campaign.tags) == ("Renamed", "Why", ["x"])
    assert version.subject == EDITED.subject and version.name == "Renamed"


def test_every_bad_setting_of_an_edit_is_reported_at_once_and_nothing_changes(personas, everyone):
    campaign = make_campaign(personas["manny"], make_email_configuration(port=25), everyone)
    with pytest.raises(ValidationError) as raised:
        lifecycle.campaign_update(
            campaign=campaign,
            actor=personas["manny"],
            content=lifecycle.Content("Hi {% if %}", "<p>x</p>", "x"),
            settings=_settings(
                campaign,
                name="x" * 201,
                audience=None,
                schedule=Campaign.Schedule.RECURRING,
                cron="every monday",
                timezone="Mars/Olympus",
            ),
        )
    assert set(raised.value.message_dict) == {"subject", "name", "audience", "cron", "timezone"}
    campaign.refresh_from_db()
    assert campaign.name == "Autumn sale" and campaign.latest_version().subject == "Hello {{ profile.first_name }}"


def test_a_past_date_is_refused_at_create_and_at_submit_and_can_be_fixed_on_the_draft(personas, everyone):
    manny = personas["manny"]
    _policy(personas)
    relay = make_email_configuration(port=25)
    with pytest.raises(ValidationError) as raised:
        make_campaign(
            manny, relay, everyone, schedule=Campaign.Schedule.AT, start_at=timezone.now() - timedelta(minutes=1)
        )
    assert "has passed" in raised.value.message_dict["start_at"][0]

    soon = timezone.now() + timedelta(hours=1)
    campaign = make_campaign(manny, relay, everyone, schedule=Campaign.Schedule.AT, start_at=soon)
    with time_machine.travel(soon + timedelta(minutes=5)):
        with pytest.raises(ValidationError) as raised:
            approval.campaign_submit_for_review(campaign=campaign, actor=manny)
        assert "has passed" in raised.value.message_dict["start_at"][0]
        # No dead end: the draft's date is edited, then it is submitted.
        lifecycle.campaign_update(
            campaign=campaign,
            actor=manny,
            content=CONTENT,
            settings=_settings(campaign, start_at=timezone.now() + timedelta(days=1)),
        )
        version = approval.campaign_submit_for_review(campaign=campaign, actor=manny)
    assert version.review_state == CampaignVersion.ReviewState.IN_REVIEW


def test_a_version_that_removes_a_policys_tag_from_a_live_campaign_still_needs_that_policys_approval(
    personas, everyone
):
    approval.approval_policy_create(
        actor=personas["ada"],
        rules=approval.PolicyRules(
            name="Legal", tags=["legal"], approver_groups=[Group.objects.get(name=Role.APPROVER.value)]
        ),
    )
    campaign = make_campaign(personas["manny"], make_email_configuration(port=25), everyone, tags=["legal"])
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
    lifecycle.campaign_approve_and_activate(campaign=campaign, actor=personas["april"])
    lifecycle.campaign_update(
        campaign=campaign, actor=personas["manny"], content=CONTENT, settings=_settings(campaign, tags=[])
    )
    with pytest.raises(ValidationError, match="Legal"):
        lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])


# Lifecycle operations in each state -----------------------------------------------------------------------------

STATES = ("draft", "in_review", "active", "active_with_draft", "paused", "stopped", "completed", "archived")


def _campaign_in(state: str, personas, audience) -> Campaign:
    manny, april = personas["manny"], personas["april"]
    relay = ChannelConfiguration.objects.filter(name="Test relay").first() or make_email_configuration(port=25)
    campaign = make_campaign(manny, relay, audience)
    if state == "in_review":
        approval.campaign_submit_for_review(campaign=campaign, actor=manny)
    if state in ("active", "active_with_draft", "paused", "stopped", "completed", "archived"):
        lifecycle.campaign_activate(campaign=campaign, actor=april)
    if state == "active_with_draft":
        lifecycle.campaign_update(campaign=campaign, actor=manny, content=EDITED)
    if state == "paused":
        lifecycle.campaign_pause(campaign=campaign, actor=april)
    if state in ("stopped", "archived"):
        lifecycle.campaign_stop(campaign=campaign, actor=april)
    if state == "completed":
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED, next_run_at=None)
    if state == "archived":
        lifecycle.campaign_archive(campaign=campaign, actor=april, may_stop=True)
    campaign.refresh_from_db()
    return campaign


def _edit(campaign, actor):
    return lifecycle.campaign_update(campaign=campaign, actor=actor, content=EDITED)


OPERATIONS = {
    "edit": _edit,
    "submit": lambda campaign, actor: approval.campaign_submit_for_review(campaign=campaign, actor=actor),
    "activate": lambda campaign, actor: lifecycle.campaign_activate(campaign=campaign, actor=actor),
    "pause": lambda campaign, actor: lifecycle.campaign_pause(campaign=campaign, actor=actor),
    "stop": lambda campaign, actor: lifecycle.campaign_stop(campaign=campaign, actor=actor),
    "duplicate": lambda campaign, actor: lifecycle.campaign_duplicate(campaign=campaign, actor=actor),
    "delete": lambda campaign, actor: lifecycle.campaign_delete(campaign=campaign, actor=actor),
    "resume": lambda campaign, actor: lifecycle.campaign_resume(campaign=campaign, actor=actor),
    "archive": lambda campaign, actor: lifecycle.campaign_archive(campaign=campaign, actor=actor, may_stop=True),
    "unarchive": lambda campaign, actor: lifecycle.campaign_unarchive(campaign=campaign, actor=actor),
}

# Which operation each state allows (the services' rules; who may is the views', below).
ALLOWED = {
    "draft": {"edit", "submit", "activate", "duplicate", "delete"},
    "in_review": {"duplicate", "delete"},
    "active": {"edit", "pause", "stop", "duplicate", "archive"},
    "active_with_draft": {"edit", "submit", "activate", "pause", "stop", "duplicate", "archive"},
    "paused": {"edit", "activate", "resume", "stop", "duplicate", "archive"},
    "stopped": {"duplicate", "archive"},
    "completed": {"duplicate", "archive"},
    "archived": {"duplicate", "unarchive"},
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_each_operation_is_allowed_only_in_its_states(personas, everyone, state, operation):
    campaign = _campaign_in(state, personas, everyone)
    allowed = operation in ALLOWED[state]
    if allowed:
        OPERATIONS[operation](campaign, personas["april"])
        return
    before = Campaign.objects.filter(pk=campaign.pk).values().get()
    versions = list(CampaignVersion.objects.filter(campaign=campaign).values())
    with pytest.raises(ValidationError):
        OPERATIONS[operation](campaign, personas["april"])
    assert Campaign.objects.filter(pk=campaign.pk).values().get() == before
    assert list(CampaignVersion.objects.filter(campaign=campaign).values()) == versions


def test_duplicate_copies_the_latest_version_as_a_new_draft_of_the_actor(personas, everyone):
    campaign = _campaign_in("active_with_draft", personas, everyone)
    duplicate = lifecycle.campaign_duplicate(campaign=campaign, actor=personas["ada"])
    version = duplicate.latest_version()
    assert duplicate.status == Campaign.Status.DRAFT and duplicate.owner == personas["ada"]
    assert duplicate.name == "Copy of Autumn sale" and version.number == 1
    assert version.subject == EDITED.subject  # the latest version, not the live one
    assert duplicate.live_version is None and not duplicate.runs.exists()
    assert AuditEvent.objects.filter(action="campaign.duplicated", object_id=str(duplicate.pk)).exists()


def test_archiving_a_live_campaign_stops_it_and_cancels_its_next_occurrences(personas, everyone):
    campaign = _campaign_in("active", personas, everyone)
    lifecycle.campaign_archive(campaign=campaign, actor=personas["april"], may_stop=True)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.STOPPED and campaign.archived_at and campaign.next_run_at is None
    lifecycle.campaign_unarchive(campaign=campaign, actor=personas["april"])
    campaign.refresh_from_db()
    assert campaign.archived_at is None and campaign.status == Campaign.Status.STOPPED


def test_delete_removes_a_draft_and_its_versions_and_is_audited(personas, everyone):
    campaign = _campaign_in("draft", personas, everyone)
    lifecycle.campaign_delete(campaign=campaign, actor=personas["ada"])
    assert not Campaign.objects.filter(pk=campaign.pk).exists()
    assert not CampaignVersion.objects.filter(campaign_id=campaign.pk).exists()
    assert AuditEvent.objects.filter(action="campaign.deleted", object_id=str(campaign.pk)).exists()


# Who may, on the pages ------------------------------------------------------------------------------------------

# (url name, state, persona) -> the page's answer: the action done (302 to the campaign or list) or refused (403).
ROLE_CASES = [
    ("duplicate", "active", "manny", True),
    ("duplicate", "active", "vera", False),
    ("delete", "draft", "ada", True),
    ("delete", "draft", "manny", False),
    ("archive", "stopped", "manny", True),
    ("archive", "stopped", "vera", False),
    ("unarchive", "archived", "manny", True),
    ("unarchive", "archived", "vera", False),
]


@pytest.mark.parametrize(("name", "state", "persona", "allowed"), ROLE_CASES)
def test_each_operation_on_the_pages_is_for_its_roles(client, personas, everyone, name, state, persona, allowed):
    campaign = _campaign_in(state, personas, everyone)
    client.force_login(personas[persona])
    response = client.post(reverse(f"campaigns:{name}", args=[campaign.pk]))
    assert response.status_code == (302 if allowed else 403)
    exists = Campaign.objects.filter(pk=campaign.pk).exists()
    if not allowed:
        assert exists and Campaign.objects.count() == 1
        return
    campaign = Campaign.objects.filter(pk=campaign.pk).first()
    match name:
        case "duplicate":
            assert Campaign.objects.count() == 2
        case "delete":
            assert not exists
        case "archive":
            assert campaign.archived_at is not None
        case "unarchive":
            assert campaign.archived_at is None


def test_a_manager_cannot_archive_a_live_campaign_as_archiving_stops_it(client, personas, everyone):
    campaign = _campaign_in("active", personas, everyone)
    client.force_login(personas["manny"])
    response = client.post(reverse("campaigns:archive", args=[campaign.pk]), follow=True)
    assert "ask someone who may stop campaigns" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ACTIVE and campaign.archived_at is None


def test_the_edit_page_of_a_live_campaign_saves_every_field_into_a_new_version(client, personas, everyone):
    campaign = _campaign_in("active", personas, everyone)
    other = Audience.objects.create(name="Other", kind=Audience.Kind.ALL)
    client.force_login(personas["manny"])
    page = client.get(reverse("campaigns:edit", args=[campaign.pk]))
    assert "saving makes version 2" in page.content.decode()
    form = page.context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data |= {
        "name": "Renamed",
        "description": "Now with a description",
        "tags": "a, b",
        "audience": other.pk,
        "schedule": "weekly",
        "send_time": "08:00",
        "weekdays": ["1", "3"],
        "timezone": "Europe/Paris",
        "subject": "New subject",
    }
    response = client.post(reverse("campaigns:edit", args=[campaign.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    version = campaign.versions.get(number=2)
    assert (version.name, version.description, version.tags) == ("Renamed", "Now with a description", ["a", "b"])
    assert (version.audience, version.schedule, version.weekdays) == (other, "weekly", [1, 3])
    assert version.send_time == time(8, 0) and version.timezone == "Europe/Paris" and version.subject == "New subject"
    campaign.refresh_from_db()
    assert campaign.name == "Autumn sale" and campaign.live_version.number == 1

    detail = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "Version 2 (draft) changes" in detail and "Version 1 goes on sending" in detail
    history = client.get(reverse("campaigns:versions", args=[campaign.pk])).content.decode()
    assert "<del>-Autumn sale</del>" in history and "<ins>+Renamed</ins>" in history
    assert "<ins>+Other</ins>" in history


def test_the_create_form_shows_every_error_at_once(client, personas, everyone):
    client.force_login(personas["manny"])
    relay = make_email_configuration(port=25)
    response = client.post(
        reverse("campaigns:create"),
        {
            "name": "",
            "kind": "scheduled",
            "category": "marketing",
            "channel_configuration": relay.pk,
            "schedule": "at",
            "start_at": (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
            "subject": "Hi {% if %}",
            "html_body": "<p>x</p>",
        },
    )
    errors = response.context["form"].errors
    # The form's own (name), and the rules the service checks (audience, a past date, the content's syntax).
    assert {"name", "audience", "start_at", "subject"} <= set(errors)
    assert not Campaign.objects.exists()


def test_an_audience_only_a_version_uses_is_not_deleted_and_the_campaign_is_named(personas, everyone):
    from audiences.services.audiences import AudienceInUse, audience_delete

    campaign = _campaign_in("active", personas, everyone)
    other = Audience.objects.create(name="Other", kind=Audience.Kind.ALL)
    lifecycle.campaign_update(
        campaign=campaign, actor=personas["manny"], content=EDITED, settings=_settings(campaign, audience=other)
    )
    with pytest.raises(AudienceInUse, match="Autumn sale"):
        audience_delete(actor=personas["ada"], audience=other)  # version 2, not yet live, uses it
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    with pytest.raises(AudienceInUse, match="Autumn sale"):
        audience_delete(actor=personas["ada"], audience=everyone)  # version 1 sent to it


@pytest.mark.parametrize("with_policy", [False, True])
def test_resume_sends_the_live_version_and_leaves_a_newer_one_as_it_is(personas, everyone, with_policy):
    """A manager's unfinished version 2 is neither published by a resume nor in its way, policy or not."""
    if with_policy:
        _policy(personas)
    campaign = make_campaign(personas["manny"], make_email_configuration(port=25), everyone)
    if with_policy:
        approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
        lifecycle.campaign_approve_and_activate(campaign=campaign, actor=personas["april"])
    else:
        lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    lifecycle.campaign_update(
        campaign=campaign, actor=personas["manny"], content=EDITED, settings=_settings(campaign, name="Unfinished")
    )
    lifecycle.campaign_pause(campaign=campaign, actor=personas["april"])

    lifecycle.campaign_resume(campaign=campaign, actor=personas["april"])

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ACTIVE and campaign.live_version.number == 1
    assert campaign.name == "Autumn sale"
    assert campaign.latest_version().review_state == CampaignVersion.ReviewState.DRAFT


def test_activating_a_paused_campaigns_newer_version_makes_it_live_and_resumes(personas, everyone):
    campaign = _campaign_in("paused", personas, everyone)
    lifecycle.campaign_update(
        campaign=campaign, actor=personas["manny"], content=EDITED, settings=_settings(campaign, name="Second")
    )
    lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    campaign.refresh_from_db()
    assert (campaign.status, campaign.live_version.number, campaign.name) == (Campaign.Status.ACTIVE, 2, "Second")


def test_archiving_a_live_campaign_is_refused_under_the_lock_to_who_may_not_stop_it(personas, everyone):
    live, stopped = _campaign_in("active", personas, everyone), _campaign_in("stopped", personas, everyone)
    with pytest.raises(ValidationError, match="ask someone who may stop campaigns"):
        lifecycle.campaign_archive(campaign=live, actor=personas["manny"], may_stop=False)
    lifecycle.campaign_archive(campaign=stopped, actor=personas["manny"], may_stop=False)
    live.refresh_from_db()
    stopped.refresh_from_db()
    assert live.status == Campaign.Status.ACTIVE and live.archived_at is None and stopped.archived_at is not None


def test_a_review_request_is_withdrawn_when_its_campaign_is_deleted_or_archived(personas, everyone):
    from permissions.models import Notification

    def unread(campaign):
        url = reverse("campaigns:review", args=[campaign.pk])
        return Notification.objects.filter(url=url, read_at__isnull=True).count()

    draft = _campaign_in("in_review", personas, everyone)
    assert unread(draft) > 0
    lifecycle.campaign_delete(campaign=draft, actor=personas["ada"])
    assert unread(draft) == 0

    live = _campaign_in("active_with_draft", personas, everyone)
    approval.campaign_submit_for_review(campaign=live, actor=personas["manny"])
    assert unread(live) > 0
    lifecycle.campaign_archive(campaign=live, actor=personas["april"], may_stop=True)
    assert unread(live) == 0
    assert live.latest_version().review_state == CampaignVersion.ReviewState.DRAFT


def test_an_edit_made_on_a_page_opened_before_another_save_is_refused(client, personas, everyone):
    """Two people edit the same draft: the second save, from a page showing the version before the first save, is
    refused instead of silently undoing the first."""
    from tests.campaigns.test_views import edit_form_data

    campaign = _campaign_in("draft", personas, everyone)
    edit = reverse("campaigns:edit", args=[campaign.pk])
    client.force_login(personas["manny"])
    stale = edit_form_data(client, campaign, name="Manny's name")
    client.force_login(personas["ada"])
    assert client.post(edit, edit_form_data(client, campaign, subject="Ada's subject")).status_code == 302

    client.force_login(personas["manny"])
    response = client.post(edit, stale)

    assert response.status_code == 200
    assert "changed since this page was opened" in response.content.decode()
    version = campaign.latest_version()
    assert (version.subject, version.name) == ("Ada's subject", "Autumn sale")


@pytest.mark.parametrize("state", ["stopped", "completed"])
def test_a_finished_campaign_is_never_activated_again_even_with_a_newer_version(personas, everyone, state):
    campaign = _campaign_in("active_with_draft", personas, everyone)
    if state == "stopped":
        lifecycle.campaign_stop(campaign=campaign, actor=personas["april"])
    else:
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED, next_run_at=None)
    with pytest.raises(ValidationError, match="cannot be activated again: duplicate it"):
        lifecycle.campaign_activate(campaign=campaign, actor=personas["april"])
    campaign.refresh_from_db()
    assert campaign.status == state and campaign.live_version.number == 1


def test_archiving_a_completed_campaign_withdraws_its_version_in_review(personas, everyone):
    campaign = _campaign_in("active_with_draft", personas, everyone)
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.COMPLETED, next_run_at=None)
    lifecycle.campaign_archive(campaign=campaign, actor=personas["april"], may_stop=False)
    assert campaign.latest_version().review_state == CampaignVersion.ReviewState.DRAFT


def test_a_campaign_page_with_huge_bodies_says_they_changed_without_diffing_them(client, personas, everyone):
    campaign = _campaign_in("active", personas, everyone)
    big = "\n".join(f"<p>line {n}</p>" for n in range(5_000))
    lifecycle.campaign_update(
        campaign=campaign, actor=personas["manny"], content=lifecycle.Content("Hello", big, "News")
    )
    client.force_login(personas["vera"])
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "changes subject, html body" in page.lower()
    history = client.get(reverse("campaigns:versions", args=[campaign.pk])).content.decode()
    assert "too large to compare line by line here (1 line before, 5,000 lines after)" in history
