"""Putting back what dead workers and lost jobs left: stale claims released, stalled runs re-dispatched."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from campaigns.engine.completion import run_finish_if_done
from campaigns.engine.dispatch import dispatch_send_jobs, queue_for
from campaigns.models import Campaign, Delivery, Run
from config.queues import enqueue_on_commit

log = logging.getLogger(__name__)


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
