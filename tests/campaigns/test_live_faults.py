"""Faults of the send path with real processes: the worker pool as the Procfile runs it, Redis, a real SMTP server
counting what it receives.

- A send worker killed with SIGKILL in the middle of a slice: the run is taken up again within seconds (the lost
  worker's lease, not the claim timeout nor the stall check), completes, and every recipient got exactly one message
  or is `unknown`; only messages in flight at the kill can be unknown.
- The relay down, then back: sending resumes within seconds of its return (probes with growing waits), not at the
  retries' one-minute backoff.
"""

import os
import signal
import sys
import time
from collections import Counter

import django_rq
import pytest
from django.utils import timezone

from campaigns.models import Delivery, Run
from config.queues import CAMPAIGNS
from config.scheduler import scheduler_tick
from tests.campaigns.test_recovery import planned
from tests.processes import children, wait_for, worker_pool
from tests.smtp_servers import RecordingSMTPServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]

LOST_SECONDS = 2  # the pool's and this test's CAMPAIGNS_WORKER_LOST_SECONDS


@pytest.fixture
def slow_relay():
    server = RecordingSMTPServer(delay=0.02).start()  # ~25 messages a second a connection: the kill finds some out
    yield server
    server.stop()


def test_a_worker_killed_mid_slice_is_replaced_within_seconds_and_nobody_gets_two_messages(
    redis, slow_relay, marketer, everyone, settings
):
    if not sys.platform.startswith("linux"):
        pytest.skip("/proc is Linux's")
    settings.CAMPAIGNS_WORKER_LOST_SECONDS = LOST_SECONDS
    run_id = planned(marketer, everyone, slow_relay.port, profiles=300)
    redis.flushdb()
    django_rq.get_queue(CAMPAIGNS).enqueue("campaigns.jobs.send_run", run_id)  # one job: no other takes over
    rows = Delivery.objects.filter(run_id=run_id)

    # Slices of 100: a kill finds one half sent. Outcomes are recorded as the relay answers, so only the few at
    # the relay (four times the connections, at most) can be unknown, not the slice.
    env = {"CAMPAIGNS_WORKER_LOST_SECONDS": str(LOST_SECONDS), "TEST_CAMPAIGNS_SEND_SLICE": "100"}
    with worker_pool(CAMPAIGNS, env=env, test_database=True) as pool:
        wait_for(lambda: len(slow_relay.messages) >= 50, 60, "the worker sending")
        [worker] = children(pool.pid)
        os.kill(worker, signal.SIGKILL)
        killed_at = time.monotonic()
        # What the dead worker held when it died: the ledger stays so until its lease is found lost.
        in_flight = rows.filter(status=Delivery.Status.IN_FLIGHT).count()

        def complete():
            scheduler_tick(now=timezone.now())
            return Run.objects.filter(pk=run_id, state=Run.State.COMPLETE).exists()

        # The claim timeout (300 s) and the stall check (60 s) are far off: only the lease can do it this soon.
        wait_for(complete, 30, "the run taken up again and complete", every=0.5)
        recovered_in = time.monotonic() - killed_at

    statuses = Counter(rows.values_list("status", flat=True))
    received = Counter(rcpt for message in slow_relay.messages for rcpt in message["rcpt_tos"])
    unknown = set(rows.filter(status=Delivery.Status.UNKNOWN).values_list("address", flat=True))
    assert set(statuses) <= {"sent", "unknown"}, statuses
    assert max(received.values()) == 1, [address for address, count in received.items() if count > 1]
    assert set(rows.filter(status="sent").values_list("address", flat=True)) <= set(received)
    assert set(received) <= set(rows.values_list("address", flat=True))
    assert len(unknown) == in_flight, (unknown, in_flight)
    connections = 2  # make_email_configuration's
    assert in_flight <= 4 * connections + 2 * connections  # the window, and the answers of one step not yet written
    assert recovered_in < 30


def test_sending_resumes_within_seconds_of_the_relay_coming_back(redis, marketer, everyone):
    relay = RecordingSMTPServer()  # not started yet: its port refuses connections
    run_id = planned(marketer, everyone, relay.port, profiles=30)
    rows = Delivery.objects.filter(run_id=run_id)
    try:
        with worker_pool(CAMPAIGNS, test_database=True):
            wait_for(lambda: rows.filter(attempts__gt=0).count() >= 10, 60, "both jobs finding the relay down")
            time.sleep(4)  # down a while: the probes wait longer each time
            assert rows.filter(status="pending").count() == 30
            relay.start()
            back_at = time.monotonic()
            wait_for(lambda: Run.objects.filter(pk=run_id, state=Run.State.COMPLETE).exists(), 30, "the run complete")
            resumed_in = time.monotonic() - back_at
    finally:
        if relay.controller._thread is not None:
            relay.stop()

    # The first slices' retries were due a minute after they failed: the probe that found the relay back sent them.
    assert Counter(rcpt for message in relay.messages for rcpt in message["rcpt_tos"]) == Counter(
        {address: 1 for address in rows.values_list("address", flat=True)}
    )
    assert resumed_in < 20
