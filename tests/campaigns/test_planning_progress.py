"""Planning as the scheduler and the campaign's owner see it: a run planned while its campaign is paused waits,
paused, without send jobs; a planner that died half-way is left alone until the stall limit, then resumed once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.engine import planning, scheduler
from campaigns.models import Delivery, Run
from campaigns.services.lifecycle import campaign_activate, campaign_pause
from config.scheduler import scheduler_tick
from tests.campaigns.queued import queued, received
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration, run_burst_worker


@pytest.mark.django_db(transaction=True)
def test_a_run_planned_while_its_campaign_is_paused_waits_paused_and_sends_once_resumed(
    redis, smtp_server, marketer, everyone
):
    make_profiles(3)
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    redis.flushdb()  # the planning job: run by hand below
    campaign_pause(campaign=campaign, actor=marketer)

    planning.plan_run(run_id=run_id)

    assert Run.objects.get(pk=run_id).state == Run.State.PAUSED  # what the campaign page shows
    assert queued() == {}  # no send job woken for a paused campaign
    campaign.refresh_from_db()
    campaign_activate(campaign=campaign, actor=marketer)  # resumed: the scheduler's next pass wakes the run
    scheduler_tick()
    run_burst_worker()
    assert received(smtp_server) == {f"person{i}@example.com": 1 for i in range(3)}
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_planner_that_died_half_way_is_left_alone_until_the_stall_limit_then_resumed_once(
    redis, smtp_server, marketer, everyone, monkeypatch, settings
):
    make_profiles(20)  # three chunks of 7 in the tests' settings
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    redis.flushdb()
    real, chunks = planning._plan_deliveries, []

    def killed_on_the_third_chunk(run, ids, now):
        chunks.append(ids)
        if len(chunks) == 3:
            raise RuntimeError("worker killed")
        return real(run, ids, now)

    monkeypatch.setattr(planning, "_plan_deliveries", killed_on_the_third_chunk)
    with pytest.raises(RuntimeError):
        planning.plan_run(run_id=run_id)
    monkeypatch.setattr(planning, "_plan_deliveries", real)

    scheduler_tick(now=timezone.now())  # the last chunk's heartbeat is fresh: nothing looks stalled yet
    assert queued() == {}
    scheduler_tick(now=timezone.now() + timedelta(seconds=settings.CAMPAIGNS_STALL_SECONDS + 1))
    assert queued() == {("plan_run", run_id): 1}
    run_burst_worker()

    assert received(smtp_server) == {f"person{i}@example.com": 1 for i in range(20)}
    assert Delivery.objects.filter(run_id=run_id).count() == 20
