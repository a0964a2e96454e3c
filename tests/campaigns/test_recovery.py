"""Recovery of a dead worker's work: who sends what once a worker is known dead (its lease not renewed:
release_claims_of_lost_workers) or presumed dead (past the claim timeout: release_stale_claims), and that a worker
still alive keeps its messages."""

import os
import socket
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.engine import claiming, outcomes, planning, recovery, scheduler, sending, workers
from campaigns.models import Campaign, Delivery, Run, SendWorker
from campaigns.services.lifecycle import campaign_activate
from channels.adapters.base import Outcome, SendResult
from config.scheduler import scheduler_tick
from tests.campaigns.queued import received, send_jobs
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration, run_burst_worker
from tests.processes import wait_for

TIMEOUT = timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)


def planned(marketer, audience, port, *, profiles, category="marketing") -> int:
    make_profiles(profiles)
    campaign = make_campaign(marketer, make_email_configuration(port=port), audience, category=category)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    return run_id


def hand_over(token, at) -> None:
    """What a worker does before its adapter talks to the provider: its claimed rows are now in flight."""
    Delivery.objects.filter(claim_token=token).update(status=Delivery.Status.IN_FLIGHT, claimed_at=at)


def addresses(rows) -> list[str]:
    return sorted(row.address for row in rows)


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_claims_are_sent_by_another_while_live_workers_keep_theirs(
    redis, smtp_server, marketer, everyone
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=15)
    start = timezone.now()
    dead_token, dead_rows = claiming.claim_slice(run_id=run_id, limit=5, now=start)
    # Exactly the timeout old when the scheduler looks: not past it, so still its worker's.
    edge_token, edge_rows = claiming.claim_slice(run_id=run_id, limit=5, now=start + timedelta(seconds=1))
    live_token, live_rows = claiming.claim_slice(run_id=run_id, limit=5, now=start + TIMEOUT / 2)
    assert len(dead_rows) == len(edge_rows) == len(live_rows) == 5

    released = recovery.release_stale_claims(now=start + TIMEOUT + timedelta(seconds=1))

    assert released == 5
    rows = Delivery.objects.filter(run_id=run_id)
    assert addresses(rows.filter(status="pending", claim_token=None, claimed_at=None)) == addresses(dead_rows)
    assert addresses(rows.filter(status="claimed", claim_token=edge_token)) == addresses(edge_rows)
    assert addresses(rows.filter(status="claimed", claim_token=live_token)) == addresses(live_rows)

    # The live workers finish their slices, another worker takes over the dead one's, and the dead one,
    # merely slow, wakes up and finds nothing of its own left to send.
    run = Run.objects.get(pk=run_id)
    sending.send_slice(run=run, token=live_token, deliveries=live_rows)
    sending.send_slice(run=run, token=edge_token, deliveries=edge_rows)
    sending.send_run(run_id=run_id)
    sending.send_slice(run=run, token=dead_token, deliveries=dead_rows)

    assert received(smtp_server) == Counter({address: 1 for address in rows.values_list("address", flat=True)})
    assert set(rows.values_list("status", flat=True)) == {"sent"}
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


