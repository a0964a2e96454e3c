"""When a run, and with its last run its campaign, is complete; what a stopped run never sent."""

import logging
import time

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Run
from campaigns.services import approval

log = logging.getLogger(__name__)


def run_finish_if_done(run_id: int) -> bool:
    """Complete a sending run whose planning is done and which has nothing pending, claimed or in flight.
    A campaign with no further occurrence completes with its last run."""
    open_deliveries = Delivery.objects.filter(run_id=OuterRef("pk"), status__in=Delivery.OPEN_STATUSES)
    with transaction.atomic():
        finished = (
            Run.objects.filter(pk=run_id, state=Run.State.SENDING, planning_done=True)
            .exclude(Exists(open_deliveries))
            .update(state=Run.State.COMPLETE, finished_at=timezone.now())
        )
        if not finished:
            return False
        run = Run.objects.get(pk=run_id)
        others_open = Run.objects.filter(campaign_id=run.campaign_id, state__in=[*Run.ACTIVE_STATES, Run.State.PAUSED])
        completed = (
            Campaign.objects.filter(
                pk=run.campaign_id, status=Campaign.Status.ACTIVE, kind=Campaign.Kind.SCHEDULED, next_run_at=None
            )
            .exclude(pk__in=others_open.values("campaign_id"))
            .update(status=Campaign.Status.COMPLETED)
        )
        if completed:
            approval.review_withdraw(campaign_id=run.campaign_id)
    log.info("run %s: complete", run_id)
    return True


def cancel_unsent_of_stopped_runs(*, batch: int = 5000, seconds: float = 2.0) -> int:
    """Mark the messages of stopped runs that were never handed to a provider (pending, or claimed by a worker that
    has not handed them over yet) as cancelled, so a stopped campaign's counts add up; in batches, for at most
    about `seconds` a call: the scheduler's tick calls it, and a stop of a million messages takes a few ticks.

    A stopped run keeps a heartbeat until it has nothing open (campaign_stop sets it): the runs to look
    at are found by the (state, heartbeat_at) index, not by a scan of the ledger. A worker still holding a claim
    on a cancelled row then hands nothing over (its hand-over wants the row claimed); rows in flight keep the
    outcome the provider gives them. Returns how many messages were cancelled."""
    deadline = time.monotonic() + seconds
    cancelled = 0
    stopped = Run.objects.filter(state=Run.State.STOPPED, heartbeat_at__isnull=False).order_by("heartbeat_at", "pk")
    for run_id in stopped.values_list("pk", flat=True)[:100]:
        while True:
            unsent = Delivery.objects.filter(run_id=run_id, status__in=Delivery.UNSENT_STATUSES)
            ids = list(unsent.values_list("id", flat=True)[:batch])
            if not ids:
                # Rows in flight may still come back pending (a transient failure, a dead worker's transactional
                # message): the run is looked at until none is open.
                open_rows = Delivery.objects.filter(run_id=run_id, status__in=Delivery.OPEN_STATUSES)
                Run.objects.filter(pk=run_id, state=Run.State.STOPPED).exclude(Exists(open_rows)).update(
                    heartbeat_at=None
                )
                break
            cancelled += unsent.filter(id__in=ids).update(status=Delivery.Status.CANCELLED, claim_token=None)
            if time.monotonic() > deadline:
                break
        if time.monotonic() > deadline:
            break
    if cancelled:
        log.info("cancelled %s messages of stopped runs", cancelled)
    return cancelled
