"""Actions that change a campaign's state. Views and jobs call these; permissions are checked by callers."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audiences.models import Audience
from campaigns.models import Campaign, CampaignVersion, Run
from campaigns.personalization import ContentError, check_content
from campaigns.schedules import next_occurrence, valid_cron
from channels.models import ChannelConfiguration


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


def _schedule_errors(*, schedule: str, start_at: datetime | None, cron: str, end_at: datetime | None) -> dict:
    errors = {}
    if schedule == Campaign.Schedule.AT and start_at is None:
        errors["start_at"] = "A date and time is required for a campaign sent at a date and time."
    if schedule == Campaign.Schedule.RECURRING and not valid_cron(cron):
        errors["cron"] = f"{cron!r} is not a cron expression (e.g. '0 9 * * 1' for Mondays at 09:00)."
    if end_at and start_at and end_at <= start_at:
        errors["end_at"] = "The end must come after the start."
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
    tags: list[str] | None = None,
) -> Campaign:
    """Create a draft campaign with its first version. Raises ValidationError naming every bad field."""
    errors = _content_errors(content)
    errors |= _schedule_errors(schedule=schedule, start_at=start_at, cron=cron, end_at=end_at)
    if not channel_configuration.is_active:
        errors["channel_configuration"] = "This channel configuration is inactive."
    if kind == Campaign.Kind.SCHEDULED and audience is None:
        errors["audience"] = "A scheduled campaign needs an audience."
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
    )
    try:
        campaign.full_clean(exclude=["owner", "live_version"])
    except ValidationError as invalid:
        for field, messages in invalid.message_dict.items():
            errors.setdefault(field, " ".join(messages))
    if errors:
        raise ValidationError(errors)
    campaign.save()
    CampaignVersion.objects.create(campaign=campaign, number=1, created_by=actor, **content.__dict__)
    return campaign


@transaction.atomic
def campaign_update_content(*, campaign: Campaign, actor, content: Content) -> CampaignVersion:
    """Edit a campaign's content. A version that a run has sent is never changed: edits make a new one."""
    _check_content(content)
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.PAUSED):
        raise ValidationError(f"A campaign that is {campaign.get_status_display().lower()} cannot be edited.")
    latest = campaign.latest_version()
    if latest.runs.exists() or campaign.live_version_id == latest.pk:
        return CampaignVersion.objects.create(
            campaign=campaign, number=latest.number + 1, created_by=actor, **content.__dict__
        )
    for field, value in content.__dict__.items():
        setattr(latest, field, value)
    latest.save()
    return latest


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
    if campaign.status == Campaign.Status.PAUSED:
        campaign.status = Campaign.Status.ACTIVE
        campaign.save(update_fields=["status", "updated_at"])
        Run.objects.filter(campaign=campaign, state=Run.State.PAUSED).update(state=Run.State.SENDING, heartbeat_at=None)
        return campaign
    if campaign.kind == Campaign.Kind.SCHEDULED:
        if campaign.schedule == Campaign.Schedule.ON_ACTIVATION:
            campaign.next_run_at = now
        elif campaign.schedule == Campaign.Schedule.AT:
            if campaign.start_at < now:
                raise ValidationError({"start_at": "This date and time has passed: choose a later one."})
            campaign.next_run_at = campaign.start_at
        else:
            # An occurrence falling exactly at start_at counts.
            after = max(now, campaign.start_at - timedelta(seconds=1)) if campaign.start_at else now
            campaign.next_run_at = next_occurrence(
                cron=campaign.cron, timezone=campaign.timezone, after=after, end_at=campaign.end_at
            )
            if campaign.next_run_at is None:
                raise ValidationError({"end_at": "No occurrence falls before the end date."})
    campaign.live_version = campaign.latest_version()
    campaign.status = Campaign.Status.ACTIVE
    campaign.save(update_fields=["live_version", "status", "next_run_at", "updated_at"])
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor) -> Campaign:
    """Hold the campaign: running sends stop claiming new messages; resume sends only what was never sent."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.ACTIVE:
        raise ValidationError("Only an active campaign can be paused.")
    campaign.status = Campaign.Status.PAUSED
    campaign.save(update_fields=["status", "updated_at"])
    Run.objects.filter(campaign=campaign, state=Run.State.SENDING).update(state=Run.State.PAUSED)
    return campaign


@transaction.atomic
def campaign_stop(*, campaign: Campaign, actor) -> Campaign:
    """Stop for good: no run of this campaign sends anything more, and it cannot be resumed."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.ACTIVE, Campaign.Status.PAUSED):
        raise ValidationError("Only an active or paused campaign can be stopped.")
    campaign.status = Campaign.Status.STOPPED
    campaign.next_run_at = None
    campaign.save(update_fields=["status", "next_run_at", "updated_at"])
    Run.objects.filter(campaign=campaign, state__in=[*Run.ACTIVE_STATES, Run.State.PAUSED]).update(
        state=Run.State.STOPPED, finished_at=timezone.now()
    )
    return campaign
