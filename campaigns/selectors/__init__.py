"""Reads for campaign pages. Counts come from the counters the database keeps (campaigns.selectors.reports)."""

import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)

from audiences.models import Channel, Profile
from audiences.selectors.profiles import profiles_search_page
from campaigns import schedules
from campaigns.models import (
    Campaign,
    CampaignVersion,
    Delivery,
    FrequencyCap,
    QuietHours,
    ReviewDecision,
    Run,
    TriggerRequest,
)
from campaigns.rules import frequency, quiet_hours
from campaigns.selectors.reports import DeliveryCounts, delivery_counts, figures_of_runs  # noqa: F401 - read from here

# API-triggered campaigns ---------------------------------------------------------------------------------------

TRIGGER_REQUESTS_SHOWN = 20


def recent_trigger_requests(*, campaign_id: int, limit: int = TRIGGER_REQUESTS_SHOWN) -> list[TriggerRequest]:
    """The campaign's latest trigger calls, newest first (the index on campaign and time serves it)."""
    rows = TriggerRequest.objects.filter(campaign_id=campaign_id).order_by("-created_at", "-pk")
    shown = ("campaign_id", "kind", "request_id", "recipient_count", "accepted_count", "response_status")
    return list(rows.only(*shown, "created_at")[:limit])


def trigger_delivery_counts(*, campaign_id: int) -> list[tuple[str, int]]:
    """(status label, count) of the messages trigger calls made, in the order of Delivery.Status; one query."""
    runs = Run.objects.filter(campaign_id=campaign_id, kind__in=[Run.Kind.UNITARY, Run.Kind.AUDIENCE_TRIGGER])
    by_status = Counter()
    for figures in figures_of_runs(list(runs.values_list("pk", flat=True))).values():
        for (status, _reason), n in figures.by_reason.items():
            by_status[status] += n
    return [(status.label, by_status[status]) for status in Delivery.Status if by_status.get(status)]


# The content preview's profile picker --------------------------------------------------------------------------

PREVIEW_CANDIDATES = 10


def preview_profiles(*, query: str, limit: int = PREVIEW_CANDIDATES) -> list[Profile]:
    """Profiles a preview may be rendered for: by id (`42` or `#42`), or as the profile list searches them (an
    identity, the start of an email address or a name)."""
    if re.fullmatch(r"#?\d{1,18}", query):
        return list(Profile.objects.filter(pk=int(query.lstrip("#"))))
    return profiles_search_page(query, size=limit).profiles


# Delivery rules: frequency caps and quiet hours ----------------------------------------------------------------

_PERIOD_WORDS = {
    FrequencyCap.Period.HOUR: "an hour",
    FrequencyCap.Period.DAY: "a day",
    FrequencyCap.Period.WEEK: "a week",
    FrequencyCap.Period.MONTH: "a month",
}
_MESSAGE_NOUNS = {
    Channel.EMAIL: "email",
    Channel.SMS: "SMS",
    Channel.PUSH: "push notification",
    Channel.WEBHOOK: "webhook call",
    Channel.IN_APP: "in-app message",
}


def frequency_cap_words(cap: FrequencyCap) -> str:
    """The cap in words: "At most 3 marketing messages a week per profile, across channels"."""
    messages = "message" if cap.limit == 1 else "messages"
    where = f"by {_MESSAGE_NOUNS[cap.channel]}" if cap.channel in _MESSAGE_NOUNS else "across channels"
    return f"At most {cap.limit} marketing {messages} {_PERIOD_WORDS.get(cap.period, cap.period)} per profile, {where}"


def quiet_hours_words(window: QuietHours) -> str:
    """The window in words: "No marketing email between 21:00 and 08:00, profile's local time: delayed to 08:00"."""
    start, end = window.start.strftime("%H:%M"), window.end.strftime("%H:%M")
    then = f"delayed to {end}" if window.action == QuietHours.Action.DELAY else "discarded"
    noun = _MESSAGE_NOUNS.get(window.channel, window.channel)
    return f"No marketing {noun} between {start} and {end}, profile's local time: {then}"


@dataclass(frozen=True)
class DeliveryRules:
    """Frequency caps and quiet-hours windows, each with its words."""

    caps: list[tuple[FrequencyCap, str]]
    quiet_hours: list[tuple[QuietHours, str]]
    # A transactional campaign: neither caps nor quiet hours apply to it (suppression does).
    exempt: bool = False


def delivery_rules_all() -> DeliveryRules:
    """Every cap and window, active or not, for the delivery rules page."""
    return DeliveryRules(
        caps=[(cap, frequency_cap_words(cap)) for cap in FrequencyCap.objects.all()],
        quiet_hours=[(window, quiet_hours_words(window)) for window in QuietHours.objects.all()],
    )


