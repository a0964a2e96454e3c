"""An adapter is our code too and may have a bug: one that raises on a slice, or one that hands the provider's
answer on without bounding it. Whatever an adapter does, nobody gets a marketing message twice, a
transactional one is tried again, and the ledger keeps within its columns.

The adapter here stands in for a faulty channel adapter (fault injection, as a crash test kills a worker):
registered for the email channel for one test, it never reaches a provider."""

import pytest

from campaigns.engine import sending
from campaigns.models import Delivery, Run
from channels.adapters.base import Adapter, Outcome, SendResult
from tests.campaigns.test_execution import make_profiles
from tests.campaigns.test_outcomes import planned
from tests.conftest import make_email_configuration


class FaultyAdapter(Adapter):
    """Answers each slice with `FaultyAdapter.answer(messages)`; every slice it was given is in `slices`."""

    channel = "email"
    answer = None
    slices: list[list[str]] = []

    def send(self, messages):
        FaultyAdapter.slices.append([message.to for message in messages])
        return FaultyAdapter.answer(messages)


@pytest.fixture
def faulty(email_adapter):
    return email_adapter(FaultyAdapter)


def raising(messages):
    raise RuntimeError("adapter bug: " + "x" * 10_000)


def send_to(count, marketer, audience, *, category="marketing") -> int:
    make_profiles(count)
    run_id = planned(marketer, audience, make_email_configuration(port=1), category=category)
    sending.send_run(run_id=run_id)
    return run_id


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_an_adapter_that_raises_leaves_marketing_unknown_and_never_sends_it_again(redis, marketer, everyone, faulty):
    faulty.answer = staticmethod(raising)

    run_id = send_to(3, marketer, everyone)
    sending.send_run(run_id=run_id)  # a later pass of the worker finds nothing to send again

    deliveries = list(Delivery.objects.filter(run_id=run_id))
    assert len(faulty.slices) == 1 and len(faulty.slices[0]) == 3
    assert {(d.status, d.reason, d.attempts) for d in deliveries} == {(Delivery.Status.UNKNOWN, "adapter_error", 1)}
    # What the exception said is kept for the report, bounded to the column.
    assert all(d.detail.startswith("adapter bug: xxx") and len(d.detail) == 500 for d in deliveries)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_an_adapter_that_raises_on_transactional_mail_has_it_tried_again(redis, marketer, everyone, faulty):
    faulty.answer = staticmethod(raising)

    run_id = send_to(2, marketer, everyone, category="transactional")

    deliveries = list(Delivery.objects.filter(run_id=run_id))
    assert {(d.status, d.reason, d.attempts) for d in deliveries} == {(Delivery.Status.PENDING, "adapter_error", 1)}
    assert all(d.next_attempt_at is not None and d.claim_token is None for d in deliveries)
    assert Run.objects.get(pk=run_id).state == Run.State.SENDING


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_an_unbounded_answer_from_an_adapter_is_stored_within_the_columns(redis, marketer, everyone, faulty):
    # PostgreSQL refuses an over-long value for the whole slice; SQLite would store it: both are checked.
    def unbounded(messages):
        first, *rest = messages
        return [SendResult(first.delivery_id, Outcome.PERMANENT, reason="r" * 600, detail="d" * 10_000)] + [
            SendResult(m.delivery_id, Outcome.SENT, provider_message_id="p" * 600, detail="d" * 10_000) for m in rest
        ]

    faulty.answer = staticmethod(unbounded)

    run_id = send_to(2, marketer, everyone)

    failed, sent = Delivery.objects.filter(run_id=run_id).order_by("status")
    assert (failed.status, failed.reason, failed.detail) == (Delivery.Status.FAILED, "r" * 40, "d" * 500)
    assert (sent.status, sent.provider_message_id, sent.detail) == (Delivery.Status.SENT, "p" * 255, "d" * 500)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE
