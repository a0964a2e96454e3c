"""Real SMTP servers on loopback for tests: one that records what it receives, one that misbehaves on cue."""

import asyncio
import socket
import socketserver
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Recorder:
    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.messages = []
        self.sessions = 0
        self.rejected_recipients: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        # aiosmtpd reads pipelined commands in turn but does not say so: advertise it, as Postfix and Exim do, so
        # the adapter sends MAIL, RCPT and DATA in one round trip (RFC 2920).
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rejected_recipients:
            return self.rejected_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)  # a relay that takes its time to accept: messages stay in flight
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "raw": envelope.original_content or envelope.content,
                    "message": message,
                }
            )
        return "250 Message accepted"


class RecordingSMTPServer:
    """aiosmtpd on 127.0.0.1 with SMTPUTF8; `messages` holds every message, `sessions` counts connections; with
    `delay`, each message is accepted that many seconds after its data."""

    def __init__(self, delay: float = 0.0, **smtp_parameters):
        self.recorder = _Recorder(delay)
        self.port = free_port()
        self.controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            decode_data=False,
            enable_SMTPUTF8=True,
            server_hostname="localhost",
            **smtp_parameters,  # aiosmtpd's SMTP options: `timeout`, the idle seconds after which it hangs up
        )

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    @property
    def messages(self):
        return self.recorder.messages

    @property
    def sessions(self):
        return self.recorder.sessions

    def by_recipient(self) -> dict[str, list]:
        received: dict[str, list] = {}
        for item in self.messages:
            for rcpt in item["rcpt_tos"]:
                received.setdefault(rcpt, []).append(item["message"])
        return received


class DroppingSMTPServer:
    """Speaks just enough SMTP to take a message, then closes the connection instead of answering the
    end of DATA: the sender cannot know whether the message was delivered."""

    def __init__(self):
        outer = self
        self.received_data = 0

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 dropper ESMTP\r\n")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        self.wfile.write(b"250-dropper\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        self.wfile.write(b"354 go ahead\r\n")
                        while self.rfile.readline() not in (b".\r\n", b""):
                            pass
                        outer.received_data += 1
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 OK\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
