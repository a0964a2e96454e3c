"""A send job (send_run) keeps its run moving and no other: it stops when its own run stops or its campaign is
held, hands the run to a successor on the same queue when its time is spent, when the configuration's rate
limit is reached or when the relay is down, and otherwise leaves the run for the scheduler to wake when its
retries fall due. Whichever way, each recipient gets one message, and the queues hold one job where one is
wanted."""

import asyncio
import math
from collections import Counter
from datetime import timedelta

import django_rq
import pytest
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from campaigns.engine import sending
from campaigns.models import Campaign, Delivery, Run
from campaigns.services.lifecycle import campaign_activate, campaign_stop
from config.queues import CAMPAIGNS, QUEUE_NAMES
from config.scheduler import scheduler_tick
from tests.campaigns.queued import received, scheduled_send_jobs, send_jobs
from tests.campaigns.test_execution import make_profiles
from tests.campaigns.test_outcomes import planned
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import RecordingSMTPServer


def run_due_jobs() -> None:
    """What a worker does: move the delayed jobs whose time has come to their queues, then run every job."""
    django_rq.get_worker(*QUEUE_NAMES).work(burst=True, with_scheduler=True)


def everyone_once(count: int) -> Counter:
    return Counter({f"person{i}@example.com": 1 for i in range(count)})


def statuses(run_id) -> Counter:
    return Counter(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True))


@pytest.fixture
def relays():
    first, second = RecordingSMTPServer().start(), RecordingSMTPServer().start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def slow_relay():
    """A relay that takes 60 ms to accept each message: a slice of five takes longer than 0.2 s."""
    relay = RecordingSMTPServer()
    accept = relay.recorder.handle_DATA

    async def slowly(server, session, envelope):
        await asyncio.sleep(0.06)
        return await accept(server, session, envelope)

    relay.recorder.handle_DATA = slowly
    relay.start()
    yield relay
    relay.stop()


# When a job stops ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_stopped_campaigns_jobs_send_nothing_while_another_campaign_is_sending(redis, marketer, everyone, relays):
    stopped_relay, other_relay = relays
    make_profiles(3)
    stopped = planned(marketer, everyone, make_email_configuration(port=stopped_relay.port, name="Stopped"))
    other = planned(marketer, everyone, make_email_configuration(port=other_relay.port, name="Other"))
    campaign_stop(campaign=Run.objects.get(pk=stopped).campaign, actor=marketer)

    run_burst_worker()  # the stopped run's jobs, queued before the stop, run first

    assert stopped_relay.messages == []
    assert statuses(stopped) == Counter({"pending": 3})
    assert received(other_relay) == everyone_once(3)
    assert Run.objects.get(pk=other).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_run_left_sending_by_a_pause_that_raced_its_planning_sends_nothing_until_resumed(
    redis, smtp_server, marketer, everyone
):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    campaign = Run.objects.get(pk=run_id).campaign
    # The race: the pause committed while the planner still saw the campaign active, found no sending run to
    # hold, and the planner then made the run sending and queued its jobs.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    run_burst_worker()
    assert smtp_server.messages == []
    assert statuses(run_id) == Counter({"pending": 3})

    campaign_activate(campaign=campaign, actor=marketer)
    scheduler_tick(now=timezone.now() + timedelta(minutes=5))
    run_burst_worker()

    assert received(smtp_server) == everyone_once(3)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_stop_committed_as_a_job_finds_only_later_retries_still_cancels_them(
    redis, smtp_server, marketer, everyone, monkeypatch
):
    make_profiles(2)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    campaign = Run.objects.get(pk=run_id).campaign
    later = timezone.now() + timedelta(minutes=5)
    Delivery.objects.filter(run_id=run_id).update(due_at=later, next_attempt_at=later, attempts=1)
    finish_if_done = sending.run_finish_if_done

    def stopped_meanwhile(run_id):
        # The stop commits after the job found nothing due and before it lets the run rest.
        campaign_stop(campaign=campaign, actor=marketer)
        return finish_if_done(run_id)

    monkeypatch.setattr(sending, "run_finish_if_done", stopped_meanwhile)
    sending.send_run(run_id=run_id)
    scheduler_tick(now=timezone.now())

    assert smtp_server.messages == []
    assert statuses(run_id) == Counter({"cancelled": 2})


