"""The interface every channel adapter implements.

An adapter is opened for one configuration, sends slices of rendered messages and returns one result per
message, then is closed. Adapters are kept open between jobs by long-lived workers (see `registry`).
"""

import enum
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"  # not delivered, worth retrying later
    PERMANENT = "permanent"  # not delivered, never will be
    INDETERMINATE = "indeterminate"  # the data went out but no answer came back: maybe delivered


@dataclass(slots=True)
class OutboundMessage:
    delivery_id: int
    to: str
    subject: str = ""
    html: str = ""
    text: str = ""
    marketing: bool = True
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SendResult:
    delivery_id: int
    outcome: Outcome
    provider_message_id: str = ""
    reason: str = ""
    detail: str = ""


class Adapter:
    channel: str = ""

    def __init__(self, configuration):
        self.configuration_id = configuration.pk
        self.settings = configuration.get_settings()

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections. Safe to call twice."""
