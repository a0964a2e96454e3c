"""Webhook: each message is POSTed as signed JSON to the organization's own URL.

The body is the message as the campaign rendered it plus ids; nothing else about the person is sent.
`X-Campaign-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` lets the receiver check both
origin and freshness (docs/channels.md has the verification recipe).
"""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

from channels.adapters.base import OutboundMessage
from channels.adapters.http import HttpAdapter, bounded, json_or_empty

SIGNATURE_HEADER = "X-Campaign-Signature"


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookAdapter(HttpAdapter):
    channel = "webhook"

    def __init__(self, configuration):
        super().__init__(configuration)
        self._secret = self.settings.signing_secret.get_secret_value().encode()

    def build_request(self, message: OutboundMessage) -> dict:
        now = time.time()
        payload = {
            "delivery_id": message.delivery_id,
            "campaign": message.campaign_id,
            "profile_id": int(message.to) if message.to.isdigit() else None,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "sent_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return {
            "method": "POST",
            "url": self.settings.url,
            "data": body,
            "headers": {
                "Content-Type": "application/json; charset=utf-8",
                SIGNATURE_HEADER: signature_header(self._secret, body, int(now)),
            },
        }

    def provider_id(self, message, response) -> str:
        # A receiver may name its own id for the message (a string or a number, nothing else of its answer is
        # kept); else the idempotency key identifies it.
        given = bounded(json_or_empty(response).get("id"), 255)
        return given or message.idempotency_key
