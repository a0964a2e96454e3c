"""The campaigns' part of the scheduler's tick: due occurrences become runs, and runs are kept moving."""

import logging
from datetime import datetime

from django.db import IntegrityError, transaction

from campaigns.engine.completion import cancel_unsent_of_stopped_runs
from campaigns.engine.dispatch import queue_for
from campaigns.engine.recovery import (
    reconcile_run_states,
    redispatch_stalled_runs,
    release_claims_of_lost_workers,
    release_stale_claims,
)
from campaigns.models import Campaign, Run
from campaigns.schedules import next_run_start, occurrence_key, occurrence_of_run_start, runs_repeated_hour
from campaigns.services.tallies import tallies_compact
from config.queues import enqueue_on_commit

log = logging.getLogger(__name__)


def tick(*, now: datetime) -> None:
    """One pass over the campaigns: start due occurrences, release dead workers' claims, bring runs in step with
    their campaign, restart stalled runs, cancel what stopped runs never sent, compact the runs' counters."""
    start_due_runs(now=now)
    release_claims_of_lost_workers(now=now)
    release_stale_claims(now=now)
    reconcile_run_states()
    redispatch_stalled_runs(now=now)
    cancel_unsent_of_stopped_runs()
    tallies_compact(now=now)


def start_due_runs(*, now: datetime, limit: int = 50) -> list[int]:
    """Create the Run of every due occurrence and advance each campaign's next_run_at.

    Several schedulers may run: SKIP LOCKED spreads the campaigns between them, and the run's unique
    (campaign, occurrence) key is the last guard against starting one occurrence twice. next_run_at is the
    occurrence itself, or for a campaign delivered in each profile's time zone, the early start it is derived from
    (campaigns.schedules.run_start).
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
            if campaign.schedule != Campaign.Schedule.ON_ACTIVATION:
                occurrence_at = occurrence_of_run_start(campaign, campaign.next_run_at)
            try:
                with transaction.atomic():
                    run = Run.objects.create(
                        campaign=campaign,
                        version=campaign.live_version,
                        kind=Run.Kind.SCHEDULED,
                        occurrence=occurrence_key(
                            occurrence_at, campaign.timezone, repeated_hour=runs_repeated_hour(campaign)
                        ),
                        heartbeat_at=now,
                    )
            except IntegrityError:
                # Another scheduler started this occurrence already (or the clock repeated it).
                run = None
            campaign.next_run_at = None
            if campaign.schedule in Campaign.REPEATING_SCHEDULES:
                # After the occurrence, not its early start; occurrences missed while no scheduler ran are
                # skipped, not sent in a burst.
                campaign.next_run_at = next_run_start(campaign, after=max(occurrence_at, now))
            campaign.save(update_fields=["next_run_at", "updated_at"])
            if run is not None:
                started.append(run.pk)
                enqueue_on_commit(queue_for(campaign), "campaigns.jobs.plan_run", run.pk)
                log.info("campaign %s: started run %s for %s", campaign.pk, run.pk, run.occurrence)
    return started
