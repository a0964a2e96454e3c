"""Provider feedback turned into neutral events: what happened to a message after it left.

Three ways in, one event type out:

- the signed webhook of a configuration: a JSON list of events posted by a provider or a bridge
  (`parse_webhook_events`);
- delivery status notifications (RFC 3464 DSNs) and complaint reports (RFC 5965 ARF), posted raw to the
  configuration's DSN endpoint or read from a mailbox by `manage.py ingest_bounces` (`parse_report`);
- both name the delivery by its id (the VERP envelope sender, `bounce+<id>@…`) or by the provider's
  message id (our Message-ID for email).

The channels app only parses and checks signatures. Applying events to the ledger belongs to the campaigns
app, which receives them through the `feedback_received` signal (channels may not import campaigns).
"""

import enum
import hashlib
import hmac
import mailbox
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.dispatch import Signal
from django.views.decorators.debug import sensitive_variables
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from channels.adapters.email import delivery_id_from_verp
from channels.classification import Classification, classify_status
from config import untrusted

# Sent with `events` (a list of FeedbackEvent). The campaigns app's receiver applies them to the ledger and
# returns a dict of counts ({"applied": n, "unchanged": n, "unmatched": n}).
feedback_received = Signal()

SIGNATURE_HEADER = "X-Campaign-Signature"
SIGNATURE_TOLERANCE = 300  # seconds between the signature's timestamp and our clock
MAX_EVENTS = 1000  # per post
# Multipart and message parts in one report: a DSN has three or four; Python's parser recurses per level.
MAX_MIME_CONTAINERS = 50
_MIME_CONTAINER = re.compile(rb"^content-type:\s*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE)


class EventType(enum.StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    OPENED = "opened"
    CLICKED = "clicked"


@dataclass(frozen=True, slots=True)
class FeedbackEvent:
    """One thing a provider reported about one message, named by delivery id or provider message id."""

    type: EventType
    # The configuration whose endpoint or mailbox received it; None from a mailbox shared by several, when
    # only the delivery id can name the message.
    configuration_id: int | None
    delivery_id: int | None = None
    provider_message_id: str = ""
    occurred_at: datetime | None = None
    detail: str = ""
    # For bounces: the enhanced status code ("5.1.1") when the report gave one.
    status: str = ""

    @property
    def bounce(self) -> Classification | None:
        """How a bounce reads in the classification table; a bounce without a status code is taken as a
        hard bounce (providers report soft ones as deferrals, not bounces)."""
        if self.type != EventType.BOUNCED:
            return None
        return classify_status(self.status) if self.status else classify_status("5.1.1")


class FeedbackError(ValueError):
    """A post that is not what the endpoint takes; the message says what is wrong."""


# Signatures -----------------------------------------------------------------------------------------------


# `t=<unix seconds>,v1=<64 hex digits>`, nothing else: a timestamp of at most 12 digits never overflows the
# clock arithmetic, and anything malformed is refused before the secret is used at all.
_SIGNATURE = re.compile(r"t=(?P<t>[0-9]{1,12}),v1=(?P<v1>[0-9a-f]{64})")


@sensitive_variables("secret")
def feedback_signature(secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as the webhook adapter signs its posts."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@sensitive_variables("secret", "expected")
def signature_valid(secret: str, body: bytes, header: str, *, now: float | None = None) -> bool:
    """Whether `header` signs `body` with `secret` within SIGNATURE_TOLERANCE seconds of now. An empty
    secret, and a header not of the exact form `t=<digits>,v1=<hex>`, accept nothing."""
    if not secret or not header:
        return False
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    timestamp = int(match["t"])
    now = time.time() if now is None else now
    if abs(now - timestamp) > SIGNATURE_TOLERANCE:
        return False
    expected = feedback_signature(secret, body, timestamp).partition(",v1=")[2]
    return hmac.compare_digest(expected.encode(), match["v1"].encode())


# The webhook's JSON ----------------------------------------------------------------------------------------


class _EventIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    type: EventType
    delivery_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    provider_message_id: str = Field(default="", max_length=255)
    occurred_at: AwareDatetime | None = None
    detail: str = Field(default="", max_length=2000)
    status: str = Field(default="", pattern=r"^([245]\.\d{1,3}\.\d{1,3})?$")

    @model_validator(mode="after")
    def _named(self):
        if self.delivery_id is None and not self.provider_message_id:
            raise ValueError("name the message: delivery_id or provider_message_id")
        return self


_EVENTS = TypeAdapter(list[_EventIn])


def parse_webhook_events(body: bytes, *, configuration_id: int) -> list[FeedbackEvent]:
    """The events of a webhook post: a JSON list of {type, delivery_id or provider_message_id, occurred_at,
    detail, status}. Raises FeedbackError naming the first problem."""
    try:
        data = untrusted.loads(body)
    except untrusted.UntrustedInputError as error:
        raise FeedbackError(f"The body {error.problem}." if not error.where else str(error)) from None
    if not isinstance(data, list):
        raise FeedbackError("The body must be a JSON list of events.")
    if len(data) > MAX_EVENTS:
        raise FeedbackError(f"At most {MAX_EVENTS} events per post.")
    try:
        events = _EVENTS.validate_python(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise FeedbackError(f"{where}: {error['msg']}") from None
    return [
        FeedbackEvent(
            type=event.type,
            configuration_id=configuration_id,
            delivery_id=event.delivery_id,
            provider_message_id=event.provider_message_id,
            occurred_at=event.occurred_at,
            detail=event.detail[:500],
            status=event.status,
        )
        for event in events
    ]


# Reports by mail: DSNs (RFC 3464) and complaints (RFC 5965) -----------------------------------------------

# Where the receiving side puts the envelope recipient of the report, i.e. our VERP bounce address.
_RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")
_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})")


def parse_report(raw: bytes, *, configuration_id: int | None = None) -> list[FeedbackEvent]:
    """The events in one report message: a bounce (or a delivery) per recipient block of a DSN, a complaint
    for an ARF report. Delayed and relayed notices give no event. Raises FeedbackError when the message is
    neither. `configuration_id` None (a shared bounce mailbox) leaves matching to the delivery id."""
    if len(_MIME_CONTAINER.findall(raw)) > MAX_MIME_CONTAINERS:
        raise FeedbackError(f"Too deeply nested: more than {MAX_MIME_CONTAINERS} multipart or message parts.")
    try:
        return _parse_report(raw, configuration_id)
    except RecursionError:  # nesting the count above did not see (folded or odd headers)
        raise FeedbackError("Too deeply nested: the MIME structure exceeds what can be parsed.") from None


def _parse_report(raw: bytes, configuration_id: int | None) -> list[FeedbackEvent]:
    message = message_from_bytes(raw, policy=policy.compat32)
    if message.get_content_type() != "multipart/report":
        raise FeedbackError("Not a report: expected a multipart/report message (RFC 3464 DSN or RFC 5965 ARF).")
    delivery_id = _verp_delivery_id(message)
    original = _original_headers(message)
    provider_message_id = _header(original, "Message-ID")[:255] if original is not None else ""
    if delivery_id is None and original is not None:
        delivery_id = _verp_delivery_id(original, headers=("Return-Path",))
    if delivery_id is None and not provider_message_id:
        raise FeedbackError("The report names no message: no VERP recipient and no original Message-ID.")
    named = {
        "configuration_id": configuration_id,
        "delivery_id": delivery_id,
        "provider_message_id": provider_message_id,
    }
    report_type = message.get_param("report-type", "").lower()
    if report_type == "feedback-report":
        occurred_at = _date(_header(message, "Date"))
        return [FeedbackEvent(type=EventType.COMPLAINED, occurred_at=occurred_at, detail="complaint report", **named)]
    if report_type != "delivery-status":
        raise FeedbackError(f"Unknown report type {report_type!r}.")
    return [event for block in _recipient_blocks(message) if (event := _dsn_event(block, named)) is not None]


def _dsn_event(block: Message, named: dict) -> FeedbackEvent | None:
    action = _header(block, "Action").lower()
    status_match = _STATUS.match(_header(block, "Status"))
    status = status_match.group(1) if status_match else ""
    detail = " ".join(_header(block, "Diagnostic-Code").split())[:500]
    occurred_at = _date(_header(block, "Last-Attempt-Date"))
    if action == "failed":
        return FeedbackEvent(
            type=EventType.BOUNCED, occurred_at=occurred_at, detail=detail, status=status or "5.0.0", **named
        )
    if action == "delivered":
        return FeedbackEvent(type=EventType.DELIVERED, occurred_at=occurred_at, detail=detail, **named)
    return None  # delayed (the relay keeps trying), relayed, expanded


def _recipient_blocks(message: Message) -> list[Message]:
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            blocks = part.get_payload()
            if isinstance(blocks, list):
                return blocks[1:]  # the first block is about the message, the others one per recipient
            # Some MTAs send the part base64-encoded; parse its fields by hand then.
            text = part.get_payload(decode=True) or b""
            return [message_from_bytes(chunk) for chunk in re.split(rb"\r?\n\r?\n", text.strip())[1:] if chunk]
    raise FeedbackError("A delivery-status report without a message/delivery-status part.")


def _original_headers(message: Message) -> Message | None:
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            return payload[0] if isinstance(payload, list) and payload else None
        if content_type == "text/rfc822-headers":
            return message_from_bytes(part.get_payload(decode=True) or b"")
    return None


def _header(message: Message, name: str) -> str:
    """A header as storable text: with 8-bit bytes Python's parser gives a Header object (and undecodable
    bytes as lone surrogates), and a report may carry NULs; neither may reach the ledger."""
    value = message.get(name)
    return "" if value is None else untrusted.storable(str(value), 2000).strip()


def _verp_delivery_id(message: Message, headers=_RECIPIENT_HEADERS) -> int | None:
    for name in headers:
        for value in message.get_all(name) or []:
            for address in str(value).split(","):
                if (delivery_id := delivery_id_from_verp(address.strip())) is not None:
                    return delivery_id
    return None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else None


def mailbox_messages(*, mbox: str | None = None, maildir: str | None = None) -> Iterator[tuple[str, bytes]]:
    """(key, raw bytes) of each message in an mbox file or a Maildir, for `ingest_bounces`."""
    if mbox:
        if not Path(mbox).is_file():
            raise FileNotFoundError(mbox)
        box = mailbox.mbox(mbox, create=False)
    else:
        if not Path(maildir, "cur").is_dir():
            raise FileNotFoundError(maildir)
        box = mailbox.Maildir(maildir, factory=None, create=False)
    try:
        for key in box.keys():
            yield str(key), box.get_bytes(key)
    finally:
        box.close()


def feedback_deliver(events: list[FeedbackEvent]) -> dict[str, int]:
    """Hand events to the app that applies them (campaigns.services.feedback); returns its counts."""
    counts = {"applied": 0, "unchanged": 0, "unmatched": 0}
    if not events:
        return counts
    for _receiver, result in feedback_received.send(sender=FeedbackEvent, events=events):
        for name, value in (result or {}).items():
            counts[name] = counts.get(name, 0) + value
    return counts
