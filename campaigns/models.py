import copy
import uuid
import zoneinfo

from django.conf import settings
from django.db import models
from django.urls import reverse

from audiences.models import Audience, Channel, Profile
from channels.models import ChannelConfiguration


def _valid_timezone(name: str) -> None:
    from django.core.exceptions import ValidationError

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not a known time zone (e.g. Europe/Paris)") from None


class CampaignSettings(models.Model):
    """What a version of a campaign sets besides its content: name, description, tags, audience, channel
    configuration and schedule. Each CampaignVersion holds its own; the Campaign holds the settings in effect (its
    live version's, or a draft's latest until it first goes live), which is what the scheduler, the engine and the
    lists read. campaigns.services.lifecycle copies a version's settings onto the campaign when it goes live."""

    class Schedule(models.TextChoices):
        ON_ACTIVATION = "on_activation", "When activated"
        AT = "at", "Once, at a date and time"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly, on chosen days"
        MONTHLY = "monthly", "Monthly, on chosen days of the month"
        RECURRING = "recurring", "Cron expression (advanced)"

    # Occurrences repeat: the scheduler computes each next one (campaigns.schedules).
    REPEATING_SCHEDULES = (Schedule.DAILY, Schedule.WEEKLY, Schedule.MONTHLY, Schedule.RECURRING)

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, max_length=2000)
    channel_configuration = models.ForeignKey(ChannelConfiguration, on_delete=models.PROTECT, related_name="+")
    audience = models.ForeignKey(Audience, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    schedule = models.CharField(max_length=16, choices=Schedule.choices, default=Schedule.ON_ACTIVATION)
    start_at = models.DateTimeField(null=True, blank=True)
    cron = models.CharField(max_length=100, blank=True)
    # Daily, weekly and monthly schedules: the local time of each occurrence, on these weekdays (0 = Monday) or
    # days of the month (1-31; -1 = the last day), in `timezone`.
    send_time = models.TimeField(null=True, blank=True)
    weekdays = models.JSONField(default=list, blank=True)
    month_days = models.JSONField(default=list, blank=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[_valid_timezone])
    end_at = models.DateTimeField(null=True, blank=True)
    # Scheduled campaigns: each profile gets an occurrence at its local time in its own zone (the campaign's when
    # the profile has none), so a 09:00 newsletter arrives at 09:00 in Paris and in New York.
    in_profile_timezone = models.BooleanField(
        default=False, help_text="Deliver at the scheduled local time in each profile's own time zone."
    )

    # The versioned settings, as the model fields named; the schedule's part is SCHEDULE_FIELDS.
    SETTINGS_FIELDS = (
        "name",
        "description",
        "tags",
        "audience",
        "channel_configuration",
        "schedule",
        "start_at",
        "cron",
        "send_time",
        "weekdays",
        "month_days",
        "timezone",
        "end_at",
        "in_profile_timezone",
    )
    SCHEDULE_FIELDS = SETTINGS_FIELDS[5:]

    class Meta:
        abstract = True

    def settings_values(self) -> dict:
        """The settings as keyword arguments (foreign keys as objects)."""
        return {name: getattr(self, name) for name in self.SETTINGS_FIELDS}

    def copy_settings_to(self, other: "CampaignSettings") -> None:
        for name in self.SETTINGS_FIELDS:
            setattr(other, name, getattr(self, name))

    def changed_settings(self, other: "CampaignSettings") -> list[str]:
        """The names of the settings whose values differ between this and `other`, in SETTINGS_FIELDS order."""
        return [name for name in self.SETTINGS_FIELDS if getattr(self, name) != getattr(other, name)]

    def schedule_differs(self, other: "CampaignSettings") -> bool:
        return any(getattr(self, name) != getattr(other, name) for name in self.SCHEDULE_FIELDS)


class Campaign(CampaignSettings):
    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        API_TRIGGERED = "api_triggered", "API-triggered"

    class Category(models.TextChoices):
        MARKETING = "marketing", "Marketing"
        TRANSACTIONAL = "transactional", "Transactional"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"
        COMPLETED = "completed", "Completed"

    # Sending now or held (it may resume), and over for good.
    LIVE_STATUSES = (Status.ACTIVE, Status.PAUSED)
    FINISHED_STATUSES = (Status.STOPPED, Status.COMPLETED)

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SCHEDULED)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.MARKETING)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # API-triggered: the context fields a trigger call must (or may) carry, see campaigns.contracts.
    context_contract = models.JSONField(default=list, blank=True)
    # API-triggered: a call naming someone without a profile creates the profile instead of rejecting them.
    create_profiles = models.BooleanField(
        default=False, help_text="A trigger for someone without a profile creates one (else they are rejected)."
    )
    # Archived campaigns leave the default list; anything but a draft may be archived (a live one is stopped).
    archived_at = models.DateTimeField(null=True, blank=True)
    # When the scheduler should next start a run; None when nothing is due.
    next_run_at = models.DateTimeField(null=True, blank=True)
    live_version = models.ForeignKey(
        "CampaignVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_run_at"], name="campaign_due")]
        permissions = [
            ("activate_campaign", "Can publish campaigns (activate, pause, stop)"),
            ("approve_campaign", "Can approve campaign versions"),
            ("submit_campaign", "Can submit campaign versions for review"),
            ("send_proof", "Can send proofs of a campaign"),
            ("view_report", "Can view campaign reports"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("campaigns:detail", args=[self.pk])

    def latest_version(self):
        return self.versions.order_by("-number").first()

    def with_settings_of(self, version: "CampaignVersion") -> "Campaign":
        """This campaign as it would be with `version`'s settings, never saved: what the schedule checks and the
        approval rules read for a version that is not live yet."""
        proposed = copy.copy(self)
        version.copy_settings_to(proposed)
        return proposed


class CampaignVersion(CampaignSettings):
    """Content and settings as edited and, once activated, as sent. Runs point at the version they send.

    A version in review is locked; an approval belongs to the version approved (see campaigns.services.approval).
    """

    class ReviewState(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=500)
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Who last changed the content: with the submitter, the person a policy may bar from approving it.
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    review_state = models.CharField(max_length=16, choices=ReviewState.choices, default=ReviewState.DRAFT)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "number"], name="version_number_unique")]

    def __str__(self):
        return f"{self.campaign} v{self.number}"

    @property
    def last_editor_id(self) -> int:
        return self.edited_by_id or self.created_by_id

    def review_key(self) -> str:
        """Names one submission of this version, so a decision taken on a stale review page is refused."""
        submitted = self.submitted_at.isoformat() if self.submitted_at else ""
        return f"{self.pk}@{submitted}"


