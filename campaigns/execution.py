"""The send path: the scheduler's tick, planning a run into the ledger, and sending it slice by slice.

Every function here is safe to run twice and from several processes at once: uniqueness lives in database
constraints, work is claimed with one conditional UPDATE, and every outcome write carries the claim token.
"""

import logging
import math
import time
import uuid
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audiences.models import Channel, Consent, Profile, unknown_consent_allows_marketing
from audiences.profiles import consent_set, push_token_retire
from audiences.rules import RuleError
from audiences.selectors import audience_member_ids
from audiences.services import imports_redispatch_stalled
from campaigns.eligibility import consent_states, exclusion_reason, suppressed_addresses
from campaigns.models import Campaign, Delivery, Run
from campaigns.personalization import ContentError, compiled_content
from campaigns.schedules import next_occurrence, occurrence_key
from channels.adapters.base import OutboundMessage, Outcome, Reason, SendResult
from channels.adapters.registry import adapter_for
from channels.classification import classify
from channels.models import Suppression
from channels.ratelimit import RateLimiter
from channels.suppression import suppress_addresses
from channels.unsubscribe import unsubscribe_url
from config import queues, untrusted
from config.queues import enqueue_on_commit

log = logging.getLogger(__name__)

# Transient failures are retried until the configuration's retry window, measured from the first attempt,
# is spent: after the provider's Retry-After when it gave one, else after these waits (the last repeats).
_BACKOFF = [60, 300, 900, 1800, 3600]  # seconds before attempt 2, 3, 4, 5, 6 and after
DEFAULT_RETRY_WINDOW = timedelta(hours=24)  # for configurations whose settings name none
# A guard against a provider that keeps asking for a retry within a second: never more attempts than this.
MAX_ATTEMPTS = 100
MAX_RETRY_AFTER = 24 * 3600  # seconds


def queue_for(campaign: Campaign) -> str:
    """Scheduled sends, whatever their category, go to `campaigns`: a million-recipient policy notice must
    not make a password reset wait. The transactional queue is for API-triggered transactional messages."""
    if campaign.kind != Campaign.Kind.API_TRIGGERED:
        return queues.CAMPAIGNS
    if campaign.category == Campaign.Category.TRANSACTIONAL:
        return queues.TRANSACTIONAL
    return queues.TRIGGERED


# The scheduler's tick ------------------------------------------------------------------------------------


def scheduler_tick(*, now: datetime | None = None) -> None:
    """One pass of the scheduler: start due occurrences, keep runs moving, restart stalled imports."""
    now = now or timezone.now()
    start_due_runs(now=now)
    release_stale_claims(now=now)
    redispatch_stalled_runs(now=now)
    imports_redispatch_stalled(now)


def start_due_runs(*, now: datetime, limit: int = 50) -> list[int]:
    """Create the Run of every due occurrence and advance each campaign's next_run_at.

    Several schedulers may run: SKIP LOCKED spreads the campaigns between them, and the run's unique
    (campaign, occurrence) key is the last guard against starting one occurrence twice.
    """
    started = []
    with transaction.atomic():
        due = (
            Campaign.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Campaign.Status.ACTIVE, kind=Campaign.Kind.SCHEDULED, next_run_at__lte=now)
            .select_related("live_version")
            .order_by("next_run_at")[:limit]
        )
        for campaign in due:
            occurrence_at = campaign.next_run_at
            try:
                with transaction.atomic():
                    run = Run.objects.create(
                        campaign=campaign,
                        version=campaign.live_version,
                        kind=Run.Kind.SCHEDULED,
                        occurrence=occurrence_key(occurrence_at, campaign.timezone),
                        heartbeat_at=now,
                    )
            except IntegrityError:
                # Another scheduler started this occurrence already (or the clock repeated it).
                run = None
            campaign.next_run_at = None
            if campaign.schedule == Campaign.Schedule.RECURRING:
                # Occurrences missed while no scheduler ran are skipped, not sent in a burst.
                campaign.next_run_at = next_occurrence(
                    cron=campaign.cron,
                    timezone=campaign.timezone,
                    after=max(occurrence_at, now),
                    end_at=campaign.end_at,
                )
            campaign.save(update_fields=["next_run_at", "updated_at"])
            if run is not None:
                started.append(run.pk)
                enqueue_on_commit(queue_for(campaign), "campaigns.jobs.plan_run", run.pk)
                log.info("campaign %s: started run %s for %s", campaign.pk, run.pk, run.occurrence)
    return started


