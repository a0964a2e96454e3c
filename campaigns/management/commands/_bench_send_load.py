"""The processes of `manage.py bench_send` that are not the product, each without Django
(`python -m campaigns.management.commands._bench_send_load <sink|ceiling|proxy> ...`):

- `sink`: Postfix's `smtp-sink` on loopback (accepts and discards at C speed), started as this process's child;
  this process reads its running counter (`-c`: `sess=.. quit=.. mesg=N` at every event) and appends
  `<monotonic time>\t<messages so far>` to a file at most every 2 ms, so the benchmark counts messages where they
  arrive, on CLOCK_MONOTONIC, one clock for every process of the machine.
- `ceiling`: one process of the ceiling: pre-rendered message bytes pushed with plain smtplib over one reused
  connection (`sendmail`), until its count is sent or its deadline passes.
- `proxy`: a TCP proxy that delays every chunk by half the added round trip in each direction (the kernel here has
  no netem qdisc, so `tc` cannot), keeping the order of each direction.
"""

import argparse
import asyncio
import os
import re
import select
import signal
import smtplib
import subprocess
import sys
import time

_COUNTER = re.compile(rb"mesg=(\d+)")

# The ceiling's messages: the shape of the campaign's (bench_send's template rendered for one profile), built
# once per recipient number before the clock starts.
_MESSAGE = (
    "From: Shop <news@example.com>\r\nTo: {to}\r\nSubject: Reader {n}, your Pro news from Lyon\r\n"
    "Message-ID: <ceiling-{n}@bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n"
    "<h1>Hello Reader {n} from Lyon</h1><p>You are on the Pro plan with {n} points.</p><ul><li>cycling</li>"
    "<li>cooking</li><li>travel</li></ul><p>See you soon,<br>Shop</p>\r\n"
)


# --- The sink ------------------------------------------------------------------------------------------------------


def _sink(port: int, out: str) -> None:
    sink = subprocess.Popen(  # noqa: S603 - a fixed program on loopback
        ["/usr/sbin/smtp-sink", "-c", "-u", "root", f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def stop(*_):
        sink.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    count, written, last_write = 0, -1, 0.0
    with open(out, "a", buffering=1 << 16) as log:
        log.write(f"{time.monotonic():.6f}\t0\n")
        log.flush()
        while True:
            # A count not yet written goes out within 2 ms even when nothing more arrives.
            if select.select([sink.stdout], [], [], 0.002)[0]:
                chunk = os.read(sink.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                found = _COUNTER.findall(chunk)
                if found:
                    count = int(found[-1])
            now = time.monotonic()
            if count != written and now - last_write >= 0.002:
                log.write(f"{now:.6f}\t{count}\n")
                log.flush()
                written, last_write = count, now
        log.write(f"{time.monotonic():.6f}\t{count}\n")
    sink.wait()


def read_counts(path, offset: int = 0) -> tuple[list[tuple[float, int]], int]:
    """The sink's (time, messages so far) rows from byte `offset`, and the offset after the last whole line."""
    with open(path, "rb") as lines:
        lines.seek(offset)
        chunk = lines.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]
    rows = []
    for line in complete.splitlines():
        at, count = line.split(b"\t")
        rows.append((float(at), int(count)))
    return rows, offset + len(complete)


# --- The ceiling -----------------------------------------------------------------------------------------------


def _ceiling(port: int, first: int, count: int, seconds: float) -> None:
    messages = [
        (f"c{n}@campaign.bench.test", _MESSAGE.format(to=f"c{n}@campaign.bench.test", n=n).encode())
        for n in range(first, first + count)
    ]
    deadline = time.monotonic() + seconds
    connection = smtplib.SMTP("127.0.0.1", port, timeout=30)
    connection.ehlo()
    sent = 0
    for to, data in messages:
        connection.sendmail("bounce@example.com", [to], data)
        sent += 1
        if time.monotonic() > deadline:
            break
    connection.quit()
    print(f"sent {sent}", flush=True)


# --- The delaying proxy ----------------------------------------------------------------------------------------


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Chunks from `reader` to `writer`, each written `delay` seconds after it was read, in order: later chunks
    do not wait for earlier ones' delay (pipelined data keeps flowing), only for their own."""
    chunks: asyncio.Queue = asyncio.Queue()

    async def forward():
        while True:
            due, data = await chunks.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    forwarding = asyncio.create_task(forward())
    try:
        while data := await reader.read(1 << 16):
            chunks.put_nowait((time.monotonic() + delay, data))
    except OSError:
        pass
    chunks.put_nowait((0.0, None))
    try:
        await forwarding
    except OSError:
        pass


async def _proxy(port: int, upstream: int, round_trip_ms: float) -> None:
    delay = round_trip_ms / 2000

    async def session(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pump(client_reader, server_writer, delay), _pump(server_reader, client_writer, delay))

    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set_result, None)
    server = await asyncio.start_server(session, "127.0.0.1", port, backlog=1024, reuse_address=True)
    print(f"proxy 127.0.0.1:{port} -> {upstream}, +{round_trip_ms:g} ms a round trip", flush=True)
    await stop
    server.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sink = commands.add_parser("sink", help="smtp-sink and its counter")
    sink.add_argument("--port", type=int, required=True)
    sink.add_argument("--out", required=True)
    ceiling = commands.add_parser("ceiling", help="one process pushing pre-rendered messages with smtplib")
    ceiling.add_argument("--port", type=int, required=True)
    ceiling.add_argument("--first", type=int, required=True)
    ceiling.add_argument("--count", type=int, required=True)
    ceiling.add_argument("--seconds", type=float, required=True)
    proxy = commands.add_parser("proxy", help="a TCP proxy adding latency")
    proxy.add_argument("--port", type=int, required=True)
    proxy.add_argument("--upstream", type=int, required=True)
    proxy.add_argument("--round-trip-ms", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "sink":
        _sink(args.port, args.out)
    elif args.command == "ceiling":
        _ceiling(args.port, args.first, args.count, args.seconds)
    else:
        asyncio.run(_proxy(args.port, args.upstream, args.round_trip_ms))
    sys.exit(0)


if __name__ == "__main__":
    main()
