"""Putting back what dead workers and lost jobs left: the claims of lost workers (within seconds) and stale claims
(after the claim timeout) released, stalled runs re-dispatched."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now

from campaigns.engine.completion import run_finish_if_done
from campaigns.engine.dispatch import dispatch_send_jobs, queue_for
from campaigns.models import Campaign, Delivery, Run, SendWorker
from config.queues import enqueue_on_commit

log = logging.getLogger(__name__)


def release_stale_claims(*, now: datetime) -> int:
    """Rows held past the claim timeout belong to a dead worker (one without a lease, or alive but stuck)."""
    stale = now - timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)
    return release_claims(Q(claimed_at__lt=stale), why="past the claim timeout")


def release_claims_of_lost_workers(*, now: datetime) -> int:
    """Release the claims of workers not heard from for CAMPAIGNS_WORKER_LOST_SECONDS, forget those workers, and
    give the runs they were sending new send jobs. Returns how many rows were released. Leases are dated and read on
    the database's clock (workers and schedulers may run on machines whose clocks differ)."""
    lost = SendWorker.objects.filter(renewed_at__lt=Now() - timedelta(seconds=settings.CAMPAIGNS_WORKER_LOST_SECONDS))
    ids = list(lost.values_list("id", flat=True)[:100])
    if not ids:
        return 0
    held = Delivery.objects.filter(status__in=[Delivery.Status.CLAIMED, Delivery.Status.IN_FLIGHT], claimed_by__in=ids)
    run_ids = set(held.values_list("run_id", flat=True).distinct())
    released = release_claims(Q(claimed_by__in=ids), why="of lost workers")
    # Conditional: a worker that renewed meanwhile (it was slow, not dead) keeps its lease (its claims are gone).
    lost.filter(id__in=ids).delete()
    runs = Run.objects.filter(pk__in=run_ids, state=Run.State.SENDING, campaign__status=Campaign.Status.ACTIVE)
    for run in runs.select_related("campaign"):
        with transaction.atomic():
            Run.objects.filter(pk=run.pk).update(heartbeat_at=now)
            dispatch_send_jobs(run)
        log.warning("run %s: re-dispatched, a worker sending it was lost", run.pk)
    return released


def release_claims(held: Q, *, why: str) -> int:
    """Release the open claims that `held` selects (a dead worker's): claimed rows go back to pending; in-flight
    ones may have been delivered, so marketing marks them unknown and never sends them again, while transactional
    ones go back to pending (the provider's idempotency key is the delivery id)."""
    released = Delivery.objects.filter(held, status=Delivery.Status.CLAIMED).update(
        status=Delivery.Status.PENDING, claim_token=None, claimed_at=None, claimed_by=None
    )
    in_flight = Delivery.objects.filter(held, status=Delivery.Status.IN_FLIGHT)
    transactional = Q(run__campaign__category=Campaign.Category.TRANSACTIONAL)
    released += in_flight.filter(transactional).update(
        status=Delivery.Status.PENDING,
        claim_token=None,
        claimed_at=None,
        claimed_by=None,
        reason=Delivery.Reason.WORKER_LOST,
    )
    lost = in_flight.exclude(transactional).update(
        status=Delivery.Status.UNKNOWN, claim_token=None, claimed_by=None, reason=Delivery.Reason.WORKER_LOST
    )
    if released or lost:
        log.warning("released %s claims %s, marked %s in-flight deliveries unknown", released, why, lost)
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


def reconcile_run_states() -> int:
    """A run's state follows its campaign's. Planning reads the campaign's status before it writes the run's
    final state, and a pause or a resume committing in between moves only sending or paused runs: it misses
    this one. Paused runs of an active campaign go back to sending (the stall check then gives them jobs);
    sending runs of a paused campaign are paused."""
    resumed = Run.objects.filter(state=Run.State.PAUSED, campaign__status=Campaign.Status.ACTIVE).update(
        state=Run.State.SENDING, heartbeat_at=None
    )
    paused = Run.objects.filter(state=Run.State.SENDING, campaign__status=Campaign.Status.PAUSED).update(
        state=Run.State.PAUSED
    )
    if resumed or paused:
        log.warning("runs out of step with their campaign: %s resumed, %s paused", resumed, paused)
    return resumed + paused
