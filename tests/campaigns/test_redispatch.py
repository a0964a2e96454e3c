"""Keeping runs moving (redispatch_stalled_runs, on the scheduler's tick): a run whose jobs were lost gets new
ones, once, and then is left alone while they wait; one tick sees to every stalled run, whatever it found in
the runs before; a run waiting for retries is woken when they fall due and not before; and when a worker or
another scheduler acts on a run while this scheduler looks at it, the run is not given jobs twice."""

from collections import Counter
from contextlib import contextmanager
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from campaigns.engine import claiming, recovery, sending
from campaigns.models import Delivery, Run
from config.scheduler import scheduler_tick
from tests.campaigns.queued import received, send_jobs
from tests.campaigns.test_execution import make_profiles
from tests.campaigns.test_handover import in_another_thread
from tests.campaigns.test_outcomes import planned
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import RecordingSMTPServer


def statuses(run_id) -> Counter:
    return Counter(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True))


@pytest.fixture
def relays():
    """Two relays: one takes everything, the other is busy for person0 (451, try again later)."""
    accepting, busy = RecordingSMTPServer().start(), RecordingSMTPServer().start()
    busy.recorder.rejected_recipients = {"person0@example.com": "451 4.3.0 Try again later"}
    yield accepting, busy
    accepting.stop()
    busy.stop()


@pytest.mark.django_db(transaction=True)
def test_a_stalled_run_gets_new_jobs_once_and_is_left_alone_while_they_wait(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    planned_at = timezone.now()
    assert send_jobs() == Counter({run_id: 2})

    scheduler_tick(now=planned_at + timedelta(seconds=10))  # making progress: its jobs are waiting
    assert send_jobs() == Counter({run_id: 2})

    redis.flushdb()  # Redis lost its queues
    scheduler_tick(now=planned_at + timedelta(minutes=5))
    assert send_jobs() == Counter({run_id: 2})
    scheduler_tick(now=planned_at + timedelta(minutes=5, seconds=2))  # the next tick: the new jobs still wait
    assert send_jobs() == Counter({run_id: 2})

    run_burst_worker()
    assert received(smtp_server) == Counter({f"person{i}@example.com": 1 for i in range(3)})
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_one_tick_sees_to_every_stalled_run_and_wakes_runs_waiting_for_retries_when_they_fall_due(
    redis, marketer, everyone, relays
):
    accepting, busy = relays
    make_profiles(2)
    with time_machine.travel(timezone.now(), tick=True) as clock:
        start = timezone.now()
        # The scheduler looks at the newest runs first; from the newest:
        # - finished: its job sent every message, then died before it could complete the run;
        # - waiting (two runs): person0 was busy, their retry is due a minute after the attempt;
        # - lost: its jobs were lost with Redis before they sent anything.
        lost = planned(marketer, everyone, make_email_configuration(port=accepting.port, name="Lost"))
        waiting = [
            planned(marketer, everyone, make_email_configuration(port=busy.port, name=f"Waiting {n}")) for n in range(2)
        ]
        finished = planned(marketer, everyone, make_email_configuration(port=accepting.port, name="Finished"))
        redis.flushdb()
        token, rows = claiming.claim_slice(run_id=finished, limit=5, now=timezone.now())
        sending.send_slice(run=Run.objects.get(pk=finished), token=token, deliveries=rows)
        clock.shift(50)
        for run_id in waiting:
            sending.send_run(run_id=run_id)  # a late job: person1 is sent, person0 will be retried
            assert statuses(run_id) == Counter({"sent": 1, "pending": 1})

        clock.move_to(start + timedelta(seconds=70))
        scheduler_tick()

        assert Run.objects.get(pk=finished).state == Run.State.COMPLETE
        assert send_jobs() == Counter({lost: 2})  # nothing is due yet in the waiting runs

        busy.recorder.rejected_recipients = {}
        clock.move_to(start + timedelta(seconds=111))  # the retries are due
        scheduler_tick()
        assert send_jobs() == Counter({lost: 2, waiting[0]: 2, waiting[1]: 2})

        run_burst_worker()

    assert received(accepting) == Counter({"person0@example.com": 2, "person1@example.com": 2})
    assert received(busy) == Counter({"person0@example.com": 2, "person1@example.com": 2})
    for run_id in (finished, *waiting, lost):
        assert statuses(run_id) == Counter({"sent": 2})
        assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@contextmanager
def meanwhile(work):
    """Run `work` elsewhere at the moment this scheduler, having read which runs are stalled, first claims one
    of them for re-dispatch (its conditional update of the run's heartbeat): the race the claim is for."""
    moments = []

    def wrapper(execute, sql, params, many, context):
        if not moments and sql.startswith('UPDATE "campaigns_run" SET "heartbeat_at"'):
            moments.append(sql)
            in_another_thread(work)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield
    assert moments, "the scheduler never claimed a run"


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_worker_reports_progress_as_the_scheduler_looks_is_left_to_it_the_others_are_redispatched(
    redis, marketer, everyone, relays
):
    accepting, busy = relays
    make_profiles(2)
    lost = planned(marketer, everyone, make_email_configuration(port=accepting.port, name="Lost"))
    late = planned(marketer, everyone, make_email_configuration(port=busy.port, name="Late"))  # looked at first
    redis.flushdb()

    # The late run's job turns up just then and sends what is due (person0 is busy: retried later).
    with meanwhile(lambda: sending.send_run(run_id=late)):
        redispatched = recovery.redispatch_stalled_runs(now=timezone.now() + timedelta(minutes=5))

    assert send_jobs() == Counter({lost: 2})
    assert statuses(late) == Counter({"sent": 1, "pending": 1})
    assert received(busy) == Counter({"person1@example.com": 1})
    assert redispatched == [lost]  # what the scheduler did, by run id


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_ticking_at_once_redispatch_a_stalled_run_once(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    redis.flushdb()
    now = timezone.now() + timedelta(minutes=5)

    with meanwhile(lambda: scheduler_tick(now=now)):
        scheduler_tick(now=now)

    assert send_jobs() == Counter({run_id: 2})
    run_burst_worker()
    assert received(smtp_server) == Counter({f"person{i}@example.com": 1 for i in range(3)})
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE
