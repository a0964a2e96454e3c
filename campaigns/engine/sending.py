"""Sending a run slice by slice: a send job pulls slices, and each slice is re-checked, rendered and handed
to the channel's adapter."""

import collections
import functools
import logging
import math
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns import rules, tracking
from campaigns.engine.claiming import claim_slice
from campaigns.engine.completion import run_finish_if_done
from campaigns.engine.dispatch import queue_for
from campaigns.engine.outcomes import DEFAULT_RETRY_WINDOW, MAX_RETRY_AFTER, record_outcomes
from campaigns.models import Campaign, Delivery, Run, TriggerRequest
from campaigns.personalization import ContentError
from channels.adapters.base import OutboundMessage, Outcome, SendResult
from channels.adapters.registry import adapter_for
from channels.classification import classify
from channels.ratelimit import RateLimiter
from channels.unsubscribe import unsubscribe_url
from config import queues, rawsql
from config.queues import enqueue_on_commit

log = logging.getLogger(__name__)

# After a slice found the provider unavailable, the job tries one message again after these waits (the last
# repeats), unless the provider said when to come back: sending resumes within seconds of the provider's return,
# and a provider that stays down is not hammered.
PROBE_DELAYS = (1, 2, 4, 8, 16, 30)


def send_run(*, run_id: int, now_func=timezone.now, outage: int = 0) -> None:
    """Pull slices of the run's due deliveries and send them until none is left, the run is no longer
    sending, or this job's time budget is spent (then it re-enqueues itself so other runs get a turn).

    Never sleeps for rate-limit tokens: it re-enqueues itself for when the next token is due. Nor does it
    hammer a provider that is down: after a slice that found it unavailable, it re-enqueues itself as a probe
    (`outage`: how many slices in a row found it so) after PROBE_DELAYS, or the wait the provider asked for, and
    the rest of the run waits, pending, untouched. A probe sends one message, a due one or else the run's soonest
    retry; when the provider takes it, the retries that waited for the provider are due at once and the job goes on
    with whole slices.
    """
    run = Run.objects.select_related("campaign", "version__channel_configuration").get(pk=run_id)
    campaign = run.campaign
    # The run's version's configuration: a newer version activated meanwhile is for later runs.
    configuration = run.version.channel_configuration
    rate = getattr(configuration.get_settings(), "rate_per_second", None)
    limiter = RateLimiter(queues.connection(queue_for(campaign))) if rate else None
    deadline = time.monotonic() + settings.CAMPAIGNS_JOB_SECONDS
    slice_size = settings.CAMPAIGNS_SEND_SLICE
    while True:
        if not _still_sending(run_id):
            return
        if time.monotonic() > deadline:
            with transaction.atomic():
                enqueue_on_commit(queue_for(campaign), "campaigns.jobs.send_run", run_id)
            return
        wanted = 1 if outage else slice_size
        if limiter:
            wanted, wait = limiter.take(f"configuration:{configuration.pk}", rate=rate, requested=wanted)
            if not wanted:
                with transaction.atomic():
                    # A probe stays a probe (`outage`): its successor tries one message, after the growing wait.
                    enqueue_on_commit(
                        queue_for(campaign), "campaigns.jobs.send_run", run_id, outage, delay=max(wait, 0.05)
                    )
                return
        token, deliveries = claim_slice(run_id=run_id, limit=wanted, now=now_func(), soonest_retry=bool(outage))
        if deliveries and (asked := send_slice(run=run, token=token, deliveries=deliveries)) is not None:
            probe_in = _probe_in(outage, asked)
            log.warning("run %s: %s unavailable, trying one message again in %.0f s", run_id, configuration, probe_in)
            with transaction.atomic():
                _wake_later(run_id, probe_in)
                enqueue_on_commit(queue_for(campaign), "campaigns.jobs.send_run", run_id, outage + 1, delay=probe_in)
            return
        if deliveries and outage:
            log.info("run %s: %s available again", run_id, configuration)
            _retry_now_what_waited_for_the_provider(run_id)
            outage = 0
        if len(deliveries) < wanted:
            # Nothing more was due (a trigger call made since wakes the run with a job of its own).
            if not run_finish_if_done(run_id):
                # Retries fall due later: let the scheduler wake the run then.
                _rest(run_id)
            return


