"""Approval: policies, the review of a version, and who may approve and publish. Services and pages."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django_rq
import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse

from audiences.models import Audience, Profile
from campaigns.models import ApprovalPolicy, Campaign, CampaignVersion, ReviewDecision
from campaigns.services import approval, lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from config import queues
from permissions.models import AuditEvent, Notification
from permissions.roles import Role
from tests.conftest import TEST_FOOTERS, run_burst_worker
from tests.smtp_servers import free_port

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CONTENT = lifecycle.Content("Hello {{ profile.first_name }}", "<p>Hi</p>\n<p>Spring sale</p>", "Hi")
EDITED = lifecycle.Content("Hello again", "<p>Hi</p>\n<p>Summer sale</p>", "Hi")


@pytest.fixture
def audience(db):
    Profile.objects.bulk_create(
        Profile(email=f"p{n}@example.com", attributes={"first_name": f"P{n}"}) for n in range(3)
    )
    return Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)


@pytest.fixture
def configuration(db):
    configuration = ChannelConfiguration(name="Relay", channel="email")
    configuration.set_settings(
        EmailSettings(
            from_email="news@example.com",
            from_name="Shop",
            host="127.0.0.1",
            port=1025,
            password="hunter2",
            **TEST_FOOTERS,
        )
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
        content=CONTENT,
        tags=["sale", "spring"],
    )


def make_policy(personas, *, roles=(Role.APPROVER, Role.ADMINISTRATOR), users=(), **rules) -> ApprovalPolicy:
    return approval.approval_policy_create(
        actor=personas["ada"],
        rules=approval.PolicyRules(
            name=rules.pop("name", "Marketing review"),
            approver_groups=[Group.objects.get(name=role.value) for role in roles],
            approver_users=list(users),
            **rules,
        ),
    )


@pytest.fixture
def policy(personas):
    return make_policy(personas)


@pytest.fixture
def submitted(personas, draft, policy):
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    return draft


@pytest.fixture
def submitted_and_mailed(submitted, redis):
    """For tests that run the queued jobs (a transactional database): the approvers' emails about the submission
    are sent and cleared, so the outbox holds only what the test's own action sends."""
    run_burst_worker()
    mail.outbox.clear()
    return submitted


def _login(client, user):
    client.force_login(user)
    return client


def _review_key(campaign) -> str:
    return campaign.latest_version().review_key()


def _state(campaign) -> tuple[str, str]:
    campaign.refresh_from_db()
    return campaign.status, campaign.latest_version().review_state


# Policies: which campaigns need an approval


@pytest.mark.parametrize(
    ("rules", "matches"),
    [
        ({}, True),
        ({"kinds": ["scheduled"]}, True),
        ({"kinds": ["api_triggered"]}, False),
        ({"categories": ["marketing", "transactional"]}, True),
        ({"categories": ["transactional"]}, False),
        ({"channels": ["email"]}, True),
        ({"channels": ["sms", "push"]}, False),
        ({"tags": ["legal", "spring"]}, True),
        ({"tags": ["legal"]}, False),
        ({"kinds": ["scheduled"], "channels": ["email"], "tags": ["sale"]}, True),
        ({"kinds": ["scheduled"], "channels": ["email"], "tags": ["legal"]}, False),
    ],
)
def test_policy_matches_by_kind_category_channel_and_tags(personas, draft, rules, matches):
    make_policy(personas, **rules)

    assert approval.approval_required(draft) is matches


def test_an_inactive_policy_matches_nothing(personas, draft):
    make_policy(personas, is_active=False)

    assert not approval.approval_required(draft)


def test_approvers_are_the_named_roles_and_users_who_hold_the_approve_permission(personas, draft, django_user_model):
    outsider_named = personas["otto"]  # named, but holds no approve permission
    extra = django_user_model.objects.create_user("abe", "abe@example.com", "x")
    extra.groups.add(Group.objects.get(name=Role.APPROVER))
    make_policy(personas, roles=[Role.ADMINISTRATOR], users=[outsider_named])
    make_policy(personas, name="Legal", roles=[], users=[extra])

    assert [user.username for user in approval.campaign_approvers(draft)] == ["abe", "ada"]


