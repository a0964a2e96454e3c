"""When a failed message is tried again, and when a send job tries a provider that was unavailable again: the
provider's Retry-After (at least a second) or the backoff for the message; a job that found the relay down
tries one message again a second later (then longer: test_send_jobs.py), its slice keeping the backoff, and is
not doubled by the scheduler meanwhile; a slice whose messages all ran out of retries does not crash the job."""

from collections import Counter
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from audiences.models import Audience, Profile
from campaigns.engine import sending, workers
from campaigns.models import Campaign, Delivery, Run, SendWorker
from channels.adapters.base import Adapter, Outcome, SendResult
from config.queues import CAMPAIGNS
from config.scheduler import scheduler_tick
from tests.campaigns.test_execution import make_profiles
from tests.campaigns.test_outcomes import planned
from tests.channels.conftest import make_configuration
from tests.channels.http_servers import ProviderServer, Reply
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import free_port


def successors(redis) -> list[float]:
    """The delayed send jobs waiting in RQ's scheduled registry: seconds from now until each runs."""
    scheduled = ScheduledJobRegistry(CAMPAIGNS, connection=redis)
    now = timezone.now()
    return sorted((scheduled.get_scheduled_time(job_id) - now).total_seconds() for job_id in scheduled.get_job_ids())


def queued_send_jobs() -> int:
    return django_rq.get_queue(CAMPAIGNS).count


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("0", 60),  # "now" is no wait at all: the backoff's first step
        ("0.5", 1),  # less than a second is a second
        ("1", 1),
        ("2", 2),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_providers_retry_after_is_honoured_from_one_second_up(redis, marketer, retry_after, wait):
    Profile.objects.create(attributes={"first_name": "Ann"})
    provider = ProviderServer().start()
    provider.script = lambda request: Reply(503, {"error": "busy"}, headers={"Retry-After": retry_after})
    try:
        configuration = make_configuration(
            "webhook", url=f"{provider.url}/in", signing_secret="webhook-signing-secret-1"
        )
        run_id = planned(marketer, Audience.objects.create(name="All", kind=Audience.Kind.ALL), configuration)
        sending.send_run(run_id=run_id)
    finally:
        provider.stop()

    [delivery] = Delivery.objects.filter(run_id=run_id)
    assert (delivery.status, delivery.reason, delivery.attempts) == ("pending", "provider_error", 1)
    assert delivery.due_at == delivery.next_attempt_at == delivery.first_attempt_at + timedelta(seconds=wait)


@pytest.mark.django_db(transaction=True)
def test_a_provider_that_says_when_to_come_back_is_probed_then_not_sooner(redis, marketer):
    Profile.objects.create(attributes={"first_name": "Ann"})
    provider = ProviderServer().start()
    provider.script = lambda request: Reply(503, {"error": "busy"}, headers={"Retry-After": "7"})
    try:
        configuration = make_configuration(
            "webhook", url=f"{provider.url}/in", signing_secret="webhook-signing-secret-1"
        )
        run_id = planned(marketer, Audience.objects.create(name="All", kind=Audience.Kind.ALL), configuration)
        redis.flushdb()
        sending.send_run(run_id=run_id, outage=3)  # the fourth probe would be 8 s later, the provider said 7
    finally:
        provider.stop()

    [successor] = successors(redis)
    assert 5 < successor <= 7  # RQ keeps whole seconds: not the 8 of the probes


@pytest.mark.parametrize(
    ("headers", "outage", "wait"),
    [
        ({"Retry-After": "0.5"}, 3, 1),  # less than a second is a second, not the fourth probe's 8 s
        ({"Retry-After": "1"}, 3, 1),
        ({}, 5, 30),  # the last of the growing waits
        ({}, 6, 30),  # past them: every 30 s
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_probe_waits_what_the_provider_asked_for_from_one_second_up_else_at_most_30_s(
    redis, marketer, headers, outage, wait
):
    Profile.objects.create(attributes={"first_name": "Ann"})
    provider = ProviderServer().start()
    provider.script = lambda request: Reply(503, {"error": "busy"}, headers=headers)
    try:
        configuration = make_configuration(
            "webhook", url=f"{provider.url}/in", signing_secret="webhook-signing-secret-1"
        )
        run_id = planned(marketer, Audience.objects.create(name="All", kind=Audience.Kind.ALL), configuration)
        redis.flushdb()
        sending.send_run(run_id=run_id, outage=outage)  # still down
    finally:
        provider.stop()

    [successor] = successors(redis)
    assert wait - 2 < successor <= wait  # RQ keeps whole seconds


@pytest.mark.django_db(transaction=True)
def test_a_job_that_finds_the_relay_down_probes_it_a_second_later_its_slice_keeping_the_backoff(
    redis, marketer, everyone
):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=free_port()))  # nothing listens
    redis.flushdb()  # this test drives one send job by hand

    sending.send_run(run_id=run_id)

    rows = Delivery.objects.filter(run_id=run_id)
    assert set(rows.values_list("status", "reason", "attempts")) == {("pending", "connect_failed", 1)}
    assert all(row.due_at == row.first_attempt_at + timedelta(seconds=60) for row in rows)  # the backoff's first step
    [successor] = successors(redis)
    assert 0 < successor <= 1  # a probe of one message, a second later: not when the slice is due


