"""Approval: which campaigns need an approval before they go live, who may give it, and the review of a version.

A campaign needs approval when at least one active ApprovalPolicy matches it. Its approvers are the union of
the matching policies' approver roles and users who also hold campaigns.approve_campaign; when no policy
matches, review is optional and anyone holding that permission may decide. A version in review is locked
(campaigns.services.lifecycle refuses edits); an approval belongs to the version approved, so an edit after it makes a
new version that needs a new approval. campaigns.services.lifecycle.campaign_activate enforces the approval.

Permissions are checked by callers, as in campaigns.services.lifecycle; who is among a campaign's approvers, and
self-approval, are rules of the policies and are checked here.
"""

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from campaigns.models import ApprovalPolicy, Campaign, CampaignVersion, ReviewDecision
from campaigns.schedules import schedule_errors
from campaigns.unsubscribe import visible_unsubscribe_errors
from permissions.services.audit import audit_record
from permissions.services.notifications import notification_send, notifications_resolve

APPROVE_PERMISSION = "campaigns.approve_campaign"


# Policies


@dataclass(frozen=True)
class PolicyRules:
    """What an administrator sets on a policy."""

    name: str
    kinds: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    approver_groups: list[Group] = field(default_factory=list)
    approver_users: list = field(default_factory=list)
    block_self_approval: bool = True
    is_active: bool = True


def _policy_values(policy: ApprovalPolicy) -> dict:
    return {
        "name": policy.name,
        "is_active": policy.is_active,
        "kinds": policy.kinds,
        "categories": policy.categories,
        "channels": policy.channels,
        "tags": policy.tags,
        "approver_roles": sorted(group.name for group in policy.approver_groups.all()),
        "approver_users": sorted(user.get_username() for user in policy.approver_users.all()),
        "block_self_approval": policy.block_self_approval,
    }


def _apply_rules(policy: ApprovalPolicy, rules: PolicyRules) -> None:
    if not rules.approver_groups and not rules.approver_users:
        raise ValidationError({"approver_groups": "Name an approver role, approver users, or both."})
    for name in ("name", "kinds", "categories", "channels", "tags", "block_self_approval", "is_active"):
        setattr(policy, name, getattr(rules, name))
    policy.full_clean(exclude=["created_by"])  # a name already taken is reported, not an IntegrityError
    policy.save()
    policy.approver_groups.set(rules.approver_groups)
    policy.approver_users.set(rules.approver_users)


@transaction.atomic
def approval_policy_create(*, actor, rules: PolicyRules) -> ApprovalPolicy:
    """Create a policy. Raises ValidationError when it names no approver."""
    policy = ApprovalPolicy(created_by=actor)
    _apply_rules(policy, rules)
    audit_record(actor=actor, action="approval_policy.created", obj=policy, after=_policy_values(policy))
    return policy


@transaction.atomic
def approval_policy_update(*, actor, policy: ApprovalPolicy, rules: PolicyRules) -> ApprovalPolicy:
    """Change a policy. Versions already approved stay approved; the new rules apply to the next decision."""
    policy = ApprovalPolicy.objects.select_for_update().get(pk=policy.pk)
    before = _policy_values(policy)
    _apply_rules(policy, rules)
    after = _policy_values(policy)
    if before != after:
        audit_record(actor=actor, action="approval_policy.changed", obj=policy, before=before, after=after)
    return policy


@transaction.atomic
def approval_policy_delete(*, actor, policy: ApprovalPolicy) -> None:
    audit_record(actor=actor, action="approval_policy.deleted", obj=policy, before=_policy_values(policy))
    policy.delete()


def matching_policies(campaign: Campaign) -> list[ApprovalPolicy]:
    """The active policies that match the campaign, with its settings in effect or with its latest version's (a
    version that changes tags or channel cannot leave a policy by doing so): if any, it needs an approval to go
    live."""
    policies = ApprovalPolicy.objects.filter(is_active=True).prefetch_related("approver_groups", "approver_users")
    shapes = [campaign]
    if campaign.pk is not None and (latest := campaign.latest_version()) is not None:
        shapes.append(campaign.with_settings_of(latest))
    return [policy for policy in policies if any(policy.matches(shape) for shape in shapes)]


def approval_required(campaign: Campaign) -> bool:
    return bool(matching_policies(campaign))