def _probe_in(outage: int, asked: float) -> float:
    """Seconds until a job tries a provider found unavailable `outage` times before: the wait it asked for (at least
    a second, at most MAX_RETRY_AFTER), else the next of PROBE_DELAYS."""
    if asked > 0:
        return min(max(asked, 1.0), float(MAX_RETRY_AFTER))
    return float(PROBE_DELAYS[min(outage, len(PROBE_DELAYS) - 1)])


def _still_sending(run_id: int) -> bool:
    """Whether the run goes on: it is sending and so is its campaign (a pause that raced the end of planning leaves
    the run sending, the campaign paused). Dates the run's heartbeat when it does, in the same statement: one a
    slice, through a cursor (config.rawsql)."""
    sql = (
        f"UPDATE {Run._meta.db_table} SET heartbeat_at = %s WHERE id = %s AND state = %s "  # noqa: S608
        f"AND campaign_id IN (SELECT id FROM {Campaign._meta.db_table} WHERE status = %s)"
    )
    params = [rawsql.value(Run, "heartbeat_at", timezone.now()), run_id, Run.State.SENDING, Campaign.Status.ACTIVE]
    with rawsql.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount > 0


def _rest(run_id: int) -> None:
    """No heartbeat while nothing is due: the scheduler wakes the run when its retries fall due."""
    Run.objects.filter(pk=run_id, state=Run.State.SENDING).update(heartbeat_at=None)


class _CallContext:
    """The context of one trigger call: shared by its recipients, with each one's own on top."""

    def __init__(self, stored: dict):
        self.shared = stored.get("shared") or {}
        self.own = stored.get("recipients") or {}

    def get(self, profile_id: int) -> dict:
        own = self.own.get(str(profile_id))
        return {**self.shared, **own} if own else self.shared


def trigger_contexts(ids: set[int]) -> dict[int, _CallContext]:
    """The contexts of the trigger calls a slice answers, in one query (none for a scheduled run)."""
    if not ids:
        return {}
    table = TriggerRequest._meta.db_table
    among, listed = rawsql.one_of("id", sorted(ids))
    calls = rawsql.fetch(TriggerRequest, ["id", "context"], f"SELECT id, context FROM {table} WHERE {among}", listed)  # noqa: S608
    return {call.pk: _CallContext(call.context) for call in calls}


def _retry_now_what_waited_for_the_provider(run_id: int) -> int:
    """The provider is back: the run's retries of messages it could not take (connection refused, 421, 5xx, its
    rate limit) are due now instead of at their backoff. Retries for other reasons (a mailbox busy) keep theirs."""
    now = timezone.now()
    waiting = Delivery.objects.filter(run_id=run_id, status=Delivery.Status.PENDING, due_at__gt=now)
    waiting = waiting.exclude(next_attempt_at=None).values_list("id", "reason")
    ids = [pk for pk, reason in waiting[:10_000] if classify(reason, Outcome.TRANSIENT).provider_unavailable]
    if not ids:
        return 0
    return Delivery.objects.filter(id__in=ids, status=Delivery.Status.PENDING).update(due_at=now, next_attempt_at=now)


def _wake_later(run_id: int, delay: float) -> None:
    """Date the heartbeat to when the delayed successor runs, so the stall check does not add jobs before it."""
    Run.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() + timedelta(seconds=delay))


def _hand_over(token: uuid.UUID, ids: list[int]) -> set[int]:
    """Mark these messages of the slice in flight, those still claimed by `token`: which ones."""
    among, listed = rawsql.one_of("id", ids)
    sql = (
        f"UPDATE {Delivery._meta.db_table} SET status = %s, claimed_at = %s "  # noqa: S608
        f"WHERE claim_token = %s AND status = %s AND {among} RETURNING id"
    )
    claimed_at = rawsql.value(Delivery, "claimed_at", timezone.now())
    token = rawsql.value(Delivery, "claim_token", token)
    with rawsql.cursor() as cursor:
        cursor.execute(sql, [Delivery.Status.IN_FLIGHT, claimed_at, token, Delivery.Status.CLAIMED, *listed])
        return {pk for (pk,) in cursor.fetchall()}