def release_stale_claims(*, now: datetime) -> int:
    """Rows held past the claim timeout belong to a dead worker: claimed ones go back to pending; in-flight
    ones may have been delivered, so marketing marks them unknown and never sends them again, while
    transactional ones go back to pending (the provider's idempotency key is the delivery id)."""
    stale = now - timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)
    released = Delivery.objects.filter(status=Delivery.Status.CLAIMED, claimed_at__lt=stale).update(
        status=Delivery.Status.PENDING, claim_token=None, claimed_at=None
    )
    in_flight = Delivery.objects.filter(status=Delivery.Status.IN_FLIGHT, claimed_at__lt=stale)
    transactional = Q(run__campaign__category=Campaign.Category.TRANSACTIONAL)
    released += in_flight.filter(transactional).update(
        status=Delivery.Status.PENDING, claim_token=None, claimed_at=None, reason=Delivery.Reason.WORKER_LOST
    )
    lost = in_flight.exclude(transactional).update(
        status=Delivery.Status.UNKNOWN, claim_token=None, reason=Delivery.Reason.WORKER_LOST
    )
    if released or lost:
        log.warning("released %s stale claims, marked %s in-flight deliveries unknown", released, lost)
    return released + lost


def redispatch_stalled_runs(*, now: datetime) -> list[int]:
    """Restart the jobs of runs that stopped making progress (a worker died, Redis lost its queues, or a
    retry came due), and complete the runs that have nothing left to send."""
    stalled_before = now - timedelta(seconds=settings.CAMPAIGNS_STALL_SECONDS)
    kicked = []
    candidates = Run.objects.filter(state__in=Run.ACTIVE_STATES).exclude(heartbeat_at__gte=stalled_before)
    for run in candidates.select_related("campaign"):
        if run.state == Run.State.SENDING and run_finish_if_done(run.pk):
            continue
        if run.state == Run.State.SENDING and not _has_due_work(run.pk, now):
            continue
        # Claim the right to re-dispatch: only one scheduler wins the conditional update.
        if not Run.objects.filter(pk=run.pk, heartbeat_at=run.heartbeat_at, state=run.state).update(heartbeat_at=now):
            continue
        with transaction.atomic():
            if run.state == Run.State.PLANNING:
                enqueue_on_commit(queue_for(run.campaign), "campaigns.jobs.plan_run", run.pk)
            else:
                dispatch_send_jobs(run)
        kicked.append(run.pk)
        log.info("run %s: re-dispatched after no progress since %s", run.pk, run.heartbeat_at)
    return kicked


def _has_due_work(run_id: int, now: datetime) -> bool:
    return Delivery.objects.filter(run_id=run_id, status=Delivery.Status.PENDING, due_at__lte=now).exists()


def dispatch_send_jobs(run: Run) -> None:
    """Keep the run's share of the pool busy: a bounded number of send jobs, each pulling slices."""
    for _ in range(settings.CAMPAIGNS_SEND_JOBS_PER_RUN):
        enqueue_on_commit(queue_for(run.campaign), "campaigns.jobs.send_run", run.pk)


# Planning ------------------------------------------------------------------------------------------------


