"""Actions that change a campaign's state. Views and jobs call these; permissions are checked by callers.

Every state change is audited. Approval rules (campaigns.services.approval) are enforced here, in campaign_activate and
campaign_update_content, so every caller gets them.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from audiences.models import Audience
from campaigns import contracts
from campaigns.models import Campaign, CampaignSettings, CampaignVersion, Run
from campaigns.personalization import ContentError, check_content
from campaigns.schedules import next_run_start, schedule_errors
from campaigns.services import approval
from campaigns.unsubscribe import visible_unsubscribe_errors
from channels.models import ChannelConfiguration
from permissions.services.audit import audit_record


@dataclass(frozen=True)
class Content:
    subject: str
    html_body: str
    text_body: str


def content_errors(content: Content) -> dict[str, str]:
    try:
        check_content(subject=content.subject, html_body=content.html_body, text_body=content.text_body)
    except ContentError as exc:
        return {exc.field: exc.message}
    return {}


def _check_content(content: Content) -> None:
    if errors := content_errors(content):
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


def _configuration_errors(configuration: ChannelConfiguration, category: str) -> dict[str, str]:
    if not configuration.is_active:
        return {"channel_configuration": "This channel configuration is inactive."}
    if purpose_error := _purpose_error(configuration, category):
        return {"channel_configuration": purpose_error}
    return {}


def settings_errors(campaign: Campaign, *, now: datetime | None = None) -> dict[str, str]:
    """What is wrong with a campaign's settings (its own, or a version's through Campaign.with_settings_of) for
    its kind and category, by field: the configuration, the audience, the schedule. With `now`, a schedule with
    nothing left to send is refused too. The campaign forms show these beside their own errors, all at once;
    campaign_create and campaign_update raise them."""
    errors = {}
    if campaign.channel_configuration_id:
        errors |= _configuration_errors(campaign.channel_configuration, campaign.category)
    if campaign.kind == Campaign.Kind.SCHEDULED and campaign.audience_id is None:
        errors["audience"] = "A scheduled campaign needs an audience."
    if campaign.in_profile_timezone and (
        campaign.kind != Campaign.Kind.SCHEDULED or campaign.schedule == Campaign.Schedule.ON_ACTIVATION
    ):
        errors["in_profile_timezone"] = "Only a campaign sent at a date and time or on a recurrence has a local time."
    for field, message in schedule_errors(campaign, now=now).items():
        errors.setdefault(field, message)
    return errors


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
    description: str = "",
    create_profiles: bool = False,
    now: datetime | None = None,
) -> Campaign:
    """Create a draft campaign with its first version. Raises ValidationError naming every bad field.

    A scheduled campaign needs an audience; an API-triggered one needs one only for audience triggers. A scheduled
    campaign with nothing left to send (a time or an end that has passed) is refused (campaigns.schedules).
    """
    errors = content_errors(content)
    if create_profiles and kind != Campaign.Kind.API_TRIGGERED:
        errors["create_profiles"] = "Only an API-triggered campaign creates profiles for unknown recipients."
    campaign = Campaign(
        name=name,
        description=description,
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
    for field, message in settings_errors(campaign, now=now or timezone.now()).items():
        errors.setdefault(field, message)
    try:
        campaign.full_clean(exclude=["owner", "live_version"])
    except ValidationError as invalid:
        for field, messages in invalid.message_dict.items():
            errors.setdefault(field, " ".join(messages))
    if errors:
        raise ValidationError(errors)
    campaign.save()
    version = CampaignVersion(campaign=campaign, number=1, created_by=actor, edited_by=actor, **content.__dict__)
    campaign.copy_settings_to(version)
    version.save()
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


def _audit_value(value):
    if isinstance(value, datetime | time):
        return value.isoformat()
    if isinstance(value, models.Model):
        return f"#{value.pk} {value}"
    return value


def edit_refusal(campaign: Campaign, latest: CampaignVersion) -> str | None:
    """Why the campaign cannot be edited now, or None."""
    if latest.review_state == CampaignVersion.ReviewState.IN_REVIEW:
        return (
            f"Version {latest.number} is in review and cannot be edited until an approver approves it or "
            "requests changes."
        )
    if campaign.archived_at is not None:
        return "An archived campaign cannot be edited: unarchive it, or duplicate it."
    if campaign.status in Campaign.FINISHED_STATUSES:
        return f"A campaign that is {campaign.get_status_display().lower()} cannot be edited: duplicate it instead."
    return None


def edit_makes_new_version(campaign: Campaign, version: CampaignVersion) -> bool:
    """Whether an edit of `version` goes to a new version: a version that went live, that a run sent or that was
    approved is never changed."""
    return (
        version.review_state == CampaignVersion.ReviewState.APPROVED
        or campaign.live_version_id == version.pk
        or version.runs.exists()
    )


def version_token(version: CampaignVersion) -> str:
    """Names a version as it is now (content, settings, review state): an edit made on a page that showed an older
    state of it is refused by campaign_update, instead of silently undoing what was saved since."""
    values = [version.pk, version.review_state, version.subject, version.html_body, version.text_body]
    values += [getattr(version, version._meta.get_field(name).attname) for name in version.SETTINGS_FIELDS]
    return hashlib.sha256(json.dumps(values, default=str).encode()).hexdigest()[:32]


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    actor,
    content: Content,
    settings: dict | None = None,
    expected_version: str | None = None,
    now: datetime | None = None,
) -> CampaignVersion:
    """Edit a campaign: its content and, with `settings`, its versioned settings (every name of
    CampaignSettings.SETTINGS_FIELDS). Raises ValidationError naming every bad field.

    The edit goes to the latest version while it is a draft that never went live, ran or was approved; else to a
    new version, which needs its own approval where a policy asks for one. A live campaign keeps sending its live
    version until the new one is activated (campaign_activate); a draft campaign takes the new settings at once.
    A version in review is locked; a stopped, completed or archived campaign is duplicated instead. With
    `expected_version` (version_token of the version the editor's page showed), an edit of a version changed since
    is refused.
    """
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    latest = campaign.latest_version()
    if refusal := edit_refusal(campaign, latest):
        raise ValidationError(refusal)
    if expected_version is not None and expected_version != version_token(latest):
        raise ValidationError(
            f"Version {latest.number} changed since this page was opened (saved, submitted or decided by someone): "
            "reload the page to see it as it is, then make your changes again."
        )
    if settings is not None and set(settings) != set(CampaignSettings.SETTINGS_FIELDS):
        raise TypeError(f"settings must name exactly {CampaignSettings.SETTINGS_FIELDS}")
    proposed = campaign.with_settings_of(latest)
    for name, value in (settings or {}).items():
        setattr(proposed, name, value)
    errors = content_errors(content)
    # A schedule is checked against the clock where it changes (a live campaign's date may have passed already).
    checked_now = (now or timezone.now()) if campaign.status == Campaign.Status.DRAFT else None
    if campaign.schedule_differs(proposed):
        checked_now = now or timezone.now()
    for field, message in settings_errors(proposed, now=checked_now).items():
        errors.setdefault(field, message)
    try:
        proposed.full_clean(exclude=[f.name for f in Campaign._meta.fields if f.name not in proposed.SETTINGS_FIELDS])
    except ValidationError as invalid:
        for field, messages in invalid.message_dict.items():
            errors.setdefault(field, " ".join(messages))
    if errors:
        raise ValidationError(errors)
    before = _state(campaign, latest)
    changes = {name: (getattr(latest, name), getattr(proposed, name)) for name in latest.changed_settings(proposed)}
    if edit_makes_new_version(campaign, latest):
        version = CampaignVersion(campaign=campaign, number=latest.number + 1, created_by=actor)
    else:
        version = latest
    for field, value in content.__dict__.items():
        setattr(version, field, value)
    proposed.copy_settings_to(version)
    version.edited_by = actor
    version.save()
    if campaign.status == Campaign.Status.DRAFT:
        proposed.copy_settings_to(campaign)
        campaign.save()
    audit_record(
        actor=actor,
        action="campaign.updated",
        obj=campaign,
        before={**before, "subject": latest.subject, **{name: _audit_value(old) for name, (old, _) in changes.items()}},
        after={
            **_state(campaign, version),
            "subject": version.subject,
            **{name: _audit_value(new) for name, (_, new) in changes.items()},
        },
    )
    return version


def campaign_update_content(*, campaign: Campaign, actor, content: Content) -> CampaignVersion:
    """Edit a campaign's content only: campaign_update with the latest version's settings."""
    return campaign_update(campaign=campaign, actor=actor, content=content)


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


def _first_run_at(campaign: Campaign, now: datetime) -> datetime | None:
    """When the scheduler starts the first run of a scheduled campaign going live now (or whose schedule changed
    while live). Raises ValidationError when its schedule has nothing left to send."""
    if campaign.kind != Campaign.Kind.SCHEDULED:
        return None
    if campaign.schedule == Campaign.Schedule.ON_ACTIVATION:
        return now
    if campaign.schedule == Campaign.Schedule.AT:
        if campaign.start_at < now:
            raise ValidationError({"start_at": "This date and time has passed: choose a later one."})
        return next_run_start(campaign, after=campaign.start_at - timedelta(microseconds=1))
    # In profile time zones the run starts early (campaigns.schedules.run_start).
    next_run_at = next_run_start(campaign, after=now)
    if next_run_at is None:
        raise ValidationError({"end_at": "No occurrence falls before the end date."})
    return next_run_at


@transaction.atomic
def campaign_activate(*, campaign: Campaign, actor, now: datetime | None = None) -> Campaign:
    """Make the latest version live: a draft goes live, and a live campaign with a newer version (approved where a
    policy asks) switches to it, resuming if it was paused (campaign_resume resumes with the live version). The
    version's settings become the campaign's.

    On activation means the scheduler starts a run on its next pass (within seconds). A live campaign whose new
    version changes the schedule starts again from the new one; runs under way finish with the version they began.
    """
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    latest = campaign.latest_version()
    if campaign.archived_at is not None:
        raise ValidationError("An archived campaign cannot be activated: unarchive it first.")
    publishing_newer = campaign.live_version_id is not None and campaign.live_version_id != latest.pk
    if campaign.status in Campaign.FINISHED_STATUSES:
        state = campaign.get_status_display().lower()
        raise ValidationError(f"A campaign that is {state} cannot be activated again: duplicate it.")
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.PAUSED) and not publishing_newer:
        raise ValidationError(f"A campaign that is {campaign.get_status_display().lower()} cannot be activated.")
    proposed = campaign.with_settings_of(latest)
    # The configuration may have been deactivated, or its purpose changed, since the version was made.
    if errors := _configuration_errors(proposed.channel_configuration, campaign.category):
        raise ValidationError(errors)
    before = _state(campaign, latest)
    if campaign.status == Campaign.Status.DRAFT or campaign.live_version_id != latest.pk:
        _check_publishable(campaign, latest)
        if errors := visible_unsubscribe_errors(campaign=campaign, version=latest):
            raise ValidationError(errors)
    schedule_changed = campaign.schedule_differs(proposed)
    latest.copy_settings_to(campaign)
    if campaign.status != Campaign.Status.DRAFT:
        # Resuming, or switching an active campaign to its new version: what later occurrences send. Runs under way
        # keep the version they were sending.
        if schedule_changed:
            campaign.next_run_at = _first_run_at(campaign, now)
        action = "campaign.version_activated" if publishing_newer else "campaign.resumed"
        campaign.live_version = latest
        _resume(campaign)
        audit_record(actor=actor, action=action, obj=campaign, before=before, after=_state(campaign, latest))
        return campaign
    campaign.next_run_at = _first_run_at(campaign, now)
    campaign.live_version = latest
    campaign.status = Campaign.Status.ACTIVE
    campaign.save()
    audit_record(actor=actor, action="campaign.activated", obj=campaign, before=before, after=_state(campaign, latest))
    return campaign


@transaction.atomic
def campaign_approve_and_activate(*, campaign: Campaign, actor, review_key: str | None = None, comment: str = ""):
    """Approve the version in review and make it live, all or nothing: when activation is refused (a start time
    that has passed, an inactive configuration), the approval is not recorded either."""
    approval.campaign_approve(campaign=campaign, actor=actor, review_key=review_key, comment=comment, activating=True)
    return campaign_activate(campaign=campaign, actor=actor)


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor) -> Campaign:
    """Resume a paused campaign with its live version: its runs pick up what was never sent. A newer version stays
    where it is (draft, in review, approved) until it is activated on its own (campaign_activate)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.PAUSED:
        raise ValidationError("Only a paused campaign can be resumed.")
    if errors := _configuration_errors(campaign.channel_configuration, campaign.category):
        raise ValidationError(errors)
    before = _state(campaign)
    _resume(campaign)
    audit_record(actor=actor, action="campaign.resumed", obj=campaign, before=before, after=_state(campaign))
    return campaign


def _resume(campaign: Campaign) -> None:
    campaign.status = Campaign.Status.ACTIVE
    campaign.save()
    Run.objects.filter(campaign=campaign, state=Run.State.PAUSED).update(state=Run.State.SENDING, heartbeat_at=None)


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
    _stop(campaign)
    audit_record(actor=actor, action="campaign.stopped", obj=campaign, before=before, after=_state(campaign))
    return campaign


def _stop(campaign: Campaign) -> None:
    approval.review_withdraw(campaign_id=campaign.pk)
    campaign.status = Campaign.Status.STOPPED
    campaign.next_run_at = None
    campaign.save(update_fields=["status", "next_run_at", "updated_at"])
    # The heartbeat marks the runs whose unsent messages the scheduler's next tick cancels
    # (campaigns.engine.completion.cancel_unsent_of_stopped_runs).
    now = timezone.now()
    Run.objects.filter(campaign=campaign, state__in=[*Run.ACTIVE_STATES, Run.State.PAUSED]).update(
        state=Run.State.STOPPED, finished_at=now, heartbeat_at=now
    )


COPY_PREFIX = "Copy of "


@transaction.atomic
def campaign_duplicate(*, campaign: Campaign, actor) -> Campaign:
    """A new draft owned by `actor` with the latest version's settings and content, and the campaign's kind,
    category and context contract: any campaign may be duplicated, archived ones included. The copy's schedule
    is checked when it is submitted or activated, so a date that has passed is fixed on the copy's edit page."""
    source = campaign.latest_version()
    duplicate = Campaign(
        kind=campaign.kind,
        category=campaign.category,
        owner=actor,
        context_contract=campaign.context_contract,
        create_profiles=campaign.create_profiles,
    )
    source.copy_settings_to(duplicate)
    max_length = Campaign._meta.get_field("name").max_length
    duplicate.name = (COPY_PREFIX + source.name)[:max_length]
    duplicate.save()
    version = CampaignVersion(
        campaign=duplicate,
        number=1,
        created_by=actor,
        edited_by=actor,
        subject=source.subject,
        html_body=source.html_body,
        text_body=source.text_body,
    )
    duplicate.copy_settings_to(version)
    version.save()
    audit_record(
        actor=actor,
        action="campaign.duplicated",
        obj=duplicate,
        after={**_state(duplicate, version), "from_campaign": campaign.pk, "from_version": source.number},
    )
    return duplicate


DELETE_REFUSAL = "Only a draft that never went live can be deleted: archive this campaign instead."


def deletable(campaign: Campaign) -> bool:
    """Only a draft that never went live may be deleted."""
    return campaign.status == Campaign.Status.DRAFT and not campaign.live_version_id and not campaign.runs.exists()


@transaction.atomic
def campaign_delete(*, campaign: Campaign, actor) -> None:
    """Delete a draft that never went live, with its versions and their reviews. Anything that went live keeps its
    record (runs, messages, decisions): archive it instead."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not deletable(campaign):
        raise ValidationError(DELETE_REFUSAL)
    approval.review_withdraw(campaign_id=campaign.pk)
    audit_record(
        actor=actor, action="campaign.deleted", obj=campaign, before={**_state(campaign), "name": campaign.name}
    )
    campaign.delete()


@transaction.atomic
def campaign_archive(*, campaign: Campaign, actor, may_stop: bool, now: datetime | None = None) -> Campaign:
    """Archive a campaign: it leaves the default list and can no longer be edited or activated. A live campaign is
    stopped first (its future occurrences cancelled, as campaign_stop does), only when `may_stop` (the caller's
    answer to whether the actor may stop campaigns; decided here, under the lock, on the status as it is).
    A draft is deleted or kept, not archived."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in Campaign.LIVE_STATUSES and not may_stop:
        raise ValidationError("Archiving stops this live campaign: ask someone who may stop campaigns.")
    if campaign.status == Campaign.Status.DRAFT:
        raise ValidationError("A draft is not archived: delete it, or keep it as a draft.")
    if campaign.archived_at is not None:
        raise ValidationError("This campaign is already archived.")
    before = {**_state(campaign), "archived": False}
    if campaign.status in Campaign.LIVE_STATUSES:
        _stop(campaign)
    approval.review_withdraw(campaign_id=campaign.pk)
    campaign.archived_at = now or timezone.now()
    campaign.save(update_fields=["archived_at", "updated_at"])
    audit_record(
        actor=actor,
        action="campaign.archived",
        obj=campaign,
        before=before,
        after={**_state(campaign), "archived": True},
    )
    return campaign


@transaction.atomic
def campaign_unarchive(*, campaign: Campaign, actor) -> Campaign:
    """Bring an archived campaign back to the default list, in the state it was archived in (stopped or completed)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.archived_at is None:
        raise ValidationError("This campaign is not archived.")
    campaign.archived_at = None
    campaign.save(update_fields=["archived_at", "updated_at"])
    audit_record(actor=actor, action="campaign.unarchived", obj=campaign, after={**_state(campaign), "archived": False})
    return campaign