def _give_back(token: uuid.UUID, ids: list[int]) -> None:
    """Messages of the slice never handed over (the provider was found down): pending again, as if never claimed."""
    Delivery.objects.filter(claim_token=token, status=Delivery.Status.CLAIMED, id__in=ids).update(
        status=Delivery.Status.PENDING, claim_token=None, claimed_at=None, claimed_by=None
    )


def _recheck(campaign: Campaign, channel: str, token: uuid.UUID, deliveries: list[Delivery]) -> list[Delivery]:
    """The delivery rules of the send stage (campaigns.rules) on a claimed slice, as of now: consent or suppression may
    have changed since planning, the channel's quiet hours may have begun, and frequency caps count what other
    campaigns sent since. The exclusions, and the messages quiet hours hold (pending again, due when the window
    closes), are written in the same transaction, which holds the caps' locks. Returns the messages still to send."""
    now = timezone.now()
    candidates = [
        rules.Candidate(
            profile_id=delivery.profile_id,
            address=delivery.address if delivery.profile is not None else "",  # erased since: nowhere to send
            due_at=now,
            timezone=delivery.profile.timezone if delivery.profile is not None else "",
            delivery_id=delivery.pk,
        )
        for delivery in deliveries
    ]
    batch = rules.Batch(campaign=campaign, channel=channel, stage=rules.Stage.SEND, now=now)
    with transaction.atomic():
        rules.decide(batch, candidates)
        excluded, held = [], collections.defaultdict(list)
        for delivery, candidate in zip(deliveries, candidates, strict=True):
            if candidate.reason:
                delivery.status, delivery.reason = Delivery.Status.EXCLUDED, candidate.reason
                excluded.append(delivery)
            elif candidate.due_at > now:
                held[candidate.due_at].append(delivery.pk)
        if excluded:
            _write_still_claimed(token, excluded)
        for due_at, ids in held.items():
            Delivery.objects.filter(claim_token=token, status=Delivery.Status.CLAIMED, id__in=ids).update(
                status=Delivery.Status.PENDING, due_at=due_at, claim_token=None, claimed_at=None, claimed_by=None
            )
    return [
        delivery
        for delivery, candidate in zip(deliveries, candidates, strict=True)
        if not candidate.reason and candidate.due_at <= now
    ]


def _write_still_claimed(token: uuid.UUID, deliveries: list[Delivery]) -> None:
    """Store the status, reason and detail of these messages of the slice, those still claimed by `token`."""
    rawsql.update(
        Delivery,
        deliveries,
        ["status", "reason", "detail"],
        where="t.claim_token = %s AND t.status = %s",
        params=[rawsql.value(Delivery, "claim_token", token), Delivery.Status.CLAIMED],
    )