class ReviewDecision(models.Model):
    """An approver's decision on one submission of one version. An approval belongs to that version only."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approved"
        REQUEST_CHANGES = "request_changes", "Changes requested"

    version = models.ForeignKey(CampaignVersion, on_delete=models.CASCADE, related_name="decisions")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.version}: {self.get_decision_display()} by {self.decided_by}"


class ApprovalPolicy(models.Model):
    """Which campaigns need an approval before they go live, and who may give it.

    An empty list of kinds, categories, channels or tags matches every campaign on that criterion; a campaign
    matches the tags when it carries at least one of them.
    """

    name = models.CharField(max_length=200, unique=True)
    is_active = models.BooleanField(default=True)
    kinds = models.JSONField(default=list, blank=True, help_text="Campaign kinds; empty matches every kind.")
    categories = models.JSONField(default=list, blank=True, help_text="Categories; empty matches every category.")
    channels = models.JSONField(default=list, blank=True, help_text="Channels; empty matches every channel.")
    tags = models.JSONField(default=list, blank=True, help_text="Any of these tags; empty matches every campaign.")
    approver_groups = models.ManyToManyField("auth.Group", blank=True, related_name="+", verbose_name="approver roles")
    approver_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    block_self_approval = models.BooleanField(
        default=True, help_text="The user who submitted a version, or last edited it, may not approve it."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "approval policies"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("campaigns:policy_edit", args=[self.pk])

    def matches(self, campaign: Campaign) -> bool:
        return (
            (not self.kinds or campaign.kind in self.kinds)
            and (not self.categories or campaign.category in self.categories)
            and (not self.channels or campaign.channel_configuration.channel in self.channels)
            and (not self.tags or bool(set(self.tags) & set(campaign.tags)))
        )


class FrequencyCap(models.Model):
    """A business rule: at most `limit` marketing messages per profile within a rolling `period`, on one channel or
    across channels. Counted from the ledger at planning and again when a message is claimed for sending
    (campaigns.rules.frequency); transactional campaigns are exempt."""

    class Period(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"
        WEEK = "week", "Week"
        MONTH = "month", "Month"

    name = models.CharField(max_length=200, unique=True)
    is_active = models.BooleanField(default=True)
    limit = models.PositiveSmallIntegerField(help_text="Messages allowed within the period (1 to 1000).")
    period = models.CharField(max_length=8, choices=Period.choices)
    channel = models.CharField(
        max_length=16, choices=Channel.choices, blank=True, help_text="Empty: counted across every channel."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("campaigns:cap_edit", args=[self.pk])


class QuietHours(models.Model):
    """A business rule: no marketing message on `channel` between `start` and `end`, each profile's local time;
    one window per channel. A message due inside it is delayed to its end or discarded with a reason
    (campaigns.rules.quiet_hours); transactional campaigns are exempt."""

    class Action(models.TextChoices):
        DELAY = "delay", "Delay to the end of the window"
        DISCARD = "discard", "Discard, with the reason quiet hours"

    channel = models.CharField(max_length=16, choices=Channel.choices, unique=True)
    is_active = models.BooleanField(default=True)
    start = models.TimeField(help_text="Local time the window opens, e.g. 21:00.")
    end = models.TimeField(help_text="Local time it closes, e.g. 08:00 (the next day when before the start).")
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.DELAY)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["channel"]
        verbose_name_plural = "quiet hours"

    def __str__(self):
        return f"Quiet hours on {self.get_channel_display()}"

    def get_absolute_url(self):
        return reverse("campaigns:quiet_edit", args=[self.pk])


class Run(models.Model):
    """One send of one campaign version."""

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled occurrence"
        AUDIENCE_TRIGGER = "audience_trigger", "Audience trigger"
        UNITARY = "unitary", "Unitary triggers"

    class State(models.TextChoices):
        PLANNING = "planning", "Planning"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    ACTIVE_STATES = (State.PLANNING, State.SENDING)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(CampaignVersion, on_delete=models.PROTECT, related_name="runs")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SCHEDULED)
    # The nominal local occurrence time ("2026-11-01T01:30") or another key naming what started the run;
    # unique per campaign, so a repeated wall-clock time on the day clocks go back is still one run.
    occurrence = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PLANNING)
    planning_cursor = models.BigIntegerField(default=0, help_text="Last profile id planned.")
    planning_done = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sending_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A stopped run keeps one until its unsent messages are cancelled (campaigns.engine.completion).
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last progress of its jobs.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "occurrence"], name="run_one_per_occurrence")]
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="run_active")]
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.campaign} run {self.occurrence}"


class TriggerRequest(models.Model):
    """One call of the trigger API, kept so a replayed requestId is answered without sending again.

    `context` is the context shared by every recipient, and for a unitary call each recipient's own, as
    `{"shared": {...}, "recipients": {"<profile id>": {...}}}` (campaigns.services.triggers).
    """

    class Kind(models.TextChoices):
        UNITARY = "unitary", "Unitary"
        AUDIENCE = "audience", "Audience"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="trigger_requests")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.UNITARY)
    # Named in the API's answers and status calls; random, so one execution id does not reveal another.
    execution_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The person a unitary trigger was for: erasing them scrubs the stored context (campaigns.privacy).
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    api_key_prefix = models.CharField(max_length=16, blank=True)
    request_id = models.CharField(max_length=200)
    body_hash = models.CharField(max_length=64)
    context = models.JSONField(default=dict, blank=True)
    recipient_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(default=202)
    response = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "request_id"], name="trigger_request_id_unique"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="trigger_request_expiry"),
            models.Index(fields=["request_id"], name="trigger_request_lookup"),
            models.Index(fields=["campaign", "-created_at"], name="trigger_request_recent"),
        ]

    def __str__(self):
        return f"{self.campaign_id}:{self.request_id}"


class Delivery(models.Model):
    """One message to one recipient: the ledger row every send, retry and report reads."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Claimed"  # owned by a worker, nothing handed over yet: safe to release
        IN_FLIGHT = "in_flight", "In flight"  # handed to the provider, outcome not yet known
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        UNKNOWN = "unknown", "Unknown"  # the worker died or the connection broke after the data went out
        EXCLUDED = "excluded", "Excluded"
        DELIVERED = "delivered", "Delivered"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        CANCELLED = "cancelled", "Cancelled"  # never handed to a provider: its campaign was stopped first

    class Reason(models.TextChoices):
        NO_CONSENT = "no_consent", "No consent"
        SUPPRESSED = "suppressed", "Suppressed"
        NO_ADDRESS = "no_address", "No address"
        FREQUENCY_CAP = "frequency_cap", "Frequency cap"
        QUIET_HOURS = "quiet_hours", "Quiet hours"
        LOCAL_TIME_PASSED = "local_time_passed", "Local time passed"
        TEMPLATE_ERROR = "template_error", "Template error"
        RETRIES_EXHAUSTED = "retries_exhausted", "Retries exhausted"
        WORKER_LOST = "worker_lost", "Worker lost mid-send"

    OPEN_STATUSES = (Status.PENDING, Status.CLAIMED, Status.IN_FLIGHT)
    # Not yet handed to a provider: what a stop cancels.
    UNSENT_STATUSES = (Status.PENDING, Status.CLAIMED)

    id = models.BigAutoField(primary_key=True)
    # Every status change of a message writes each of the table's indexes (none of its updates can be HOT): the
    # foreign keys below whose lookups an index of Meta already leads with have none of their own.
    run = models.ForeignKey(  # delivery_claim, delivery_one_per_recipient
        Run, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    version = models.ForeignKey(CampaignVersion, on_delete=models.PROTECT, related_name="+")
    profile = models.ForeignKey(  # delivery_profile_history
        Profile, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    channel_configuration = models.ForeignKey(  # delivery_feedback
        ChannelConfiguration, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The trigger call this message answers (its context is rendered in); None for scheduled runs.
    trigger_request = models.ForeignKey(  # delivery_one_per_trigger_recipient (where it is not null)
        TriggerRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries", db_index=False
    )
    # Up to 4096: push tokens are long. Not indexed; feedback finds rows by provider id or delivery id.
    address = models.CharField(max_length=4096, blank=True, help_text="The address used, as it was.")
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The retry window of transient failures is measured from here (campaigns.engine.outcomes.record_outcomes).
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The SendWorker whose process holds the claim (None: a process without a lease, a test's or a burst
    # worker's): its rows are released as soon as it is known dead, not after the claim timeout.
    claimed_by = models.UUIDField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        permissions = [("export_delivery", "Can export deliveries")]
        constraints = [
            # One message per recipient of a scheduled run; a run of unitary triggers collects many calls, and
            # one person may be sent a password reset twice: there, one per recipient of each call.
            models.UniqueConstraint(
                fields=["run", "profile", "channel"],
                condition=models.Q(trigger_request__isnull=True),
                name="delivery_one_per_recipient",
            ),
            models.UniqueConstraint(
                fields=["trigger_request", "profile", "channel"],
                condition=models.Q(trigger_request__isnull=False),
                name="delivery_one_per_trigger_recipient",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "status", "due_at"], name="delivery_claim"),
            models.Index(fields=["channel_configuration", "provider_message_id"], name="delivery_feedback"),
            models.Index(fields=["profile", "-id"], name="delivery_profile_history"),
            # The reaper's scan of rows held by workers, small whatever the ledger's size.
            models.Index(
                fields=["claimed_at"],
                condition=models.Q(status__in=["claimed", "in_flight"]),
                name="delivery_open_claims",
            ),
        ]

    def __str__(self):
        return f"Delivery {self.pk} ({self.status})"


class Engagement(models.Model):
    """What the tracking links of one delivery saw (campaigns.tracking): its opens, or its clicks on one link, by
    people or by machines (mail privacy proxies, link scanners) apart. One row per delivery, kind, link and machine
    flag, counted as requests come in: written by upserts of many requests at a time (campaigns.services.tracking)."""

    class Kind(models.TextChoices):
        OPEN = "open", "Open"
        CLICK = "click", "Click"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"  # confirmed through the message's unsubscribe link

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(  # engagement_one_open, engagement_one_click, engagement_one_unsubscribe
        Delivery, on_delete=models.CASCADE, related_name="engagements", db_index=False
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # A click's link: its position among the tracked links of the version's HTML (campaigns.tracking.version_links,
    # from 0); None for an open.
    link = models.PositiveSmallIntegerField(null=True, blank=True)
    # Fetched by a machine (a mail privacy proxy, a link scanner, a HEAD request, within seconds of sending), not by
    # the person: campaigns.tracking.request_machine_reason, or the seconds rule of campaigns.services.tracking.
    machine = models.BooleanField(default=False)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    count = models.BigIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "machine"], condition=models.Q(kind="open"), name="engagement_one_open"
            ),
            models.UniqueConstraint(
                fields=["delivery", "link", "machine"], condition=models.Q(kind="click"), name="engagement_one_click"
            ),
            models.UniqueConstraint(
                fields=["delivery", "machine"],
                condition=models.Q(kind="unsubscribe"),
                name="engagement_one_unsubscribe",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=["open", "unsubscribe"], link__isnull=True)
                | models.Q(kind="click", link__isnull=False),
                name="engagement_only_clicks_name_a_link",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} of delivery {self.delivery_id} ({self.count})"


class Tally(models.Model):
    """Counter rows of a run, written by the database (triggers of migration 0014) whenever its ledger changes, so no
    page ever counts the ledger and no process forgets to count: `raw` rows are the deltas of one statement, summed
    now and then into rows of each grain by `campaigns.services.tallies.tallies_compact`. A report adds the grain
    rows it needs and the raw rows not yet compacted (campaigns.selectors.reports)."""

    class Grain(models.TextChoices):
        RAW = "raw", "Deltas not yet compacted"
        TOTAL = "total", "Totals"
        TIME = "time", "By minute (by hour after a day)"
        DOMAIN = "domain", "By recipient domain"

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+", db_index=False)  # tally_of_run
    grain = models.CharField(max_length=8, choices=Grain.choices, default=Grain.RAW)
    # The domain of an email address; "" for other channels and for messages still on their way (pending, claimed,
    # in flight), and `OTHER_DOMAINS` for the domains a run has too many of to keep apart.
    domain = models.CharField(max_length=255, blank=True)
    # The minute of the change (compacted by the hour after the run's first day); None for a raw row that counts
    # messages leaving a state, or arriving in one of the states on their way, which no timeline shows.
    bucket = models.DateTimeField(null=True, blank=True)

    OTHER_DOMAINS = "*"

    class Meta:
        abstract = True


class DeliveryTally(Tally):
    """The number of messages of a run in each status and reason (`n` may be negative in a raw row: messages that
    left that status)."""

    status = models.CharField(max_length=16)
    reason = models.CharField(max_length=40, blank=True)
    n = models.BigIntegerField()

    class Meta:
        # One row per key of each compacted grain: the compaction adds to it (INSERT ... ON CONFLICT DO UPDATE).
        constraints = [
            models.UniqueConstraint(
                fields=["run", "status", "reason"], condition=models.Q(grain="total"), name="delivery_tally_one_total"
            ),
            models.UniqueConstraint(
                fields=["run", "status", "bucket"], condition=models.Q(grain="time"), name="delivery_tally_one_time"
            ),
            models.UniqueConstraint(
                fields=["run", "domain", "status"], condition=models.Q(grain="domain"), name="delivery_tally_one_domain"
            ),
        ]
        indexes = [
            models.Index(fields=["run", "grain"], name="delivery_tally_of_run"),
            # What the compaction has still to do, small whatever the number of runs.
            models.Index(fields=["run"], condition=models.Q(grain="raw"), name="delivery_tally_raw"),
            # Messages by status over every run (the metrics endpoint), without reading minutes and domains.
            models.Index(fields=["grain", "status"], name="delivery_tally_by_status"),
        ]

    def __str__(self):
        return f"Run {self.run_id} {self.grain}: {self.status} {self.reason} {self.domain} {self.bucket} {self.n:+}"


class EngagementTally(Tally):
    """What the tracking links of a run's messages saw: `uniques` new Engagement rows (unique opens, unique clicks
    of each link), `people` messages engaged in this kind for the first time (unique clicks whatever the link),
    `total` requests."""

    kind = models.CharField(max_length=12, choices=Engagement.Kind.choices)
    machine = models.BooleanField(default=False)
    link = models.PositiveSmallIntegerField(null=True, blank=True)
    uniques = models.BigIntegerField(default=0)
    people = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "kind", "machine", "link"],
                condition=models.Q(grain="total", link__isnull=False),
                name="engagement_tally_one_link",
            ),
            models.UniqueConstraint(
                fields=["run", "kind", "machine"],
                condition=models.Q(grain="total", link__isnull=True),
                name="engagement_tally_one_kind",
            ),
            models.UniqueConstraint(
                fields=["run", "kind", "machine", "bucket"],
                condition=models.Q(grain="time"),
                name="engagement_tally_one_time",
            ),
            models.UniqueConstraint(
                fields=["run", "kind", "machine", "domain"],
                condition=models.Q(grain="domain"),
                name="engagement_tally_one_domain",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "grain"], name="engagement_tally_of_run"),
            models.Index(fields=["run"], condition=models.Q(grain="raw"), name="engagement_tally_raw"),
        ]

    def __str__(self):
        return f"Run {self.run_id} {self.grain}: {self.kind} {self.uniques}/{self.people}/{self.total}"


class SendWorker(models.Model):
    """A worker process that sends, known alive while a thread of it renews `renewed_at` every few seconds
    (campaigns.engine.workers). The claims it makes name it (Delivery.claimed_by): the scheduler's tick releases the
    claims of a worker not heard from for CAMPAIGNS_WORKER_LOST_SECONDS (killed, frozen, its machine gone), and
    re-dispatches its runs, within seconds instead of after the claim timeout."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, help_text="The worker's host and process id, for the operator.")
    started_at = models.DateTimeField()
    renewed_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"SendWorker {self.name}"
