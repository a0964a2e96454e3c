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


# Every row of the table in docs/channels.md ("Failures"), with the outcome the adapter guessed set to the
# opposite of the answer, so that the table, not the adapter, is what decides. (outcome, category, suppressed,
# provider unavailable).
RETRIED, DROPPED, SUPPRESSED = (T, False), (P, False), (P, True)
DOCUMENTED_TABLE = [
    # 5.1.x: no such mailbox, no such domain, null MX: suppressed.
    ("smtp_5.1.1", SUPPRESSED, "bad_mailbox", False),
    ("smtp_5.1.2", SUPPRESSED, "bad_mailbox", False),
    ("smtp_5.1.3", SUPPRESSED, "bad_mailbox", False),
    ("smtp_5.1.6", SUPPRESSED, "bad_mailbox", False),
    ("smtp_5.1.10", SUPPRESSED, "bad_mailbox", False),
    # ... but 5.1.7 and 5.1.8 are about our sender: the message fails, the recipient stays.
    ("smtp_5.1.7", DROPPED, "bad_sender_address", False),
    ("smtp_5.1.8", DROPPED, "bad_sender_address", False),
    ("invalid_address", SUPPRESSED, "invalid_address", False),
    ("recipient_opted_out", DROPPED, "recipient_opted_out", False),
    # 5.7.x, every other 5.x.x, bare 5xx replies: the message fails, the address is kept.
    ("smtp_5.7.0", DROPPED, "policy_block", False),
    ("smtp_5.7.1", DROPPED, "policy_block", False),
    ("smtp_5.7.26", DROPPED, "policy_block", False),
    ("smtp_5.2.0", DROPPED, "mailbox_disabled", False),
    ("smtp_5.2.1", DROPPED, "mailbox_disabled", False),
    ("smtp_5.3.0", DROPPED, "mail_system", False),
    ("smtp_5.3.4", DROPPED, "message_too_big", False),
    ("smtp_5.4.4", DROPPED, "routing", False),
    ("smtp_5.5.1", DROPPED, "protocol", False),
    ("smtp_5.6.1", DROPPED, "content", False),
    ("smtp_5.0.0", DROPPED, "rejected", False),
    ("smtp_5.9.9", DROPPED, "rejected", False),
    ("smtp_500", DROPPED, "smtp_500", False),
    ("smtp_550", DROPPED, "smtp_550", False),
    ("smtp_551", DROPPED, "smtp_551", False),
    ("smtp_553", DROPPED, "smtp_553", False),
    ("smtp_554", DROPPED, "smtp_554", False),
    ("rejected", DROPPED, "rejected", False),
    ("forbidden_target", DROPPED, "forbidden_target", False),
    ("message_error", DROPPED, "message_error", False),
    ("smtputf8_unsupported", DROPPED, "smtputf8_unsupported", False),
    # Other HTTP 4xx: this request is wrong, retrying it changes nothing.
    ("http_400", DROPPED, "http_400", False),
    ("http_404", DROPPED, "http_404", False),
    ("http_410", DROPPED, "http_410", False),
    ("http_422", DROPPED, "http_422", False),
    ("http_428", DROPPED, "http_428", False),
    ("http_430", DROPPED, "http_430", False),
    # Mailbox full (5.2.2, 552), every 4.x.x, 421 and the 45x replies: retried, the address kept.
    ("smtp_5.2.2", RETRIED, "mailbox_full", False),
    ("smtp_552", RETRIED, "mailbox_full", False),
    ("smtp_4.0.0", RETRIED, "deferred", False),
    ("smtp_4.2.2", RETRIED, "deferred", False),
    ("smtp_4.3.2", RETRIED, "deferred", False),
    ("smtp_4.4.7", RETRIED, "deferred", False),
    ("smtp_4.7.1", RETRIED, "deferred", False),  # greylisting with an enhanced code
    ("smtp_450", RETRIED, "mailbox_busy", False),  # greylisting: "try again later"
    ("smtp_451", RETRIED, "local_error", False),
    ("smtp_452", RETRIED, "insufficient_storage", False),
    ("smtp_454", RETRIED, "smtp_454", False),  # TLS not available for now
    ("smtp_455", RETRIED, "smtp_455", False),
    ("smtp_421", RETRIED, "service_unavailable", True),
    ("connection_lost", RETRIED, "connection_lost", False),
    # The provider is unreachable or refusing everything for now: retried, and the job stops pulling slices.
    ("connect_failed", RETRIED, "connect_failed", True),
    ("timeout", RETRIED, "timeout", True),
    ("rate_limited", RETRIED, "rate_limited", True),
    ("provider_error", RETRIED, "provider_error", True),
    ("auth_failed", RETRIED, "auth_failed", True),
    ("http_429", RETRIED, "http_429", True),
    ("http_500", RETRIED, "http_500", True),
    ("http_502", RETRIED, "http_502", True),
    ("http_503", RETRIED, "http_503", True),
    ("http_504", RETRIED, "http_504", True),
    ("http_599", RETRIED, "http_599", True),
]


@pytest.mark.parametrize(("reason", "expected", "category", "provider_unavailable"), DOCUMENTED_TABLE)
def test_every_row_of_the_documented_table_decides_retry_and_suppression(
    reason, expected, category, provider_unavailable
):
    outcome, suppress = expected
    adapters_guess = P if outcome == T else T

    classification = classify(reason, adapters_guess)

    assert (classification.outcome, classification.suppress) == (outcome, suppress)
    assert classification.category == category
    assert classification.provider_unavailable is provider_unavailable


@pytest.mark.parametrize(
    ("status", "outcome", "category", "suppress"),
    [
        ("5.1.1", P, "bad_mailbox", True),
        ("5.1.7", P, "bad_sender_address", False),
        ("5.2.2", T, "mailbox_full", False),
        ("5.4.0", P, "routing", False),
        ("5.8.1", P, "rejected", False),
        ("4.2.2", T, "deferred", False),
        ("4.7.1", T, "deferred", False),
        ("2.0.0", Outcome.SENT, "delivered", False),
        ("2.1.5", Outcome.SENT, "delivered", False),
    ],
)
def test_a_bounce_reported_later_reads_as_the_same_row_as_the_reply_at_send_time(status, outcome, category, suppress):
    classification = classify_status(status)

    assert (classification.outcome, classification.category, classification.suppress) == (outcome, category, suppress)
    assert not classification.provider_unavailable


@pytest.mark.parametrize("status", ["", "5.1", "5.1.1.1", "3.1.1", "6.0.0", "5.a.1", "5.1.1 user unknown", "x5.1.1"])
def test_a_dsn_status_that_is_not_an_enhanced_code_is_not_read(status):
    assert classify_status(status) is None


@pytest.mark.parametrize(
    "reason", ["smtp_3.1.1", "smtp_5.1.1x", "smtp_5.1", "smtp_5500", "smtp_55", "smtp_650", "http_5031", "http_50"]
)
@pytest.mark.parametrize("outcome", [P, T])
def test_a_malformed_code_is_an_unknown_reason_and_keeps_the_adapters_outcome(reason, outcome):
    classification = classify(reason, outcome)

    assert (classification.outcome, classification.category) == (outcome, reason)
    assert not classification.suppress and not classification.provider_unavailable


def test_a_failure_without_a_reason_is_named_by_its_outcome():
    assert classify("", T).category == "transient"
    assert classify("", P).category == "permanent"