def send_slice(*, run: Run, token: uuid.UUID, deliveries: list[Delivery]) -> float | None:
    """Re-check, render, hand over and record the outcomes of one claimed slice.

    Returns None, or, when every message of the slice failed because the provider or relay was unavailable
    (down, refusing connections, rate limiting us), the seconds it asked us to wait (Retry-After; 0 if it did not
    say).
    """
    campaign = run.campaign
    configuration = run.version.channel_configuration
    channel = configuration.channel

    sendable = _recheck(campaign, channel, token, deliveries)
    channel_settings = configuration.get_settings()
    track_opens = getattr(channel_settings, "track_opens", False)
    # The tracked links' positions are found once per version; each message only gets its own signed URLs.
    content, link_count = tracking.message_content(
        run.version, track_clicks=getattr(channel_settings, "track_clicks", False)
    )
    campaign_context = {"name": run.version.name}
    calls = trigger_contexts({d.trigger_request_id for d in sendable if d.trigger_request_id})
    marketing = campaign.category == Campaign.Category.MARKETING
    messages, failed = [], []
    for delivery in sendable:
        unsubscribe = unsubscribe_url(profile_id=delivery.profile_id, channel=channel, delivery_id=delivery.pk)
        context = {
            "profile": delivery.profile.personalization(),
            "campaign": campaign_context,
            "context": calls[delivery.trigger_request_id].get(delivery.profile_id)
            if delivery.trigger_request_id
            else {},
            "unsubscribe_url": unsubscribe,
        }
        if link_count:
            context[tracking.LINKS_VARIABLE] = tracking.link_urls(delivery.pk, delivery.version_id, link_count)
        try:
            rendered = content.render(context)
        except ContentError as exc:
            # This recipient only: the rest of the slice goes on (a template or its data that cannot render).
            delivery.status, delivery.reason, delivery.detail = (
                Delivery.Status.FAILED,
                Delivery.Reason.TEMPLATE_ERROR,
                str(exc)[:500],
            )
            failed.append(delivery)
            continue
        messages.append(
            OutboundMessage(
                delivery_id=delivery.pk,
                to=delivery.address,
                subject=rendered.subject,
                html=tracking.with_open_pixel(rendered.html, delivery.pk)
                if track_opens and rendered.html
                else rendered.html,
                text=rendered.text,
                marketing=marketing,
                unsubscribe_url=unsubscribe,
                campaign_id=campaign.pk,
            )
        )
    if failed:
        _write_still_claimed(token, failed)
    if not messages:
        return None

    window = getattr(channel_settings, "retry_window_seconds", None)
    record = functools.partial(
        record_outcomes,
        token=token,
        by_id={d.pk: d for d in deliveries},
        retry_window=timedelta(seconds=window) if window else DEFAULT_RETRY_WINDOW,
        retry_unknown=campaign.category == Campaign.Category.TRANSACTIONAL,
    )
    results, provider_down = _send_and_record(
        run_id=run.pk, adapter=adapter_for(configuration), token=token, messages=messages, record=record
    )
    if provider_down:
        asked = [r.retry_after for r in results if r.retry_after is not None and math.isfinite(r.retry_after)]
        return max([0.0, *asked])
    return None


def _send_and_record(
    *, run_id: int, adapter, token: uuid.UUID, messages: list[OutboundMessage], record
) -> tuple[list[SendResult], bool]:
    """Hand the messages to the adapter a few at a time and record their outcomes as the provider answers: at
    most about four times the adapter's connections are in flight at any moment (handed over, not yet recorded),
    so a worker killed mid-slice leaves only those `unknown`, not the whole slice. Each step of half that many is
    one hand-over statement and one outcome statement.

    Once every answer so far says the provider is unavailable, nothing more is handed over: the rest of the slice,
    never tried, goes back to pending. Returns the results recorded, and whether every one of them (at least one)
    said the provider is unavailable."""
    window = 4 * max(adapter.in_flight, 1)
    step = window // 2
    waiting = collections.deque(messages)
    outstanding: set[int] = set()
    answered: list[SendResult] = []
    unrecorded: list[SendResult] = []
    provider_down = False
    try:
        with adapter.stream() as stream:
            while outstanding or (waiting and not provider_down):
                if waiting and not provider_down and len(outstanding) <= window - step:
                    batch = [waiting.popleft() for _ in range(min(window - len(outstanding), len(waiting)))]
                    # The claim timeout counts from the handover: a slow render does not make a live send look lost.
                    ours = _hand_over(token, [message.delivery_id for message in batch])
                    # Fewer when our claim was released (we outlived the claim timeout): only what is ours goes.
                    batch = [message for message in batch if message.delivery_id in ours]
                    outstanding.update(message.delivery_id for message in batch)
                    if batch:
                        stream.put(batch)
                    continue
                for result in stream.take():
                    outstanding.discard(result.delivery_id)
                    unrecorded.append(result)
                    unavailable = (
                        result.outcome == Outcome.TRANSIENT
                        and classify(result.reason, result.outcome).provider_unavailable
                    )
                    provider_down = unavailable and (provider_down or not answered)
                    answered.append(result)
                if len(unrecorded) >= step or not outstanding:
                    record(results=unrecorded)
                    unrecorded = []
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not leave rows in flight forever
        log.exception("run %s: adapter failed on a slice", run_id)
        lost = [
            SendResult(pk, Outcome.INDETERMINATE, reason="adapter_error", detail=str(exc)) for pk in sorted(outstanding)
        ]
        unrecorded += lost
        answered += lost
        provider_down = provider_down and not lost  # an indeterminate answer says nothing of the provider
    if unrecorded:
        record(results=unrecorded)
    if waiting:
        _give_back(token, [message.delivery_id for message in waiting])
    return answered, provider_down
