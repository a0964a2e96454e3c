"""Reads for campaign pages and reports. Counts come from the ledger, by an indexed aggregate."""

import re
from dataclasses import dataclass

from django.db.models import Count

from audiences.models import Channel, Profile
from audiences.selectors.profiles import profiles_search
from campaigns.models import Campaign, Delivery, FrequencyCap, QuietHours, Run, TriggerRequest
from campaigns.rules import frequency, quiet_hours

_SENT = {Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.OPENED, Delivery.Status.CLICKED}
_FAILED = {Delivery.Status.FAILED, Delivery.Status.BOUNCED, Delivery.Status.COMPLAINED}


@dataclass(frozen=True)
class DeliveryCounts:
    targeted: int = 0
    excluded: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0

    @property
    def to_send(self) -> int:
        return self.targeted - self.excluded - self.cancelled

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.unknown

    @property
    def percent_done(self) -> int:
        return int(100 * self.done / self.to_send) if self.to_send else 100


def delivery_counts(*, campaign_id: int | None = None, run_id: int | None = None) -> DeliveryCounts:
    """Counts by outcome for a campaign's runs or one run."""
    rows = Delivery.objects.all()
    rows = rows.filter(run_id=run_id) if run_id is not None else rows.filter(run__campaign_id=campaign_id)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    return DeliveryCounts(
        targeted=sum(by_status.values()),
        excluded=by_status.get(Delivery.Status.EXCLUDED, 0),
        pending=sum(by_status.get(status, 0) for status in Delivery.OPEN_STATUSES),
        sent=sum(by_status.get(status, 0) for status in _SENT),
        failed=sum(by_status.get(status, 0) for status in _FAILED),
        unknown=by_status.get(Delivery.Status.UNKNOWN, 0),
        cancelled=by_status.get(Delivery.Status.CANCELLED, 0),
    )


def exclusion_counts(*, campaign_id: int) -> dict[str, int]:
    rows = Delivery.objects.filter(run__campaign_id=campaign_id, status=Delivery.Status.EXCLUDED)
    return dict(rows.values_list("reason").annotate(n=Count("id")).order_by("reason"))


# API-triggered campaigns ---------------------------------------------------------------------------------------

TRIGGER_REQUESTS_SHOWN = 20


def recent_trigger_requests(*, campaign_id: int, limit: int = TRIGGER_REQUESTS_SHOWN) -> list[TriggerRequest]:
    """The campaign's latest trigger calls, newest first (the index on campaign and time serves it)."""
    rows = TriggerRequest.objects.filter(campaign_id=campaign_id).order_by("-created_at", "-pk")
    shown = ("campaign_id", "kind", "request_id", "recipient_count", "accepted_count", "response_status")
    return list(rows.only(*shown, "created_at")[:limit])


def trigger_delivery_counts(*, campaign_id: int) -> list[tuple[str, int]]:
    """(status label, count) of the messages trigger calls made, in the order of Delivery.Status; one query."""
    rows = Delivery.objects.filter(
        run__campaign_id=campaign_id, run__kind__in=[Run.Kind.UNITARY, Run.Kind.AUDIENCE_TRIGGER]
    )
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    return [(status.label, by_status[status]) for status in Delivery.Status if by_status.get(status)]


# The content preview's profile picker --------------------------------------------------------------------------

PREVIEW_CANDIDATES = 10


def preview_profiles(*, query: str, limit: int = PREVIEW_CANDIDATES) -> list[Profile]:
    """Profiles a preview may be rendered for: by id (`42` or `#42`), or as the profile list searches them (an
    identity, the start of an email address or a name)."""
    if re.fullmatch(r"#?\d{1,18}", query):
        return list(Profile.objects.filter(pk=int(query.lstrip("#"))))
    return list(profiles_search(query)[:limit])


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
