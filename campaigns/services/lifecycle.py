"""Actions that change a campaign's state. Views and jobs call these; permissions are checked by callers.

Every state change is audited. Approval rules (campaigns.services.approval) are enforced here, in campaign_activate and
campaign_update_content, so every caller gets them.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audiences.models import Audience
from campaigns import contracts
from campaigns.models import Campaign, CampaignVersion, Run
from campaigns.personalization import ContentError, check_content
from campaigns.schedules import next_run_start, schedule_errors
from campaigns.services import approval
from channels.models import ChannelConfiguration
from permissions.services.audit import audit_record


@dataclass(frozen=True)
class Content:
    subject: str
    html_body: str
    text_body: str


def _content_errors(content: Content) -> dict[str, str]:
    try:
        check_content(subject=content.subject, html_body=content.html_body, text_body=content.text_body)
    except ContentError as exc:
        return {exc.field: exc.message}
    return {}


def _check_content(content: Content) -> None:
    if errors := _content_errors(content):
        raise ValidationError(errors)


def configuration_purpose(configuration: ChannelConfiguration) -> str:
    """The category of campaign a configuration is kept for: "marketing", "transactional" or "both"."""
    # A plain setting, read without decrypting the configuration's secrets; only email configurations have it.
    return configuration.settings.get("purpose", "both")


def _purpose_error(configuration: ChannelConfiguration, category: str) -> str:
    """Why a campaign of `category` may not send through `configuration`, or ""."""
    purpose = configuration_purpose(configuration)
    if purpose not in ("both", category):
        return f"This configuration is for {purpose} messages only; the campaign is {category}."
    return ""


@transaction.atomic
def campaign_create(
    *,
    actor,
    name: str,
    channel_configuration: ChannelConfiguration,
    audience: Audience | None,
    content: Content,
    kind: str = Campaign.Kind.SCHEDULED,
    category: str = Campaign.Category.MARKETING,
    schedule: str = Campaign.Schedule.ON_ACTIVATION,
    start_at: datetime | None = None,
    cron: str = "",
    timezone_name: str = "UTC",
    end_at: datetime | None = None,
    send_time: time | None = None,
    weekdays: list[int] | None = None,
    month_days: list[int] | None = None,
    in_profile_timezone: bool = False,
    tags: list[str] | None = None,
    create_profiles: bool = False,
    now: datetime | None = None,
) -> Campaign:
    """Create a draft campaign with its first version. Raises ValidationError naming every bad field.

    A scheduled campaign needs an audience; an API-triggered one needs one only for audience triggers. A scheduled
    campaign with nothing left to send (a time or an end that has passed) is refused (campaigns.schedules).
    """
    errors = _content_errors(content)
    if not channel_configuration.is_active:
        errors["channel_configuration"] = "This channel configuration is inactive."
    elif purpose_error := _purpose_error(channel_configuration, category):
        errors["channel_configuration"] = purpose_error
    if kind == Campaign.Kind.SCHEDULED and audience is None:
        errors["audience"] = "A scheduled campaign needs an audience."
    if create_profiles and kind != Campaign.Kind.API_TRIGGERED:
        errors["create_profiles"] = "Only an API-triggered campaign creates profiles for unknown recipients."
    if in_profile_timezone and (kind != Campaign.Kind.SCHEDULED or schedule == Campaign.Schedule.ON_ACTIVATION):
        errors["in_profile_timezone"] = "Only a campaign sent at a date and time or on a recurrence has a local time."
    campaign = Campaign(
        name=name,
        kind=kind,
        category=category,
        channel_configuration=channel_configuration,
        audience=audience,
        owner=actor,
        tags=tags or [],
        schedule=schedule,
        start_at=start_at,
        cron=cron,
        timezone=timezone_name,
        end_at=end_at,
        send_time=send_time,
        weekdays=weekdays or [],
        month_days=month_days or [],
        in_profile_timezone=in_profile_timezone,
        create_profiles=create_profiles,
    )
    for field, message in schedule_errors(campaign, now=now or timezone.now()).items():
        errors.setdefault(field, message)
    try:
        campaign.full_clean(exclude=["owner", "live_version"])
    except ValidationError as invalid:
        for field, messages in invalid.message_dict.items():
            errors.setdefault(field, " ".join(messages))
    if errors:
        raise ValidationError(errors)
    campaign.save()
    version = CampaignVersion.objects.create(
        campaign=campaign, number=1, created_by=actor, edited_by=actor, **content.__dict__
    )
    audit_record(actor=actor, action="campaign.created", obj=campaign, after=_state(campaign, version))
    return campaign


@transaction.atomic
def campaign_update_contract(*, campaign: Campaign, actor, contract: list[dict]) -> Campaign:
    """Replace an API-triggered campaign's context contract, as contracts.parse_contract reads it: either the
    whole contract is stored, or nothing is and ValidationError({"context_contract": [...]}) names each bad entry
    ("Field 2 (order_id): ..."). Trigger calls are checked against the new contract from the next call on."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.kind != Campaign.Kind.API_TRIGGERED:
        raise ValidationError({"context_contract": "Only an API-triggered campaign has a context contract."})
    if campaign.status in Campaign.FINISHED_STATUSES:
        raise ValidationError(
            {"context_contract": f"A campaign that is {campaign.get_status_display().lower()} cannot be changed."}
        )
    fields = contracts.parse_contract(contract)
    before = campaign.context_contract
    campaign.context_contract = [field.as_dict() for field in fields]
    campaign.save(update_fields=["context_contract", "updated_at"])
    audit_record(
        actor=actor,
        action="campaign.contract_changed",
        obj=campaign,
        before={"context_contract": before},
        after={"context_contract": campaign.context_contract},
    )
    return campaign


