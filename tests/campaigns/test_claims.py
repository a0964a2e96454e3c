"""Claiming slices (claim_slice): what is due goes out, earliest first, each row to one worker, and nothing
before it is due. The claim is compiled differently per database, so these run on both."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.models import Audience
from campaigns.engine import claiming, planning, scheduler
from campaigns.models import Delivery
from campaigns.services.lifecycle import campaign_activate
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration


@pytest.fixture
def run_id(personas):
    make_profiles(10)
    everyone = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    campaign = make_campaign(personas["april"], make_email_configuration(port=25), everyone)
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    return run_id


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_slices_claim_each_due_row_once_up_to_their_limit(redis, run_id):
    now = timezone.now()
    slices = [claiming.claim_slice(run_id=run_id, limit=4, now=now) for _ in range(4)]

    assert [len(rows) for _, rows in slices] == [4, 4, 2, 0]
    for token, rows in slices[:3]:
        assert all(row.status == "claimed" and row.claim_token == token and row.claimed_at == now for row in rows)
        # What the worker holds is what the ledger says it holds.
        mine = Delivery.objects.filter(claim_token=token, status="claimed", claimed_at=now)
        assert sorted(mine.values_list("pk", flat=True)) == [row.pk for row in rows]
        assert all(row.profile.email == row.address for row in rows)  # the recipient, ready to render
    claimed = [row.pk for _, rows in slices for row in rows]
    assert len(set(claimed)) == 10
    assert not Delivery.objects.filter(run_id=run_id, status="pending").exists()


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_retry_is_claimed_when_it_falls_due_not_before(redis, run_id):
    now = timezone.now()
    later = now + timedelta(minutes=5)
    retry = Delivery.objects.filter(run_id=run_id).order_by("id").first()
    Delivery.objects.filter(pk=retry.pk).update(due_at=later, next_attempt_at=later, attempts=1)

    _, rows = claiming.claim_slice(run_id=run_id, limit=100, now=now)
    assert len(rows) == 9 and retry.pk not in {row.pk for row in rows}
    assert claiming.claim_slice(run_id=run_id, limit=100, now=later - timedelta(microseconds=1))[1] == []

    _, rows = claiming.claim_slice(run_id=run_id, limit=100, now=later)
    assert [row.pk for row in rows] == [retry.pk]


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_the_longest_waiting_rows_are_claimed_first(redis, run_id):
    now = timezone.now()
    rows = list(Delivery.objects.filter(run_id=run_id).order_by("id"))
    # Retries that fell due earlier than the rest of the run wait least long behind it.
    for minutes, row in zip([30, 20, 10], rows[-3:], strict=True):
        Delivery.objects.filter(pk=row.pk).update(due_at=now - timedelta(minutes=minutes))

    _, first = claiming.claim_slice(run_id=run_id, limit=4, now=now)

    assert {row.pk for row in first} == {rows[-1].pk, rows[-2].pk, rows[-3].pk, rows[0].pk}


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_run_claims_only_its_own_rows(redis, run_id, personas):
    other = make_campaign(
        personas["april"],
        make_email_configuration(port=25, name="Other"),
        Audience.objects.get(name="Everyone"),
    )
    campaign_activate(campaign=other, actor=personas["april"])
    [other_run] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=other_run)

    _, rows = claiming.claim_slice(run_id=run_id, limit=100, now=timezone.now())

    assert len(rows) == 10 and {row.run_id for row in rows} == {run_id}
    assert Delivery.objects.filter(run_id=other_run, status="pending").count() == 10
