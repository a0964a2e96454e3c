"""Measuring and reporting for `manage.py bench_send`: the sink's counts, the workers' memory, the CPU a message of
each group of processes (measured by config.bench), the reading of a py-spy profile, and the printed tables."""

import os
import platform
import socket
import statistics
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from campaigns.management.commands._bench_send_load import read_counts
from campaigns.management.commands._bench_trigger_report import read_collapsed
from config import bench

# Goals, printed next to the figures (never asserted).
GOAL_OF_CEILING = 0.5
GOAL_OF_POST_OFFICE = 5.0
GOAL_LATENCY_OF_LOOPBACK = 0.5


# --- The sink's counts ----------------------------------------------------------------------------------------


class SinkLog:
    """The sink's (time, messages so far) rows, read as they grow."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.rows: list[tuple[float, int]] = []
        self.read()

    def read(self) -> None:
        rows, self.offset = read_counts(self.path, self.offset)
        self.rows.extend(rows)

    def count(self) -> int:
        self.read()
        return self.rows[-1][1] if self.rows else 0

    def wait_for(self, base: int, expected: int, *, timeout: float, window: float | None = None) -> dict:
        """Wait until `expected` messages past `base` arrived (or, with `window`, until that many seconds after the
        first one). Messages a second: from the first message to the last, or to the window's end."""
        start, first_at = time.monotonic(), None
        timed_out = False
        while True:
            self.read()
            got = self.rows[-1][1] - base
            if first_at is None:
                first_at = next((at for at, count in self.rows if count > base), None)
            now = time.monotonic()
            if got >= expected or (window and first_at and now - first_at >= window):
                break
            if now - start > timeout:
                timed_out = True
                break
            time.sleep(0.05)
        end = first_at + window if window and first_at else None
        inside = [(at, count) for at, count in self.rows if count > base and (end is None or at <= end)]
        last_at, last = inside[-1] if inside else (None, base)
        messages = last - base
        seconds = (last_at - first_at) if first_at and last_at else 0.0
        return {
            "messages": messages,
            "expected": expected,
            "seconds": seconds,
            "rate": messages / seconds if seconds > 0 else None,
            "first_at": first_at,
            "last_at": last_at,
            "timed_out": timed_out,
        }


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# --- Workers ----------------------------------------------------------------------------------------------------


def worker_pids(pool_pid: int) -> list[int]:
    """The pool's workers: its children (rqworker-pool starts one process per worker)."""
    return bench.children_of(pool_pid)


