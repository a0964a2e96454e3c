"""Measuring and reporting for `manage.py bench_trigger`: the relay's records, the latency figures, the reading of a
py-spy profile, and the printed tables (the CPU used by each process group is measured by config.bench)."""

import math
import os
import platform
import re
import statistics
import subprocess
import urllib.error
import urllib.request
from collections import Counter
from importlib.metadata import version
from pathlib import Path

# --- Processes ------------------------------------------------------------------------------------------------
# The CPU of each group of processes is measured by config.bench (cpu_snapshot, cpu_used), shared with bench_send.


def http_status(url: str) -> int:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:  # noqa: S310 - our loopback server
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


# --- The relay's records and the latency figures ----------------------------------------------------------------


class RelayLog:
    """The relay's records, read as they grow: the first acceptance of each trigger call, the campaign's times."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.trigger_times: dict[str, float] = {}
        self.duplicates = 0
        self.campaign_times: list[float] = []

    def read(self) -> None:
        with open(self.path) as lines:
            lines.seek(self.offset)
            chunk = lines.read()
        complete = chunk.rpartition("\n")[0]
        self.offset += len(complete.encode()) + (1 if complete else 0)
        for line in complete.splitlines():
            at, kind, ident = line.split("\t")
            if kind == "campaign":
                self.campaign_times.append(float(at))
            elif ident in self.trigger_times:
                self.duplicates += 1
            else:
                self.trigger_times[ident] = float(at)

    def campaign_count(self) -> int:
        return len(self.campaign_times)

    def campaign_between(self, start: float, end: float) -> int:
        return sum(1 for at in self.campaign_times if start <= at <= end)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_result(loaded: dict, relay: RelayLog, accepted: dict[str, float]) -> dict:
    calls = loaded["calls"]
    window = loaded["ended"] - loaded["started"]
    latencies = [relay.trigger_times[i] - sent for i, sent in accepted.items() if i in relay.trigger_times]
    answers = [call["answered"] - call["sent"] for call in calls if call["answered"] is not None]
    # From the 202 to the relay: the asynchronous part alone (queue, worker, SMTP).
    after_answer = [
        relay.trigger_times[call["id"]] - call["answered"]
        for call in calls
        if call["status"] == 202 and call["id"] in relay.trigger_times
    ]
    return {
        "calls": len(calls),
        "offered_rate": len(calls) / window if window > 0 else math.nan,
        "window_seconds": window,
        "loader_lag_max_ms": max((call["sent"] - call["scheduled"] for call in calls), default=0) * 1000,
        "statuses": dict(Counter(str(call["status"]) for call in calls)),
        "accepted": len(accepted),
        "arrived": len(latencies),
        "duplicates": relay.duplicates,
        "http_p50_ms": percentile(answers, 50) * 1000,
        "http_p99_ms": percentile(answers, 99) * 1000,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=math.nan) * 1000,
        "after_answer_p50_ms": percentile(after_answer, 50) * 1000,
        "after_answer_p99_ms": percentile(after_answer, 99) * 1000,
    }


def latency_line(result: dict) -> str:
    line = (
        f"  {result['calls']} calls at {result['offered_rate']:.1f}/s (HTTP statuses {result['statuses']}, answered "
        f"p50 {result['http_p50_ms']:.1f} ms p99 {result['http_p99_ms']:.1f} ms); at the relay: "
        f"{result['arrived']}/{result['accepted']}, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"max {result['max_ms']:.1f} ms; from the answer to the relay p50 {result['after_answer_p50_ms']:.1f} ms, "
        f"p99 {result['after_answer_p99_ms']:.1f} ms"
    )
    if "campaign" in result:
        campaign = result["campaign"]
        line += (
            f"\n  the campaign meanwhile: {campaign['sent_in_window']:,} messages accepted by the relay during the "
            f"window ({campaign['rate_in_window']:.0f}/s), {campaign['left_at_window_end']:,} still to send at its "
            f"end; {campaign['sent_in_all']:,} in all before it was stopped"
        )
    return line


# --- py-spy ---------------------------------------------------------------------------------------------------

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Where the library files sit, cut from frame names.
_SITE = re.compile(r"^.*?/(site-packages|python3\.\d+)/")


def read_collapsed(paths: list[Path]) -> Counter:
    """py-spy's raw (collapsed) stacks of several files: `frame;frame;... count`, root first."""
    stacks: Counter = Counter()
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[tuple(_frame_name(frame) for frame in stack.split(";"))] += int(count)
    return stacks


