"""What the adapters that talk HTTP to a provider share: one pooled session, requests in flight, outcomes.

Sending is bound by round trips, so a slice's requests go out concurrently, `connections` at a time, over one
`requests.Session` whose connection pool has as many connections (kept alive across slices and jobs).

How a failure without a response is classified, since requests cannot always tell whether the request left:

- refused, unreachable, DNS failure, connect timeout, TLS handshake failure: nothing reached the provider, so
  TRANSIENT (`connect_failed`);
- anything after the connection was made (read timeout, reset or closed before the answer, a broken answer):
  the provider may have the message, so INDETERMINATE (`timeout` or `connection_lost`). Transactional retries
  carry the same idempotency key, so a provider that honours it drops the repeat.

Every URL here is typed by an administrator, so a request could be pointed at the machine itself or its
network (a metadata service, an admin port). Connections therefore resolve the host themselves and refuse any
address that is not public (`address_refusal`) unless CHANNELS_ALLOW_PRIVATE_NETWORKS is on, then connect to
the address they vetted: a name that resolves to a public address when saved and to 127.0.0.1 when used is
refused too, and so is a redirect to such an address. No proxy is used, so none can reach the target for us.
A refused target fails the message for good (`forbidden_target`). What a provider answers is never copied into
a result's detail: the status and a classified reason are, and the adapters may add a short code or message
read from a known field of the provider's error format.
"""

import email.utils
import http
import ipaddress
import re
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

from channels.adapters.base import Adapter, OutboundMessage, Outcome, Reason, SendResult, message_error
from config import untrusted

CONNECT_TIMEOUT = 5.0
USER_AGENT = "campaign-manager/1"
_DETAIL = 500
ALLOW_SETTING = "CHANNELS_ALLOW_PRIVATE_NETWORKS"
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address translated (RFC 6052)
# The legacy IPv4 spellings the resolver accepts (127.1, 0x7f.0.0.1, 2130706433): literal addresses as well.
_IPV4_LEGACY = re.compile(r"^\d[0-9a-fx]*(\.\d[0-9a-fx]*){0,3}$", re.IGNORECASE)


class HttpAdapter(Adapter):
    """Subclasses build one request per message and read the provider's answers."""

    def __init__(self, configuration):
        super().__init__(configuration)
        size = self.settings.connections
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # No proxy, netrc or CA bundle from the environment: a proxy would reach the target unchecked.
        self.session.trust_env = False
        # pool_block: never open more connections than `connections`, whatever the thread count.
        pool = VettedHTTPAdapter(pool_connections=2, pool_maxsize=size, max_retries=0, pool_block=True)
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
        # One message that cannot be built, encoded or read back fails alone; the slice's others go on.
        try:
            request = self.build_request(message)
        except Exception as exc:  # noqa: BLE001
            return message_error(message, exc)
        if isinstance(request, SendResult):
            return request
        headers = {"Idempotency-Key": message.idempotency_key, **request.pop("headers", {})}
        try:
            prepared = self.session.prepare_request(requests.Request(headers=headers, **request))
        except Exception as exc:  # noqa: BLE001 - a header or URL that cannot be encoded: nothing left
            return message_error(message, exc)
        try:
            # Through the transport itself: no redirect is followed (the first hop already has the message and
            # its signature), nor even read (Session.send parses a Location it will not follow).
            response = self.session.get_adapter(prepared.url).send(prepared, timeout=self.timeout)
            response.content  # noqa: B018 - read whole, which hands the connection back to the pool
        except requests.RequestException as exc:
            return self.result_for_exception(message, exc)
        except Exception as exc:  # noqa: BLE001 - failed while the answer was read: the provider may have it
            return _unreadable(message, type(exc).__name__)
        try:
            return self.result_for_response(message, response)
        except Exception as exc:  # noqa: BLE001 - an answer we cannot read: the provider may have the message
            return _unreadable(message, f"HTTP {response.status_code}, {type(exc).__name__}")

    def result_for_response(self, message: OutboundMessage, response: requests.Response) -> SendResult:
        status = response.status_code
        if 200 <= status < 300:
            provider_id = self.provider_id(message, response)
            return SendResult(message.delivery_id, Outcome.SENT, provider_message_id=provider_id)
        specific = self.classify_error(message, response)
        if specific is not None:
            return specific
        # The status alone: the answer's body may be anything the target holds, and details reach pages.
        detail = status_text(status)
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
        refused = forbidden_target(exc)
        if refused is not None:
            return SendResult(
                message.delivery_id,
                Outcome.PERMANENT,
                reason=Reason.FORBIDDEN_TARGET,
                detail=refused.describe(self.channel),
            )
        if nothing_was_sent(exc):
            detail = f"{type(exc).__name__}: {exc}"[:_DETAIL]
            return SendResult(message.delivery_id, Outcome.TRANSIENT, reason=Reason.CONNECT_FAILED, detail=detail)
        # Once connected, an error's text may quote the answer (a broken chunk's first line): its type only.
        if isinstance(exc, requests.Timeout):
            detail = f"{type(exc).__name__}: no answer within {self.timeout[1]:g} s"
            return SendResult(message.delivery_id, Outcome.INDETERMINATE, reason=Reason.TIMEOUT, detail=detail)
        detail = f"{type(exc).__name__}: the connection broke before the whole answer came"
        return SendResult(message.delivery_id, Outcome.INDETERMINATE, reason=Reason.CONNECTION_LOST, detail=detail)