def delivery_rules_applying(*, campaign: Campaign) -> DeliveryRules:
    """The rules campaigns.rules applies to the campaign's marketing messages, as the rules themselves pick them: the
    active caps of its channel or across channels, and its channel's window; none for a transactional campaign."""
    if campaign.category != Campaign.Category.MARKETING:
        return DeliveryRules(caps=[], quiet_hours=[], exempt=True)
    channel = campaign.channel_configuration.channel
    window = quiet_hours.window_for(channel)
    return DeliveryRules(
        caps=[(cap, frequency_cap_words(cap)) for cap in frequency.caps_for(channel)],
        quiet_hours=[(window, quiet_hours_words(window))] if window else [],
    )


# The campaign list and its status labels ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusLabel:
    """A campaign's status as the list and the campaign page show it: the badge (its colour, `.badge-<value>`, and
    its words) and a note on a version waiting behind the live one."""

    value: str
    label: str
    note: str = ""


# How the list sorts by status: the order of a campaign's life.
STATUS_ORDER = ("draft", "in_review", "active", "paused", "stopped", "completed", "archived")


def campaigns_with_review_state(queryset):
    """`queryset` annotated with its latest version (`latest_version_id`, `latest_version_number`,
    `latest_review_state`) and the latest review decision on any of its versions (`latest_decision`,
    `latest_decision_version_id`): what campaign_status_label reads, in the page's one query."""
    decisions = ReviewDecision.objects.filter(version__campaign=OuterRef("pk")).order_by("-created_at", "-id")
    return queryset.annotate(
        latest_version_id=_latest_version_value("pk"),
        latest_version_number=_latest_version_value("number"),
        latest_review_state=_latest_version_value("review_state"),
        latest_decision=Subquery(decisions.values("decision")[:1]),
        latest_decision_version_id=Subquery(decisions.values("version_id")[:1]),
    )


_REVIEW_ANNOTATIONS = (
    "latest_version_id",
    "latest_version_number",
    "latest_review_state",
    "latest_decision",
    "latest_decision_version_id",
)


def campaign_status_label(*, campaign: Campaign) -> StatusLabel:
    """The one definition of a campaign's status label, for the list and the campaign page.

    Archived campaigns say so. A draft whose latest version awaits an approver is "In review". A live or finished
    campaign keeps its status, with a note when a newer version than the live one is in draft, in review, approved
    or sent back with changes requested. A campaign from campaigns_with_review_state carries what this reads;
    another costs one query."""
    if not all(hasattr(campaign, name) for name in _REVIEW_ANNOTATIONS):
        values = campaigns_with_review_state(Campaign.objects.filter(pk=campaign.pk)).values(*_REVIEW_ANNOTATIONS)
        for name, value in (values.first() or dict.fromkeys(_REVIEW_ANNOTATIONS)).items():
            setattr(campaign, name, value)
    status = Campaign.Status(campaign.status)
    if campaign.archived_at is not None:
        return StatusLabel("archived", "Archived", f"was {status.label.lower()}")
    state = campaign.latest_review_state
    changes_requested = (
        state == CampaignVersion.ReviewState.DRAFT
        and campaign.latest_decision == ReviewDecision.Decision.REQUEST_CHANGES
        and campaign.latest_decision_version_id == campaign.latest_version_id
    )
    if status == Campaign.Status.DRAFT:
        if state == CampaignVersion.ReviewState.IN_REVIEW:
            return StatusLabel("in_review", "In review")
        if changes_requested:
            return StatusLabel(status.value, status.label, "changes requested")
        if state == CampaignVersion.ReviewState.APPROVED:
            return StatusLabel(status.value, status.label, "approved, not yet active")
        return StatusLabel(status.value, status.label)
    pending = campaign.latest_version_id is not None and campaign.latest_version_id != campaign.live_version_id
    if not pending or status in Campaign.FINISHED_STATUSES:
        return StatusLabel(status.value, status.label)
    number = campaign.latest_version_number
    if state == CampaignVersion.ReviewState.IN_REVIEW:
        note = f"version {number} in review"
    elif changes_requested:
        note = f"changes requested on version {number}"
    elif state == CampaignVersion.ReviewState.APPROVED:
        note = f"version {number} approved, not yet live"
    else:
        note = f"version {number} in draft"
    return StatusLabel(status.value, status.label, note)


# The list's sort keys: (the form's value, its words, the ordering).
CAMPAIGN_SORTS = {
    "-created": ("Newest first", ("-created_at", "-pk")),
    "created": ("Oldest first", ("created_at", "pk")),
    "name": ("Name, A to Z", ("name", "pk")),
    "-name": ("Name, Z to A", ("-name", "-pk")),
    "next_run": ("Next run, soonest first", ("next_run_at", "pk")),
    "-next_run": ("Next run, latest first", ("-next_run_at", "-pk")),
    "status": ("Status", ("status_rank", "name", "pk")),
}
TAGS_LISTED = 500