def dead_and_live_workers(run_id: int, start):
    """Two workers that each claimed and handed over 5 messages: one at `start` (dead by the time the test
    releases stale claims), one half a timeout later (alive)."""
    dead = claiming.claim_slice(run_id=run_id, limit=5, now=start)
    hand_over(dead[0], start)
    live = claiming.claim_slice(run_id=run_id, limit=5, now=start + TIMEOUT / 2)
    hand_over(live[0], start + TIMEOUT / 2)
    return dead, live


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_marketing_in_flight_becomes_unknown_a_live_workers_keeps_its_outcome(
    redis, smtp_server, marketer, everyone
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=10)
    start = timezone.now()
    (dead_token, dead_rows), (live_token, live_rows) = dead_and_live_workers(run_id, start)

    assert recovery.release_stale_claims(now=start + TIMEOUT + timedelta(seconds=1)) == 5

    rows = Delivery.objects.filter(run_id=run_id)
    lost = rows.filter(status="unknown", reason="worker_lost", claim_token=None)
    assert addresses(lost) == addresses(dead_rows)
    assert addresses(rows.filter(status="in_flight", claim_token=live_token)) == addresses(live_rows)

    # The live worker's provider accepted its messages; the dead worker's report, if it ever comes, is void.
    sent = [SendResult(row.pk, Outcome.SENT, provider_message_id=f"id-{row.pk}") for row in live_rows]
    assert outcomes.record_outcomes(token=live_token, results=sent, by_id={r.pk: r for r in live_rows}) == 5
    late = [SendResult(row.pk, Outcome.SENT, provider_message_id="late") for row in dead_rows]
    assert outcomes.record_outcomes(token=dead_token, results=late, by_id={r.pk: r for r in dead_rows}) == 0

    # Marketing never sends again what may have been delivered: the scheduler finds nothing to do.
    scheduler_tick(now=start + TIMEOUT + timedelta(minutes=5))
    run_burst_worker()
    assert smtp_server.messages == []
    assert Counter(rows.values_list("status", flat=True)) == Counter({"sent": 5, "unknown": 5})
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_transactional_in_flight_is_sent_again_a_live_workers_is_not(
    redis, smtp_server, marketer, everyone
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=10, category="transactional")
    start = timezone.now()
    (dead_token, dead_rows), (live_token, live_rows) = dead_and_live_workers(run_id, start)

    assert recovery.release_stale_claims(now=start + TIMEOUT + timedelta(seconds=1)) == 5

    rows = Delivery.objects.filter(run_id=run_id)
    retried = rows.filter(status="pending", reason="worker_lost", claim_token=None, claimed_at=None)
    assert addresses(retried) == addresses(dead_rows)
    sent = [SendResult(row.pk, Outcome.SENT, provider_message_id=f"id-{row.pk}") for row in live_rows]
    assert outcomes.record_outcomes(token=live_token, results=sent, by_id={r.pk: r for r in live_rows}) == 5

    sending.send_run(run_id=run_id)

    # Only the dead worker's messages go out again (the delivery id is the provider's idempotency key).
    assert received(smtp_server) == Counter({row.address: 1 for row in dead_rows})
    assert set(rows.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_gives_a_dead_workers_slice_to_a_new_worker_and_the_run_completes(
    redis, smtp_server, marketer, everyone
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=8)
    redis.flushdb()  # the dispatched send jobs died with their worker
    start = timezone.now()
    _, dead_rows = claiming.claim_slice(run_id=run_id, limit=5, now=start)
    assert len(dead_rows) == 5

    scheduler_tick(now=start + TIMEOUT + timedelta(seconds=1))
    run_burst_worker()

    assert received(smtp_server) == Counter(
        {address: 1 for address in Delivery.objects.filter(run_id=run_id).values_list("address", flat=True)}
    )
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


# A worker's lease (campaigns.engine.workers): its claims are released within seconds of it being lost. --------

LOST = timedelta(seconds=settings.CAMPAIGNS_WORKER_LOST_SECONDS)


def lease(name: str, renewed_at) -> SendWorker:
    return SendWorker.objects.create(name=name, started_at=renewed_at, renewed_at=renewed_at)


def claim_as(monkeypatch, worker: SendWorker, run_id: int, *, limit: int, now):
    """A slice claimed by the process holding `worker`'s lease."""
    monkeypatch.setattr(workers, "current", lambda: worker.pk)
    return claiming.claim_slice(run_id=run_id, limit=limit, now=now)


@pytest.mark.django_db(transaction=True)
def test_a_lost_workers_claims_are_released_at_the_next_tick_and_its_run_gets_new_jobs(
    redis, smtp_server, marketer, everyone, monkeypatch
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=15)
    redis.flushdb()  # the dispatched send jobs died with their worker
    now = timezone.now()
    lost, live = lease("lost:1", now - LOST - timedelta(seconds=1)), lease("live:2", now - LOST + timedelta(seconds=1))
    lost_token, lost_rows = claim_as(monkeypatch, lost, run_id, limit=5, now=now)
    hand_over(lost_token, now)  # the lost worker had handed its slice to the relay
    _, lost_claimed = claim_as(monkeypatch, lost, run_id, limit=3, now=now)
    live_token, live_rows = claim_as(monkeypatch, live, run_id, limit=5, now=now)
    monkeypatch.undo()

    scheduler_tick(now=now)  # seconds after the claims, far within the claim timeout

    rows = Delivery.objects.filter(run_id=run_id)
    assert addresses(rows.filter(status="unknown", reason="worker_lost", claimed_by=None)) == addresses(lost_rows)
    assert addresses(rows.filter(status="pending", claim_token=None, claimed_by=None)) == addresses(
        [*lost_claimed, *rows.filter(status="pending").exclude(pk__in=[r.pk for r in lost_claimed])]
    )
    assert addresses(rows.filter(status="claimed", claim_token=live_token, claimed_by=live.pk)) == addresses(live_rows)
    assert list(SendWorker.objects.values_list("name", flat=True)) == ["live:2"]  # the lost one forgotten
    assert send_jobs() == {run_id: settings.CAMPAIGNS_SEND_JOBS_PER_RUN}  # replaced at once

    run_burst_worker()
    sending.send_slice(run=Run.objects.get(pk=run_id), token=live_token, deliveries=live_rows)
    sending.send_run(run_id=run_id)

    assert received(smtp_server) == Counter(
        {address: 1 for address in rows.exclude(status="unknown").values_list("address", flat=True)}
    )
    assert Counter(rows.values_list("status", flat=True)) == Counter({"sent": 10, "unknown": 5})
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_only_the_runs_a_lost_worker_held_messages_of_get_new_jobs(redis, smtp_server, marketer, everyone, monkeypatch):
    make_profiles(6)
    runs = []
    for name in ("Held", "Other"):
        campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port, name=name), everyone)
        campaign_activate(campaign=campaign, actor=marketer)
        [run_id] = scheduler.start_due_runs(now=timezone.now())
        planning.plan_run(run_id=run_id)
        runs.append(run_id)
    held, other = runs
    redis.flushdb()  # the dispatched send jobs died with their workers
    now = timezone.now()
    lost, live = lease("lost:1", now - LOST - timedelta(seconds=1)), lease("live:2", now)
    claim_as(monkeypatch, lost, held, limit=2, now=now)
    # The lost worker had sent a slice of the other run before, which a live worker is now sending.
    sent_token, _ = claim_as(monkeypatch, lost, other, limit=2, now=now)
    Delivery.objects.filter(claim_token=sent_token).update(status=Delivery.Status.SENT)
    claim_as(monkeypatch, live, other, limit=2, now=now)
    monkeypatch.undo()

    assert recovery.release_claims_of_lost_workers(now=now) == 2

    # The other run's workers are alive: its jobs were not lost, and it gets no more than its share.
    assert send_jobs() == {held: settings.CAMPAIGNS_SEND_JOBS_PER_RUN}


