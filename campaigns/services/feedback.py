"""Provider feedback applied to the ledger: delivered, opened, clicked, bounced and complained.

Events come from channels.feedback (webhooks, DSNs, complaint reports) through its `feedback_received`
signal. Statuses only move forward: sent -> delivered -> opened -> clicked, a bounce ends a message that was sent
or delivered (or whose fate was unknown: feedback settles it), and a complaint any of those. An event that
would move a delivery backwards, or that was applied before, changes nothing, so replays are harmless.
Hard bounces and complaints put the address on the suppression list.
"""

import logging

from django.db import transaction
from django.dispatch import receiver

from campaigns.models import Delivery
from channels.adapters.base import Outcome
from channels.feedback import EventType, FeedbackEvent, feedback_received
from channels.models import Suppression
from channels.services.suppression import suppress_addresses

log = logging.getLogger(__name__)

S = Delivery.Status
# The statuses each event may move a delivery from.
_FROM = {
    EventType.DELIVERED: {S.SENT, S.UNKNOWN},
    EventType.OPENED: {S.SENT, S.UNKNOWN, S.DELIVERED},
    EventType.CLICKED: {S.SENT, S.UNKNOWN, S.DELIVERED, S.OPENED},
    EventType.BOUNCED: {S.SENT, S.UNKNOWN, S.DELIVERED},
    # A complaint comes after the person saw the message: also after an open or a click the provider reported.
    EventType.COMPLAINED: {S.SENT, S.UNKNOWN, S.DELIVERED, S.OPENED, S.CLICKED},
}
_TO = {
    EventType.DELIVERED: S.DELIVERED,
    EventType.OPENED: S.OPENED,
    EventType.CLICKED: S.CLICKED,
    EventType.BOUNCED: S.BOUNCED,
    EventType.COMPLAINED: S.COMPLAINED,
}
# Applied in this order, so a batch holding several events of one message ends at the furthest.
_ORDER = [EventType.DELIVERED, EventType.OPENED, EventType.CLICKED, EventType.BOUNCED, EventType.COMPLAINED]


@receiver(feedback_received)
def _on_feedback(sender, events, **kwargs):
    return feedback_apply(events=events)


@transaction.atomic
def feedback_apply(*, events: list[FeedbackEvent]) -> dict[str, int]:
    """Apply provider events to their deliveries. Idempotent.

    A delivery is found by its id, or by (configuration, provider message id) through the feedback index;
    an event names only deliveries of the configuration whose endpoint received it. Returns counts:
    applied (a status changed), unchanged (a replay, or a step backwards), unmatched (no such delivery), and
    ignored (a soft bounce: the relay keeps trying).
    """
    counts = {"applied": 0, "unchanged": 0, "unmatched": 0, "ignored": 0}
    matched = _deliveries_for(events)
    suppress: dict[tuple[str, str], set[str]] = {}
    for event_type in _ORDER:
        for event in (e for e in events if e.type == event_type):
            delivery = matched.get(_key(event))
            if delivery is None:
                counts["unmatched"] += 1
                continue
            bounce = event.bounce
            if bounce is not None and bounce.outcome != Outcome.PERMANENT:
                counts["ignored"] += 1  # a delayed or soft bounce: nothing has ended yet
                continue
            changes = {"status": _TO[event_type]}
            if event_type == EventType.BOUNCED:
                changes |= {"reason": f"smtp_{event.status}" if event.status else "bounced", "detail": event.detail}
            elif event_type == EventType.COMPLAINED:
                changes |= {"reason": "complaint", "detail": event.detail}
            moved = Delivery.objects.filter(pk=delivery.pk, status__in=_FROM[event_type]).update(**changes)
            counts["applied" if moved else "unchanged"] += 1
            if moved:
                delivery.status = changes["status"]
            # Suppressing twice is harmless, so a replayed complaint still makes sure the address is listed.
            if event_type == EventType.COMPLAINED or (bounce is not None and bounce.suppress):
                complained = event_type == EventType.COMPLAINED
                reason = Suppression.Reason.COMPLAINT if complained else Suppression.Reason.HARD_BOUNCE
                suppress.setdefault((delivery.channel, reason), set()).add(delivery.address)
    for (channel, reason), addresses in suppress.items():
        suppress_addresses(channel=channel, addresses=addresses, reason=reason)
    if counts["unmatched"]:
        log.info("feedback: %s events named no delivery we know", counts["unmatched"])
    return counts


def _key(event: FeedbackEvent):
    if event.delivery_id is not None:
        return ("id", event.delivery_id, event.configuration_id)
    return ("provider", event.provider_message_id, event.configuration_id)


def _deliveries_for(events: list[FeedbackEvent]) -> dict[tuple, Delivery]:
    """The deliveries the events name, by event key: two queries, each on an index."""
    by_id = {e.delivery_id for e in events if e.delivery_id is not None}
    by_provider = {
        (e.configuration_id, e.provider_message_id) for e in events if e.delivery_id is None and e.configuration_id
    }
    fields = ("id", "status", "channel", "address", "channel_configuration_id", "provider_message_id")
    found = {}
    if by_id:
        for delivery in Delivery.objects.filter(pk__in=by_id).only(*fields):
            found[("id", delivery.pk)] = delivery
    by_configuration: dict[int, set[str]] = {}
    for configuration_id, provider_message_id in by_provider:
        by_configuration.setdefault(configuration_id, set()).add(provider_message_id)
    for configuration_id, provider_message_ids in by_configuration.items():
        rows = Delivery.objects.filter(
            channel_configuration_id=configuration_id, provider_message_id__in=provider_message_ids
        )
        for delivery in rows.only(*fields):
            found.setdefault(("provider", delivery.provider_message_id, configuration_id), delivery)
    matched = {}
    for event in events:
        key = _key(event)
        if event.delivery_id is not None:
            delivery = found.get(("id", event.delivery_id))
            # An endpoint's secret vouches for its own configuration's messages only.
            if delivery is not None and event.configuration_id not in (None, delivery.channel_configuration_id):
                delivery = None
        else:
            delivery = found.get(key)
        if delivery is not None:
            matched[key] = delivery
    return matched
