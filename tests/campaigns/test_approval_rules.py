"""The rules of approval at the service level: what may be decided, by whom, and what may go live.

tests/campaigns/test_approval.py walks the pages; these pin each rule of docs/approval.md through the services
that every caller (pages, API, jobs) goes through, including the refusals a page never offers.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError

from audiences.models import Audience, Profile
from campaigns.models import ApprovalPolicy, Campaign, CampaignVersion, ReviewDecision
from campaigns.services import approval, lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from permissions.models import AuditEvent, Notification
from permissions.roles import Role
from tests.conftest import TEST_FOOTERS

CONTENT = lifecycle.Content("Hello", "<p>Hi</p>\n<p>Spring sale</p>", "Hi")
EDITED = lifecycle.Content("Hello again", "<p>Hi</p>\n<p>Summer sale</p>", "Hi")
REVIEWERS = (Role.APPROVER, Role.ADMINISTRATOR)


@pytest.fixture
def draft(personas):
    Profile.objects.create(email="p@example.com")
    configuration = ChannelConfiguration(name="Relay", channel="email")
    configuration.set_settings(
        EmailSettings(from_email="news@example.com", host="127.0.0.1", port=1025, **TEST_FOOTERS)
    )
    configuration.save()
    return lifecycle.campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=configuration,
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=CONTENT,
        tags=["sale"],
    )


def make_policy(personas, *, roles=REVIEWERS, users=(), **rules) -> ApprovalPolicy:
    return approval.approval_policy_create(
        actor=personas["ada"],
        rules=approval.PolicyRules(
            name=rules.pop("name", "Marketing review"),
            approver_groups=[Group.objects.get(name=role.value) for role in roles],
            approver_users=list(users),
            **rules,
        ),
    )


def make_user(django_user_model, username, *, role=None, permissions=(), is_active=True):
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "x", is_active=is_active)
    if role:
        user.groups.add(Group.objects.get(name=role.value))
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def submit(campaign, actor):
    return approval.campaign_submit_for_review(campaign=campaign, actor=actor)


def state(campaign) -> tuple[str, str]:
    campaign.refresh_from_db()
    return campaign.status, campaign.latest_version().review_state


def titles(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("title", flat=True))


# Only a version in review can be decided on


def test_approving_a_version_never_submitted_is_refused_and_it_still_cannot_go_live(personas, draft):
    make_policy(personas)

    with pytest.raises(ValidationError, match="Version 1 is not in review"):
        approval.campaign_approve(campaign=draft, actor=personas["april"])

    assert state(draft) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.DRAFT)
    assert not ReviewDecision.objects.exists()
    with pytest.raises(ValidationError, match="needs an approval"):
        lifecycle.campaign_activate(campaign=draft, actor=personas["april"])


def test_approve_and_activate_of_a_version_never_submitted_activates_nothing(personas, draft):
    with pytest.raises(ValidationError, match="not in review"):
        lifecycle.campaign_approve_and_activate(campaign=draft, actor=personas["april"])

    assert state(draft) == (Campaign.Status.DRAFT, CampaignVersion.ReviewState.DRAFT)


def test_requesting_changes_on_a_version_not_in_review_is_refused(personas, draft):
    make_policy(personas)

    with pytest.raises(ValidationError, match="not in review"):
        approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="Shorter")

    assert not ReviewDecision.objects.exists()
    assert not titles(personas["manny"])


def test_an_approved_version_cannot_be_approved_again_or_sent_back(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])
    approval.campaign_approve(campaign=draft, actor=personas["april"])

    with pytest.raises(ValidationError, match="not in review"):
        approval.campaign_approve(campaign=draft, actor=personas["ada"])
    with pytest.raises(ValidationError, match="not in review"):
        approval.campaign_request_changes(campaign=draft, actor=personas["ada"], comment="Too late")

    assert state(draft)[1] == CampaignVersion.ReviewState.APPROVED
    assert ReviewDecision.objects.count() == 1


def test_a_decision_with_the_key_of_an_earlier_submission_is_refused(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])
    stale_key = draft.latest_version().review_key()
    approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="Shorter")
    submit(draft, personas["manny"])

    with pytest.raises(ValidationError, match="changed since you opened the review"):
        approval.campaign_approve(campaign=draft, actor=personas["april"], review_key=stale_key)
    with pytest.raises(ValidationError, match="changed since you opened the review"):
        approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="x", review_key=stale_key)
    assert state(draft)[1] == CampaignVersion.ReviewState.IN_REVIEW

    approval.campaign_approve(campaign=draft, actor=personas["april"], review_key=draft.latest_version().review_key())
    assert state(draft)[1] == CampaignVersion.ReviewState.APPROVED


# Who may decide


def test_a_user_named_by_a_policy_without_the_approve_permission_cannot_decide(personas, draft):
    make_policy(personas, users=[personas["manny"], personas["vera"]])
    submit(draft, personas["april"])

    for user in (personas["manny"], personas["vera"]):
        with pytest.raises(ValidationError) as refused:
            approval.campaign_approve(campaign=draft, actor=user)
        assert refused.value.messages == ["You do not hold the permission to approve campaigns."]
        with pytest.raises(ValidationError, match="do not hold the permission"):
            approval.campaign_request_changes(campaign=draft, actor=user, comment="No")

    assert state(draft)[1] == CampaignVersion.ReviewState.IN_REVIEW


def test_an_approver_outside_the_policy_may_not_send_a_version_back_either(personas, draft):
    make_policy(personas, roles=[Role.ADMINISTRATOR], name="Admins only")
    submit(draft, personas["manny"])

    with pytest.raises(ValidationError, match="only the approvers named by “Admins only” may decide"):
        approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="No")

    approval.campaign_request_changes(campaign=draft, actor=personas["ada"], comment="No")
    assert state(draft)[1] == CampaignVersion.ReviewState.DRAFT


def test_the_refusal_names_every_policy_that_matches(personas, draft):
    make_policy(personas, roles=[Role.ADMINISTRATOR], name="Admins")
    make_policy(personas, roles=[Role.ADMINISTRATOR], name="Sales", tags=["sale"])
    submit(draft, personas["manny"])

    with pytest.raises(ValidationError) as refused:
        approval.campaign_approve(campaign=draft, actor=personas["april"])

    assert "only the approvers named by “Admins”, “Sales” may decide." in refused.value.messages[0]


def test_only_the_policies_that_match_name_the_approvers(personas, draft):
    make_policy(personas, roles=[], users=[personas["april"]], name="Legal", tags=["legal"])
    make_policy(personas, roles=[Role.ADMINISTRATOR], name="Sales", tags=["sale"])

    assert [user.username for user in approval.campaign_approvers(draft)] == ["ada"]


def test_without_a_policy_any_holder_of_the_approve_permission_decides_even_on_their_own_submission(personas, draft):
    submit(draft, personas["april"])

    with pytest.raises(ValidationError, match="do not hold the permission"):
        approval.campaign_approve(campaign=draft, actor=personas["manny"])
    approval.campaign_approve(campaign=draft, actor=personas["april"])

    assert state(draft)[1] == CampaignVersion.ReviewState.APPROVED


def test_the_last_editor_may_not_approve_but_another_approver_may(personas, draft):
    make_policy(personas)
    lifecycle.campaign_update_content(campaign=draft, actor=personas["april"], content=EDITED)
    submit(draft, personas["manny"])

    with pytest.raises(ValidationError, match="blocks self-approval"):
        approval.campaign_approve(campaign=draft, actor=personas["april"])
    approval.campaign_approve(campaign=draft, actor=personas["ada"])

    assert state(draft)[1] == CampaignVersion.ReviewState.APPROVED


def test_self_approval_is_blocked_when_any_matching_policy_blocks_it(personas, draft):
    make_policy(personas, name="Relaxed", block_self_approval=False)
    make_policy(personas, name="Strict", tags=["sale"])
    submit(draft, personas["april"])

    with pytest.raises(ValidationError, match="the policy “Strict” blocks self-approval"):
        approval.campaign_approve(campaign=draft, actor=personas["april"])

    assert state(draft)[1] == CampaignVersion.ReviewState.IN_REVIEW


def test_a_policy_that_does_not_match_does_not_block_self_approval(personas, draft):
    make_policy(personas, name="Relaxed", block_self_approval=False)
    make_policy(personas, name="Legal", tags=["legal"])
    submit(draft, personas["april"])

    approval.campaign_approve(campaign=draft, actor=personas["april"])

    assert state(draft)[1] == CampaignVersion.ReviewState.APPROVED


def test_a_blocked_self_approver_may_still_send_their_version_back(personas, draft):
    make_policy(personas)
    submit(draft, personas["april"])

    approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="Wrong audience")

    assert state(draft)[1] == CampaignVersion.ReviewState.DRAFT


def test_approvers_hold_the_permission_from_a_role_or_their_own_and_are_active(personas, draft, django_user_model):
    direct = make_user(django_user_model, "dina", permissions=["campaigns.approve_campaign"])
    gone = make_user(django_user_model, "gus", role=Role.APPROVER, is_active=False)
    make_policy(personas, roles=[], users=[direct, gone, personas["vera"]])

    assert [user.username for user in approval.campaign_approvers(draft)] == ["dina"]


def test_without_a_policy_every_active_holder_of_the_approve_permission_is_an_approver(
    personas, draft, django_user_model
):
    make_user(django_user_model, "gus", role=Role.APPROVER, is_active=False)
    make_policy(personas, name="Off", is_active=False, roles=[Role.ADMINISTRATOR])

    assert [user.username for user in approval.campaign_approvers(draft)] == ["ada", "april"]


# Submitting


def test_submitting_is_refused_when_the_only_approver_is_inactive(personas, draft, django_user_model):
    gone = make_user(django_user_model, "gus", role=Role.APPROVER, is_active=False)
    make_policy(personas, roles=[], users=[gone])

    with pytest.raises(ValidationError, match="No one can approve this campaign"):
        submit(draft, personas["manny"])
    assert state(draft)[1] == CampaignVersion.ReviewState.DRAFT


def test_a_live_campaigns_new_version_is_submitted_but_a_finished_campaign_is_not(personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    with pytest.raises(ValidationError, match="Version 1 is already live"):
        submit(draft, personas["manny"])
    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)
    assert submit(draft, personas["manny"]).number == 2  # the active campaign goes on sending version 1

    lifecycle.campaign_stop(campaign=draft, actor=personas["april"])
    with pytest.raises(ValidationError, match="A campaign that is stopped cannot be submitted"):
        submit(draft, personas["manny"])


def test_a_version_is_submitted_once(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])

    with pytest.raises(ValidationError, match="Version 1 is already in review"):
        submit(draft, personas["manny"])

    approval.campaign_approve(campaign=draft, actor=personas["april"])
    with pytest.raises(ValidationError, match="Version 1 is already approved"):
        submit(draft, personas["manny"])


def test_the_live_version_of_a_paused_campaign_is_not_submitted_again(personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])

    with pytest.raises(ValidationError, match="already live: edit the content"):
        submit(draft, personas["manny"])

    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)
    version = submit(draft, personas["manny"])
    assert (version.number, version.review_state) == (2, CampaignVersion.ReviewState.IN_REVIEW)


def test_the_submitter_and_a_blocked_self_approver_are_not_asked_to_review(personas, draft, django_user_model):
    abe = make_user(django_user_model, "abe", role=Role.APPROVER)
    make_policy(personas)
    lifecycle.campaign_update_content(campaign=draft, actor=personas["ada"], content=EDITED)

    submit(draft, personas["april"])

    assert (titles(personas["april"]), titles(personas["ada"])) == ([], [])
    assert titles(abe) == ["Review requested: Spring sale (version 1)"]


def test_submitting_records_who_and_when_and_notifies_the_other_approvers(personas, draft):
    make_policy(personas)

    version = submit(draft, personas["april"])

    version.refresh_from_db()
    assert (version.submitted_by, version.review_state) == (personas["april"], CampaignVersion.ReviewState.IN_REVIEW)
    assert version.submitted_at is not None
    assert titles(personas["ada"]) == ["Review requested: Spring sale (version 1)"]
    assert titles(personas["april"]) == []
    event = AuditEvent.objects.get(action="campaign.submitted_for_review")
    assert (event.before["review_state"], event.after["review_state"]) == ("draft", "in_review")


# Deciding


def test_the_submitter_is_told_of_an_approval_with_the_comment(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])

    approval.campaign_approve(campaign=draft, actor=personas["april"], comment="  Nice work  ")

    note = Notification.objects.get(user=personas["manny"])
    assert note.title == "Approved: Spring sale (version 1)"
    assert note.body == "april approved version 1 of “Spring sale”.\n\nNice work"
    assert note.url == draft.get_absolute_url()
    decision = ReviewDecision.objects.get()
    assert (decision.decision, decision.comment, decision.decided_by) == ("approve", "Nice work", personas["april"])


def test_approve_and_activate_tells_the_submitter_it_went_live(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])

    lifecycle.campaign_approve_and_activate(campaign=draft, actor=personas["april"])

    assert titles(personas["manny"]) == ["Approved and activated: Spring sale (version 1)"]
    assert state(draft) == (Campaign.Status.ACTIVE, CampaignVersion.ReviewState.APPROVED)


def test_no_one_is_told_of_their_own_decision(personas, draft):
    submit(draft, personas["april"])

    approval.campaign_approve(campaign=draft, actor=personas["april"])

    assert titles(personas["april"]) == []
    assert not Notification.objects.filter(title__startswith="Approved").exists()


def test_changes_requested_return_the_version_to_draft_with_the_comment_for_the_submitter(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])

    approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment=" Shorter subject ")

    assert state(draft)[1] == CampaignVersion.ReviewState.DRAFT
    note = Notification.objects.get(user=personas["manny"])
    assert note.title == "Changes requested: Spring sale (version 1)"
    assert note.body.endswith(":\n\nShorter subject")
    decision = ReviewDecision.objects.get()
    assert (decision.decision, decision.comment) == ("request_changes", "Shorter subject")
    event = AuditEvent.objects.get(action="campaign.changes_requested")
    assert (event.before["review_state"], event.after["review_state"]) == ("in_review", "draft")
    # Back in draft the version is edited in place, then submitted again.
    version = lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)
    assert (version.number, version.subject) == (1, EDITED.subject)


def test_a_blank_comment_is_no_comment(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])

    with pytest.raises(ValidationError, match="a comment is required"):
        approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="  \n ")

    assert state(draft)[1] == CampaignVersion.ReviewState.IN_REVIEW


# What may go live (campaigns.services.lifecycle)


def test_an_approved_version_may_be_activated_later_by_a_publisher(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])
    approval.campaign_approve(campaign=draft, actor=personas["april"])

    lifecycle.campaign_activate(campaign=draft, actor=personas["ada"])

    assert state(draft) == (Campaign.Status.ACTIVE, CampaignVersion.ReviewState.APPROVED)


def test_a_policy_added_while_a_campaign_is_live_applies_to_its_next_version_only(personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    make_policy(personas)
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])

    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])  # resumed, content unchanged
    assert state(draft)[0] == Campaign.Status.ACTIVE

    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])
    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)
    with pytest.raises(ValidationError, match="submit version 2 for review"):
        lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    draft.refresh_from_db()
    assert (draft.status, draft.live_version.number) == (Campaign.Status.PAUSED, 1)


def test_a_paused_campaign_with_its_next_version_in_review_does_not_resume(personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])
    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)
    submit(draft, personas["manny"])

    with pytest.raises(ValidationError, match="Version 2 is in review"):
        lifecycle.campaign_activate(campaign=draft, actor=personas["april"])

    lifecycle.campaign_approve_and_activate(campaign=draft, actor=personas["april"])
    draft.refresh_from_db()
    assert (draft.status, draft.live_version.number) == (Campaign.Status.ACTIVE, 2)


def test_an_edit_of_a_live_version_without_a_policy_makes_a_new_version(personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])

    version = lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)

    assert version.number == 2
    assert draft.versions.get(number=1).subject == CONTENT.subject


def test_a_draft_version_is_edited_in_place(personas, draft):
    version = lifecycle.campaign_update_content(campaign=draft, actor=personas["april"], content=EDITED)

    assert (version.number, draft.versions.count()) == (1, 1)
    assert version.last_editor_id == personas["april"].pk


# Policies


def test_changing_a_policy_is_audited_only_when_something_changed(personas, draft):
    policy = make_policy(personas)
    rules = approval.PolicyRules(
        name="Marketing review", approver_groups=[Group.objects.get(name=role.value) for role in REVIEWERS]
    )

    approval.approval_policy_update(actor=personas["ada"], policy=policy, rules=rules)
    assert not AuditEvent.objects.filter(action="approval_policy.changed").exists()

    approval.approval_policy_update(
        actor=personas["ada"], policy=policy, rules=approval.PolicyRules(name="Legal", tags=["legal"], **_ada(personas))
    )

    event = AuditEvent.objects.get(action="approval_policy.changed")
    unchanged = {"is_active": True, "kinds": [], "categories": [], "channels": [], "block_self_approval": True}
    assert event.before == {
        "name": "Marketing review",
        **unchanged,
        "tags": [],
        "approver_roles": sorted(role.value for role in REVIEWERS),
        "approver_users": [],
    }
    assert event.after == {
        "name": "Legal",
        **unchanged,
        "tags": ["legal"],
        "approver_roles": [],
        "approver_users": ["ada"],
    }
    assert not approval.approval_required(draft)  # the new rules apply at once


def _ada(personas) -> dict:
    return {"approver_users": [personas["ada"]]}


def test_every_rule_of_a_policy_is_in_its_audit_record(personas):
    make_policy(
        personas,
        name="Texts",
        kinds=["api_triggered"],
        categories=["transactional"],
        channels=["sms"],
        tags=["otp"],
        block_self_approval=False,
        is_active=False,
        roles=[Role.APPROVER],
        users=[personas["ada"]],
    )

    assert AuditEvent.objects.get(action="approval_policy.created").after == {
        "name": "Texts",
        "is_active": False,
        "kinds": ["api_triggered"],
        "categories": ["transactional"],
        "channels": ["sms"],
        "tags": ["otp"],
        "approver_roles": [Role.APPROVER.value],
        "approver_users": ["ada"],
        "block_self_approval": False,
    }


def test_deleting_a_policy_is_audited_and_lifts_the_requirement(personas, draft):
    policy = make_policy(personas)

    approval.approval_policy_delete(actor=personas["ada"], policy=policy)

    event = AuditEvent.objects.get(action="approval_policy.deleted")
    assert event.before["name"] == "Marketing review"
    assert event.before["approver_roles"] == sorted(role.value for role in REVIEWERS)
    assert not approval.approval_required(draft)


def test_a_policy_update_needs_an_approver_and_changes_nothing_when_refused(personas):
    policy = make_policy(personas)

    with pytest.raises(ValidationError) as refused:
        approval.approval_policy_update(actor=personas["ada"], policy=policy, rules=approval.PolicyRules(name="Nobody"))

    assert refused.value.message_dict == {"approver_groups": ["Name an approver role, approver users, or both."]}

    policy.refresh_from_db()
    assert policy.name == "Marketing review"


# The reviewer's diff


def test_the_diff_is_against_the_newest_approved_version_before_this_one(personas, draft):
    make_policy(personas)
    submit(draft, personas["manny"])
    approval.campaign_approve(campaign=draft, actor=personas["april"])  # v1 approved
    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)  # v2
    submit(draft, personas["manny"])
    approval.campaign_approve(campaign=draft, actor=personas["april"])  # v2 approved
    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=CONTENT)  # v3
    submit(draft, personas["manny"])
    approval.campaign_request_changes(campaign=draft, actor=personas["april"], comment="Again")  # v3 draft
    v4 = lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)

    assert v4.number == 3  # v3 went back to draft: edited in place
    assert approval.last_approved_version(v4).number == 2
    assert approval.last_approved_version(draft.versions.get(number=2)).number == 1
    assert approval.last_approved_version(draft.versions.get(number=1)) is None


def test_the_diff_skips_a_version_that_went_live_without_approval(personas, draft):
    policy = make_policy(personas)
    submit(draft, personas["manny"])
    lifecycle.campaign_approve_and_activate(campaign=draft, actor=personas["april"])  # v1 approved
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])
    approval.approval_policy_delete(actor=personas["ada"], policy=policy)
    lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)  # v2
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])  # v2 live, never approved
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])

    v3 = lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=CONTENT)

    assert v3.number == 3
    assert approval.last_approved_version(v3).number == 1


def test_the_diff_is_against_a_version_of_the_same_campaign(personas, draft):
    lifecycle.campaign_activate(campaign=draft, actor=personas["april"])  # v1 live, no policy: never approved
    lifecycle.campaign_pause(campaign=draft, actor=personas["april"])
    v2 = lifecycle.campaign_update_content(campaign=draft, actor=personas["manny"], content=EDITED)
    other = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Other",
        channel_configuration=draft.channel_configuration,
        audience=draft.audience,
        content=CONTENT,
    )
    submit(other, personas["manny"])
    approval.campaign_approve(campaign=other, actor=personas["april"])  # another campaign's v1 approved

    assert v2.number == 2
    assert approval.last_approved_version(v2) is None


def test_the_diff_shows_each_changed_field_with_added_removed_and_context_lines(personas, draft):
    old = CampaignVersion(subject="Hello", html_body="a\nb\nc\nd\ne\nf\ng", text_body="Hi")
    new = CampaignVersion(subject="Hello", html_body="a\nb\nc\nD\ne\nf\ng", text_body="Hi there")

    diffs = approval.content_diff(old=old, new=new)

    assert [diff.label for diff in diffs] == ["HTML body", "Text body"]
    assert [(line.kind, line.text) for line in diffs[0].lines] == [
        ("hunk", "@@ -2,5 +2,5 @@"),
        ("context", " b"),
        ("context", " c"),
        ("removed", "-d"),
        ("added", "+D"),
        ("context", " e"),
        ("context", " f"),
    ]
    assert [(line.kind, line.text) for line in diffs[1].lines] == [
        ("hunk", "@@ -1 +1 @@"),
        ("removed", "-Hi"),
        ("added", "+Hi there"),
    ]