def campaigns_listed(
    *,
    query: str = "",
    status: str = "",
    kind: str = "",
    category: str = "",
    channel: str = "",
    tag: str = "",
    owner_id: int | None = None,
    sort: str = "-created",
):
    """The campaign list, filtered and sorted: cheap to count and to slice (what a row shows comes with
    campaigns_page). Archived campaigns are left out unless `status` is "archived"; "in_review" is every campaign
    with a version awaiting an approver, live ones included."""
    campaigns = Campaign.objects.all()
    if status == "archived":
        campaigns = campaigns.filter(archived_at__isnull=False)
    else:
        campaigns = campaigns.filter(archived_at__isnull=True)
        if status in ("in_review", Campaign.Status.DRAFT):
            campaigns = campaigns.alias(latest_review_state=_latest_version_value("review_state"))
        if status == "in_review":
            campaigns = campaigns.filter(latest_review_state="in_review")
        elif status == Campaign.Status.DRAFT:
            campaigns = campaigns.filter(status=status).exclude(latest_review_state="in_review")
        elif status:
            campaigns = campaigns.filter(status=status)
    if query:
        campaigns = campaigns.filter(Q(name__icontains=query) | Q(description__icontains=query))
    if kind:
        campaigns = campaigns.filter(kind=kind)
    if category:
        campaigns = campaigns.filter(category=category)
    if channel:
        campaigns = campaigns.filter(channel_configuration__channel=channel)
    if tag:
        campaigns = _with_tag(campaigns, tag)
    if owner_id is not None:
        campaigns = campaigns.filter(owner_id=owner_id)
    return _sorted(campaigns, sort)


def campaigns_page(*, rows, sort: str = "-created") -> list[Campaign]:
    """The campaigns of `rows` (a page, a slice of campaigns_listed), in its order, with what a row and its status
    label read, in one query: the subqueries run for the page's rows only, not for every row before it."""
    page = Campaign.objects.select_related("channel_configuration", "audience", "owner").filter(
        pk__in=rows.values("pk")
    )
    return list(_sorted(campaigns_with_review_state(page), sort))


def _latest_version_value(name: str):
    latest = CampaignVersion.objects.filter(campaign=OuterRef("pk")).order_by("-number")
    return Subquery(latest.values(name)[:1])


def _sorted(campaigns, sort: str):
    ordering = CAMPAIGN_SORTS.get(sort, CAMPAIGN_SORTS["-created"])[1]
    if "status_rank" in ordering:
        if "latest_review_state" not in campaigns.query.annotations:
            campaigns = campaigns.alias(latest_review_state=_latest_version_value("review_state"))
        # Drafts in review sort as "in review", between drafts and active campaigns.
        rank = Case(
            When(archived_at__isnull=False, then=Value(STATUS_ORDER.index("archived"))),
            When(
                status=Campaign.Status.DRAFT,
                latest_review_state="in_review",
                then=Value(STATUS_ORDER.index("in_review")),
            ),
            *(When(status=name, then=Value(STATUS_ORDER.index(name))) for name in Campaign.Status.values),
            output_field=IntegerField(),
        )
        campaigns = campaigns.alias(status_rank=rank)
    if ordering[0].endswith("next_run_at"):
        # Campaigns with nothing due come last, whichever the direction.
        field = F("next_run_at")
        first = field.desc(nulls_last=True) if ordering[0].startswith("-") else field.asc(nulls_last=True)
        return campaigns.order_by(first, *ordering[1:])
    return campaigns.order_by(*ordering)


def _with_tag(campaigns, tag: str):
    if connection.vendor == "postgresql":
        return campaigns.filter(tags__contains=[tag])
    return campaigns.alias(has_tag=_SqliteArrayHolds(F("tags"), Value(tag, output_field=CharField()))).filter(
        has_tag=True
    )


class _SqliteArrayHolds(Func):
    """SQLite: whether a JSON array holds a string (Django's JSONField `contains` is PostgreSQL's only)."""

    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        array, value = self.source_expressions
        array_sql, array_params = compiler.compile(array)
        value_sql, value_params = compiler.compile(value)
        sql = f"EXISTS (SELECT 1 FROM json_each({array_sql}) AS item WHERE item.value = {value_sql})"  # noqa: S608
        return sql, [*array_params, *value_params]


