"""What the adapters that talk HTTP to a provider share: one pooled session, requests in flight, outcomes.

Sending is bound by round trips, so a slice's requests go out concurrently, `connections` at a time, over one
`requests.Session` whose connection pool has as many connections (kept alive across slices and jobs).

How a failure without a response is classified, since requests cannot always tell whether the request left:

- refused, unreachable, DNS failure, connect timeout, TLS handshake failure: nothing reached the provider, so
  TRANSIENT (`connect_failed`);
- anything after the connection was made (read timeout, reset or closed before the answer, a broken answer):
  the provider may have the message, so INDETERMINATE (`timeout` or `connection_lost`). Transactional retries
  carry the same idempotency key, so a provider that honours it drops the repeat.
"""

import email.utils
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NameResolutionError, NewConnectionError

from channels.adapters.base import Adapter, OutboundMessage, Outcome, Reason, SendResult

CONNECT_TIMEOUT = 5.0
USER_AGENT = "campaign-manager/1"
_DETAIL = 500


class HttpAdapter(Adapter):
    """Subclasses build one request per message and read the provider's answers."""

    def __init__(self, configuration):
        super().__init__(configuration)
        size = self.settings.connections
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # pool_block: never open more connections than `connections`, whatever the thread count.
        pool = HTTPAdapter(pool_connections=2, pool_maxsize=size, max_retries=0, pool_block=True)
        self.session.mount("http://", pool)
        self.session.mount("https://", pool)
        self.timeout = (min(CONNECT_TIMEOUT, self.settings.timeout_seconds), self.settings.timeout_seconds)
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"{self.channel}{configuration.pk}")
        self._closed = False

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        if not messages:
            return []
        refused = self.before_slice(messages)
        if refused is not None:
            return refused
        return list(self._pool.map(self._send_one, messages))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True)
            self.session.close()

    # Hooks ------------------------------------------------------------------------------------------------

    def before_slice(self, messages: list[OutboundMessage]) -> list[SendResult] | None:
        """Work done once per slice before the requests go out (an access token); results to end early."""
        return None

    def build_request(self, message: OutboundMessage) -> dict | SendResult:
        """Keyword arguments for `Session.request`, or a result when the message cannot be sent at all."""
        raise NotImplementedError

    def provider_id(self, message: OutboundMessage, response: requests.Response) -> str:
        return message.idempotency_key

    def classify_error(self, message: OutboundMessage, response: requests.Response) -> SendResult | None:
        """A result for a provider's error answer that the shared rules would get wrong, else None."""
        return None

    # The shared rules -------------------------------------------------------------------------------------

    def _send_one(self, message: OutboundMessage) -> SendResult:
        request = self.build_request(message)
        if isinstance(request, SendResult):
            return request
        headers = {"Idempotency-Key": message.idempotency_key, **request.pop("headers", {})}
        try:
            response = self.session.request(headers=headers, timeout=self.timeout, **request)
        except requests.RequestException as exc:
            return self.result_for_exception(message, exc)
        return self.result_for_response(message, response)

    def result_for_response(self, message: OutboundMessage, response: requests.Response) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:
            provider_id = self.provider_id(message, response)
            return SendResult(message.delivery_id, Outcome.SENT, provider_message_id=provider_id)
        specific = self.classify_error(message, response)
        if specific is not None:
            return specific
        detail = f"{status} {response.text}"[:_DETAIL]
        if status == 429:
            return SendResult(
                message.delivery_id,
                Outcome.TRANSIENT,
                reason=Reason.RATE_LIMITED,
                detail=detail,
                retry_after=retry_after_seconds(response),
            )
        if status >= 500 or status == 408:
            return SendResult(
                message.delivery_id,
                Outcome.TRANSIENT,
                reason=Reason.PROVIDER_ERROR,
                detail=detail,
                retry_after=retry_after_seconds(response),
            )
        if status in (401, 403):
            return SendResult(message.delivery_id, Outcome.TRANSIENT, reason=Reason.AUTH_FAILED, detail=detail)
        return SendResult(message.delivery_id, Outcome.PERMANENT, reason=f"http_{status}", detail=detail)

    def result_for_exception(self, message: OutboundMessage, exc: requests.RequestException) -> SendResult:
        detail = f"{type(exc).__name__}: {exc}"[:_DETAIL]
        if nothing_was_sent(exc):
            return SendResult(message.delivery_id, Outcome.TRANSIENT, reason=Reason.CONNECT_FAILED, detail=detail)
        if isinstance(exc, requests.Timeout):
            return SendResult(message.delivery_id, Outcome.INDETERMINATE, reason=Reason.TIMEOUT, detail=detail)
        return SendResult(message.delivery_id, Outcome.INDETERMINATE, reason=Reason.CONNECTION_LOST, detail=detail)


def nothing_was_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the provider (the connection was never made)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return True
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return True
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else None
        if isinstance(cause, MaxRetryError):
            cause = cause.reason
        return isinstance(cause, NewConnectionError | ConnectTimeoutError | NameResolutionError)
    return False


def retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header as seconds from now (it may be seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def json_or_empty(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
