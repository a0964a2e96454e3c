"""Starting due occurrences (start_due_runs, on the scheduler's tick): only an active campaign's occurrence
starts, and a new run gets one planning job, not one more from the stall check of the same tick.

On both databases: on PostgreSQL the due campaigns are read with FOR UPDATE SKIP LOCKED OF the campaign
(joined to its live version), which SQLite leaves out."""

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Run
from campaigns.services.lifecycle import campaign_activate, campaign_pause
from config.scheduler import scheduler_tick
from tests.campaigns.queued import queued, received
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration, run_burst_worker


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_campaign_paused_before_its_time_starts_no_run_until_it_is_resumed(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    start_at = timezone.now() + timedelta(days=1)
    campaign = make_campaign(
        marketer,
        make_email_configuration(port=smtp_server.port),
        everyone,
        schedule=Campaign.Schedule.AT,
        start_at=start_at,
    )
    campaign_activate(campaign=campaign, actor=marketer)
    campaign_pause(campaign=campaign, actor=marketer)  # on hold until the offers are final

    scheduler_tick(now=start_at + timedelta(minutes=1))
    run_burst_worker()

    assert not Run.objects.exists()
    assert smtp_server.messages == []
    assert queued() == Counter()

    campaign_activate(campaign=campaign, actor=marketer)  # resumed: the occurrence it missed starts now
    scheduler_tick(now=start_at + timedelta(minutes=2))
    run_burst_worker()

    assert received(smtp_server) == Counter({f"person{i}@example.com": 1 for i in range(3)})
    assert Run.objects.get(campaign=campaign).state == Run.State.COMPLETE


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_tick_gives_a_new_run_one_planning_job_and_each_recipient_one_message(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)

    scheduler_tick()
    run = Run.objects.get(campaign=campaign)
    # The run is starting, not stalled: neither this tick's stall check nor the next tick's adds a planner.
    assert queued() == Counter({("plan_run", run.pk): 1})
    scheduler_tick(now=timezone.now() + timedelta(seconds=5))
    assert queued() == Counter({("plan_run", run.pk): 1})

    run_burst_worker()

    assert received(smtp_server) == Counter({f"person{i}@example.com": 1 for i in range(3)})
    run.refresh_from_db()
    assert (run.kind, run.state) == (Run.Kind.SCHEDULED, Run.State.COMPLETE)
