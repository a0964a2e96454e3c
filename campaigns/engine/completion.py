"""When a run, and with its last run its campaign, is complete."""

import logging

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Run

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
        Campaign.objects.filter(
            pk=run.campaign_id, status=Campaign.Status.ACTIVE, kind=Campaign.Kind.SCHEDULED, next_run_at=None
        ).exclude(pk__in=others_open.values("campaign_id")).update(status=Campaign.Status.COMPLETED)
    log.info("run %s: complete", run_id)
    return True