def _frame_name(frame: str) -> str:
    found = _FRAME.match(frame)
    if not found:
        return frame
    return f"{_SITE.sub('', found['file'])}:{found['function']}"


_OURS = ("campaigns/", "audiences/", "channels/", "permissions/", "config/")
# Frames of redis-py that only run when a client, its pool or a connection is made or thrown away.
_REDIS_NEW_CONNECTION = (
    "redis/client.py:Redis.from_url",
    "redis/client.py:Redis.__init__",
    "redis/client.py:Redis.__del__",
    "redis/client.py:Redis.close",
    "redis/connection.py:ConnectionPool.make_connection",
    "redis/connection.py:ConnectionPool.disconnect",
    "redis/connection.py:ConnectionPool.close",
    "redis/connection.py:AbstractConnection.connect",
)
# Each sample goes to the first category that matches its stack (innermost frame last).
_CATEGORIES = (
    (
        "Redis: a new client and connection per use (TCP connect, HELLO/CLIENT SETINFO/SELECT, "
        "importlib.metadata for the driver's version)",
        lambda stack, leaf: any(frame.startswith(_REDIS_NEW_CONNECTION) for frame in stack),
    ),
    ("Redis: commands (the key's rate limit, the RQ enqueue)", lambda stack, leaf: any("redis/" in f for f in stack)),
    ("RQ: building the job", lambda stack, leaf: any(f.startswith("rq/") for f in stack)),
    (
        "PostgreSQL round trips: psycopg sending a query and waiting for the answer (PostgreSQL's own time, and the "
        "hand-over of the CPU to it and back, included)",
        lambda stack, leaf: leaf.startswith(
            (
                "psycopg/connection.py:Connection.wait",
                "psycopg/waiting.py",
                "psycopg/client_cursor.py:ClientCursorMixin._execute_send",
                "psycopg/_connection_base.py:BaseConnection._exec_command",
            )
        ),
    ),
    ("psycopg: adapting parameters, reading rows", lambda stack, leaf: leaf.startswith(("psycopg/", "psycopg_"))),
    ("Django ORM: building SQL, making model objects", lambda stack, leaf: leaf.startswith("django/db/")),
    (
        "django-ninja and pydantic: parsing, validating, serializing",
        lambda stack, leaf: leaf.startswith(("ninja/", "pydantic")),
    ),
    ("logging", lambda stack, leaf: leaf.startswith("logging/")),
    ("Django: request handling, middleware", lambda stack, leaf: leaf.startswith("django")),
    (
        "gunicorn: reading the request, writing the answer, the access log",
        lambda stack, leaf: leaf.startswith("gunicorn"),
    ),
    ("the product's own code (innermost frame)", lambda stack, leaf: leaf.startswith(_OURS)),
)


def _category(stack: tuple[str, ...]) -> str:
    leaf = stack[-1] if stack else ""
    for name, matches in _CATEGORIES:
        if matches(stack, leaf):
            return name
    return f"other ({leaf.partition(':')[0]})"


def _is_waiting_for_a_connection(stack: tuple[str, ...]) -> bool:
    """A sync gunicorn worker between requests, in its accept loop's select."""
    return bool(stack) and stack[-1].startswith("gunicorn/workers/sync.py:SyncWorker.wait")