@pytest.mark.django_db(transaction=True)
def test_a_run_stalled_since_its_worker_was_lost_gets_its_share_of_jobs_once(
    redis, smtp_server, marketer, everyone, monkeypatch
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=4)
    redis.flushdb()  # the dispatched send jobs died with their worker
    now = timezone.now()
    # The worker was lost long enough ago for the run to look stalled too.
    Run.objects.filter(pk=run_id).update(heartbeat_at=now - timedelta(seconds=2 * settings.CAMPAIGNS_STALL_SECONDS))
    lost = lease("lost:1", now - LOST - timedelta(seconds=1))
    claim_as(monkeypatch, lost, run_id, limit=2, now=now)
    monkeypatch.undo()

    scheduler_tick(now=now)  # releasing the lost worker's claims re-dispatches the run: the stall check adds nothing

    assert send_jobs() == {run_id: settings.CAMPAIGNS_SEND_JOBS_PER_RUN}


@pytest.mark.django_db(transaction=True)
def test_a_run_left_sending_by_a_pause_that_raced_its_planning_gets_no_jobs_when_a_lost_workers_claims_go(
    redis, smtp_server, marketer, everyone, monkeypatch
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=4)
    redis.flushdb()
    now = timezone.now()
    lost = lease("lost:1", now - LOST - timedelta(seconds=1))
    claim_as(monkeypatch, lost, run_id, limit=2, now=now)
    monkeypatch.undo()
    # The pause committed while the planner still saw the campaign active: the run was left sending (test_send_jobs).
    Campaign.objects.filter(runs__pk=run_id).update(status=Campaign.Status.PAUSED)

    assert recovery.release_claims_of_lost_workers(now=now) == 2

    assert Counter(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True)) == {"pending": 4}
    assert send_jobs() == Counter()  # resuming the campaign dispatches it