def campaign_approvers(campaign: Campaign, policies: list[ApprovalPolicy] | None = None) -> list:
    """The active users who may approve the campaign: those named by the matching policies (by role or by
    name) who hold the approve permission, or, when no policy matches, everyone holding it."""
    if policies is None:
        policies = matching_policies(campaign)
    # Permissions come from roles and user permissions, which ModelBackend reads; other backends only log in.
    users = get_user_model().objects.with_perm(APPROVE_PERMISSION, backend="django.contrib.auth.backends.ModelBackend")
    if policies:
        group_ids = {group.pk for policy in policies for group in policy.approver_groups.all()}
        user_ids = {user.pk for policy in policies for user in policy.approver_users.all()}
        named = get_user_model().objects.filter(Q(groups__in=group_ids) | Q(pk__in=user_ids))
        users = users.filter(pk__in=named.values("pk"))
    return list(users.order_by("username"))


def _self_approval_policy(policies: list[ApprovalPolicy], version: CampaignVersion, user) -> ApprovalPolicy | None:
    """The policy that bars `user` from approving `version` because they submitted or last edited it."""
    if user.pk not in (version.submitted_by_id, version.last_editor_id):
        return None
    return next((policy for policy in policies if policy.block_self_approval), None)


def decision_refusal(
    *, campaign: Campaign, version: CampaignVersion, user, approving: bool, policies: list | None = None
) -> str | None:
    """Why `user` may not decide on `version` (approve it, or request changes), or None when they may."""
    if policies is None:
        policies = matching_policies(campaign)
    if not user.has_perm(APPROVE_PERMISSION):
        return "You do not hold the permission to approve campaigns."
    if policies and user.pk not in {approver.pk for approver in campaign_approvers(campaign, policies)}:
        names = ", ".join(f"“{policy.name}”" for policy in policies)
        return f"You are not among the approvers of this campaign: only the approvers named by {names} may decide."
    if approving and (policy := _self_approval_policy(policies, version, user)):
        return (
            f"You submitted or last edited version {version.number}, and the policy “{policy.name}” blocks "
            "self-approval: another approver must approve it."
        )
    return None


# Review


def _state(campaign: Campaign, version: CampaignVersion) -> dict:
    return {"status": campaign.status, "version": version.number, "review_state": version.review_state}


def _notify(*, users: Iterable, actor, title: str, body: str, url: str) -> None:
    """Notify in the action's transaction, so a refused or rolled-back action tells no one anything; the
    emails are sent by a job once it commits. The actor is not told of their own action."""
    users = [user for user in users if user is not None and user.pk != actor.pk]
    if users:
        notification_send(users=users, title=title, body=body, url=url)