def _unreadable(message: OutboundMessage, what: str) -> SendResult:
    detail = f"the answer could not be read ({what})"
    return SendResult(message.delivery_id, Outcome.INDETERMINATE, reason="unreadable_answer", detail=detail)


def status_text(status: int) -> str:
    """`HTTP 422 Unprocessable Content`: the status and its standard phrase (not the one the answer gave)."""
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def bounded(value, limit: int = 200) -> str:
    """A field read from a provider's error answer, as text of at most `limit` characters ("" if not text)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = untrusted.storable(" ".join(str(value)[: limit * 4].split()), limit * 4)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


# Outbound connections ------------------------------------------------------------------------------------


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """What puts `address` off limits for outbound requests ("a loopback address"), or None for a public one.

    An IPv6 spelling of an IPv4 address (mapped `::ffff:127.0.0.1`, NAT64 `64:ff9b::7f00:1`) is judged as
    that IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.version == 6 and address.is_site_local:  # fec0::/10, deprecated but still routed in some networks
        return "a site-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL's host spells out (brackets, zone, legacy IPv4 forms allowed), or None for a name."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _IPV4_LEGACY.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def host_refusal(host: str) -> str | None:
    """Why a URL's host is refused before any name is looked up: `localhost` or a literal address that is not
    public ("127.0.0.1, a loopback address"), else None. Other names are checked when connecting."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host}, a loopback address"
    address = literal_address(host)
    if address is None:
        return None
    refusal = address_refusal(address)
    return f"{address}, {refusal}" if refusal else None


def private_networks_allowed() -> bool:
    return bool(getattr(settings, ALLOW_SETTING, False))


class ForbiddenTarget(NewConnectionError):
    """The host is, or resolves to, an address outbound requests may not reach; nothing was sent."""

    def __init__(self, conn, message: str, *, host: str = "", address: str = "", refusal: str = ""):
        super().__init__(conn, message)
        self.host, self.address, self.refusal = host, address, refusal

    def describe(self, channel: str) -> str:
        """The detail of the failed message: which target, what its address is, and the setting to change."""
        target = self.host if self.host == self.address else f"{self.host} ({self.address})"
        return f"refused: {channel} target {target} is {self.refusal} (set {ALLOW_SETTING}=1 to allow)"[:_DETAIL]


def forbidden_target(exc: BaseException) -> ForbiddenTarget | None:
    """The refusal behind a failed request (requests wraps urllib3's errors, which wrap ours), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ForbiddenTarget):
            return exc
        if isinstance(exc, MaxRetryError):
            exc = exc.reason
        elif exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]
        else:
            exc = exc.__cause__ or exc.__context__
    return None


def vetted_connection(conn, host: str, port: int) -> socket.socket:
    """A socket connected to an address of `host` that outbound requests may reach.

    urllib3's `create_connection`, except that every address the name resolves to is checked first, and the
    socket connects to the checked address, so no second lookup can answer differently. A name with any address
    that is not public is refused whole. Raises ForbiddenTarget, socket.gaierror or OSError.
    """
    host = host.strip("[]")
    checked = not private_networks_allowed()
    literal = literal_address(host)
    if checked and literal is not None:
        _refuse(conn, host, literal)  # before any lookup, whatever families this machine resolves
    resolved = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    if checked:
        for *_, sockaddr in resolved:
            _refuse(conn, host, ipaddress.ip_address(sockaddr[0]))
    error = None
    for family, kind, protocol, _, sockaddr in resolved:
        sock = socket.socket(family, kind, protocol)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(conn.timeout)  # urllib3 resolved its default already: seconds, or None
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(sockaddr)
        except OSError as exc:
            error = exc
            sock.close()
        else:
            return sock
    if error is not None:
        raise error
    raise OSError("getaddrinfo returns an empty list")


def _refuse(conn, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    refusal = address_refusal(address)
    if refusal:
        shown = str(literal_address(host) or host)
        message = f"{host} is {refusal}" if shown == str(address) else f"{host} resolves to {address}, {refusal}"
        raise ForbiddenTarget(conn, message, host=shown, address=str(address), refusal=refusal)


class _Vetted:
    """Opens the connection with `vetted_connection`; TLS still checks the certificate for the host name."""

    def _new_conn(self) -> socket.socket:
        try:
            sock = vetted_connection(self, self._dns_host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock


class VettedHTTPConnection(_Vetted, HTTPConnection):
    pass


class VettedHTTPSConnection(_Vetted, HTTPSConnection):
    pass


class VettedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = VettedHTTPConnection


class VettedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = VettedHTTPSConnection


class VettedHTTPAdapter(HTTPAdapter):
    """A requests transport whose every connection goes through `vetted_connection`, never through a proxy."""

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": VettedHTTPConnectionPool,
            "https": VettedHTTPSConnectionPool,
        }

    def send(self, request, **kwargs):
        return super().send(request, **{**kwargs, "proxies": None})