def test_without_a_policy_activation_works_as_before(personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])

    assert _state(draft) == (Campaign.Status.ACTIVE, CampaignVersion.ReviewState.DRAFT)


def test_a_policy_needs_an_approver(personas):
    with pytest.raises(ValidationError, match="Name an approver"):
        make_policy(personas, roles=[])


# Submitting locks the version


def test_submitting_locks_the_version(personas, submitted):
    with pytest.raises(ValidationError, match="in review and cannot be edited"):
        lifecycle.campaign_update_content(campaign=submitted, actor=personas["manny"], content=EDITED)

    version = submitted.latest_version()
    assert (version.number, version.subject, version.review_state) == (1, CONTENT.subject, "in_review")
    assert version.submitted_by == personas["manny"]


def test_the_edit_page_refuses_a_version_in_review(client, personas, submitted):
    client = _login(client, personas["manny"])
    edit = reverse("campaigns:edit", args=[submitted.pk])

    assert b"is in review and cannot be edited" in client.get(edit).content
    response = client.post(edit, {"subject": "Changed", "html_body": "<p>x</p>", "text_body": "x"})

    assert response.status_code == 200
    assert b"is in review and cannot be edited" in response.content
    assert submitted.latest_version().subject == CONTENT.subject


def test_activation_is_refused_while_a_version_is_in_review_even_without_a_policy(personas, draft):
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])

    with pytest.raises(ValidationError, match="is in review"):
        lifecycle.campaign_activate(campaign=draft, actor=personas["april"])


@pytest.mark.django_db(transaction=True)
def test_submitting_notifies_the_approvers_in_the_app_and_by_email(personas, draft, policy, redis):
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    assert not mail.outbox  # the email job runs in a worker, off the request path
    run_burst_worker()

    review_url = reverse("campaigns:review", args=[draft.pk])
    notified = Notification.objects.filter(url=review_url)
    assert sorted(n.user.username for n in notified) == ["ada", "april"]
    assert notified.first().title == "Review requested: Spring sale (version 1)"
    assert sorted(address for message in mail.outbox for address in message.to) == [
        "ada@example.com",
        "april@example.com",
    ]
    assert review_url in mail.outbox[0].body


@pytest.mark.django_db(transaction=True)
def test_a_submission_goes_through_and_notifies_in_the_app_when_the_mail_server_is_unreachable(
    client, personas, draft, policy, redis, settings, caplog
):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "timeout": 2},  # nothing listens there
        }
    }

    response = _login(client, personas["manny"]).post(reverse("campaigns:submit", args=[draft.pk]), follow=True)

    assert response.status_code == 200 and b"Submitted for review" in response.content
    assert _state(draft) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.IN_REVIEW)
    notified = Notification.objects.filter(url=reverse("campaigns:review", args=[draft.pk]))
    assert sorted(n.user.username for n in notified) == ["ada", "april"]

    run_burst_worker()

    maintenance = django_rq.get_queue(queues.MAINTENANCE)
    assert (maintenance.finished_job_registry.count, maintenance.failed_job_registry.count) == (1, 0)
    failures = [record for record in caplog.records if record.name == "permissions.services.notifications"]
    assert len(failures) == 2 and all(record.levelname == "ERROR" for record in failures)
    assert all(n.emailed_at is None for n in notified)  # unsent, so running the job again retries them


def test_submitting_is_refused_when_no_one_could_approve(personas, draft):
    make_policy(personas, roles=[], users=[personas["april"]])

    with pytest.raises(ValidationError, match="No one can approve this campaign"):
        approval.campaign_submit_for_review(campaign=draft, actor=personas["april"])
    assert draft.latest_version().review_state == CampaignVersion.ReviewState.DRAFT


# Approving


