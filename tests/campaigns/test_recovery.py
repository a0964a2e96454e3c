"""Recovery of a dead worker's work (release_stale_claims): who sends what once a worker is presumed dead, and
that a worker still within its claim timeout keeps its messages."""

from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from campaigns.engine import claiming, outcomes, planning, recovery, scheduler, sending
from campaigns.models import Delivery, Run
from campaigns.services.lifecycle import campaign_activate
from channels.adapters.base import Outcome, SendResult
from config.scheduler import scheduler_tick
from tests.campaigns.queued import received
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration, run_burst_worker

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