def analyse_profile(stacks: Counter, top: int = 30) -> dict:
    """Where the samples of busy workers go: by category (each sample once), and by function of the product's own
    code (inclusive: a function's share counts the functions it calls). Samples of a worker waiting for its next
    connection are counted apart."""
    total = sum(stacks.values())
    waiting = sum(count for stack, count in stacks.items() if _is_waiting_for_a_connection(stack))
    busy = {stack: count for stack, count in stacks.items() if not _is_waiting_for_a_connection(stack)}
    busy_total = sum(busy.values()) or 1
    categories: Counter = Counter()
    ours: Counter = Counter()
    for stack, count in busy.items():
        categories[_category(stack)] += count
        for frame in set(stack):
            if frame.startswith(_OURS):
                ours[frame] += count
    return {
        "samples": total,
        "waiting_for_connections": waiting / total if total else 0,
        "categories": [(name, count / busy_total) for name, count in categories.most_common()],
        "ours": [(frame, count / busy_total) for frame, count in ours.most_common(top)],
    }


# --- Printing ---------------------------------------------------------------------------------------------------


def machine_setup(connection) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    import django_rq

    redis_version = django_rq.get_connection("transactional").info("server")["redis_version"]
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split("\n")[0]  # noqa: S607
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    packages = ("django", "gunicorn", "rq", "django-rq", "psycopg", "redis", "django-ninja", "pydantic")
    return {
        "cpu": f"{os.cpu_count()} x {model}",
        "python": platform.python_version(),
        "postgresql": postgres,
        "redis": redis_version,
        "wrk": " ".join(wrk.split()[:2]),
        "packages": ", ".join(f"{name} {version(name)}" for name in packages),
        "load_average_at_start": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


def print_all(write, results: dict, goals: tuple[float, float]) -> None:
    ratio_goal, p99_goal = goals
    options = results["options"]
    setup = results["setup"]
    write("\n" + "=" * 100)
    write("Trigger API benchmark")
    write(
        f"machine: {setup['cpu']}; load average at the start {setup['load_average_at_start']}, at the end "
        f"{' '.join(f'{value:.2f}' for value in os.getloadavg())}"
    )
    write(f"Python {setup['python']}, PostgreSQL {setup['postgresql']}, Redis {setup['redis']}, {setup['wrk']}")
    write(setup["packages"])
    queries = results.get("queries")
    if queries:
        write(
            f"one trigger call (one recipient): {len(queries['sql'])} SQL queries, {queries['redis_round_trips']} "
            "Redis round trips"
        )

    throughput = results["throughput"]
    medians = {
        view: {name: statistics.median(w[name] for w in windows) for name in ("rps", "p50_ms", "p99_ms")}
        for view, windows in throughput.items()
    }
    rounds = len(next(iter(throughput.values())))
    write(
        f"\nThroughput, closed loop: wrk 1 thread, {options['connections']} connections, "
        f"{options['seconds']:g} s windows, median of {rounds} rounds (each round's figures in brackets)"
    )
    write(f"{'':<14}{'requests/s':>28}{'p50 ms':>26}{'p99 ms':>26}{'errors':>8}")
    for view, windows in throughput.items():
        cells = []
        for name, width in (("rps", 28), ("p50_ms", 26), ("p99_ms", 26)):
            each = "/".join(f"{w[name]:.0f}" if name == "rps" else f"{w[name]:.1f}" for w in windows)
            value = f"{medians[view][name]:.0f}" if name == "rps" else f"{medians[view][name]:.1f}"
            cells.append(f"{value} [{each}]".rjust(width))
        errors = sum(w["errors"] for w in windows)
        write(f"{view:<14}{''.join(cells)}{errors:>8}")
    trigger_ratio = medians["trigger"]["rps"] / medians["minimal view"]["rps"]
    minimal_ratio = medians["minimal view"]["rps"] / medians["no-op view"]["rps"]
    per_round = [t["rps"] / m["rps"] for t, m in zip(throughput["trigger"], throughput["minimal view"], strict=True)]
    write(
        f"trigger / minimal view: {trigger_ratio:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in per_round)})   "
        f"goal >= {ratio_goal}x: {'met' if trigger_ratio >= ratio_goal else 'NOT met'}"
    )
    write(f"minimal view / no-op view: {minimal_ratio:.2f}x")
    write(
        "\nCores used during the throughput windows (median of rounds; PostgreSQL: the benchmark database's backends "
        "and the server's own processes; rest of the machine: work by others)"
    )
    _cpu_table(write, {view: [w["cpu"] for w in windows] for view, windows in throughput.items()})
    write("CPU per request (ms): cores x 1000 / requests per second, median of rounds")
    names = ("web", "transactional", "PostgreSQL", "Redis")
    write(f"{'':<14}" + "".join(f"{name:>14}" for name in names))
    for view, windows in throughput.items():
        cells = [statistics.median(w["cpu"].get(name, 0.0) * 1000 / w["rps"] for w in windows) for name in names]
        write(f"{view:<14}" + "".join(f"{value:>14.2f}" for value in cells))
    drains = [w["settle"] for w in throughput["trigger"]]
    write(
        "after each trigger window the transactional worker sent the backlog in: "
        + ", ".join(f"{d['seconds']:.1f} s ({d['sent']:,} messages)" for d in drains)
    )

    write(
        f"\nTrigger to SMTP acceptance, open loop at {options['rate']:g} calls/s for {options['window']:g} s "
        "(one call, one recipient, a new requestId each)"
    )
    write(
        f"{'':<34}{'calls':>7}{'202':>7}{'arrived':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'HTTP p50':>10}{'HTTP p99':>10}{'202>SMTP p50':>14}{'p99':>8}"
    )
    for key, label in (("alone", "alone"), ("campaign", f"during a {options['campaign_size']:,} campaign")):
        r = results.get(key)
        if not r:
            continue
        write(
            f"{label:<34}{r['calls']:>7}{r['accepted']:>7}{r['arrived']:>9}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{r['max_ms']:>9.1f}{r['http_p50_ms']:>10.1f}{r['http_p99_ms']:>10.1f}"
            f"{r['after_answer_p50_ms']:>14.1f}{r['after_answer_p99_ms']:>8.1f}"
        )
    for key in ("alone", "campaign"):
        r = results.get(key)
        if r:
            met = r["p99_ms"] < p99_goal * 1000 and r["arrived"] == r["accepted"]
            write(
                f"  {key}: p99 {r['p99_ms'] / 1000:.3f} s, goal < {p99_goal:g} s with every message arrived: "
                f"{'met' if met else 'NOT met'}"
            )
    if results.get("campaign", {}).get("campaign"):
        c = results["campaign"]["campaign"]
        write(
            f"  the campaign during the window: {c['sent_in_window']:,} messages accepted by the relay "
            f"({c['rate_in_window']:.0f}/s), {c['left_at_window_end']:,} still to send when the window closed "
            f"({c['sent_before_window']:,} before it, {c['sent_in_all']:,} in all before it was stopped)"
        )
    write("Cores used during the open-loop windows")
    _cpu_table(write, {key: [results[key]["cpu"]] for key in ("alone", "campaign") if results.get(key)})

    profile = results.get("profile")
    if profile:
        write(
            f"\nProfile of the web workers under trigger load (py-spy at 100 Hz on both workers, wall clock; "
            f"{profile['samples']:,} samples, {profile['waiting_for_connections']:.0%} of them waiting for the next "
            f"connection and left out below; {profile['rps_under_py_spy']:.0f} req/s under py-spy, the web workers "
            f"on CPU {profile['web_cores']:.2f} cores)"
        )
        write("  where a call's time goes, by category:")
        for name, share in profile["categories"]:
            write(f"    {share:6.1%}  {name}")
        write("  the product's own functions, inclusive (the time of what they call included):")
        for frame, share in profile["ours"]:
            write(f"    {share:6.1%}  {frame}")
    write(f"\nprocesses left after the run: {results['left'] or 'none'}")


def _cpu_table(write, by_window: dict[str, list[dict]]) -> None:
    names = [
        "web",
        "transactional",
        "worker",
        "scheduler",
        "relay",
        "load generator",
        "PostgreSQL",
        "Redis",
        "rest of the machine",
        "machine busy",
    ]
    write(f"{'':<14}" + "".join(f"{name[:13]:>14}" for name in names))
    for window, samples in by_window.items():
        cells = [statistics.median(sample.get(name, 0.0) for sample in samples) for name in names]
        write(f"{window[:13]:<14}" + "".join(f"{value:>14.2f}" for value in cells))
