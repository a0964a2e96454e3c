"""The interface every channel adapter implements.

An adapter is opened for one configuration, sends slices of rendered messages and returns one result per
message, then is closed. Adapters are kept open between jobs by long-lived workers (see `registry`). The send path
hands messages over through a stream (`Adapter.stream`): a few at a time, each result taken as the provider answers,
so the ledger records outcomes while the rest are at the provider.
"""

import collections
import enum
from dataclasses import dataclass, field

from config import untrusted


class Outcome(enum.StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"  # not delivered, worth retrying later
    PERMANENT = "permanent"  # not delivered, never will be
    INDETERMINATE = "indeterminate"  # the data went out but no answer came back: maybe delivered


class Reason(enum.StrEnum):
    """Reason codes shared by adapters. Provider-specific ones look like "smtp_5.1.1", "twilio_21610", "http_404"."""

    INVALID_ADDRESS = "invalid_address"  # PERMANENT: no such number / push token: retire or suppress the address
    RECIPIENT_OPTED_OUT = "recipient_opted_out"  # PERMANENT: the provider holds an opt-out (SMS STOP)
    RATE_LIMITED = "rate_limited"  # TRANSIENT, with retry_after when the provider said how long
    PROVIDER_ERROR = "provider_error"  # TRANSIENT: 5xx
    AUTH_FAILED = "auth_failed"  # TRANSIENT: credentials refused; retried within the window while someone fixes them
    CONNECT_FAILED = "connect_failed"  # TRANSIENT: nothing reached the provider
    CONNECTION_LOST = "connection_lost"  # TRANSIENT before the data went out, INDETERMINATE after
    TIMEOUT = "timeout"  # INDETERMINATE: the request went out and no answer came in time
    REJECTED = "rejected"  # PERMANENT: the provider refused the message itself (4xx without a known code)
    # PERMANENT: this one message could not be built or handed over (content or an address nothing can encode);
    # nothing of it left, and the rest of the slice goes on
    MESSAGE_ERROR = "message_error"
    # PERMANENT: the provider's URL is, or resolves to, a loopback, private, link-local or other address that is
    # not public, refused unless CHANNELS_ALLOW_PRIVATE_NETWORKS is on (channels.adapters.http)
    FORBIDDEN_TARGET = "forbidden_target"


@dataclass(slots=True)
class OutboundMessage:
    delivery_id: int
    to: str  # the delivery's address: email, E.164 number, push token, or the profile id (webhook, in-app)
    subject: str = ""
    html: str = ""
    text: str = ""
    marketing: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    unsubscribe_url: str = ""  # one-click unsubscribe for this recipient and channel; "" for none
    campaign_id: int | None = None

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt at this delivery, so a provider can drop a repeat."""
        return f"delivery-{self.delivery_id}"


@dataclass(slots=True)
class SendResult:
    delivery_id: int
    outcome: Outcome
    provider_message_id: str = ""
    reason: str = ""  # a short code (max 40 characters): "invalid_address", "rate_limited", "smtp_5.1.1", ...
    detail: str = ""
    retry_after: float | None = None  # seconds the provider asked us to wait (429 / Retry-After)


class Adapter:
    channel: str = ""

    def __init__(self, configuration):
        self.configuration_id = configuration.pk
        self.settings = configuration.get_settings()

    @property
    def in_flight(self) -> int:
        """How many messages this adapter keeps at the provider at once (its connections or requests in flight)."""
        return getattr(self.settings, "connections", 1)

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        raise NotImplementedError

    def stream(self) -> "Stream":
        """A session that takes messages as they are handed over and gives their results back as they come."""
        return Stream(self)

    def close(self) -> None:
        """Release connections. Safe to call twice."""


class Stream:
    """Messages in, results out, in the order the provider answers. This one sends each batch put, whole, when its
    results are taken (`Adapter.send`); an adapter that can do better (the email adapter's connections each take
    the next message as they are free) returns its own. Used as a context manager: leaving it waits for nothing
    more, so take every result of what was put first."""

    def __init__(self, adapter: Adapter):
        self.adapter = adapter
        self._batches: collections.deque[list[OutboundMessage]] = collections.deque()

    def put(self, messages: list[OutboundMessage]) -> None:
        self._batches.append(messages)

    def take(self) -> list[SendResult]:
        """At least one result of what was put and not taken yet (blocks until one comes), with every other ready."""
        return self.adapter.send(self._batches.popleft())

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def message_error(message: OutboundMessage, exc: BaseException | None) -> SendResult:
    """The result for one message that could not be built or handed over: it fails alone, for good."""
    detail = untrusted.storable(f"{type(exc).__name__}: {exc}", 500)
    return SendResult(message.delivery_id, Outcome.PERMANENT, reason=Reason.MESSAGE_ERROR, detail=detail)