def _locked_campaign(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().select_related("channel_configuration").get(pk=campaign.pk)


@transaction.atomic
def campaign_submit_for_review(*, campaign: Campaign, actor) -> CampaignVersion:
    """Submit the campaign's latest version for review: it is locked until an approver approves it or requests
    changes, and the approvers are notified. Refused when no one could approve it, and for a draft whose schedule
    has nothing left to send (a time that has passed): no approver could activate it."""
    campaign = _locked_campaign(campaign)
    version = campaign.latest_version()
    if campaign.status in Campaign.FINISHED_STATUSES or campaign.archived_at is not None:
        state = "archived" if campaign.archived_at is not None else campaign.get_status_display().lower()
        raise ValidationError(f"A campaign that is {state} cannot be submitted for review.")
    if version.review_state == CampaignVersion.ReviewState.IN_REVIEW:
        raise ValidationError(f"Version {version.number} is already in review.")
    if version.review_state == CampaignVersion.ReviewState.APPROVED:
        raise ValidationError(f"Version {version.number} is already approved.")
    if campaign.live_version_id == version.pk:
        raise ValidationError(f"Version {version.number} is already live: edit the content to make a new version.")
    # The version's schedule is checked against the clock where it is new: a draft's, or a live campaign's changed
    # one (a live campaign's own start date may have passed already).
    proposed = campaign.with_settings_of(version)
    if campaign.status == Campaign.Status.DRAFT or campaign.schedule_differs(proposed):
        if errors := schedule_errors(proposed, now=timezone.now()):
            raise ValidationError(errors)
    if errors := visible_unsubscribe_errors(campaign=campaign, version=version):
        raise ValidationError(errors)
    before = _state(campaign, version)
    version.review_state = CampaignVersion.ReviewState.IN_REVIEW
    version.submitted_by = actor
    version.submitted_at = timezone.now()
    policies = matching_policies(campaign)
    reviewers = [
        user for user in campaign_approvers(campaign, policies) if not _self_approval_policy(policies, version, user)
    ]
    if not reviewers:
        raise ValidationError(
            "No one can approve this campaign: the approval policies that match it name no other user holding "
            "the approve permission. Ask a campaign administrator to name approvers."
        )
    version.save(update_fields=["review_state", "submitted_by", "submitted_at"])
    audit_record(
        actor=actor,
        action="campaign.submitted_for_review",
        obj=campaign,
        before=before,
        after=_state(campaign, version),
    )
    _notify(
        users=reviewers,
        actor=actor,
        title=f"Review requested: {campaign.name} (version {version.number})",
        body=f"{actor.get_username()} submitted version {version.number} of “{campaign.name}” for your review.",
        url=reverse("campaigns:review", args=[campaign.pk]),
    )
    return version


def _version_in_review(campaign: Campaign, review_key: str | None) -> CampaignVersion:
    version = campaign.latest_version()
    if version.review_state != CampaignVersion.ReviewState.IN_REVIEW:
        raise ValidationError(f"Version {version.number} is not in review.")
    if review_key is not None and review_key != version.review_key():
        raise ValidationError(f"Version {version.number} changed since you opened the review: review it again.")
    return version


@transaction.atomic
def campaign_approve(
    *, campaign: Campaign, actor, review_key: str | None = None, comment: str = "", activating: bool = False
) -> CampaignVersion:
    """Approve the version in review: it may go live, and any later edit makes a new version to review.

    `review_key` (CampaignVersion.review_key of the version the approver looked at) refuses a decision taken on
    a stale page. `activating` only words the submitter's notification.
    """
    campaign = _locked_campaign(campaign)
    version = _version_in_review(campaign, review_key)
    if refusal := decision_refusal(campaign=campaign, version=version, user=actor, approving=True):
        raise ValidationError(refusal)
    before = _state(campaign, version)
    version.review_state = CampaignVersion.ReviewState.APPROVED
    version.save(update_fields=["review_state"])
    comment = comment.strip()
    ReviewDecision.objects.create(
        version=version, decided_by=actor, decision=ReviewDecision.Decision.APPROVE, comment=comment
    )
    audit_record(
        actor=actor,
        action="campaign.approved",
        obj=campaign,
        before=before,
        after={**_state(campaign, version), "comment": comment},
    )
    # The review requests are settled: they no longer count on any approver's bell.
    notifications_resolve(url=reverse("campaigns:review", args=[campaign.pk]))
    what = "approved and activated" if activating else "approved"
    _notify(
        users=[version.submitted_by],
        actor=actor,
        title=f"{what.capitalize()}: {campaign.name} (version {version.number})",
        body=f"{actor.get_username()} {what} version {version.number} of “{campaign.name}”.\n\n{comment}".strip(),
        url=campaign.get_absolute_url(),
    )
    return version


@transaction.atomic
def campaign_request_changes(
    *, campaign: Campaign, actor, comment: str, review_key: str | None = None
) -> CampaignVersion:
    """Return the version in review to draft with a comment saying what to change, and notify the submitter."""
    comment = comment.strip()
    if not comment:
        raise ValidationError({"comment": "Say what needs to change: a comment is required."})
    campaign = _locked_campaign(campaign)
    version = _version_in_review(campaign, review_key)
    if refusal := decision_refusal(campaign=campaign, version=version, user=actor, approving=False):
        raise ValidationError(refusal)
    before = _state(campaign, version)
    version.review_state = CampaignVersion.ReviewState.DRAFT
    version.save(update_fields=["review_state"])
    ReviewDecision.objects.create(
        version=version, decided_by=actor, decision=ReviewDecision.Decision.REQUEST_CHANGES, comment=comment
    )
    audit_record(
        actor=actor,
        action="campaign.changes_requested",
        obj=campaign,
        before=before,
        after={**_state(campaign, version), "comment": comment},
    )
    notifications_resolve(url=reverse("campaigns:review", args=[campaign.pk]))
    _notify(
        users=[version.submitted_by],
        actor=actor,
        title=f"Changes requested: {campaign.name} (version {version.number})",
        body=f"{actor.get_username()} asked for changes to version {version.number} of “{campaign.name}”:\n\n{comment}",
        url=campaign.get_absolute_url(),
    )
    return version


def review_withdraw(*, campaign_id: int) -> None:
    """A campaign that can no longer go live (stopped, completed, archived, deleted) has nothing left to review: a
    version in review returns to draft, and the approvers' review requests stop counting on their bell."""
    CampaignVersion.objects.filter(campaign_id=campaign_id, review_state=CampaignVersion.ReviewState.IN_REVIEW).update(
        review_state=CampaignVersion.ReviewState.DRAFT
    )
    notifications_resolve(url=reverse("campaigns:review", args=[campaign_id]))


# Reads for the review page


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "added", "removed", "context" or "hunk"
    text: str


@dataclass(frozen=True)
class FieldDiff:
    label: str
    lines: list[DiffLine]


_CONTENT_FIELDS = (("subject", "Subject"), ("html_body", "HTML body"), ("text_body", "Text body"))


def last_approved_version(version: CampaignVersion) -> CampaignVersion | None:
    """The newest version before `version` that was approved, the one a reviewer compares against."""
    return (
        CampaignVersion.objects.filter(
            campaign_id=version.campaign_id,
            number__lt=version.number,
            review_state=CampaignVersion.ReviewState.APPROVED,
        )
        .order_by("-number")
        .first()
    )


def _setting_words(version: CampaignVersion, name: str) -> str:
    value = getattr(version, name)
    if name == "tags":
        return ", ".join(value) or "none"
    if name in ("weekdays", "month_days"):
        return ", ".join(str(day) for day in value) or "none"
    if name in ("start_at", "end_at"):
        return value.isoformat(sep=" ", timespec="minutes") if value else "none"
    if name == "send_time":
        return value.strftime("%H:%M") if value else "none"
    if name == "schedule":
        return version.get_schedule_display()
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def version_diff(*, old: CampaignVersion, new: CampaignVersion) -> list[FieldDiff]:
    """What changed between two versions: each setting that differs (before and after), then a unified diff of each
    content field that changed."""
    diffs = []
    for name in old.changed_settings(new):
        before, after = _setting_words(old, name), _setting_words(new, name)
        if before != after:
            label = CampaignVersion._meta.get_field(name).verbose_name.capitalize()
            diffs.append(FieldDiff(label, [DiffLine("removed", f"-{before}"), DiffLine("added", f"+{after}")]))
    return diffs + content_diff(old=old, new=new)


# A line diff costs the product of the two sides' lengths: past these, a field is said to differ, not diffed
# (500 lines a side is ~30 ms here; a page diffs at most 2 fields of VERSIONS_SHOWN versions).
MAX_DIFF_LINES = 500
MAX_DIFF_CHARS = 100_000


def _lines(lines: list[str]) -> str:
    return f"{len(lines):,} line{'s' if len(lines) != 1 else ''}"


def changed_labels(*, old: CampaignVersion, new: CampaignVersion) -> list[str]:
    """The labels of what differs between two versions, settings then content, without diffing anything."""
    settings = [CampaignVersion._meta.get_field(name).verbose_name.capitalize() for name in old.changed_settings(new)]
    return settings + [label for name, label in _CONTENT_FIELDS if getattr(old, name) != getattr(new, name)]


def content_diff(*, old: CampaignVersion, new: CampaignVersion) -> list[FieldDiff]:
    """A unified diff of each content field that changed between two versions (a field too large to diff line by
    line says so)."""
    diffs = []
    for name, label in _CONTENT_FIELDS:
        old_text, new_text = getattr(old, name), getattr(new, name)
        before, after = old_text.splitlines(), new_text.splitlines()
        if before == after:
            continue
        if max(len(before), len(after)) > MAX_DIFF_LINES or max(len(old_text), len(new_text)) > MAX_DIFF_CHARS:
            summary = (
                f"Changed; too large to compare line by line here ({_lines(before)} before, {_lines(after)} after)."
            )
            diffs.append(FieldDiff(label, [DiffLine("hunk", summary)]))
            continue
        lines = []
        for text in difflib.unified_diff(before, after, lineterm="", n=2):
            if text.startswith(("---", "+++")):
                continue
            kind = {"@": "hunk", "+": "added", "-": "removed"}.get(text[:1], "context")
            lines.append(DiffLine(kind, text))
        diffs.append(FieldDiff(label, lines))
    return diffs