@pytest.mark.django_db(transaction=True)
@time_machine.travel(NOW, tick=False)
def test_approver_approves_and_activates_from_the_review_page(client, personas, submitted_and_mailed):
    submitted = submitted_and_mailed
    client = _login(client, personas["april"])
    page = client.get(reverse("campaigns:review", args=[submitted.pk]))
    assert b"Approve and activate" in page.content

    response = client.post(
        reverse("campaigns:approve", args=[submitted.pk]),
        {"review_key": _review_key(submitted), "comment": "Looks good"},
        follow=True,
    )
    run_burst_worker()

    assert b"Approved. Activated" in response.content
    assert _state(submitted) == (Campaign.Status.ACTIVE, CampaignVersion.ReviewState.APPROVED)
    assert submitted.live_version == submitted.latest_version()
    assert submitted.next_run_at == NOW
    decision = ReviewDecision.objects.get()
    assert (decision.version, decision.decided_by, decision.decision, decision.comment) == (
        submitted.latest_version(),
        personas["april"],
        ReviewDecision.Decision.APPROVE,
        "Looks good",
    )
    note = Notification.objects.get(user=personas["manny"])
    assert note.title == "Approved and activated: Spring sale (version 1)"
    assert [message.to for message in mail.outbox] == [["manny@example.com"]]
    assert "Looks good" in mail.outbox[0].body


def test_activation_needs_an_approval_when_a_policy_matches(personas, draft, policy):
    with pytest.raises(ValidationError, match="needs an approval"):
        lifecycle.campaign_activate(campaign=draft, actor=personas["april"])

    assert _state(draft) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.DRAFT)


def test_activate_button_is_hidden_and_refused_until_approved(client, personas, draft, policy):
    client = _login(client, personas["april"])
    activate = reverse("campaigns:activate", args=[draft.pk])

    assert activate.encode() not in client.get(draft.get_absolute_url()).content
    response = client.post(activate, follow=True)

    assert b"needs an approval" in response.content
    assert _state(draft)[0] == Campaign.Status.DRAFT


def test_self_approval_is_blocked_when_the_policy_says_so(client, personas, draft, policy):
    lifecycle.campaign_update_content(campaign=draft, actor=personas["april"], content=EDITED)
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    client = _login(client, personas["april"])  # the last editor

    page = client.get(reverse("campaigns:review", args=[draft.pk])).content.decode()
    assert "blocks self-approval" in page
    assert reverse("campaigns:approve", args=[draft.pk]) not in page
    response = client.post(reverse("campaigns:approve", args=[draft.pk]), {"review_key": _review_key(draft)})

    assert "blocks self-approval: another approver must approve it." in response.content.decode()
    assert _state(draft) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.IN_REVIEW)
    assert not ReviewDecision.objects.exists()
    # Another approver may.
    lifecycle.campaign_approve_and_activate(campaign=draft, actor=personas["ada"])
    assert _state(draft) == (Campaign.Status.ACTIVE, CampaignVersion.ReviewState.APPROVED)


def test_the_submitter_may_not_approve_when_self_approval_is_blocked(personas, draft, policy):
    approval.campaign_submit_for_review(campaign=draft, actor=personas["april"])

    with pytest.raises(ValidationError, match="blocks self-approval"):
        approval.campaign_approve(campaign=draft, actor=personas["april"])


def test_self_approval_is_allowed_when_the_policy_does_not_block_it(personas, draft):
    make_policy(personas, block_self_approval=False)
    approval.campaign_submit_for_review(campaign=draft, actor=personas["april"])

    lifecycle.campaign_approve_and_activate(campaign=draft, actor=personas["april"])

    assert _state(draft) == (Campaign.Status.ACTIVE, CampaignVersion.ReviewState.APPROVED)


def test_a_user_not_among_the_policys_approvers_cannot_approve(client, personas, draft):
    make_policy(personas, roles=[], users=[personas["ada"]])
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    client = _login(client, personas["april"])

    response = client.post(reverse("campaigns:approve", args=[draft.pk]), {"review_key": _review_key(draft)})

    assert "You are not among the approvers of this campaign" in response.content.decode()
    assert _state(draft) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.IN_REVIEW)
    with pytest.raises(ValidationError, match="not among the approvers"):
        approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="No")


