"""Recording what the adapter answered for each message: sent, failed (an address retired when the failure
says it is dead), retried later, or unknown."""

import logging
import math
import uuid
from datetime import timedelta

from django.utils import timezone

from audiences.models import Channel, Consent
from audiences.services.consent import consent_set
from audiences.services.push_tokens import push_token_retire
from campaigns.models import Delivery
from channels.adapters.base import Outcome, Reason, SendResult
from channels.classification import classify
from channels.models import Suppression
from channels.services.suppression import suppress_addresses
from config import rawsql, untrusted

log = logging.getLogger(__name__)

# Transient failures are retried until the configuration's retry window, measured from the first attempt,
# is spent: after the provider's Retry-After when it gave one, else after these waits (the last repeats).
_BACKOFF = [60, 300, 900, 1800, 3600]  # seconds before attempt 2, 3, 4, 5, 6 and after
DEFAULT_RETRY_WINDOW = timedelta(hours=24)  # for configurations whose settings name none
# A guard against a provider that keeps asking for a retry within a second: never more attempts than this.
MAX_ATTEMPTS = 100
MAX_RETRY_AFTER = 24 * 3600  # seconds


def record_outcomes(
    *,
    token: uuid.UUID,
    results: list[SendResult],
    by_id: dict[int, Delivery],
    retry_window: timedelta = DEFAULT_RETRY_WINDOW,
    retry_unknown: bool = False,
) -> int:
    """Write each result to its delivery, only where this claim still owns the row.

    With `retry_unknown` (transactional runs) an indeterminate outcome is retried like a transient one: the
    provider's idempotency key is the delivery id. Marketing never re-sends what may have been delivered.

    Failures are read through channels.classification: a transient one goes back to pending for a later
    attempt while the retry window (from the first attempt) lasts, then fails with retries_exhausted; a
    permanent one fails, and a dead address is suppressed (a push token retired). Attempts are counted
    in the ledger. Returns how many rows were written.
    """
    now = timezone.now()
    rows, dead, opted_out = [], [], []
    for result in results:
        delivery = by_id[result.delivery_id]
        delivery.attempts += 1
        delivery.first_attempt_at = delivery.first_attempt_at or now
        # The adapter's words come from the provider's answer: whatever it sent must not fail the whole write.
        delivery.reason = untrusted.storable(result.reason, 40)
        delivery.detail = untrusted.storable(result.detail, 500)
        outcome = result.outcome
        if outcome in (Outcome.TRANSIENT, Outcome.PERMANENT):
            classification = classify(result.reason, outcome)
            if classification.outcome in (Outcome.TRANSIENT, Outcome.PERMANENT):
                outcome = classification.outcome
            if outcome == Outcome.PERMANENT and classification.suppress:
                dead.append(delivery)
            if outcome == Outcome.PERMANENT and result.reason == Reason.RECIPIENT_OPTED_OUT:
                opted_out.append(delivery)
        delivery.claim_token = token
        if outcome == Outcome.SENT:
            delivery.status, delivery.sent_at = Delivery.Status.SENT, now
            delivery.provider_message_id = untrusted.storable(result.provider_message_id, 255)
        elif outcome == Outcome.PERMANENT:
            delivery.status = Delivery.Status.FAILED
        elif outcome == Outcome.INDETERMINATE and not retry_unknown:
            delivery.status = Delivery.Status.UNKNOWN
        else:
            retry_at = now + _retry_delay(delivery.attempts, result.retry_after)
            if retry_at > delivery.first_attempt_at + retry_window or delivery.attempts >= MAX_ATTEMPTS:
                # The last failure stays in detail, so the report says what kept failing.
                delivery.status, delivery.reason = Delivery.Status.FAILED, Delivery.Reason.RETRIES_EXHAUSTED
            else:
                delivery.status, delivery.claim_token = Delivery.Status.PENDING, None
                delivery.next_attempt_at = delivery.due_at = retry_at
        rows.append(delivery)
    fields = ["status", "reason", "detail", "attempts", "first_attempt_at", "sent_at", "provider_message_id"]
    fields += ["claim_token", "next_attempt_at", "due_at"]
    written = rawsql.update(
        Delivery,
        rows,
        fields,
        where="t.claim_token = %s AND t.status = %s",
        params=[rawsql.value(Delivery, "claim_token", token), Delivery.Status.IN_FLIGHT],
    )
    if dead or opted_out:
        _retire_addresses(token=token, dead=dead, opted_out=opted_out)
    return written


def _retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        # A provider's Retry-After is honoured up to a day (`inf` or 1e12 would overflow the date).
        return timedelta(seconds=min(max(retry_after, 1.0), MAX_RETRY_AFTER))
    return timedelta(seconds=_BACKOFF[min(attempts, len(_BACKOFF)) - 1])


def _retire_addresses(*, token: uuid.UUID, dead: list[Delivery], opted_out: list[Delivery]) -> None:
    """Act on what permanent failures say about the address, for the rows this claim did fail."""
    ours = set(
        Delivery.objects.filter(
            claim_token=token, status=Delivery.Status.FAILED, id__in=[d.pk for d in dead + opted_out]
        ).values_list("id", flat=True)
    )
    by_channel: dict[str, list[str]] = {}
    for delivery in dead:
        if delivery.pk not in ours:
            continue
        if delivery.channel == Channel.PUSH:
            push_token_retire(token=delivery.address)
        else:
            by_channel.setdefault(delivery.channel, []).append(delivery.address)
    for channel, addresses in by_channel.items():
        added = suppress_addresses(channel=channel, addresses=addresses, reason=Suppression.Reason.HARD_BOUNCE)
        if added:
            log.info("suppressed %s %s addresses after permanent failures", added, channel)
    for delivery in opted_out:
        # The provider holds the person's opt-out (an SMS STOP sent to it): consent is where opt-outs live.
        if delivery.pk in ours and delivery.profile_id:
            consent_set(
                profile=delivery.profile,
                channel=delivery.channel,
                state=Consent.State.OPTED_OUT,
                source="provider opt-out",
            )