def _state(campaign: Campaign, version: CampaignVersion | None = None) -> dict:
    """What the audit log keeps of a campaign before and after a change."""
    version = version or campaign.latest_version()
    return {"status": campaign.status, "version": version.number, "review_state": version.review_state}


@transaction.atomic
def campaign_update_content(*, campaign: Campaign, actor, content: Content) -> CampaignVersion:
    """Edit a campaign's content. A version in review is locked. A version that is live, that a run has sent or
    that was approved is never changed: edits make a new version, which needs its own approval."""
    _check_content(content)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.PAUSED):
        raise ValidationError(f"A campaign that is {campaign.get_status_display().lower()} cannot be edited.")
    latest = campaign.latest_version()
    if latest.review_state == CampaignVersion.ReviewState.IN_REVIEW:
        raise ValidationError(
            f"Version {latest.number} is in review and cannot be edited until an approver approves it or "
            "requests changes."
        )
    before = _state(campaign, latest)
    if (
        latest.review_state == CampaignVersion.ReviewState.APPROVED
        or campaign.live_version_id == latest.pk
        or latest.runs.exists()
    ):
        version = CampaignVersion.objects.create(
            campaign=campaign, number=latest.number + 1, created_by=actor, edited_by=actor, **content.__dict__
        )
    else:
        version = latest
        for field, value in content.__dict__.items():
            setattr(version, field, value)
        version.edited_by = actor
        version.save()
    audit_record(
        actor=actor,
        action="campaign.content_updated",
        obj=campaign,
        before={**before, "subject": latest.subject},
        after={**_state(campaign, version), "subject": version.subject},
    )
    return version


def _check_publishable(campaign: Campaign, version: CampaignVersion) -> None:
    """Refuse to make `version` live while it is in review, or unapproved when a policy asks for approval."""
    if version.review_state == CampaignVersion.ReviewState.IN_REVIEW:
        raise ValidationError(
            f"Version {version.number} is in review: an approver approves and activates it from the review page."
        )
    if version.review_state == CampaignVersion.ReviewState.APPROVED:
        return
    if policies := approval.matching_policies(campaign):
        names = ", ".join(f"“{policy.name}”" for policy in policies)
        raise ValidationError(
            f"This campaign needs an approval ({names}): submit version {version.number} for review; an approver "
            "then approves and activates it."
        )