def test_a_manager_can_never_activate_even_with_an_approved_version(client, personas, submitted):
    approval.campaign_approve(campaign=submitted, actor=personas["april"])
    client = _login(client, personas["manny"])

    assert client.post(reverse("campaigns:activate", args=[submitted.pk])).status_code == 403
    assert client.post(reverse("campaigns:approve", args=[submitted.pk])).status_code == 403
    assert client.get(reverse("campaigns:review", args=[submitted.pk])).status_code == 403
    assert _state(submitted) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.APPROVED)


def test_a_decision_on_a_stale_review_page_is_refused(client, personas, submitted):
    stale_key = _review_key(submitted)
    approval.campaign_request_changes(campaign=submitted, actor=personas["ada"], comment="Fix the subject")
    lifecycle.campaign_update_content(campaign=submitted, actor=personas["manny"], content=EDITED)
    approval.campaign_submit_for_review(campaign=submitted, actor=personas["manny"])

    response = _login(client, personas["april"]).post(
        reverse("campaigns:approve", args=[submitted.pk]), {"review_key": stale_key}
    )

    assert "changed since you opened the review" in response.content.decode()
    assert _state(submitted) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.IN_REVIEW)


@time_machine.travel(NOW, tick=False)
def test_a_refused_activation_records_no_approval(personas, audience, configuration, policy):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="At noon",
        channel_configuration=configuration,
        audience=audience,
        content=CONTENT,
        schedule=Campaign.Schedule.AT,
        start_at=NOW + timedelta(hours=1),
    )
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])

    with time_machine.travel(NOW + timedelta(hours=2), tick=False), pytest.raises(ValidationError, match="has passed"):
        lifecycle.campaign_approve_and_activate(campaign=campaign, actor=personas["april"])

    assert _state(campaign) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.IN_REVIEW)
    assert not ReviewDecision.objects.exists()
    assert not AuditEvent.objects.filter(action="campaign.approved").exists()


@time_machine.travel(NOW, tick=False)
def test_a_draft_whose_time_has_passed_cannot_be_submitted(personas, audience, configuration, policy):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="At one",
        channel_configuration=configuration,
        audience=audience,
        content=CONTENT,
        schedule=Campaign.Schedule.AT,
        start_at=NOW + timedelta(hours=1),
    )

    with time_machine.travel(NOW + timedelta(hours=2), tick=False), pytest.raises(ValidationError) as raised:
        approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])

    assert raised.value.message_dict == {"start_at": ["This date and time has passed: choose a later one."]}
    assert _state(campaign) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.DRAFT)
    assert not Notification.objects.exists()


# Requesting changes


@pytest.mark.django_db(transaction=True)
def test_request_changes_returns_the_version_to_draft_and_notifies_the_submitter(
    client, personas, submitted_and_mailed
):
    submitted = submitted_and_mailed
    client = _login(client, personas["april"])

    response = client.post(
        reverse("campaigns:request_changes", args=[submitted.pk]),
        {"review_key": _review_key(submitted), "comment": "Say which products are on sale."},
        follow=True,
    )
    run_burst_worker()

    assert b"Changes requested" in response.content
    assert _state(submitted) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.DRAFT)
    decision = ReviewDecision.objects.get()
    assert (decision.decision, decision.comment) == ("request_changes", "Say which products are on sale.")
    note = Notification.objects.get(user=personas["manny"])
    assert note.title == "Changes requested: Spring sale (version 1)"
    assert "Say which products are on sale." in note.body
    assert [message.to for message in mail.outbox] == [["manny@example.com"]]
    # The detail page shows the comment, and the version can be edited and submitted again.
    page = _login(client, personas["manny"]).get(submitted.get_absolute_url()).content.decode()
    assert "Say which products are on sale." in page
    assert reverse("campaigns:submit", args=[submitted.pk]) in page
    version = lifecycle.campaign_update_content(campaign=submitted, actor=personas["manny"], content=EDITED)
    assert version.number == 1
    approval.campaign_submit_for_review(campaign=submitted, actor=personas["manny"])