def plan_run(*, run_id: int) -> None:
    """Write the run's ledger: one Delivery per audience member, exclusions included.

    Streams the audience in keyset pages and advances the cursor in the same transaction as the rows, so
    an interrupted planner resumes where it stopped and a second planner adds nothing twice.
    """
    chunk = settings.CAMPAIGNS_PLAN_CHUNK
    while True:
        with transaction.atomic():
            run = Run.objects.select_for_update(of=("self",)).select_related("campaign", "version").get(pk=run_id)
            if run.state != Run.State.PLANNING:
                return
            campaign = run.campaign
            try:
                member_ids = audience_member_ids(campaign.audience, after_id=run.planning_cursor, limit=chunk)
            except RuleError as invalid:
                # The audience's rule stopped validating (an attribute undeclared since, an audience deleted):
                # the run fails with the reason instead of retrying forever.
                run.state, run.error, run.finished_at = Run.State.FAILED, f"audience rule: {invalid}", timezone.now()
                run.save(update_fields=["state", "error", "finished_at"])
                log.warning("run %s: failed, its audience's rule no longer validates: %s", run.pk, invalid)
                return
            now = timezone.now()
            if not member_ids:
                run.planning_done = True
                paused = campaign.status == Campaign.Status.PAUSED
                run.state = Run.State.PAUSED if paused else Run.State.SENDING
                run.sending_at = now
                run.heartbeat_at = now
                run.save(update_fields=["planning_done", "state", "sending_at", "heartbeat_at"])
                if not paused:
                    dispatch_send_jobs(run)
                log.info("run %s: planned", run.pk)
                return
            Delivery.objects.bulk_create(_plan_deliveries(run, member_ids, now), ignore_conflicts=True)
            run.planning_cursor = member_ids[-1]
            run.heartbeat_at = now
            run.save(update_fields=["planning_cursor", "heartbeat_at"])


def _plan_deliveries(run: Run, profile_ids: list[int], now: datetime) -> list[Delivery]:
    campaign = run.campaign
    configuration = campaign.channel_configuration
    channel = configuration.channel
    profiles = Profile.objects.filter(pk__in=profile_ids).only("pk", "email", "phone").order_by("pk")
    if channel == Channel.PUSH:
        profiles = profiles.prefetch_related("push_tokens")  # address_for reads them: one query per chunk
    profiles = list(profiles)
    consents = consent_states(profile_ids, channel)
    addresses = {profile.pk: profile.address_for(channel) for profile in profiles}
    suppressed = suppressed_addresses(addresses.values(), channel)
    unknown_allows = unknown_consent_allows_marketing(channel)
    rows = []
    for profile in profiles:
        address = addresses[profile.pk]
        reason = exclusion_reason(
            category=campaign.category,
            channel=channel,
            address=address,
            consent=consents.get(profile.pk),
            suppressed=suppressed,
            unknown_allows=unknown_allows,
        )
        rows.append(
            Delivery(
                run=run,
                version_id=run.version_id,
                profile_id=profile.pk,
                channel=channel,
                channel_configuration=configuration,
                address=address,
                due_at=now,
                status=Delivery.Status.EXCLUDED if reason else Delivery.Status.PENDING,
                reason=reason,
            )
        )
    return rows


# Sending -------------------------------------------------------------------------------------------------


