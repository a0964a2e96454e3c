"""Email over SMTP: message bytes built directly, several connections in flight, each reused across slices.

The envelope sender carries the delivery id (VERP, `bounce+<id>@<bounce domain>`) so an asynchronous bounce
names the delivery it is about; `delivery_id_from_verp` reads it back. Marketing mail carries RFC 8058
one-click List-Unsubscribe headers, and the configuration's footer (channels/adapters/email_footer.py) when it has
one; messages are DKIM-signed when the configuration has a key.
"""

import binascii
import dataclasses
import logging
import queue
import re
import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from email.header import Header
from email.utils import formataddr, formatdate

from channels.adapters.base import Adapter, OutboundMessage, Outcome, Reason, SendResult, Stream, message_error
from channels.adapters.email_dkim import DkimSigner
from channels.adapters.email_footer import Footer, FooterError

log = logging.getLogger(__name__)

_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
_ENHANCED_STATUS = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
_VERP = re.compile(r"^<?bounce\+(\d{1,19})@[^@>\s]+>?$", re.IGNORECASE)


def verp_address(delivery_id: int, bounce_domain: str) -> str:
    return f"bounce+{delivery_id}@{bounce_domain}"


def delivery_id_from_verp(address: str) -> int | None:
    """The delivery id in a VERP address (`bounce+<id>@domain`, angle brackets allowed), or None."""
    match = _VERP.match(address.strip())
    if not match or int(match.group(1)) >= 2**63:
        return None
    return int(match.group(1))


def _header(value: str) -> str:
    # Folded with CRLF: a bare LF inside a header is refused by strict relays.
    return value if value.isascii() else Header(value, "utf-8").encode(linesep="\r\n")