def test_request_changes_needs_a_comment(client, personas, submitted):
    response = _login(client, personas["april"]).post(
        reverse("campaigns:request_changes", args=[submitted.pk]),
        {"review_key": _review_key(submitted), "comment": "  "},
    )

    assert response.status_code == 200
    assert "a comment is required" in response.content.decode()
    assert _state(submitted) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.IN_REVIEW)


# An approval belongs to the version approved


def test_an_edit_after_approval_makes_a_new_version_that_needs_a_new_approval(personas, submitted):
    approval.campaign_approve(campaign=submitted, actor=personas["april"])

    version = lifecycle.campaign_update_content(campaign=submitted, actor=personas["manny"], content=EDITED)

    assert (version.number, version.review_state) == (2, CampaignVersion.ReviewState.DRAFT)
    v1 = submitted.versions.get(number=1)
    assert (v1.subject, v1.review_state) == (CONTENT.subject, CampaignVersion.ReviewState.APPROVED)
    with pytest.raises(ValidationError, match="submit version 2 for review"):
        lifecycle.campaign_activate(campaign=submitted, actor=personas["april"])

    approval.campaign_submit_for_review(campaign=submitted, actor=personas["manny"])
    lifecycle.campaign_approve_and_activate(campaign=submitted, actor=personas["april"])

    submitted.refresh_from_db()
    assert submitted.status == Campaign.Status.ACTIVE
    assert submitted.live_version.number == 2


def test_an_edit_during_a_pause_needs_approval_before_resuming(personas, submitted):
    lifecycle.campaign_approve_and_activate(campaign=submitted, actor=personas["april"])
    lifecycle.campaign_pause(campaign=submitted, actor=personas["april"])
    lifecycle.campaign_update_content(campaign=submitted, actor=personas["manny"], content=EDITED)

    with pytest.raises(ValidationError, match="needs an approval"):
        lifecycle.campaign_activate(campaign=submitted, actor=personas["april"])

    approval.campaign_submit_for_review(campaign=submitted, actor=personas["manny"])
    lifecycle.campaign_approve_and_activate(campaign=submitted, actor=personas["april"])
    submitted.refresh_from_db()
    assert (submitted.status, submitted.live_version.number) == (Campaign.Status.ACTIVE, 2)


def test_the_review_page_shows_the_diff_against_the_last_approved_version(client, personas, submitted):
    approval.campaign_approve(campaign=submitted, actor=personas["april"])
    lifecycle.campaign_update_content(campaign=submitted, actor=personas["manny"], content=EDITED)
    approval.campaign_submit_for_review(campaign=submitted, actor=personas["manny"])

    response = _login(client, personas["april"]).get(reverse("campaigns:review", args=[submitted.pk]))

    content = response.content.decode()
    assert "Against version 1, the last approved version." in content
    assert "<del>-&lt;p&gt;Spring sale&lt;/p&gt;</del>" in content
    assert "<ins>+&lt;p&gt;Summer sale&lt;/p&gt;</ins>" in content
    assert "<ins>+Hello again</ins>" in content
    assert [field.label for field in response.context["diff"]] == ["Subject", "HTML body"]


# The review page


def test_the_review_page_is_read_only_with_a_sandboxed_preview_audience_size_and_sender(client, personas, submitted):
    response = _login(client, personas["april"]).get(reverse("campaigns:review", args=[submitted.pk]))

    content = response.content.decode()
    preview_url = reverse("campaigns:preview", args=[submitted.pk, submitted.latest_version().number])
    assert f'<iframe class="preview" sandbox src="{preview_url}"' in content
    assert "allow-scripts" not in content
    assert response.context["audience_size"] == 3
    assert "news@example.com" in content
    assert "hunter2" not in content
    assert "When activated" in content  # the schedule
    assert "No earlier version was approved" in content
    assert "<textarea" in content and 'name="subject"' not in content  # only the decision's comment is editable