_TAGS_IN_USE_POSTGRESQL = (
    "SELECT DISTINCT tag FROM campaigns_campaign, jsonb_array_elements_text(campaigns_campaign.tags) AS tag "
    "ORDER BY 1 LIMIT %s"
)
_TAGS_IN_USE_SQLITE = (
    "SELECT DISTINCT each.value FROM campaigns_campaign, json_each(campaigns_campaign.tags) AS each "
    "WHERE each.type = 'text' ORDER BY 1 LIMIT %s"
)


def campaign_tags_in_use(*, limit: int = TAGS_LISTED) -> list[str]:
    """The distinct tags campaigns carry, sorted, at most `limit`."""
    if connection.vendor == "postgresql":
        sql = _TAGS_IN_USE_POSTGRESQL
    else:
        sql = _TAGS_IN_USE_SQLITE
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall() if isinstance(row[0], str)]


def campaign_owners():
    """The users who own at least one campaign, by username."""
    return get_user_model().objects.filter(pk__in=Campaign.objects.values("owner_id")).order_by("username")


# The calendar -------------------------------------------------------------------------------------------------------

CALENDAR_WEEKS = 4  # the page shows four weeks, Monday first: the one asked for and the three after
CALENDAR_DAYS = 7 * CALENDAR_WEEKS
CALENDAR_CAMPAIGNS = 200  # active campaigns read for the four weeks, soonest next run first
CALENDAR_SHOWN_A_DAY = 4  # a campaign's occurrences listed in one day's cell; the rest are "and N more"
CALENDAR_COUNTED_A_DAY = 100  # past this, a day's count reads "99+ more"


@dataclass(frozen=True)
class CalendarEntry:
    campaign: Campaign
    at: object  # the occurrence, an aware datetime in the campaign's zone
    more: int = 0  # after this entry, how many more that day (the last entry of a campaign's day only)
    more_capped: bool = False  # the count stopped at CALENDAR_COUNTED_A_DAY
    url: str = ""  # the campaign's page, reversed once a campaign (a page may list thousands of entries)

    @property
    def time(self) -> str:
        return f"{self.at:%H:%M}"

    @property
    def zone_abbreviation(self) -> str:
        return self.at.tzname()


@dataclass
class CalendarDay:
    day: object  # a date
    entries: list


@dataclass
class CalendarPeriod:
    days: list
    campaigns_shown: int
    campaigns_left_out: int

    @property
    def weeks(self) -> list[list]:
        """The days in rows of seven, Monday first."""
        return [self.days[index : index + 7] for index in range(0, len(self.days), 7)]


def calendar_period(*, first_day, now) -> CalendarPeriod:
    """The occurrences still to come of the active scheduled campaigns on the CALENDAR_DAYS days from `first_day`,
    each on its wall date and time in the campaign's own zone. Paused, stopped, archived and draft campaigns have
    no sends planned and are left out; at most CALENDAR_CAMPAIGNS campaigns (soonest next run first) and
    CALENDAR_SHOWN_A_DAY occurrences of one campaign a day, the rest counted."""
    candidates = (
        Campaign.objects.filter(status=Campaign.Status.ACTIVE, kind=Campaign.Kind.SCHEDULED, archived_at__isnull=True)
        .exclude(schedule=Campaign.Schedule.ON_ACTIVATION)
        .order_by(F("next_run_at").asc(nulls_last=True), "pk")
    )
    campaigns = list(candidates[: CALENDAR_CAMPAIGNS + 1])
    left_out = 0
    if len(campaigns) > CALENDAR_CAMPAIGNS:
        campaigns = campaigns[:CALENDAR_CAMPAIGNS]
        left_out = candidates.count() - CALENDAR_CAMPAIGNS
    days = [CalendarDay(first_day + timedelta(days=offset), []) for offset in range(CALENDAR_DAYS)]
    by_day = {day.day: day for day in days}
    for campaign in campaigns:
        found = schedules.local_day_occurrences(
            campaign,
            first_day=first_day,
            days=CALENDAR_DAYS,
            after=now,
            shown=CALENDAR_SHOWN_A_DAY,
            counted=CALENDAR_COUNTED_A_DAY,
        )
        zone = ZoneInfo(campaign.timezone)
        url = campaign.get_absolute_url()
        for day, (instants, more) in found.items():
            capped = len(instants) + more >= CALENDAR_COUNTED_A_DAY
            for index, instant in enumerate(instants):
                last = index == len(instants) - 1
                entry = CalendarEntry(campaign, instant.astimezone(zone), more if last else 0, capped and last, url)
                by_day[day].entries.append(entry)
    for day in days:
        day.entries.sort(key=lambda entry: (entry.at.replace(tzinfo=None), entry.campaign.name, entry.campaign.pk))
    return CalendarPeriod(days=days, campaigns_shown=len(campaigns), campaigns_left_out=left_out)
