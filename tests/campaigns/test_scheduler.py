"""Starting due occurrences (start_due_runs, on the scheduler's tick): only an active campaign's occurrence
starts, and a new run gets one planning job, not one more from the stall check of the same tick.

On both databases: on PostgreSQL the due campaigns are read with FOR UPDATE SKIP LOCKED OF the campaign
(joined to its live version), which SQLite leaves out."""

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from campaigns.engine.scheduler import start_due_runs
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


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_an_hourly_schedule_starts_both_runs_of_the_hour_clocks_repeat(redis, marketer, everyone):
    # Paris, 25 October 2026: 02:00-03:00 happens twice (00:00 and 01:00 UTC).
    before = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    with time_machine.travel(before, tick=False):
        campaign = make_campaign(
            marketer,
            make_email_configuration(port=1025),
            everyone,
            schedule=Campaign.Schedule.RECURRING,
            cron="0 * * * *",
            timezone_name="Europe/Paris",
        )
        campaign_activate(campaign=campaign, actor=marketer)

    started = []
    for hour in (0, 1, 2):
        with time_machine.travel(datetime(2026, 10, 25, hour, 0, 5, tzinfo=UTC), tick=False):
            started += start_due_runs(now=timezone.now())

    runs = Run.objects.filter(pk__in=started).order_by("pk")
    assert [run.occurrence for run in runs] == [
        "2026-10-25T02:00:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00",
    ]
    campaign.refresh_from_db()
    assert campaign.next_run_at == datetime(2026, 10, 25, 3, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_a_daily_time_clocks_repeat_starts_one_run(redis, marketer, everyone):
    with time_machine.travel(datetime(2026, 10, 24, 12, 0, tzinfo=UTC), tick=False):
        campaign = make_campaign(
            marketer,
            make_email_configuration(port=1025),
            everyone,
            schedule=Campaign.Schedule.DAILY,
            send_time=time(2, 30),
            timezone_name="Europe/Paris",
        )
        campaign_activate(campaign=campaign, actor=marketer)

    assert start_due_runs(now=datetime(2026, 10, 25, 0, 31, tzinfo=UTC))
    # The second 02:30 (01:30 UTC) is not an occurrence: the next is the 26th.
    assert start_due_runs(now=datetime(2026, 10, 25, 1, 31, tzinfo=UTC)) == []
    campaign.refresh_from_db()
    assert campaign.next_run_at == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    assert list(Run.objects.values_list("occurrence", flat=True)) == ["2026-10-25T02:30:00"]


@pytest.mark.django_db(transaction=True)
def test_in_profile_time_zones_the_run_starts_when_the_time_is_first_reached_anywhere(redis, marketer, everyone):
    with time_machine.travel(datetime(2027, 1, 4, 12, 0, tzinfo=UTC), tick=False):
        campaign = make_campaign(
            marketer,
            make_email_configuration(port=1025),
            everyone,
            schedule=Campaign.Schedule.DAILY,
            send_time=time(9, 0),
            timezone_name="Europe/Paris",
            in_profile_timezone=True,
        )
        campaign_activate(campaign=campaign, actor=marketer)
    campaign.refresh_from_db()
    # 09:00 on 5 January at UTC+14 is 19:00 UTC on the 4th, 13 hours before 09:00 in Paris.
    assert campaign.next_run_at == datetime(2027, 1, 4, 19, 0, tzinfo=UTC)

    assert start_due_runs(now=datetime(2027, 1, 4, 18, 59, tzinfo=UTC)) == []
    [run_id] = start_due_runs(now=datetime(2027, 1, 4, 19, 0, tzinfo=UTC))

    assert Run.objects.get(pk=run_id).occurrence == "2027-01-05T09:00:00"  # the occurrence, in the campaign's zone
    campaign.refresh_from_db()
    # The next one comes after the occurrence (09:00 on the 5th), not after the early start: the 6th's.
    assert campaign.next_run_at == datetime(2027, 1, 5, 19, 0, tzinfo=UTC)
    assert start_due_runs(now=datetime(2027, 1, 4, 19, 1, tzinfo=UTC)) == []
