"""What a failure means: retry it, give up, and whether the address goes on the suppression list.

One table for every source of failure: an SMTP reply at send time (`smtp_5.1.1`, `smtp_550`), a provider's
error reported by an adapter (channels.adapters.base.Reason, `http_503`), and the Status field of a delivery
status notification (DSN, RFC 3464) that arrives later. The send path and the feedback path both ask it, so a
dead mailbox is treated alike whether the relay refused it at RCPT or bounced it an hour later.

Enhanced status codes (RFC 3463) are `class.subject.detail`: class 2 success, 4 persistent transient, 5
permanent. The subject says what failed: 1 the address, 2 the mailbox, 3 the mail system, 4 network and
routing, 5 the protocol, 6 the content, 7 security and policy.
"""

import re
from dataclasses import dataclass

from channels.adapters.base import Outcome, Reason

SMTP_REASON = re.compile(r"^smtp_(?:(?P<enhanced>[245]\.\d{1,3}\.\d{1,3})|(?P<basic>[245]\d\d))$")
_HTTP_REASON = re.compile(r"^http_(?P<status>\d{3})$")
_ENHANCED = re.compile(r"^(?P<klass>[245])\.(?P<subject>\d{1,3})\.(?P<detail>\d{1,3})$")


@dataclass(frozen=True, slots=True)
class Classification:
    outcome: Outcome
    # A short name for reports and the ledger's detail: bad_mailbox, policy_block, mailbox_full, ...
    category: str
    # The address must not be messaged again: suppress it (email, SMS) or retire it (a push token).
    suppress: bool = False
    # The provider or relay is unreachable or refusing all traffic for now, not this one message: the send
    # job stops pulling slices of the run instead of failing every message in turn.
    provider_unavailable: bool = False


def _permanent(category: str, *, suppress: bool = False) -> Classification:
    return Classification(Outcome.PERMANENT, category, suppress=suppress)


def _transient(category: str, *, provider_unavailable: bool = False) -> Classification:
    return Classification(Outcome.TRANSIENT, category, provider_unavailable=provider_unavailable)


# Class 5 codes by (subject, detail), then by subject alone. Only a recipient address that does
# not exist is suppressed: 5.1.7 and 5.1.8 are about *our* sender address, and a policy block (5.7.x) of
# the sending IP or of our content says nothing about the recipient, so those fail without suppression.
_CLASS5_DETAIL = {
    (1, 7): _permanent("bad_sender_address"),
    (1, 8): _permanent("bad_sender_address"),
    (2, 2): _transient("mailbox_full"),  # "over quota" clears when the owner tidies up: retried in the window
    (3, 4): _permanent("message_too_big"),
}
_CLASS5_SUBJECT = {
    1: _permanent("bad_mailbox", suppress=True),  # 5.1.1 no such user, 5.1.2 no such domain, 5.1.10 null MX
    2: _permanent("mailbox_disabled"),
    3: _permanent("mail_system"),
    4: _permanent("routing"),
    5: _permanent("protocol"),
    6: _permanent("content"),
    7: _permanent("policy_block"),
}
# Basic SMTP reply codes, for relays that send no enhanced code. A bare 550 is used for dead mailboxes and
# for blocks alike, so without an enhanced code nothing is suppressed.
_BASIC = {
    421: _transient("service_unavailable", provider_unavailable=True),
    450: _transient("mailbox_busy"),
    451: _transient("local_error"),
    452: _transient("insufficient_storage"),
    552: _transient("mailbox_full"),
}
# The shared reasons of channels.adapters.base.Reason, and the email adapter's own.
_ADAPTER_REASONS = {
    Reason.INVALID_ADDRESS: _permanent("invalid_address", suppress=True),  # an SMS number or a push token
    # The provider keeps the person's STOP: the send path records it as their consent, not as a suppression.
    Reason.RECIPIENT_OPTED_OUT: _permanent("recipient_opted_out"),
    Reason.REJECTED: _permanent("rejected"),
    Reason.MESSAGE_ERROR: _permanent("message_error"),  # this message could not be built; the address is fine
    # The configuration points at a network outbound requests may not reach: nothing to do with the recipient.
    Reason.FORBIDDEN_TARGET: _permanent("forbidden_target"),
    Reason.RATE_LIMITED: _transient("rate_limited", provider_unavailable=True),
    Reason.PROVIDER_ERROR: _transient("provider_error", provider_unavailable=True),
    Reason.AUTH_FAILED: _transient("auth_failed", provider_unavailable=True),  # retried while someone fixes it
    Reason.CONNECT_FAILED: _transient("connect_failed", provider_unavailable=True),
    Reason.TIMEOUT: _transient("timeout", provider_unavailable=True),
    Reason.CONNECTION_LOST: _transient("connection_lost"),  # one broken connection; the next one may do
    "smtputf8_unsupported": _permanent("smtputf8_unsupported"),
}


def classify_status(status: str) -> Classification | None:
    """The classification of an enhanced status code (`5.1.1`), or None when it is not one."""
    match = _ENHANCED.match(status.strip())
    if not match:
        return None
    klass, subject, detail = (int(match.group(name)) for name in ("klass", "subject", "detail"))
    if klass == 2:
        return Classification(Outcome.SENT, "delivered")
    if klass == 4:
        # 4.4.x: the destination could not be reached; 4.3.2 system not accepting messages.
        return _transient("deferred")
    return _CLASS5_DETAIL.get((subject, detail)) or _CLASS5_SUBJECT.get(subject) or _permanent("rejected")


def classify(reason: str, outcome: Outcome) -> Classification:
    """How the send path treats a failed message, from the adapter's reason and outcome.

    The adapter's outcome stands when the table knows nothing better: a reason it cannot read (an adapter's
    own words) keeps its outcome and suppresses nothing.
    """
    if known := _ADAPTER_REASONS.get(reason):
        return known
    if match := SMTP_REASON.match(reason):
        if match.group("enhanced"):
            return classify_status(match.group("enhanced"))
        code = int(match.group("basic"))
        if code in _BASIC:
            return _BASIC[code]
        return _transient(f"smtp_{code}") if code < 500 else _permanent(f"smtp_{code}")
    if match := _HTTP_REASON.match(reason):
        status = int(match.group("status"))
        if status == 429 or status >= 500:
            return _transient(reason, provider_unavailable=True)
        return _permanent(reason)
    return Classification(outcome, reason or outcome.value)