def send_run(*, run_id: int, now_func=timezone.now) -> None:
    """Pull slices of the run's due deliveries and send them until none is left, the run is no longer
    sending, or this job's time budget is spent (then it re-enqueues itself so other runs get a turn).

    Never sleeps for rate-limit tokens: it re-enqueues itself for when the next token is due. Nor does it
    hammer a provider that is down: after a slice that found it unavailable, it re-enqueues itself for when
    that slice's first retry falls due, and the rest of the run waits, pending, untouched.
    """
    run = Run.objects.select_related("campaign__channel_configuration", "version").get(pk=run_id)
    campaign = run.campaign
    configuration = campaign.channel_configuration
    rate = getattr(configuration.get_settings(), "rate_per_second", None)
    limiter = RateLimiter(django_rq.get_connection(queue_for(campaign))) if rate else None
    deadline = time.monotonic() + settings.CAMPAIGNS_JOB_SECONDS
    slice_size = settings.CAMPAIGNS_SEND_SLICE
    while True:
        # The campaign too: a pause that raced the end of planning leaves the run sending, the campaign paused.
        if not Run.objects.filter(pk=run_id, state=Run.State.SENDING, campaign__status=Campaign.Status.ACTIVE).exists():
            return
        if time.monotonic() > deadline:
            with transaction.atomic():
                enqueue_on_commit(queue_for(campaign), "campaigns.jobs.send_run", run_id)
            return
        wanted = slice_size
        if limiter:
            wanted, wait = limiter.take(f"configuration:{configuration.pk}", rate=rate, requested=slice_size)
            if not wanted:
                with transaction.atomic():
                    enqueue_on_commit(queue_for(campaign), "campaigns.jobs.send_run", run_id, delay=max(wait, 0.05))
                return
        token, deliveries = claim_slice(run_id=run_id, limit=wanted, now=now_func())
        if not deliveries:
            if not run_finish_if_done(run_id):
                # Nothing due now (retries later): let the scheduler wake the run when they fall due.
                Run.objects.filter(pk=run_id, state=Run.State.SENDING).update(heartbeat_at=None)
            return
        retry_in = send_slice(run=run, token=token, deliveries=deliveries)
        Run.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())
        if retry_in is not None:
            log.warning("run %s: %s unavailable, trying again in %.0f s", run_id, configuration, retry_in)
            with transaction.atomic():
                _wake_later(run_id, retry_in)
                enqueue_on_commit(queue_for(campaign), "campaigns.jobs.send_run", run_id, delay=retry_in)
            return


def _wake_later(run_id: int, delay: float) -> None:
    """Date the heartbeat to when the delayed successor runs, so the stall check does not add jobs before it."""
    Run.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() + timedelta(seconds=delay))


