"""The processes of `manage.py bench_trigger` that are not the product: an SMTP relay on loopback that records when
it accepted each message, and an open-loop HTTP load generator that records when it sent each trigger call.

Both run in processes of their own, without Django (`python -m campaigns.management.commands._bench_trigger_load
smtp ...` / `openloop ...`), and stamp events with CLOCK_MONOTONIC (`time.monotonic()`), which is one clock for
every process of the machine: a message's latency is the relay's acceptance time minus the call's send time.

The relay is a small asyncio SMTP server rather than aiosmtpd, which took less than half as many messages a second
from the same client (docs/benchmarks.md, "Trigger API"): the relay must not be what limits a large campaign. It
speaks what smtplib uses (EHLO/HELO, MAIL, RCPT, DATA up to the CRLF.CRLF that ends it, RSET, NOOP, QUIT), accepts
everything and keeps nothing but one line per message: `<monotonic time>\t<kind>\t<id>` where kind is `trigger`
(the subject carries `[bt:<requestId>]`) or `campaign`.
"""

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import time

TRIGGER_MARK = re.compile(rb"^Subject: .*?\[bt:([!-~]+?)\]", re.MULTILINE)
_END_OF_DATA = b"\r\n.\r\n"
# A call not answered within this many seconds is given up (status -1); -2 is a refused or broken connection.
CALL_TIMEOUT = 60


# --- The relay -------------------------------------------------------------------------------------------------


class _Log:
    """Lines appended in memory and written out every 100 ms, so a reader sees arrivals while the run goes on."""

    def __init__(self, path: str):
        self.file = open(path, "a", buffering=1 << 20)  # noqa: SIM115 - open for the process's lifetime
        self.lines: list[str] = []

    def add(self, kind: str, ident: str) -> None:
        self.lines.append(f"{time.monotonic():.6f}\t{kind}\t{ident}\n")

    def flush(self) -> None:
        if self.lines:
            self.file.write("".join(self.lines))
            self.lines.clear()
        self.file.flush()


class _Session(asyncio.Protocol):
    def __init__(self, log: _Log):
        self.log = log
        self.buffer = b""
        self.in_data = False

    def connection_made(self, transport):
        self.transport = transport
        transport.write(b"220 bench-relay ESMTP\r\n")

    def data_received(self, data: bytes):
        self.buffer += data
        while self.buffer:
            if self.in_data:
                # A message ends with CRLF.CRLF (the sender dot-stuffs its lines starting with a dot).
                end = self.buffer.find(_END_OF_DATA)
                if end < 0:
                    return
                message, self.buffer = self.buffer[: end + 2], self.buffer[end + 5 :]
                self.in_data = False
                found = TRIGGER_MARK.search(message)
                if found:
                    self.log.add("trigger", found.group(1).decode())
                else:
                    self.log.add("campaign", "")
                self.transport.write(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
            self._command(line)

    def _command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.transport.write(b"250-bench-relay\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
        elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            self.transport.write(b"250 2.0.0 Ok\r\n")
        elif verb == b"DATA":
            self.in_data = True
            self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.transport.write(b"221 2.0.0 Bye\r\n")
            self.transport.close()
        else:
            self.transport.write(b"502 5.5.2 Command not recognized\r\n")


async def _relay(port: int, path: str) -> None:
    log = _Log(path)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set_result, None)
    server = await loop.create_server(lambda: _Session(log), "127.0.0.1", port, backlog=1024, reuse_address=True)
    print(f"relay listening on 127.0.0.1:{port}", flush=True)
    while not stop.done():
        await asyncio.wait([stop], timeout=0.1)
        log.flush()
    server.close()
    log.flush()


def read_relay_log(path: str) -> list[tuple[float, str, str]]:
    rows = []
    with open(path) as lines:
        for line in lines:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                rows.append((float(parts[0]), parts[1], parts[2]))
    return rows


# --- The open-loop load generator -----------------------------------------------------------------------------


def trigger_body(request_id: str, email: str) -> bytes:
    """The body of one unitary call: the requestId also in the context, which the subject shows."""
    body = {
        "requestId": request_id,
        "context": {"request_id": request_id},
        "recipients": [{"identity": {"namespace": "email", "value": email}}],
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def _one_call(host, port, path, key, request_id, email, scheduled, records) -> None:
    body = trigger_body(request_id, email)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sent = time.monotonic()
    status, answered = 0, None
    try:
        async with asyncio.timeout(CALL_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(head + body)
            answer = await reader.read()  # gunicorn's sync workers close the connection after answering
            answered = time.monotonic()
            status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
            writer.close()
    except TimeoutError:
        status = -1
    except (OSError, ValueError, IndexError):
        status = -2
    records.append({"id": request_id, "scheduled": scheduled, "sent": sent, "answered": answered, "status": status})


async def _open_loop(args) -> None:
    """Call i goes out at start + i / rate whether or not earlier calls were answered (open loop): a slow server
    makes calls pile up in flight instead of slowing the arrivals down."""
    key = os.environ[args.key_env]
    # A slow server makes thousands of calls wait at once, a socket each.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    records: list[dict] = []
    tasks = []
    total = int(args.rate * args.duration)
    start = time.monotonic() + 0.2
    for i in range(total):
        delay = start + i / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        email = f"t{i % args.recipients}@trigger.bench.test"
        call = _one_call(
            args.host, args.port, args.path, key, f"{args.prefix}-{i}", email, start + i / args.rate, records
        )
        tasks.append(asyncio.create_task(call))
    ended = time.monotonic()
    await asyncio.gather(*tasks)
    with open(args.out, "w") as out:
        json.dump({"started": start, "ended": ended, "calls": records}, out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    smtp = commands.add_parser("smtp", help="the recording relay")
    smtp.add_argument("--port", type=int, required=True)
    smtp.add_argument("--out", required=True)
    load = commands.add_parser("openloop", help="trigger calls at a fixed rate")
    load.add_argument("--host", default="127.0.0.1")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--path", required=True)
    load.add_argument("--key-env", required=True, help="The environment variable holding the API key.")
    load.add_argument("--rate", type=float, required=True)
    load.add_argument("--duration", type=float, required=True)
    load.add_argument("--recipients", type=int, required=True)
    load.add_argument("--prefix", required=True)
    load.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.command == "smtp":
        asyncio.run(_relay(args.port, args.out))
    else:
        asyncio.run(_open_loop(args))


if __name__ == "__main__":
    main()