def test_viewer_sees_the_review_state_on_the_detail_page_but_no_review_actions(client, personas, submitted):
    client = _login(client, personas["vera"])

    page = client.get(submitted.get_absolute_url()).content.decode()

    assert "In review" in page and "Submitted for review by manny" in page
    for name in ("review", "approve", "request_changes", "submit", "edit", "activate"):
        assert reverse(f"campaigns:{name}", args=[submitted.pk]) not in page, name
    assert client.get(reverse("campaigns:review", args=[submitted.pk])).status_code == 403
    assert client.post(reverse("campaigns:request_changes", args=[submitted.pk]), {"comment": "x"}).status_code == 403
    assert client.post(reverse("campaigns:submit", args=[submitted.pk])).status_code == 403


def test_detail_buttons_follow_the_review_state_and_the_permission(client, personas, draft, policy):
    submit, review = reverse("campaigns:submit", args=[draft.pk]), reverse("campaigns:review", args=[draft.pk])
    edit = reverse("campaigns:edit", args=[draft.pk])

    page = _login(client, personas["manny"]).get(draft.get_absolute_url()).content.decode()
    assert submit in page and edit in page and review not in page
    assert "Needs an approval before it goes live (“Marketing review”). Approvers: ada, april." in " ".join(
        page.split()
    )

    client.post(submit)
    page = client.get(draft.get_absolute_url()).content.decode()
    assert submit not in page and edit not in page and review not in page

    page = _login(client, personas["april"]).get(draft.get_absolute_url()).content.decode()
    assert review in page


def test_the_review_badge_shows_each_state_in_colours_of_its_own(client, personas, draft, policy):
    client = _login(client, personas["manny"])

    def badge() -> tuple[str, str]:
        card = client.get(draft.get_absolute_url()).content.decode().split('id="approval"', 1)[1]
        return re.search(r'<span class="badge (badge-[\w-]+)">([^<]+)</span>', card).groups()

    assert badge() == ("badge-draft", "Draft")
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    assert badge() == ("badge-in_review", "In review")
    approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="Shorter")
    assert badge() == ("badge-changes_requested", "Changes requested")
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    approval.campaign_approve(campaign=draft, actor=personas["april"])
    assert badge() == ("badge-approved", "Approved")
    stylesheet = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()
    for state in ("in_review", "changes_requested", "approved"):
        assert f".badge-{state} {{" in stylesheet


# Audit


def test_every_state_change_and_decision_is_audited_with_before_and_after(personas, draft, policy):
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="Shorter")
    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)
    approval.campaign_submit_for_review(campaign=draft, actor=personas["manny"])
    lifecycle.campaign_approve_and_activate(campaign=draft, actor=personas["april"])
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])
    lifecycle.campaign_stop(campaign=draft, actor=personas["april"])

    events = AuditEvent.objects.filter(object_type="campaigns.campaign", object_id=str(draft.pk)).order_by("id")
    assert [(e.action, e.actor_label) for e in events] == [
        ("campaign.created", "manny"),
        ("campaign.submitted_for_review", "manny"),
        ("campaign.changes_requested", "april"),
        ("campaign.updated", "manny"),
        ("campaign.submitted_for_review", "manny"),
        ("campaign.approved", "april"),
        ("campaign.activated", "april"),
        ("campaign.paused", "april"),
        ("campaign.stopped", "april"),
    ]
    by_action = {e.action: e for e in events}
    assert by_action["campaign.changes_requested"].before["review_state"] == "in_review"
    assert by_action["campaign.changes_requested"].after == {
        "status": "draft",
        "version": 1,
        "review_state": "draft",
        "comment": "Shorter",
    }
    assert by_action["campaign.approved"].after["review_state"] == "approved"
    assert (by_action["campaign.activated"].before["status"], by_action["campaign.activated"].after["status"]) == (
        "draft",
        "active",
    )
    assert by_action["campaign.updated"].after["subject"] == "Hello again"
    assert by_action["campaign.stopped"].after["status"] == "stopped"


# Policy pages