@transaction.atomic
def campaign_activate(*, campaign: Campaign, actor, now: datetime | None = None) -> Campaign:
    """Make the latest version live and let the scheduler start its occurrences.

    On activation means the scheduler starts a run on its next pass (within seconds).
    """
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.PAUSED):
        raise ValidationError(f"A campaign that is {campaign.get_status_display().lower()} cannot be activated.")
    if not campaign.channel_configuration.is_active:
        raise ValidationError({"channel_configuration": "This channel configuration is inactive."})
    if purpose_error := _purpose_error(campaign.channel_configuration, campaign.category):
        # The configuration's purpose may have changed since the campaign was created.
        raise ValidationError({"channel_configuration": purpose_error})
    latest = campaign.latest_version()
    before = _state(campaign, latest)
    if campaign.status == Campaign.Status.DRAFT or campaign.live_version_id != latest.pk:
        _check_publishable(campaign, latest)
    if campaign.status == Campaign.Status.PAUSED:
        # A version edited (and approved, where needed) during the pause is what later occurrences send;
        # paused runs keep the version they were sending.
        campaign.live_version = latest
        campaign.status = Campaign.Status.ACTIVE
        campaign.save(update_fields=["live_version", "status", "updated_at"])
        Run.objects.filter(campaign=campaign, state=Run.State.PAUSED).update(state=Run.State.SENDING, heartbeat_at=None)
        audit_record(
            actor=actor, action="campaign.resumed", obj=campaign, before=before, after=_state(campaign, latest)
        )
        return campaign
    if campaign.kind == Campaign.Kind.SCHEDULED:
        if campaign.schedule == Campaign.Schedule.ON_ACTIVATION:
            campaign.next_run_at = now
        elif campaign.schedule == Campaign.Schedule.AT:
            if campaign.start_at < now:
                raise ValidationError({"start_at": "This date and time has passed: choose a later one."})
            campaign.next_run_at = next_run_start(campaign, after=campaign.start_at - timedelta(microseconds=1))
        else:
            # In profile time zones the run starts early (campaigns.schedules.run_start).
            campaign.next_run_at = next_run_start(campaign, after=now)
            if campaign.next_run_at is None:
                raise ValidationError({"end_at": "No occurrence falls before the end date."})
    campaign.live_version = latest
    campaign.status = Campaign.Status.ACTIVE
    campaign.save(update_fields=["live_version", "status", "next_run_at", "updated_at"])
    audit_record(actor=actor, action="campaign.activated", obj=campaign, before=before, after=_state(campaign, latest))
    return campaign


@transaction.atomic
def campaign_approve_and_activate(*, campaign: Campaign, actor, review_key: str | None = None, comment: str = ""):
    """Approve the version in review and make it live, all or nothing: when activation is refused (a start time
    that has passed, an inactive configuration), the approval is not recorded either."""
    approval.campaign_approve(campaign=campaign, actor=actor, review_key=review_key, comment=comment, activating=True)
    return campaign_activate(campaign=campaign, actor=actor)


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor) -> Campaign:
    """Hold the campaign: running sends stop claiming new messages; resume sends only what was never sent."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.ACTIVE:
        raise ValidationError("Only an active campaign can be paused.")
    before = _state(campaign)
    campaign.status = Campaign.Status.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    Run.objects.filter(campaign=campaign, state=Run.State.SENDING).update(state=Run.State.PAUSED)
    audit_record(actor=actor, action="campaign.paused", obj=campaign, before=before, after=_state(campaign))
    return campaign


@transaction.atomic
def campaign_stop(*, campaign: Campaign, actor) -> Campaign:
    """Stop for good: no run of this campaign sends anything more, and it cannot be resumed. Its messages not yet
    handed to a provider become cancelled within a tick of the scheduler."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in Campaign.LIVE_STATUSES:
        raise ValidationError("Only an active or paused campaign can be stopped.")
    before = _state(campaign)
    campaign.status = Campaign.Status.STOPPED
    campaign.next_run_at = None
    campaign.save(update_fields=["status", "next_run_at", "updated_at"])
    # The heartbeat marks the runs whose unsent messages the scheduler's next tick cancels
    # (campaigns.engine.completion.cancel_unsent_of_stopped_runs).
    now = timezone.now()
    Run.objects.filter(campaign=campaign, state__in=[*Run.ACTIVE_STATES, Run.State.PAUSED]).update(
        state=Run.State.STOPPED, finished_at=now, heartbeat_at=now
    )
    audit_record(actor=actor, action="campaign.stopped", obj=campaign, before=before, after=_state(campaign))
    return campaign
