"""`manage.py mailcatcher`: a local SMTP server that keeps every message it receives, and a page to read them.

For the quick start and manual testing: it listens on 127.0.0.1 only, keeps the newest 5,000 messages as .eml
files in var/mailcatcher/, and shows them at http://127.0.0.1:8025 (MAILCATCHER_SMTP_PORT and
MAILCATCHER_HTTP_PORT change the ports). Marketer HTML is shown in a sandboxed iframe, so a script in a message
never runs in the page.
"""

import json
import logging
import re
import secrets
import signal
import threading
import time
from collections import deque
from email import policy
from email.parser import BytesParser
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.env import env_int

KEEP = 5000
LIST_LIMIT = 200
_NAME = re.compile(r"^\d{20}-[0-9a-f]{8}$")
_PAGE_HEADERS = {
    # Defence in depth beside the iframe sandbox: no script, plugin or form anywhere in these pages.
    "Content-Security-Policy": "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 2rem 2rem; color: #222; }
header { display: flex; gap: 1rem; align-items: baseline; border-bottom: 1px solid #ddd; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #eee; vertical-align: top; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: 1rem; }
iframe { width: 100%; height: 70vh; border: 1px solid #ddd; }
.muted { color: #777; }
"""


class Mailbox:
    """The .eml files of one folder, named so that name order is arrival order, the newest `keep` kept."""

    def __init__(self, directory: Path, *, keep: int = KEEP):
        self.directory = directory
        self.keep = keep
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._names = deque(reversed(self.names()))
        with self._lock:
            self._prune()

    def store(self, data: bytes, *, mail_from: str, rcpt_tos: list[str]) -> str:
        name = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        # The envelope, as a delivering MTA records it: Bcc recipients appear only here.
        envelope = f"X-Envelope-From: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n".encode()
        (self.directory / f"{name}.eml").write_bytes(envelope + data)
        with self._lock:
            self._names.append(name)
            self._prune()
        return name

    def _prune(self) -> None:
        while len(self._names) > self.keep:
            (self.directory / f"{self._names.popleft()}.eml").unlink(missing_ok=True)

    def names(self) -> list[str]:
        """Message names, newest first."""
        return sorted((path.stem for path in self.directory.glob("*.eml") if _NAME.match(path.stem)), reverse=True)

    def raw(self, name: str) -> bytes | None:
        if not _NAME.match(name):
            return None
        try:
            return (self.directory / f"{name}.eml").read_bytes()
        except FileNotFoundError:
            return None

    def summary(self, name: str) -> dict | None:
        raw = self.raw(name)
        if raw is None:
            return None
        message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        return {
            "id": name,
            "received": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(name[:20]) / 1e9)),
            "from": str(message.get("From", "")),
            "to": str(message.get("X-Envelope-To", "") or message.get("To", "")),
            "subject": str(message.get("Subject", "")),
        }


class _SMTPHandler:
    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.mailbox.store(
            envelope.original_content or envelope.content, mail_from=envelope.mail_from, rcpt_tos=envelope.rcpt_tos
        )
        return "250 Message accepted for delivery"


def _page(title: str, body: str, smtp_address: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<style>{_STYLE}</style></head><body><header><h1><a href="/">Mail catcher</a></h1>'
        f'<span class="muted">receiving on SMTP {escape(smtp_address)}</span></header>{body}</body></html>'
    )


def _list_body(mailbox: Mailbox, smtp_address: str) -> str:
    names = mailbox.names()
    if not names:
        return f"<p>No messages yet. Send mail to SMTP {escape(smtp_address)}.</p>"
    rows = []
    for name in names[:LIST_LIMIT]:
        item = mailbox.summary(name)
        if item is None:
            continue  # pruned since listed
        rows.append(
            f"<tr><td>{escape(item['received'])}</td><td>{escape(item['from'])}</td><td>{escape(item['to'])}</td>"
            f'<td><a href="/messages/{name}">{escape(item["subject"]) or "(no subject)"}</a></td></tr>'
        )
    shown = f"the newest {LIST_LIMIT} of " if len(names) > LIST_LIMIT else ""
    return (
        f'<p class="muted">{shown}{len(names)} message(s), newest first; the newest {KEEP:,} are kept. '
        '<a href="/">Refresh</a></p>'
        "<table><thead><tr><th>Received</th><th>From</th><th>To</th><th>Subject</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _part(message, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, ValueError) as exc:
        return f"(cannot decode this part: {exc})"


def _message_body(mailbox: Mailbox, name: str) -> str | None:
    raw = mailbox.raw(name)
    if raw is None:
        return None
    message = BytesParser(policy=policy.default).parsebytes(raw)
    fields = [("From", "From"), ("To", "To"), ("Envelope to", "X-Envelope-To"), ("Subject", "Subject")]
    fields += [("Date", "Date"), ("Message-ID", "Message-ID")]
    rows = "".join(
        f"<tr><th>{label}</th><td>{escape(str(message.get(header, '')))}</td></tr>" for label, header in fields
    )
    text, html = _part(message, "plain"), _part(message, "html")
    sections = [f'<table>{rows}</table><p><a href="/messages/{name}.eml">Raw message</a></p>']
    if html is not None:
        # srcdoc is an attribute: escape quotes too. No allow-* token: no script, no same-origin access.
        sections.append(f'<h2>HTML</h2><iframe sandbox srcdoc="{escape(html, quote=True)}"></iframe>')
    if text is not None:
        sections.append(f"<h2>Text</h2><pre>{escape(text)}</pre>")
    if html is None and text is None:
        sections.append('<p class="muted">No text or HTML part.</p>')
    return "".join(sections)


def _request_handler(mailbox: Mailbox, smtp_address: str):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's hook name)
            path = self.path.split("?", 1)[0]
            if path == "/":
                return self._send(_page("Mail catcher", _list_body(mailbox, smtp_address), smtp_address))
            if path == "/messages.json":
                items = [item for item in map(mailbox.summary, mailbox.names()[:LIST_LIMIT]) if item]
                return self._send(json.dumps(items), "application/json")
            if match := re.fullmatch(r"/messages/([0-9a-f-]+)\.eml", path):
                raw = mailbox.raw(match[1])
                if raw is not None:
                    return self._send(raw, "text/plain; charset=utf-8")
            elif match := re.fullmatch(r"/messages/([0-9a-f-]+)", path):
                body = _message_body(mailbox, match[1])
                if body is not None:
                    return self._send(_page("Message", body, smtp_address))
            not_found = "<p>No such message (only the newest are kept).</p>"
            self._send(_page("Not found", not_found, smtp_address), status=HTTPStatus.NOT_FOUND)

        def _send(self, body, content_type="text/html; charset=utf-8", status=HTTPStatus.OK):
            data = body if isinstance(body, bytes) else body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for header, value in _PAGE_HEADERS.items():
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):
            pass  # one line per page view would drown the other processes' output

    return Handler


class Command(BaseCommand):
    help = "Run a local SMTP server that keeps what it receives, with a web page to read it (development only)."
    requires_system_checks = []  # needs no database

    def add_arguments(self, parser):
        parser.add_argument("--smtp-port", type=int, help="SMTP port (default: $MAILCATCHER_SMTP_PORT or 1025)")
        parser.add_argument("--http-port", type=int, help="web page port (default: $MAILCATCHER_HTTP_PORT or 8025)")

    def handle(self, *args, smtp_port=None, http_port=None, **options):
        smtp_port = smtp_port or env_int("MAILCATCHER_SMTP_PORT", 1025, minimum=1)
        http_port = http_port or env_int("MAILCATCHER_HTTP_PORT", 8025, minimum=1)
        smtp_address = f"127.0.0.1:{smtp_port}"
        mailbox = Mailbox(Path(settings.VAR_DIR) / "mailcatcher")
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO

        try:
            web = ThreadingHTTPServer(("127.0.0.1", http_port), _request_handler(mailbox, smtp_address))
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on 127.0.0.1:{http_port} ({exc.strerror}): set MAILCATCHER_HTTP_PORT to a free port."
            ) from None
        web.daemon_threads = True
        smtp = Controller(_SMTPHandler(mailbox), hostname="127.0.0.1", port=smtp_port, enable_SMTPUTF8=True)
        try:
            smtp.start()
        except (OSError, RuntimeError) as exc:
            web.server_close()
            raise CommandError(
                f"Cannot listen on {smtp_address} ({exc}): set MAILCATCHER_SMTP_PORT to a free port."
            ) from None
        threading.Thread(target=web.serve_forever, name="mailcatcher-http", daemon=True).start()

        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.stdout.write(
            f"Mail catcher: SMTP on {smtp_address}, messages at http://127.0.0.1:{http_port} "
            f"(kept in {mailbox.directory})",
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            smtp.stop()
            web.shutdown()
            web.server_close()
