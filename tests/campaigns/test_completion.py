"""When a run and its campaign are complete (run_finish_if_done): not while a message is still pending,
claimed or in flight, and a campaign only when no occurrence, trigger or other run is left."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.engine import claiming, completion, outcomes, planning, scheduler, sending
from campaigns.models import Campaign, Delivery, Run
from campaigns.services.lifecycle import campaign_activate
from channels.adapters.base import Outcome, SendResult
from config.scheduler import scheduler_tick
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration


def record(token, rows, outcome=Outcome.SENT):
    results = [SendResult(row.pk, outcome, provider_message_id=f"id-{row.pk}") for row in rows]
    return outcomes.record_outcomes(token=token, results=results, by_id={row.pk: row for row in rows})


@pytest.mark.django_db(transaction=True)
def test_a_run_is_not_complete_while_a_message_is_claimed_or_in_flight(redis, smtp_server, marketer, everyone):
    make_profiles(4)
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    now = timezone.now()
    claimed_token, claimed = claiming.claim_slice(run_id=run_id, limit=2, now=now)
    flying_token, flying = claiming.claim_slice(run_id=run_id, limit=2, now=now)
    Delivery.objects.filter(claim_token=flying_token).update(status=Delivery.Status.IN_FLIGHT)

    def complete():
        return completion.run_finish_if_done(run_id), Run.objects.get(pk=run_id).state, campaign_status()

    def campaign_status():
        return Campaign.objects.get(pk=campaign.pk).status

    assert complete() == (False, Run.State.SENDING, Campaign.Status.ACTIVE)  # two claimed, two in flight
    Delivery.objects.filter(claim_token=claimed_token).update(status=Delivery.Status.IN_FLIGHT)
    assert record(claimed_token, claimed) == 2
    assert complete() == (False, Run.State.SENDING, Campaign.Status.ACTIVE)  # two still in flight
    assert record(flying_token, flying) == 2

    assert complete() == (True, Run.State.COMPLETE, Campaign.Status.COMPLETED)
    assert Run.objects.get(pk=run_id).finished_at is not None
    assert completion.run_finish_if_done(run_id) is False  # completed once


@pytest.mark.django_db(transaction=True)
def test_a_pending_retry_keeps_the_run_open(redis, smtp_server, marketer, everyone):
    make_profiles(2)
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    Delivery.objects.filter(run_id=run_id).update(due_at=timezone.now() + timedelta(minutes=5))

    sending.send_run(run_id=run_id)

    assert completion.run_finish_if_done(run_id) is False
    assert Run.objects.get(pk=run_id).state == Run.State.SENDING
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.ACTIVE


def daily_for_two_days(marketer, everyone, port: int) -> tuple[Campaign, datetime]:
    """An active recurring campaign to two profiles with two occurrences, 1 and 2 December; and the first."""
    make_profiles(2)
    first = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    campaign = make_campaign(
        marketer,
        make_email_configuration(port=port),
        everyone,
        schedule=Campaign.Schedule.RECURRING,
        cron="0 9 * * *",
        timezone_name="Europe/Paris",
        start_at=first,
        end_at=first + timedelta(days=1, hours=12),
        now=first - timedelta(days=1),  # created before its end, which has passed now
    )
    campaign_activate(campaign=campaign, actor=marketer, now=first - timedelta(days=1))
    return campaign, first


@pytest.mark.django_db(transaction=True)
def test_a_recurring_campaign_stays_active_after_a_run_and_completes_with_its_last(
    redis, smtp_server, marketer, everyone
):
    campaign, first = daily_for_two_days(marketer, everyone, smtp_server.port)

    [monday] = scheduler.start_due_runs(now=first)
    planning.plan_run(run_id=monday)
    sending.send_run(run_id=monday)
    assert Run.objects.get(pk=monday).state == Run.State.COMPLETE
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.ACTIVE  # Tuesday is still to come

    [tuesday] = scheduler.start_due_runs(now=first + timedelta(days=1))
    assert Campaign.objects.get(pk=campaign.pk).next_run_at is None
    planning.plan_run(run_id=tuesday)
    sending.send_run(run_id=tuesday)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_a_campaign_is_not_completed_while_another_of_its_runs_is_open(redis, smtp_server, marketer, everyone):
    campaign, first = daily_for_two_days(marketer, everyone, smtp_server.port)
    [monday] = scheduler.start_due_runs(now=first)
    [tuesday] = scheduler.start_due_runs(now=first + timedelta(days=1))  # Monday's run fell behind
    planning.plan_run(run_id=monday)
    planning.plan_run(run_id=tuesday)

    for open_state in (Run.State.PLANNING, Run.State.PAUSED):
        Run.objects.filter(pk=monday).update(state=open_state)
        sending.send_run(run_id=tuesday)
        assert Run.objects.get(pk=tuesday).state == Run.State.COMPLETE
        assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.ACTIVE
        Run.objects.filter(pk=tuesday).update(state=Run.State.SENDING)

    Run.objects.filter(pk=monday).update(state=Run.State.SENDING)
    sending.send_run(run_id=tuesday)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.ACTIVE  # Monday is still sending
    sending.send_run(run_id=monday)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_an_api_triggered_campaign_stays_active_after_its_run(redis, smtp_server, marketer, everyone):
    make_profiles(2)
    campaign = make_campaign(
        marketer, make_email_configuration(port=smtp_server.port), everyone, kind=Campaign.Kind.API_TRIGGERED
    )
    campaign_activate(campaign=campaign, actor=marketer)
    campaign.refresh_from_db()
    assert campaign.next_run_at is None  # triggers, not a schedule, start its runs
    run = Run.objects.create(
        campaign=campaign, version=campaign.live_version, kind=Run.Kind.AUDIENCE_TRIGGER, occurrence="trigger-1"
    )
    planning.plan_run(run_id=run.pk)
    sending.send_run(run_id=run.pk)

    assert Run.objects.get(pk=run.pk).state == Run.State.COMPLETE
    assert len(smtp_server.messages) == 2
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_a_campaign_paused_as_its_last_run_ends_stays_paused(redis, smtp_server, marketer, everyone):
    make_profiles(2)
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)
    Run.objects.filter(pk=run_id).update(state=Run.State.SENDING)  # a pause that raced the end of the run
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    scheduler_tick(now=timezone.now() + timedelta(minutes=5))

    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_completing_a_run_leaves_other_runs_to_their_own_workers(redis, marketer, everyone):
    """Another campaign's run whose last outcome was just written, its worker about to complete it: completing this
    run does not complete that one behind its worker's back (its campaign would never complete)."""
    make_profiles(2)
    runs = {}
    for name in ("First", "Second"):
        campaign = make_campaign(marketer, make_email_configuration(port=25, name=name), everyone)
        campaign_activate(campaign=campaign, actor=marketer)
        [run_id] = scheduler.start_due_runs(now=timezone.now())
        planning.plan_run(run_id=run_id)
        Delivery.objects.filter(run_id=run_id).update(status=Delivery.Status.SENT)
        runs[run_id] = campaign

    first, second = runs
    assert completion.run_finish_if_done(first) is True
    assert Run.objects.get(pk=second).state == Run.State.SENDING
    assert Campaign.objects.get(pk=runs[second].pk).status == Campaign.Status.ACTIVE

    assert completion.run_finish_if_done(second) is True
    assert Run.objects.get(pk=second).state == Run.State.COMPLETE
    assert Campaign.objects.get(pk=runs[second].pk).status == Campaign.Status.COMPLETED


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_pause_committed_as_the_worker_completes_the_run_keeps_the_campaign_paused(redis, marketer, everyone):
    """The pause raced the worker's last slice (the run still sending, the campaign paused): the run completes, the
    campaign stays as its user left it, paused."""
    make_profiles(2)
    campaign = make_campaign(marketer, make_email_configuration(port=25), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    Delivery.objects.filter(run_id=run_id).update(status=Delivery.Status.SENT)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    assert completion.run_finish_if_done(run_id) is True

    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
