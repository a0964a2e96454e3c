"""The handover of a claimed slice to the channel (send_slice): the claim timeout counts from the handover, so a
worker that dies while the provider has its messages is found out, and one that was merely slow to render is
not; and a slice part of which stopped being the worker's before the handover sends only what is still its
own, each recipient once."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audiences.models import Profile
from audiences.services.privacy import profile_erase
from campaigns.engine import claiming, recovery, sending
from campaigns.models import Campaign, Delivery, Run
from channels.adapters.base import Adapter
from config.scheduler import scheduler_tick
from tests.campaigns.queued import received
from tests.campaigns.test_execution import make_profiles
from tests.campaigns.test_outcomes import planned
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import RecordingSMTPServer, free_port

TIMEOUT = timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)


class WorkerKilled(BaseException):
    """The worker's process dies (killed by the OS, or its job's hard time limit) while the provider has the
    slice: nothing of the worker's own code runs after it, not even its `except Exception`."""


class DyingAdapter(Adapter):
    """Stands in for the email adapter of a worker that dies in the middle of talking to the relay."""

    channel = "email"
    slices: list[list[str]] = []

    def send(self, messages):
        DyingAdapter.slices.append([message.to for message in messages])
        raise WorkerKilled


@pytest.fixture
def dying(email_adapter):
    return email_adapter(DyingAdapter)


class Elsewhere:
    """`work` run in a thread as another process of the system would run it (its own database connection)."""

    def __init__(self, work):
        self.failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(work,))
        self.thread.start()

    def _run(self, work):
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by wait()
            self.failure.append(exc)
        finally:
            connection.close()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for `work` (at most `timeout` seconds), and raise what it raised if it has finished."""
        self.thread.join(timeout)
        if self.failure:
            raise self.failure[0]


def in_another_thread(work) -> None:
    """Run `work` as another process of the system would (its own database connection), and wait for it."""
    Elsewhere(work).wait()


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_dies_while_the_provider_has_its_slice_is_found_out_after_the_claim_timeout(
    redis, marketer, everyone, dying
):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=1))
    redis.flushdb()  # the run's other send jobs died with the worker too

    with pytest.raises(WorkerKilled):
        sending.send_run(run_id=run_id)
    died_at = timezone.now()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"in_flight"}

    # Within the claim timeout the scheduler cannot tell a dead worker from a slow relay: it waits.
    scheduler_tick(now=died_at + TIMEOUT - timedelta(seconds=5))
    assert set(Delivery.objects.values_list("status", flat=True)) == {"in_flight"}
    # After it, the messages may or may not have been delivered: marketing never sends them again.
    scheduler_tick(now=died_at + TIMEOUT + timedelta(seconds=5))
    run_burst_worker()

    assert len(dying.slices) == 1 and len(dying.slices[0]) == 3
    assert set(Delivery.objects.values_list("status", "reason")) == {("unknown", "worker_lost")}
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE
    assert Campaign.objects.get().status == Campaign.Status.COMPLETED


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_slow_render_does_not_make_a_live_send_look_lost(redis, marketer, everyone):
    make_profiles(3)
    relay = RecordingSMTPServer()
    ticks = []
    accept = relay.recorder.handle_DATA

    async def handle_DATA(server, session, envelope):
        # While the relay takes the first message, the scheduler ticks elsewhere: a claim timeout after the
        # claim, but not after the handover.
        if not ticks:
            ticks.append(timezone.now() + TIMEOUT - timedelta(seconds=10))
            in_another_thread(lambda: scheduler_tick(now=ticks[0]))
        return await accept(server, session, envelope)

    relay.recorder.handle_DATA = handle_DATA
    relay.start()
    try:
        with time_machine.travel(timezone.now(), tick=False) as clock:
            run_id = planned(marketer, everyone, make_email_configuration(port=relay.port, connections=1))
            token, rows = claiming.claim_slice(run_id=run_id, limit=5, now=timezone.now())
            clock.shift(200)  # rendering the slice took 200 seconds
            sending.send_slice(run=Run.objects.get(pk=run_id), token=token, deliveries=rows)
    finally:
        relay.stop()

    assert len(ticks) == 1
    assert received(relay) == Counter({row.address: 1 for row in rows})
    assert set(Delivery.objects.values_list("status", "reason")) == {("sent", "")}


@pytest.mark.django_db(transaction=True)
def test_a_person_erased_while_their_slice_is_prepared_is_not_sent_the_rest_of_the_slice_is(
    redis, smtp_server, marketer, everyone
):
    make_profiles(4)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    token, rows = claiming.claim_slice(run_id=run_id, limit=5, now=timezone.now())
    erased = rows[1]
    # The worker holds the slice (rendering it) when the person's erasure comes in.
    profile_erase(profile=Profile.objects.get(pk=erased.profile_id), actor=marketer)

    sending.send_slice(run=Run.objects.get(pk=run_id), token=token, deliveries=rows)

    others = [row.address for row in rows if row is not erased]
    assert received(smtp_server) == Counter({address: 1 for address in others})
    assert Counter(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True))["sent"] == 3

    # The erased person's row, released when its claim times out, goes nowhere and the run completes.
    scheduler_tick(now=timezone.now() + TIMEOUT + timedelta(seconds=5))
    run_burst_worker()
    assert received(smtp_server) == Counter({address: 1 for address in others})
    assert (Delivery.objects.get(pk=erased.pk).status, Delivery.objects.get(pk=erased.pk).reason) == (
        "excluded",
        "no_address",
    )
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_a_slice_that_finds_the_relay_down_gives_back_only_what_is_still_its_own(redis, marketer, everyone):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=free_port()))
    start = timezone.now()
    first, rows = claiming.claim_slice(run_id=run_id, limit=3, now=start)
    # The first worker outlived its claim: its rows were released and another worker claimed them.
    recovery.release_stale_claims(now=start + TIMEOUT + timedelta(seconds=1))
    second, _ = claiming.claim_slice(run_id=run_id, limit=3, now=start + TIMEOUT + timedelta(seconds=1))

    # The first finds the relay down and gives back what it never handed over: none of it is its own any more.
    sending._give_back(first, [row.pk for row in rows])

    assert set(Delivery.objects.filter(run_id=run_id).values_list("status", "claim_token")) == {("claimed", second)}