@pytest.mark.django_db(transaction=True)
def test_what_a_slice_that_found_the_relay_down_never_tried_is_pending_as_if_never_claimed(
    redis, marketer, everyone, monkeypatch
):
    make_profiles(8)
    run_id = planned(marketer, everyone, make_email_configuration(port=free_port(), connections=1))
    redis.flushdb()
    lease = SendWorker.objects.create(name="worker:1", started_at=timezone.now(), renewed_at=timezone.now())
    monkeypatch.setattr(workers, "current", lambda: lease.pk)  # the job runs in a worker holding a lease

    sending.send_run(run_id=run_id)  # four handed over (four times the connections), refused; four never tried

    untried = Delivery.objects.filter(run_id=run_id, attempts=0)
    assert set(untried.values_list("status", "claim_token", "claimed_at", "claimed_by")) == {
        ("pending", None, None, None)
    }
    assert untried.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_message_on_its_last_attempt_fails_while_the_others_wait_for_the_probe(redis, marketer, everyone):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=free_port()))
    redis.flushdb()
    now = timezone.now()
    # One message has been retried for almost a day (the configuration's window): this attempt is its last.
    last = Delivery.objects.filter(run_id=run_id).order_by("id").first()
    Delivery.objects.filter(pk=last.pk).update(
        attempts=5, first_attempt_at=now - timedelta(hours=23, minutes=58), next_attempt_at=now, due_at=now
    )

    sending.send_run(run_id=run_id)

    last.refresh_from_db()
    assert (last.status, last.reason, last.attempts) == ("failed", "retries_exhausted", 6)
    assert Counter(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True)) == Counter(
        {"pending": 2, "failed": 1}
    )
    [successor] = successors(redis)
    assert 0 < successor <= 1


@pytest.mark.django_db(transaction=True)
def test_a_slice_that_ran_out_of_retries_while_the_relay_is_down_fails_and_the_run_completes(redis, marketer, everyone):
    make_profiles(2)
    run_id = planned(marketer, everyone, make_email_configuration(port=free_port()))
    redis.flushdb()
    now = timezone.now()
    Delivery.objects.filter(run_id=run_id).update(attempts=5, first_attempt_at=now - timedelta(hours=23, minutes=58))

    sending.send_run(run_id=run_id)
    sending.send_run(run_id=run_id)  # the job's successor

    rows = Delivery.objects.filter(run_id=run_id)
    assert set(rows.values_list("status", "reason", "attempts")) == {("failed", "retries_exhausted", 6)}
    assert all("cannot connect" in row.detail for row in rows)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE
    assert Campaign.objects.get().status == Campaign.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_adds_no_job_while_a_down_relays_run_waits_for_its_retry(redis, marketer, everyone):
    make_profiles(12)
    run_id = planned(marketer, everyone, make_email_configuration(port=free_port()))
    sent_at = timezone.now()
    run_burst_worker()  # each of the two send jobs tries one slice of five, then waits for its probe
    assert len(successors(redis)) == 2
    assert Counter(Delivery.objects.filter(run_id=run_id).values_list("attempts", flat=True)) == Counter({1: 10, 0: 2})

    # The relay is not tried again by new jobs while the probes wait, nor while they are due and may be running
    # (a stall interval after they are due).
    scheduler_tick(now=sent_at + timedelta(seconds=10))
    assert queued_send_jobs() == 0
    scheduler_tick(now=sent_at + timedelta(seconds=55))
    assert queued_send_jobs() == 0
    # After that, the probes are lost: the scheduler sends new jobs.
    scheduler_tick(now=sent_at + timedelta(seconds=65))
    assert queued_send_jobs() == 2


class Shrugging(Adapter):
    """An adapter with a bug: it says every message failed for now, without saying why."""

    channel = "email"
    slices: list[int] = []

    def send(self, messages):
        Shrugging.slices.append(len(messages))
        return [SendResult(message.delivery_id, Outcome.TRANSIENT) for message in messages]


@pytest.fixture
def shrugging(email_adapter):
    return email_adapter(Shrugging)


@pytest.mark.django_db(transaction=True)
def test_a_failure_an_adapter_gives_no_reason_for_is_retried_and_the_job_goes_on(redis, marketer, everyone, shrugging):
    make_profiles(8)
    run_id = planned(marketer, everyone, make_email_configuration(port=1))
    redis.flushdb()

    sending.send_run(run_id=run_id)

    assert shrugging.slices == [5, 3]  # not a provider that is down: the job went on to the next slice
    rows = list(Delivery.objects.filter(run_id=run_id))
    assert {(row.status, row.attempts) for row in rows} == {("pending", 1)}
    assert all(row.due_at == row.first_attempt_at + timedelta(seconds=60) for row in rows)