# Handing the run over ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_job_that_spent_its_time_hands_its_run_to_one_successor_and_everyone_gets_one_message(
    redis, marketer, everyone, slow_relay, settings
):
    settings.CAMPAIGNS_JOB_SECONDS = 0.2
    make_profiles(10)
    run_id = planned(marketer, everyone, make_email_configuration(port=slow_relay.port, connections=1))
    redis.flushdb()  # drop the dispatched jobs: this test drives the first job by hand
    started = timezone.now()

    sending.send_run(run_id=run_id)

    # One slice of five, then its time was up: the successor waits on the campaigns queue for its turn.
    assert len(slow_relay.messages) == 5
    assert send_jobs() == Counter({run_id: 1})
    # A minute after the job started, its last slice was less than a minute ago: the run is making progress,
    # and the scheduler gives it no more jobs.
    scheduler_tick(now=started + timedelta(seconds=60.1))
    assert send_jobs() == Counter({run_id: 1})

    run_burst_worker()

    assert received(slow_relay) == everyone_once(10)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_rate_limited_run_reaches_everyone_once_through_its_delayed_successors(
    redis, smtp_server, marketer, everyone
):
    make_profiles(3)
    configuration = make_email_configuration(port=smtp_server.port, rate_per_second=0.2)  # one message per 5 s
    with time_machine.travel(timezone.now(), tick=True) as clock:
        run_id = planned(marketer, everyone, configuration)
        redis.flushdb()  # drop the dispatched jobs: this test drives the first job by hand

        sending.send_run(run_id=run_id)
        assert len(smtp_server.messages) == 1
        assert scheduled_send_jobs(redis) == Counter({run_id: 1})  # for when the next token is due

        for _ in range(5):
            if Run.objects.get(pk=run_id).state == Run.State.COMPLETE:
                break
            sent_before = len(smtp_server.messages)
            clock.shift(6)  # one more token
            run_due_jobs()
            assert len(smtp_server.messages) <= sent_before + 1  # never faster than the configured rate

    assert received(smtp_server) == everyone_once(3)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_probe_waiting_for_a_rate_limit_token_stays_a_probe(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    configuration = make_email_configuration(port=smtp_server.port, rate_per_second=0.2)  # one message per 5 s
    run_id = planned(marketer, everyone, configuration)
    redis.flushdb()
    sending.send_run(run_id=run_id)  # takes the bucket's token
    redis.delete(*[key for key in redis.scan_iter("rq:*")])  # its successor is not this test's concern

    sending.send_run(run_id=run_id, outage=2)  # the third probe of a relay that was down: no token yet

    # Its successor is still a probe (one message, the growing waits going on), not a whole slice.
    assert [job[:2] for job in successors(redis)] == [(run_id, 2)]
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_each_configuration_sends_within_its_own_rate_limit_not_another_ones(redis, smtp_server, marketer, everyone):
    make_profiles(2)
    runs = [
        planned(marketer, everyone, make_email_configuration(port=smtp_server.port, name=name, rate_per_second=0.2))
        for name in ("First relay", "Second relay")
    ]
    redis.flushdb()  # drop the dispatched jobs: this test drives one job per run by hand

    for run_id in runs:
        sending.send_run(run_id=run_id)

    # Each configuration's first token: one message per run, though both runs go to the same people.
    assert [statuses(run_id) for run_id in runs] == [Counter({"sent": 1, "pending": 1})] * 2
    assert len(smtp_server.messages) == 2
    assert scheduled_send_jobs(redis) == Counter({run_id: 1 for run_id in runs})


@pytest.mark.django_db(transaction=True)
def test_after_a_relay_outage_a_probe_with_growing_waits_resumes_the_run_within_seconds_of_its_return(
    redis, marketer, everyone
):
    make_profiles(8)
    relay = RecordingSMTPServer()  # not started yet: its port refuses connections
    try:
        with time_machine.travel(timezone.now(), tick=False) as clock:
            run_id = planned(marketer, everyone, make_email_configuration(port=relay.port, connections=1))
            redis.flushdb()  # drop the dispatched jobs: this test drives the first job by hand

            sending.send_run(run_id=run_id)

            # One slice found the relay down: the four handed over (four times the connections) are retried in a
            # minute, by the backoff; its fifth was never tried, and the rest of the run waits, untouched, for one
            # successor that tries one message a second later.
            rows = Delivery.objects.filter(run_id=run_id)
            assert Counter(rows.values_list("status", "attempts")) == Counter({("pending", 1): 4, ("pending", 0): 4})
            assert successors(redis) == [(run_id, 1, 1)]
            # While the successor waits, the scheduler's stall check adds no jobs to hammer the relay with.
            scheduler_tick(now=timezone.now() + timedelta(seconds=django_settings.CAMPAIGNS_STALL_SECONDS / 2))
            assert send_jobs() == Counter()

            waits = []
            for _ in range(3):  # still down: one message a probe, each wait longer than the last
                clock.shift(successors(redis)[0][2])
                run_due_jobs()
                waits.append(successors(redis)[0][1:])
            assert waits == [(2, 2), (3, 4), (4, 8)]
            assert Counter(rows.values_list("attempts", flat=True)) == Counter({1: 7, 0: 1})

            relay.start()  # the relay is back: the next probe finds it, and the whole run goes out
            clock.shift(8)
            run_due_jobs()
    finally:
        if relay.controller._thread is not None:
            relay.stop()

    assert received(relay) == everyone_once(8)
    assert statuses(run_id) == Counter({"sent": 8})
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE
    assert successors(redis) == []


@pytest.mark.django_db(transaction=True)
def test_a_provider_back_makes_its_own_runs_retries_due_not_another_configurations(
    redis, smtp_server, marketer, everyone
):
    make_profiles(2)
    back = planned(marketer, everyone, make_email_configuration(port=smtp_server.port, name="Back"))
    other = planned(marketer, everyone, make_email_configuration(port=smtp_server.port, name="Another relay"))
    redis.flushdb()  # this test drives one probe by hand
    later = timezone.now() + timedelta(seconds=60)
    # Every message of both runs waits for its retry, its relay having refused connections.
    Delivery.objects.update(reason="connect_failed", attempts=1, due_at=later, next_attempt_at=later)

    sending.send_run(run_id=back, outage=1)  # the probe finds its relay back: its run's retries go out at once

    assert statuses(back) == Counter({"sent": 2})
    # The other run's relay was not heard from: its retries keep their backoff.
    waiting = Delivery.objects.filter(run_id=other)
    assert set(waiting.values_list("status", "due_at", "next_attempt_at")) == {("pending", later, later)}


@pytest.mark.django_db(transaction=True)
def test_a_retry_whose_adapter_gave_no_reason_keeps_its_backoff_when_the_provider_is_back(
    redis, smtp_server, marketer, everyone
):
    make_profiles(2)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    redis.flushdb()  # this test drives one probe by hand
    later = timezone.now() + timedelta(seconds=60)
    Delivery.objects.update(reason="connect_failed", attempts=1, due_at=later, next_attempt_at=later)
    # An adapter that answered "try again" without a reason: nothing says the provider was the cause.
    quiet = Delivery.objects.filter(run_id=run_id).order_by("id").last()
    quiet_at = later + timedelta(seconds=1)
    Delivery.objects.filter(pk=quiet.pk).update(reason="", due_at=quiet_at, next_attempt_at=quiet_at)

    sending.send_run(run_id=run_id, outage=1)  # the probe (the soonest retry) finds the relay back

    assert statuses(run_id) == Counter({"sent": 1, "pending": 1})
    quiet.refresh_from_db()
    assert (quiet.status, quiet.due_at, quiet.next_attempt_at) == ("pending", quiet_at, quiet_at)


def successors(redis) -> list[tuple]:
    """The delayed send jobs: (run id, outage count, whole seconds from now until it runs; RQ keeps whole seconds)."""
    queue = django_rq.get_queue(CAMPAIGNS)
    registry = ScheduledJobRegistry(CAMPAIGNS, connection=redis)
    now = timezone.now()
    jobs = [(queue.fetch_job(job_id), registry.get_scheduled_time(job_id)) for job_id in registry.get_job_ids()]
    return sorted((*job.args, math.ceil((at - now).total_seconds())) for job, at in jobs)


# Waiting for retries ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_waiting_for_a_retry_is_woken_when_it_falls_due_and_no_other_run_is_disturbed(
    redis, marketer, everyone, relays, settings
):
    settings.CAMPAIGNS_STALL_SECONDS = 600  # the stall check alone would wake nothing within ten minutes
    busy, accepting = relays
    busy.recorder.rejected_recipients = {"person0@example.com": "452 4.2.2 Mailbox full, try again later"}
    make_profiles(2)
    waiting = planned(marketer, everyone, make_email_configuration(port=busy.port, name="Busy"))
    redis.flushdb()
    other = planned(marketer, everyone, make_email_configuration(port=accepting.port, name="Other"))

    sending.send_run(run_id=waiting)  # person1 is sent; person0's retry is due in a minute: nothing else to do

    retry = Delivery.objects.get(run_id=waiting, status="pending")
    assert send_jobs() == Counter({other: 2})  # the other run's jobs wait their turn
    scheduler_tick(now=retry.due_at - timedelta(seconds=1))
    assert send_jobs() == Counter({other: 2})  # not due yet: nobody is woken, the other run keeps its two jobs
    scheduler_tick(now=retry.due_at + timedelta(seconds=1))
    assert send_jobs() == Counter({other: 2, waiting: 2})

    busy.recorder.rejected_recipients = {}
    with time_machine.travel(retry.due_at + timedelta(seconds=1), tick=True):
        run_burst_worker()

    assert received(busy) == Counter({"person1@example.com": 1, "person0@example.com": 1})
    assert received(accepting) == everyone_once(2)
    assert [Run.objects.get(pk=run_id).state for run_id in (waiting, other)] == [Run.State.COMPLETE] * 2