def _qp(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return encoded.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def build_message_bytes(
    message: OutboundMessage, *, sender: str, reply_to: str, domain: str, date: str, list_unsubscribe: bool = False
) -> bytes:
    """RFC 5322 bytes for a multipart text + HTML message, without the cost of email.message.

    With `list_unsubscribe`, a marketing message that has an unsubscribe URL gets RFC 8058's one-click headers.
    """
    # "=_" never occurs in quoted-printable output, so the boundary cannot collide with the body.
    boundary = f"=_d{message.delivery_id}"
    lines = [
        f"From: {sender}",
        f"To: {message.to}",
        f"Subject: {_header(message.subject)}",
        f"Date: {date}",
        f"Message-ID: {message_id_for(message.delivery_id, domain)}",
        "MIME-Version: 1.0",
    ]
    if reply_to:
        lines.append(f"Reply-To: {reply_to}")
    if list_unsubscribe and message.marketing and message.unsubscribe_url:
        lines.append(f"List-Unsubscribe: <{message.unsubscribe_url}>")
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    lines.extend(f"{name}: {_header(value)}" for name, value in message.headers.items())
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    part = (
        f"--{boundary}\r\nContent-Type: text/%s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return b"".join(
        [
            head,
            (part % "plain").encode(),
            _qp(message.text),
            b"\r\n",
            (part % "html").encode(),
            _qp(message.html),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )


def message_id_for(delivery_id: int, domain: str) -> str:
    return f"<{delivery_id}.campaign@{domain}>"


class _ConnectionLost(Exception):
    """The connection broke; `after_data` says whether the message data had gone out."""

    def __init__(self, after_data: bool, detail: str):
        self.after_data = after_data
        self.detail = detail


class EmailAdapter(Adapter):
    channel = "email"

    def __init__(self, configuration):
        super().__init__(configuration)
        s = self.settings
        self.sender = formataddr((s.from_name, s.from_email), charset="utf-8") if s.from_name else s.from_email
        self.domain = s.from_email.rpartition("@")[2]
        self._connections: list[smtplib.SMTP | None] = [None] * s.connections
        self._pool = ThreadPoolExecutor(max_workers=s.connections, thread_name_prefix=f"smtp{configuration.pk}")
        self._lock = threading.Lock()
        self.connections_opened = 0
        self._footer = Footer(html=s.footer_html, text=s.footer_text)
        self._footer_failed = False
        self._dkim = None
        if s.dkim_domain:
            self._dkim = DkimSigner(
                domain=s.dkim_domain, selector=s.dkim_selector, private_key_pem=s.dkim_private_key.get_secret_value()
            )

    def envelope_sender(self, message: OutboundMessage) -> str:
        """The Return-Path: a VERP address naming the delivery when there is a bounce domain."""
        domain = self.settings.bounce_domain
        return verp_address(message.delivery_id, domain) if domain else self.settings.from_email

    def message_bytes(self, message: OutboundMessage, date: str) -> bytes:
        s = self.settings
        if self._footer and message.marketing and message.unsubscribe_url:
            try:
                html, text = self._footer.applied(
                    html=message.html, text=message.text, unsubscribe_url=message.unsubscribe_url
                )
            except FooterError as error:
                # Each marketing message fails alone, its detail naming the footer; the log says it once.
                if not self._footer_failed:
                    self._footer_failed = True
                    log.error("email adapter: configuration %s: %s", self.configuration_id, error)
                raise
            message = dataclasses.replace(message, html=html, text=text)
        data = build_message_bytes(
            message,
            sender=self.sender,
            reply_to=s.reply_to,
            domain=self.domain,
            date=date,
            list_unsubscribe=s.list_unsubscribe,
        )
        return self._dkim.signature_header(data) + data if self._dkim else data

    def send(self, messages: list[OutboundMessage]) -> list[SendResult]:
        results = {}
        with self.stream() as stream:
            stream.put(messages)
            while len(results) < len(messages):
                results.update((result.delivery_id, result) for result in stream.take())
        return [results[message.delivery_id] for message in messages]

    def stream(self) -> "_EmailStream":
        return _EmailStream(self)

    def close(self) -> None:
        for i, connection in enumerate(self._connections):
            if connection is not None:
                try:
                    connection.quit()
                except (smtplib.SMTPException, OSError):
                    connection.close()
                self._connections[i] = None
        self._pool.shutdown(wait=False)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            connection = smtplib.SMTP_SSL(
                s.host, s.port, timeout=s.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            if s.security == "starttls":
                connection.starttls(context=ssl.create_default_context())
        try:
            connection.ehlo_or_helo_if_needed()
            if s.username:
                connection.login(s.username, s.password.get_secret_value())
        except BaseException:
            connection.close()  # never leave a half-open session (and its socket) behind
            raise
        with self._lock:
            self.connections_opened += 1
        return connection

    def _send_one(self, lane: int, message: OutboundMessage, stream: "_EmailStream") -> SendResult:
        """One message over the lane's connection, opened (again) if needed. Once a lane of the stream could not
        connect, the relay is taken as down for the rest of the stream: its messages fail without another try.

        A kept connection the relay closed while it was idle (its idle timeout: the mail catcher's 300 s, Postfix's
        smtpd_timeout; a restart) breaks before anything of the message went out: the message goes again at once
        on a new connection, not a minute later as a retry."""
        s = self.settings
        try:
            data = self.message_bytes(message, stream.date)
        except Exception as exc:  # noqa: BLE001 - one message that cannot be built fails alone
            return message_error(message, exc)
        for last_try in (False, True):
            connection = self._connections[lane]
            kept = connection is not None
            if connection is None:
                if stream.down is None:
                    try:
                        connection = self._connections[lane] = self._connect()
                    except Exception as exc:  # noqa: BLE001 - nothing of this stream can go out now
                        # An SMTP or network error says what the relay did; any other (credentials smtplib cannot
                        # encode, say) could quote a secret, so its type only.
                        said = exc if isinstance(exc, smtplib.SMTPException | OSError) else type(exc).__name__
                        stream.down = f"cannot connect to {s.host}:{s.port}: {said}"
                if connection is None:
                    return SendResult(
                        message.delivery_id, Outcome.TRANSIENT, reason=Reason.CONNECT_FAILED, detail=stream.down
                    )
            try:
                return self._transmit(connection, message, data)
            except _ConnectionLost as lost:
                connection.close()
                self._connections[lane] = None
                if kept and not lost.after_data and not last_try:
                    continue
                outcome = Outcome.INDETERMINATE if lost.after_data else Outcome.TRANSIENT
                return SendResult(message.delivery_id, outcome, reason=Reason.CONNECTION_LOST, detail=lost.detail)
            except _MessageFailed as failed:
                # The session may be mid-command: start the next message on a fresh connection.
                connection.close()
                self._connections[lane] = None
                return message_error(message, failed.__cause__)
        raise AssertionError("unreachable: the last try returns")

    def _transmit(self, connection: smtplib.SMTP, message: OutboundMessage, data: bytes) -> SendResult:
        envelope_sender = self.envelope_sender(message)
        needs_utf8 = not (message.to.isascii() and envelope_sender.isascii() and self.settings.from_email.isascii())
        options = []
        if needs_utf8:
            if not connection.has_extn("smtputf8"):
                return SendResult(
                    message.delivery_id,
                    Outcome.PERMANENT,
                    reason="smtputf8_unsupported",
                    detail="the relay does not offer SMTPUTF8, needed for this internationalized address",
                )
            options.append("SMTPUTF8")
        try:
            code, reply = _envelope(connection, envelope_sender, message.to, options)
            if code != 354:
                connection.rset()
                return _rejected(message, code, reply)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _ConnectionLost(after_data=False, detail=str(exc)) from None
        except Exception as exc:  # an address smtplib cannot encode, say: before the data, so nothing was sent
            raise _MessageFailed from exc
        try:
            body = _LEADING_DOT.sub(b"..", data)
            connection.send(body + b".\r\n")
            code, reply = connection.getreply()
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _ConnectionLost(after_data=True, detail=str(exc)) from None
        if code != 250:
            return _rejected(message, code, reply)
        return SendResult(
            message.delivery_id, Outcome.SENT, provider_message_id=message_id_for(message.delivery_id, self.domain)
        )


def _envelope(connection: smtplib.SMTP, sender: str, to: str, options: list[str]) -> tuple[int, bytes]:
    """MAIL, RCPT and DATA: (354, ...) when the relay waits for the data, else its first refusal. With PIPELINING
    (RFC 2920: Postfix, Exim and most relays offer it) the three go in one round trip instead of three, which is
    what a relay far away costs per message."""
    if not connection.has_extn("pipelining"):
        code, reply = connection.mail(sender, options)
        if code == 250:
            code, reply = connection.rcpt(to)
        if code not in (250, 251):
            return code, reply
        connection.putcmd("data")
        return connection.getreply()
    if options:
        connection.command_encoding = "utf-8"  # SMTPUTF8, as smtplib's mail() sets it
    mail = f"mail FROM:{smtplib.quoteaddr(sender)}{''.join(' ' + option for option in options)}"
    rcpt = f"rcpt TO:{smtplib.quoteaddr(to)}"
    if any(character in command for command in (mail, rcpt) for character in "\r\n"):
        raise ValueError("a line break in an address")  # as smtplib's putcmd refuses it: no command injection
    connection.send(f"{mail}\r\n{rcpt}\r\ndata\r\n".encode(connection.command_encoding))
    replies = [connection.getreply() for _ in range(3)]
    (mail_code, _), (rcpt_code, _), (data_code, _) = replies
    if data_code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
        # A relay that took DATA with no valid recipient: end the empty message; the refusal stands.
        connection.send(b".\r\n")
        connection.getreply()
    for (code, reply), accepted in zip(replies, ((250,), (250, 251), (354,)), strict=True):
        if code not in accepted:
            return code, reply
    return replies[2]


class _MessageFailed(Exception):
    """This message could not be handed over (its cause says why); nothing of it reached the relay."""


def _rejected(message: OutboundMessage, code: int, reply: bytes) -> SendResult:
    text = reply.decode("utf-8", "replace")
    enhanced = _ENHANCED_STATUS.match(text)
    outcome = Outcome.PERMANENT if code >= 500 else Outcome.TRANSIENT
    reason = f"smtp_{enhanced.group(1) if enhanced else code}"
    return SendResult(message.delivery_id, outcome, reason=reason, detail=f"{code} {text}"[:500])


class _EmailStream(Stream):
    """Each of the adapter's connections (a lane, one thread of its pool) takes the next message as soon as it is
    free and puts its result out as the relay answers."""

    def __init__(self, adapter: EmailAdapter):
        super().__init__(adapter)
        self.date = formatdate()
        self.down: str | None = None  # why a lane could not connect: the relay is down for this stream
        self._inbox: queue.SimpleQueue[OutboundMessage | None] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[SendResult] = queue.SimpleQueue()
        self._lanes = [adapter._pool.submit(self._lane, lane) for lane in range(len(adapter._connections))]

    def put(self, messages: list[OutboundMessage]) -> None:
        for message in messages:
            self._inbox.put(message)

    def take(self) -> list[SendResult]:
        results = [self._outbox.get()]
        while True:
            try:
                results.append(self._outbox.get_nowait())
            except queue.Empty:
                return results

    def close(self) -> None:
        for _ in self._lanes:
            self._inbox.put(None)
        for lane in self._lanes:
            lane.result()

    def _lane(self, lane: int) -> None:
        while (message := self._inbox.get()) is not None:
            try:
                result = self.adapter._send_one(lane, message, self)
            except Exception as exc:  # noqa: BLE001 - a bug here must not leave the taker waiting forever
                log.exception("email adapter: a message failed unexpectedly")
                result = SendResult(message.delivery_id, Outcome.INDETERMINATE, reason="adapter_error", detail=str(exc))
            self._outbox.put(result)