def _status_kib(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def peak_rss_of_workers(pool_pid: int) -> dict:
    """Peak resident memory (VmHWM) of each worker and of the pool's own process, in MiB."""
    peaks = {}
    for pid in worker_pids(pool_pid):
        try:
            peaks[str(pid)] = _status_kib(pid, "VmHWM") / 1024
        except OSError:
            continue
    try:
        peaks["pool"] = _status_kib(pool_pid, "VmHWM") / 1024
    except OSError:
        pass
    return peaks


# --- CPU a message ---------------------------------------------------------------------------------------------

# The groups of processes, as config.bench.cpu_snapshot names them for bench_send, and their printed headings.
CPU_GROUPS = (
    ("send workers", "workers"),
    ("PostgreSQL", "PostgreSQL"),
    ("smtp-sink", "smtp-sink"),
    ("sink counter", "counter"),
    ("proxy", "proxy"),
    ("scheduler", "scheduler"),
    ("Redis", "Redis"),
    ("bench", "bench"),
    ("rest of the machine", "rest"),
    ("machine busy", "machine"),
)


def cpu_per_message(measured: dict) -> dict | None:
    """Microseconds of CPU a message of each group over the window (from its first message at the sink to its last),
    and the machine's idle share meanwhile."""
    cpu = measured.get("cpu")
    if not cpu or not measured["messages"]:
        return None
    micros = {name: cpu.get(name, 0.0) * 1e6 / measured["messages"] for name, _ in CPU_GROUPS}
    return {**micros, "idle": cpu["machine idle share"]}


# --- py-spy -----------------------------------------------------------------------------------------------------

_OURS = ("campaigns/", "audiences/", "channels/", "permissions/", "config/")


def analyse_profile(paths: list[Path], *, rate: int, messages: int, top: int = 25) -> dict:
    """Where the send workers' CPU goes (py-spy without --idle samples threads on the CPU only): by library and by
    innermost frame (self), and by the product's functions (inclusive), as shares of the samples and as
    microseconds of CPU a message (samples / rate / messages sent meanwhile)."""
    stacks = read_collapsed(paths)
    total = sum(stacks.values()) or 1
    per_message = 1e6 / rate / max(messages, 1)
    leaves: Counter = Counter()
    inclusive: Counter = Counter()
    libraries: Counter = Counter()
    for stack, count in stacks.items():
        leaves[stack[-1]] += count
        libraries[_library(stack[-1])] += count
        for frame in set(stack):
            inclusive[frame] += count
    ours = Counter({frame: count for frame, count in inclusive.items() if frame.startswith(_OURS)})

    def rows(counter: Counter, limit: int):
        return [(frame, count / total, count * per_message) for frame, count in counter.most_common(limit)]

    return {
        "samples": sum(stacks.values()),
        "cpu_us_per_message": total * per_message,
        "self": rows(leaves, top),
        "ours": rows(ours, top),
        "libraries": rows(libraries, 12),
    }


def _library(frame: str) -> str:
    path = frame.partition(":")[0]
    if path.startswith(_OURS):
        return "the product: " + path.split("/")[0]
    return path.split("/")[0] if "/" in path else path


# --- Printing ---------------------------------------------------------------------------------------------------


def machine_setup(connection) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    packages = ("django", "rq", "django-rq", "psycopg", "redis", "python-liquid")
    return {
        "cpu": f"{os.cpu_count()} x {model}",
        "python": platform.python_version(),
        "postgresql": postgres,
        "packages": ", ".join(f"{name} {version(name)}" for name in packages),
        "load_average_at_start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def window_line(measured: dict) -> str:
    rate = f"{measured['rate']:,.0f} msg/s" if measured["rate"] else "no rate"
    line = f"{measured['messages']:,}/{measured['expected']:,} messages in {measured['seconds']:.2f} s: {rate}"
    if measured.get("timed_out"):
        line += " (TIMED OUT)"
    if "planning_seconds" in measured:
        rss = ", ".join(f"{value:.0f}" for key, value in measured["rss_mib"].items() if key != "pool")
        first = measured["first_message_seconds"]
        line += (
            (f"; activation to first message {first:.1f} s" if first is not None else "; no message")
            + f", planning {_seconds(measured['planning_seconds'])}, worker peak RSS {rss} MiB"
            + f", run {measured['run_state']}"
        )
    per_message = cpu_per_message(measured)
    if per_message:
        line += "\n    CPU us/message: " + ", ".join(f"{short} {per_message[name]:,.0f}" for name, short in CPU_GROUPS)
        line += f"; machine idle {per_message['idle']:.0%}"
    before_first = measured.get("cpu_before_first_message")
    if before_first:
        line += (
            f"\n    CPU from the activation to the first message ({before_first['seconds']:.1f} s): workers "
            f"{before_first.get('send workers', 0):.2f} s, PostgreSQL {before_first.get('PostgreSQL', 0):.2f} s, "
            f"scheduler {before_first.get('scheduler', 0):.2f} s, machine {before_first['machine busy']:.2f} s"
        )
    return line


def _seconds(value) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def _median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def _cell(values, fmt="{:,.0f}") -> str:
    """The median, and each round's figure in brackets."""
    middle = _median(values)
    if middle is None:
        return "-"
    each = "/".join(fmt.format(value) if value is not None else "-" for value in values)
    return fmt.format(middle) + (f" [{each}]" if len(values) > 1 else "")


def print_all(write, results: dict) -> None:
    options, setup = results["options"], results["setup"]
    write("\n" + "=" * 100)
    write(f"Campaign send benchmark: {options['recipients']:,} recipients, {options['rounds']} round(s)")
    write(
        f"machine: {setup['cpu']}; load average at the start {setup['load_average_at_start']}, at the end "
        f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}"
    )
    write(f"Python {setup['python']}, PostgreSQL {setup['postgresql']}; {setup['packages']}")
    write("messages a second counted at smtp-sink, from the first message of the window to the last")
    for workers in options["workers"]:
        rounds = [r for r in results["rounds"] if r["workers"] == workers]
        if not rounds:
            continue
        ceiling = [r["ceiling"]["rate"] for r in rounds]
        campaign = [r["campaign"]["rate"] for r in rounds]
        ratio = [c / k if c and k else None for c, k in zip(campaign, ceiling, strict=True)]
        write(f"\n{workers} workers ({len(rounds)} round(s); median [each round])")
        write(f"  ceiling (plain smtplib, {workers} processes)       {_cell(ceiling)} msg/s")
        write(f"  campaign                                     {_cell(campaign)} msg/s")
        middle = _median(ratio)
        write(
            f"  campaign / ceiling                           {_cell(ratio, '{:.2f}')}x   goal >= {GOAL_OF_CEILING}x: "
            f"{_met(middle, GOAL_OF_CEILING)}"
        )
        write(
            "  activation to first message                  "
            f"{_cell([r['campaign']['first_message_seconds'] for r in rounds], '{:.1f}')} s"
        )
        write(
            "  planning (run created to planned)            "
            f"{_cell([r['campaign']['planning_seconds'] for r in rounds], '{:.1f}')} s"
        )
        peaks = [max(v for k, v in r["campaign"]["rss_mib"].items() if k != "pool") for r in rounds]
        write(f"  peak RSS of a worker (largest)               {_cell(peaks, '{:.0f}')} MiB")
        if "campaign_latency" in rounds[0]:
            added = options["latency_ms"]
            bare = [r["proxy_cost"]["rate"] for r in rounds]
            slow_ceiling = [r["ceiling_latency"]["rate"] for r in rounds]
            slow = [r["campaign_latency"]["rate"] for r in rounds]
            kept = [s / c if s and c else None for s, c in zip(slow, campaign, strict=True)]
            write(f"  ceiling through the proxy, +0 ms             {_cell(bare)} msg/s (the proxy's own cost)")
            write(f"  {f'ceiling, +{added:g} ms a round trip':<45}{_cell(slow_ceiling)} msg/s")
            write(f"  {f'campaign, +{added:g} ms a round trip':<45}{_cell(slow)} msg/s")
            write(
                f"  campaign +{added:g} ms / campaign on loopback      {_cell(kept, '{:.2f}')}x   goal >= "
                f"{GOAL_LATENCY_OF_LOOPBACK}x: {_met(_median(kept), GOAL_LATENCY_OF_LOOPBACK)}"
            )
        if "post_office" in rounds[0]:
            post = [r["post_office"]["rate"] for r in rounds]
            over = [c / p if c and p else None for c, p in zip(campaign, post, strict=True)]
            write(f"  django-post_office ({options['post_office_messages']:,} emails)     {_cell(post)} msg/s")
            write(
                f"  campaign / django-post_office                {_cell(over, '{:.1f}')}x   goal >= "
                f"{GOAL_OF_POST_OFFICE}x: {_met(_median(over), GOAL_OF_POST_OFFICE)}"
            )
        _cpu_table(write, rounds, options)
    profile = results.get("profile")
    if profile:
        write(
            f"\nProfile of the send workers (py-spy at {profile['rate_hz']} Hz on the CPU, every thread; "
            f"{profile['samples']:,} samples, {profile['messages']:,} messages in {profile['seconds']:.1f} s, "
            f"{profile['rate_under_py_spy']:,.0f} msg/s under py-spy): {profile['cpu_us_per_message']:,.0f} us of "
            "worker CPU a message"
        )
        for title, key in (
            ("by library of the innermost frame", "libraries"),
            ("innermost frames (self)", "self"),
            ("the product's functions, inclusive", "ours"),
        ):
            write(f"  {title}:                share   us/message")
            for frame, share, micros in profile[key]:
                write(f"    {share:6.1%} {micros:8.1f}  {frame}")
    write(f"\nprocesses left after the run: {results['left'] or 'none'}")


def _cpu_table(write, rounds: list[dict], options: dict) -> None:
    """CPU a message of each group of processes in each window, median of the rounds."""
    added = options["latency_ms"]
    windows = (
        ("ceiling", "ceiling"),
        ("campaign", "campaign"),
        ("proxy_cost", "ceiling via proxy +0 ms"),
        ("ceiling_latency", f"ceiling +{added:g} ms"),
        ("campaign_latency", f"campaign +{added:g} ms"),
    )
    write(
        "  CPU a message, us, by group of processes (/proc utime+stime from the window's first message at the sink to"
        " its last; workers: the pool and its children, or the ceiling's processes; PostgreSQL: the bench database's"
        " backends and the server's own processes; bench: this process; rest: the rest of the machine, other work"
        " included; machine: the whole machine, /proc/stat), and the machine's idle share"
    )
    write(f"  {'':<26}" + "".join(f"{short:>11}" for _, short in CPU_GROUPS) + f"{'idle':>7}")
    for key, label in windows:
        each = [cpu_per_message(r[key]) for r in rounds if key in r]
        each = [figures for figures in each if figures]
        if not each:
            continue
        cells = [statistics.median(figures[name] for figures in each) for name, _ in CPU_GROUPS]
        idle = statistics.median(figures["idle"] for figures in each)
        write(f"  {label:<26}" + "".join(f"{value:>11,.0f}" for value in cells) + f"{idle:>7.0%}")


def _met(value, goal) -> str:
    if value is None:
        return "-"
    return "met" if value >= goal else "NOT met"
