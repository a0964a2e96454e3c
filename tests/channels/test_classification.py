"""The bounce and error classification table: one reading of a failure for the send path and for feedback."""

import pytest

from channels.adapters.base import Outcome
from channels.classification import classify, classify_status

P, T = Outcome.PERMANENT, Outcome.TRANSIENT


@pytest.mark.parametrize(
    ("reason", "outcome", "category", "suppress"),
    [
        # A recipient address that does not exist: never again.
        ("smtp_5.1.1", P, "bad_mailbox", True),
        ("smtp_5.1.2", P, "bad_mailbox", True),
        ("smtp_5.1.10", P, "bad_mailbox", True),
        # About our own sender address: the recipient is fine.
        ("smtp_5.1.7", P, "bad_sender_address", False),
        ("smtp_5.1.8", P, "bad_sender_address", False),
        # A policy block of the sending IP or the content says nothing about the recipient.
        ("smtp_5.7.1", P, "policy_block", False),
        ("smtp_5.7.26", P, "policy_block", False),
        ("smtp_5.2.1", P, "mailbox_disabled", False),
        ("smtp_5.3.4", P, "message_too_big", False),
        ("smtp_5.6.0", P, "content", False),
        # Over quota clears up: retried within the window even when the relay says 5.
        ("smtp_5.2.2", T, "mailbox_full", False),
        # Every 4.x.x is retried.
        ("smtp_4.2.2", T, "deferred", False),
        ("smtp_4.7.0", T, "deferred", False),
        ("smtp_4.4.1", T, "deferred", False),
        # Basic reply codes without an enhanced code: a bare 550 is not proof of a dead mailbox.
        ("smtp_550", P, "smtp_550", False),
        ("smtp_554", P, "smtp_554", False),
        ("smtp_552", T, "mailbox_full", False),
        ("smtp_451", T, "local_error", False),
        ("smtp_421", T, "service_unavailable", False),
        # Provider errors reported by the SMS and push adapters.
        ("invalid_address", P, "invalid_address", True),
        ("connect_failed", T, "connect_failed", False),
        ("connection_lost", T, "connection_lost", False),
        ("rate_limited", T, "rate_limited", False),
        ("http_429", T, "http_429", False),
        ("http_503", T, "http_503", False),
        ("http_400", P, "http_400", False),
        ("recipient_opted_out", P, "recipient_opted_out", False),
        ("rejected", P, "rejected", False),
        ("provider_error", T, "provider_error", False),
        ("auth_failed", T, "auth_failed", False),
        ("smtputf8_unsupported", P, "smtputf8_unsupported", False),
    ],
)
def test_failure_is_classified_by_its_code(reason, outcome, category, suppress):
    classification = classify(reason, Outcome.PERMANENT if outcome == P else Outcome.TRANSIENT)

    assert (classification.outcome, classification.category, classification.suppress) == (outcome, category, suppress)


def test_the_table_overrides_the_adapters_guess_where_it_knows_better():
    # An adapter that took a 5.2.2 for permanent has it retried; one that took a 5.1.1 for transient has it dropped.
    assert classify("smtp_5.2.2", Outcome.PERMANENT).outcome == Outcome.TRANSIENT
    assert classify("smtp_5.1.1", Outcome.TRANSIENT).outcome == Outcome.PERMANENT


def test_an_unknown_reason_keeps_the_adapters_outcome_and_suppresses_nothing():
    for outcome in (Outcome.PERMANENT, Outcome.TRANSIENT):
        classification = classify("provider_said_something_new", outcome)
        assert (classification.outcome, classification.suppress) == (outcome, False)


@pytest.mark.parametrize(
    "reason", ["connect_failed", "smtp_421", "rate_limited", "provider_error", "auth_failed", "http_429", "http_502"]
)
def test_provider_wide_failures_say_the_provider_is_unavailable(reason):
    assert classify(reason, Outcome.TRANSIENT).provider_unavailable


@pytest.mark.parametrize("reason", ["smtp_4.2.2", "smtp_5.1.1", "connection_lost", "invalid_address", "http_400"])
def test_one_recipients_failure_leaves_the_provider_available(reason):
    assert not classify(reason, Outcome.TRANSIENT).provider_unavailable


def test_dsn_status_fields_read_as_the_same_table():
    assert classify_status("5.1.1").suppress
    assert classify_status(" 5.7.1 ").category == "policy_block"
    assert classify_status("4.4.7").outcome == Outcome.TRANSIENT
    assert classify_status("2.0.0").outcome == Outcome.SENT
    assert classify_status("not a status") is None