def claim_slice(*, run_id: int, limit: int, now: datetime) -> tuple[uuid.UUID, list[Delivery]]:
    """Claim up to `limit` due pending deliveries with a conditional UPDATE; return them.

    `status = 'pending'` in the UPDATE is what guarantees two workers never share a row. The ids are
    picked first, in the same transaction: on PostgreSQL with FOR UPDATE SKIP LOCKED so concurrent
    claimers pass each other by (an `IN (subquery ... LIMIT n FOR UPDATE SKIP LOCKED)` inside the UPDATE
    is rescanned per row by a nested-loop semi-join and claims far more than n); on SQLite Django leaves
    FOR UPDATE out and the IMMEDIATE transaction serializes claimers.
    """
    token = uuid.uuid4()
    with transaction.atomic():
        candidates = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(run_id=run_id, status=Delivery.Status.PENDING, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        candidate_ids = list(candidates)
        claimed = Delivery.objects.filter(id__in=candidate_ids, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.CLAIMED, claim_token=token, claimed_at=now
        )
    if not claimed:
        return token, []
    # By the ids in hand (the primary key), never by a scan of the ledger for the token.
    deliveries = Delivery.objects.filter(id__in=candidate_ids, claim_token=token, status=Delivery.Status.CLAIMED)
    deliveries = deliveries.select_related("profile")
    return token, list(deliveries.order_by("id"))


def send_slice(*, run: Run, token: uuid.UUID, deliveries: list[Delivery]) -> float | None:
    """Re-check, render, hand over and record the outcomes of one claimed slice.

    Returns None, or the seconds until the provider is worth trying again when every message of the slice
    failed because the provider or relay was unavailable (down, refusing connections, rate limiting us).
    """
    campaign = run.campaign
    configuration = campaign.channel_configuration
    channel = configuration.channel
    owned = Delivery.objects.filter(claim_token=token)

    # Consent or suppression may have changed since planning.
    consents = consent_states([d.profile_id for d in deliveries if d.profile_id], channel)
    suppressed = suppressed_addresses([d.address for d in deliveries], channel)
    unknown_allows = unknown_consent_allows_marketing(channel)
    content = compiled_content(run.version)
    campaign_context = {"name": campaign.name}
    marketing = campaign.category == Campaign.Category.MARKETING
    messages, excluded, failed = [], [], []
    for delivery in deliveries:
        reason = exclusion_reason(
            category=campaign.category,
            channel=channel,
            address=delivery.address,
            consent=consents.get(delivery.profile_id),
            suppressed=suppressed,
            unknown_allows=unknown_allows,
        )
        if reason or delivery.profile is None:
            delivery.status, delivery.reason = Delivery.Status.EXCLUDED, reason or Delivery.Reason.NO_ADDRESS
            excluded.append(delivery)
            continue
        unsubscribe = unsubscribe_url(profile_id=delivery.profile_id, channel=channel, delivery_id=delivery.pk)
        context = {
            "profile": delivery.profile.personalization(),
            "campaign": campaign_context,
            "unsubscribe_url": unsubscribe,
        }
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
                html=rendered.html,
                text=rendered.text,
                marketing=marketing,
                unsubscribe_url=unsubscribe,
                campaign_id=campaign.pk,
            )
        )
    if excluded or failed:
        owned.filter(status=Delivery.Status.CLAIMED).bulk_update(excluded + failed, ["status", "reason", "detail"])
    if not messages:
        return None

    ids = [message.delivery_id for message in messages]
    # The claim timeout counts from the handover: a slow render does not make a live send look lost.
    handed = owned.filter(id__in=ids, status=Delivery.Status.CLAIMED).update(
        status=Delivery.Status.IN_FLIGHT, claimed_at=timezone.now()
    )
    if handed < len(ids):
        # Our claim was released (we outlived the claim timeout): send only what is still ours.
        still_ours = set(owned.filter(id__in=ids, status=Delivery.Status.IN_FLIGHT).values_list("id", flat=True))
        messages = [message for message in messages if message.delivery_id in still_ours]
        if not messages:
            return None

    try:
        results = adapter_for(configuration).send(messages)
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not leave rows in flight forever
        log.exception("run %s: adapter failed on a slice", run.pk)
        results = [
            SendResult(m.delivery_id, Outcome.INDETERMINATE, reason="adapter_error", detail=str(exc)) for m in messages
        ]
    window = getattr(configuration.get_settings(), "retry_window_seconds", None)
    record_outcomes(
        token=token,
        results=results,
        by_id={d.pk: d for d in deliveries},
        retry_window=timedelta(seconds=window) if window else DEFAULT_RETRY_WINDOW,
        retry_unknown=campaign.category == Campaign.Category.TRANSACTIONAL,
    )
    if results and all(
        r.outcome == Outcome.TRANSIENT and classify(r.reason, r.outcome).provider_unavailable for r in results
    ):
        now = timezone.now()
        retries = [d.next_attempt_at for d in deliveries if d.status == Delivery.Status.PENDING and d.next_attempt_at]
        soonest = (min(retries, default=now) - now).total_seconds()
        return min(max(soonest, 1.0), float(settings.CAMPAIGNS_STALL_SECONDS))
    return None


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
    written = Delivery.objects.filter(claim_token=token, status=Delivery.Status.IN_FLIGHT).bulk_update(rows, fields)
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


def run_finish_if_done(run_id: int) -> bool:
    """Complete a sending run whose planning is done and which has nothing pending, claimed or in flight.
    A campaign with no further occurrence completes with its last run."""
    with transaction.atomic():
        if Delivery.objects.filter(run_id=run_id, status__in=Delivery.OPEN_STATUSES).exists():
            return False
        finished = Run.objects.filter(pk=run_id, state=Run.State.SENDING, planning_done=True).update(
            state=Run.State.COMPLETE, finished_at=timezone.now()
        )
        if not finished:
            return False
        run = Run.objects.get(pk=run_id)
        others_open = Run.objects.filter(campaign_id=run.campaign_id, state__in=[*Run.ACTIVE_STATES, Run.State.PAUSED])
        Campaign.objects.filter(
            pk=run.campaign_id, status=Campaign.Status.ACTIVE, kind=Campaign.Kind.SCHEDULED, next_run_at=None
        ).exclude(pk__in=others_open.values("campaign_id")).update(status=Campaign.Status.COMPLETED)
    log.info("run %s: complete", run_id)
    return True