def test_approval_policies_are_in_the_nav_only_for_those_who_may_see_them(client, personas):
    policies, campaigns = reverse("campaigns:policy_list"), reverse("campaigns:list")
    for name in ("april", "manny", "vera", "otto"):
        assert (
            f'href="{policies}"'
            not in _login(client, personas[name]).get(reverse("permissions:notifications")).content.decode()
        )

    page = _login(client, personas["ada"]).get(policies).content.decode()

    assert f'<a href="{policies}" aria-current="page">Approval policies</a>' in page
    assert f'<a href="{campaigns}">Campaigns</a>' in page  # the policy pages are not the campaigns tab


def test_administrator_creates_edits_and_deletes_a_policy(client, personas):
    client = _login(client, personas["ada"])
    approver_role = Group.objects.get(name=Role.APPROVER)

    response = client.post(
        reverse("campaigns:policy_create"),
        {
            "name": "Legal notices",
            "kinds": ["scheduled"],
            "channels": ["email"],
            "tags": "legal, policy",
            "approver_groups": [approver_role.pk],
            "approver_users": [personas["ada"].pk],
            "block_self_approval": "on",
            "is_active": "on",
        },
        follow=True,
    )

    policy = ApprovalPolicy.objects.get()
    assert response.redirect_chain[-1][0] == reverse("campaigns:policy_list")
    assert (policy.kinds, policy.categories, policy.channels, policy.tags) == (
        ["scheduled"],
        [],
        ["email"],
        ["legal", "policy"],
    )
    assert list(policy.approver_groups.all()) == [approver_role]
    assert list(policy.approver_users.all()) == [personas["ada"]]
    assert policy.block_self_approval and policy.is_active
    assert "Legal notices" in response.content.decode()

    edit = reverse("campaigns:policy_edit", args=[policy.pk])
    assert b'value="legal, policy"' in client.get(edit).content
    client.post(edit, {"name": "Legal", "approver_groups": [approver_role.pk]})
    policy.refresh_from_db()
    assert (policy.name, policy.tags, policy.block_self_approval, policy.is_active) == ("Legal", [], False, False)

    client.post(reverse("campaigns:policy_delete", args=[policy.pk]))
    assert not ApprovalPolicy.objects.exists()
    actions = list(AuditEvent.objects.filter(object_type="campaigns.approvalpolicy").values_list("action", flat=True))
    assert sorted(actions) == ["approval_policy.changed", "approval_policy.created", "approval_policy.deleted"]
    changed = AuditEvent.objects.get(action="approval_policy.changed")
    assert (changed.before["name"], changed.after["name"]) == ("Legal notices", "Legal")


def test_a_policy_without_approvers_is_refused_by_the_form(client, personas):
    response = _login(client, personas["ada"]).post(reverse("campaigns:policy_create"), {"name": "Nobody"})

    assert response.status_code == 200
    assert "Name an approver role, approver users, or both." in response.content.decode()
    assert not ApprovalPolicy.objects.exists()


@pytest.mark.both_databases  # SQLite raised OverflowError comparing the id
@pytest.mark.parametrize("field", ["approver_groups", "approver_users"])
def test_an_approver_id_past_64_bits_is_refused_by_the_form(client, personas, field):
    response = _login(client, personas["ada"]).post(
        reverse("campaigns:policy_create"), {"name": "Huge", field: ["9" * 400]}
    )

    assert response.status_code == 200
    assert f"“{'9' * 400}” is not a valid value." in response.context["form"].errors[field]
    assert not ApprovalPolicy.objects.exists()


@pytest.mark.parametrize("persona", ["april", "manny", "vera", "otto"])
def test_only_administrators_manage_policies(client, personas, persona):
    policy = make_policy(personas)
    client = _login(client, personas[persona])

    for url in (
        reverse("campaigns:policy_list"),
        reverse("campaigns:policy_create"),
        reverse("campaigns:policy_edit", args=[policy.pk]),
        reverse("campaigns:policy_delete", args=[policy.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("campaigns:policy_delete", args=[policy.pk])).status_code == 403
    assert ApprovalPolicy.objects.filter(pk=policy.pk).exists()
