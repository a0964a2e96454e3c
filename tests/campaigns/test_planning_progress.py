"""Planning as the scheduler and the campaign's owner see it: a run planned while its campaign is paused waits,
paused, without send jobs; a resume as planning ends never strands the run; a planner that died half-way is left
alone until the stall limit, then resumed once."""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.engine import planning, scheduler
from campaigns.models import Campaign, Delivery, Run
from campaigns.services.lifecycle import campaign_activate, campaign_pause
from config.scheduler import scheduler_tick
from tests.campaigns.queued import queued, received
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.campaigns.test_handover import Elsewhere
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import RecordingSMTPServer


def started(marketer, audience, port: int, *, name: str = "Test relay") -> tuple[Campaign, int]:
    """A campaign sending through the relay on `port`, activated, and its run started (planning not begun)."""
    campaign = make_campaign(marketer, make_email_configuration(port=port, name=name), audience)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    return campaign, run_id


@pytest.mark.django_db(transaction=True)
def test_a_run_planned_while_its_campaign_is_paused_waits_paused_and_sends_once_resumed(
    redis, smtp_server, marketer, everyone
):
    make_profiles(3)
    campaign, run_id = started(marketer, everyone, smtp_server.port)
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


@contextmanager
def as_planning_ends(work):
    """Start `work` in another thread (its own connection, as another process would) just before the planner
    writes the run's final state, give it a second, and let the planner go on: `work` finishes after it if
    the planner holds a lock it needs."""
    elsewhere = None

    def wrapper(execute, sql, params, many, context):
        nonlocal elsewhere
        if elsewhere is None and sql.startswith('UPDATE "campaigns_run"') and '"planning_done"' in sql:
            elsewhere = Elsewhere(work)
            elsewhere.wait(timeout=1.0)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield
    assert elsewhere is not None, "the planner never wrote the run's final state"
    elsewhere.wait()


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_resume_as_planning_ends_never_strands_the_run(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    campaign, run_id = started(marketer, everyone, smtp_server.port)
    redis.flushdb()
    campaign_pause(campaign=campaign, actor=marketer)

    with as_planning_ends(lambda: campaign_activate(campaign=campaign, actor=marketer)):
        planning.plan_run(run_id=run_id)
    # On PostgreSQL the planner read "paused" before the resume committed: the run may be paused under an active
    # campaign, which the stall check (sending runs only) would never wake. The scheduler's next pass does.
    scheduler_tick()
    run_burst_worker()

    assert received(smtp_server) == {f"person{i}@example.com": 1 for i in range(3)}
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_pause_as_planning_ends_holds_the_run(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    campaign, run_id = started(marketer, everyone, smtp_server.port)
    redis.flushdb()

    with as_planning_ends(lambda: campaign_pause(campaign=campaign, actor=marketer)):
        planning.plan_run(run_id=run_id)
    scheduler_tick()
    run_burst_worker()

    # What the campaign page shows: the run held with its campaign, nothing sent.
    assert Run.objects.get(pk=run_id).state == Run.State.PAUSED
    assert received(smtp_server) == {}


@pytest.mark.django_db(transaction=True)
def test_a_planner_that_died_half_way_is_left_alone_until_the_stall_limit_then_resumed_once(
    redis, smtp_server, marketer, everyone, monkeypatch, settings
):
    make_profiles(20)  # three chunks of 7 in the tests' settings
    campaign, run_id = started(marketer, everyone, smtp_server.port)
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
    assert Delivery.objects.filter(run_id=run_id).count() == 14  # two chunks of 7 committed with the cursor
    monkeypatch.setattr(planning, "_plan_deliveries", real)

    scheduler_tick(now=timezone.now())  # the last chunk's heartbeat is fresh: nothing looks stalled yet
    assert queued() == {}
    scheduler_tick(now=timezone.now() + timedelta(seconds=settings.CAMPAIGNS_STALL_SECONDS + 1))
    assert queued() == {("plan_run", run_id): 1}
    run_burst_worker()

    assert received(smtp_server) == {f"person{i}@example.com": 1 for i in range(20)}
    assert Delivery.objects.filter(run_id=run_id).count() == 20
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_the_tick_leaves_alone_runs_in_step_with_their_campaign(redis, smtp_server, marketer, everyone):
    make_profiles(2)

    def sent_campaign(name):
        campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port, name=name), everyone)
        campaign_activate(campaign=campaign, actor=marketer)
        scheduler_tick()
        run_burst_worker()
        return campaign, Run.objects.get(campaign=campaign)

    # Finished runs of a campaign still going (a recurring one) or paused since: history, never reopened.
    active, active_done = sent_campaign("Active")
    paused, paused_done = sent_campaign("Paused")
    Campaign.objects.filter(pk=active.pk).update(status=Campaign.Status.ACTIVE)
    Campaign.objects.filter(pk=paused.pk).update(status=Campaign.Status.PAUSED)
    # A run paused with its campaign stays paused.
    held, held_run = started(marketer, everyone, smtp_server.port, name="Held")
    campaign_pause(campaign=held, actor=marketer)
    planning.plan_run(run_id=held_run)
    sent_before = len(smtp_server.messages)

    scheduler_tick()
    run_burst_worker()

    assert Run.objects.get(pk=active_done.pk).state == Run.State.COMPLETE
    assert Run.objects.get(pk=paused_done.pk).state == Run.State.COMPLETE
    assert Run.objects.get(pk=held_run).state == Run.State.PAUSED
    assert len(smtp_server.messages) == sent_before


@pytest.mark.django_db(transaction=True)
def test_a_run_out_of_step_with_its_campaign_follows_it_at_the_next_tick(redis, marketer, everyone):
    # The states the races above leave on PostgreSQL, made directly so that both databases check the repair.
    make_profiles(2)
    relays = RecordingSMTPServer().start(), RecordingSMTPServer().start()
    try:
        runs = []
        for name, relay in zip(("Resumed", "Paused"), relays, strict=True):
            campaign, run_id = started(marketer, everyone, relay.port, name=name)
            planning.plan_run(run_id=run_id)
            runs.append((campaign, run_id))
        redis.flushdb()
        (resumed, resumed_run), (paused, paused_run) = runs
        Run.objects.filter(pk=resumed_run).update(state=Run.State.PAUSED)  # paused under an active campaign
        Campaign.objects.filter(pk=paused.pk).update(status=Campaign.Status.PAUSED)  # sending under a paused one

        scheduler_tick()
        run_burst_worker()

        assert received(relays[0]) == {"person0@example.com": 1, "person1@example.com": 1}
        assert Run.objects.get(pk=resumed_run).state == Run.State.COMPLETE
        assert received(relays[1]) == {}
        assert Run.objects.get(pk=paused_run).state == Run.State.PAUSED
    finally:
        for relay in relays:
            relay.stop()