@pytest.mark.django_db(transaction=True)
def test_a_lost_transactional_workers_in_flight_messages_are_sent_again(
    redis, smtp_server, marketer, everyone, monkeypatch
):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=4, category="transactional")
    now = timezone.now()
    lost = lease("lost:1", now - LOST - timedelta(seconds=1))
    token, rows = claim_as(monkeypatch, lost, run_id, limit=4, now=now)
    hand_over(token, now)
    monkeypatch.undo()

    recovery.release_claims_of_lost_workers(now=now)
    run_burst_worker()

    assert received(smtp_server) == Counter({row.address: 1 for row in rows})
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_renews_its_lease_keeps_its_claims(redis, smtp_server, marketer, everyone, monkeypatch):
    run_id = planned(marketer, everyone, smtp_server.port, profiles=5)
    alive = lease("alive:1", timezone.now() - 2 * LOST)
    token, rows = claim_as(monkeypatch, alive, run_id, limit=5, now=timezone.now())
    monkeypatch.undo()
    alive.renewed_at = timezone.now() - LOST / 2
    alive.save()

    # Taken twice the limit ago, but renewed since: nothing released, nothing forgotten.
    assert recovery.release_claims_of_lost_workers(now=timezone.now()) == 0
    assert Delivery.objects.filter(run_id=run_id, status="claimed", claim_token=token).count() == 5
    assert SendWorker.objects.filter(pk=alive.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_processs_lease_is_renewed_retaken_when_declared_lost_and_given_back_at_exit(settings):
    settings.CAMPAIGNS_WORKER_LOST_SECONDS = 2  # renewed every 0.4 s
    try:
        workers.lease_start(name="worker:test")
        first = workers.current()
        assert SendWorker.objects.filter(pk=first, name="worker:test").exists()
        renewed = SendWorker.objects.get(pk=first).renewed_at
        wait_for(lambda: SendWorker.objects.get(pk=first).renewed_at > renewed, 10, "the lease renewed", every=0.05)

        SendWorker.objects.filter(pk=first).delete()  # a tick found it lost (the process was frozen)
        wait_for(lambda: workers.current() != first, 10, "a new lease taken", every=0.05)
        assert SendWorker.objects.filter(pk=workers.current()).exists()

        workers.lease_end()
        assert not SendWorker.objects.exists()
    finally:
        workers.lease_end()
        workers._lease = None


@pytest.mark.django_db(transaction=True)
def test_a_lease_taken_without_a_name_names_its_host_and_process_and_its_thread_never_holds_the_process_at_exit():
    try:
        workers.lease_start()
        # What an operator looks for among the leases: this machine and this process.
        assert list(SendWorker.objects.values_list("name", flat=True)) == [f"{socket.gethostname()}:{os.getpid()}"]
        # The renewal thread (named for thread dumps) is a daemon: a worker stopping is not kept alive by it, and its
        # lease is given back at exit (atexit runs only once every thread that is not a daemon has ended).
        threads = [thread for thread in threading.enumerate() if thread.name == "send-worker-lease"]
        assert threads and all(thread.daemon for thread in threads)
    finally:
        workers.lease_end()
        workers._lease = None


@pytest.mark.django_db(transaction=True)
def test_a_process_forked_from_a_worker_does_not_give_back_the_workers_lease():
    workers.lease_end()  # no lease taken: nothing to give back
    try:
        workers.lease_start(name="worker:parent")
        parent = workers.current()
        workers._lease.pid = os.getpid() + 1  # as a child forked from the worker sees it: the lease is its parent's

        assert workers.current() is None  # its claims name no lease
        workers.lease_end()  # the child exits

        assert SendWorker.objects.filter(pk=parent).exists()
    finally:
        if workers._lease is not None:
            workers._lease.pid = os.getpid()
        workers.lease_end()
        workers._lease = None


@pytest.mark.django_db(transaction=True)
def test_a_live_workers_lease_is_renewed_within_the_limit_and_stays_the_same_lease(settings):
    settings.CAMPAIGNS_WORKER_LOST_SECONDS = 2  # renewed every 0.4 s
    try:
        workers.lease_start(name="worker:test")
        first = workers.current()
        taken = SendWorker.objects.get(pk=first).renewed_at
        # Renewed before the scheduler would find it lost, and renewed, not replaced: a worker that took a new lease
        # at each renewal would leave the old one to be found lost, and its claims released while it sends them.
        wait_for(lambda: SendWorker.objects.get(pk=first).renewed_at > taken, 2, "the lease renewed", every=0.05)
        wait_for(
            lambda: SendWorker.objects.get(pk=first).renewed_at > taken + timedelta(seconds=0.4), 2, "again", every=0.05
        )
        assert workers.current() == first
        assert list(SendWorker.objects.values_list("pk", flat=True)) == [first]
    finally:
        workers.lease_end()
        workers._lease = None


@pytest.mark.django_db(transaction=True)
def test_a_lease_named_longer_than_its_column_is_taken_with_the_name_cut(settings):
    name = "worker:" + "x" * 300
    try:
        workers.lease_start(name=name)
        assert list(SendWorker.objects.values_list("name", flat=True)) == [name[:255]]
    finally:
        workers.lease_end()
        workers._lease = None


@pytest.mark.django_db(transaction=True)
def test_the_lease_thread_holds_no_database_connection_between_renewals(settings, monkeypatch):
    settings.CAMPAIGNS_WORKER_LOST_SECONDS = 2  # renewed every 0.4 s
    closed_by = []

    class Connection:
        """Django's connection (one a thread), recording which thread closes its own."""

        def close(self):
            closed_by.append(threading.current_thread().name)
            connection.close()

    monkeypatch.setattr(workers, "connection", Connection())
    try:
        workers.lease_start(name="worker:test")
        wait_for(lambda: "send-worker-lease" in closed_by, 2, "the renewal thread's connection closed", every=0.05)
        assert threading.main_thread().name not in closed_by  # the worker's own connection, which it goes on using
    finally:
        workers.lease_end()
        workers._lease = None
