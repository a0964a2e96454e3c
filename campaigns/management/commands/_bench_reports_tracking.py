"""`manage.py bench_reports --tracking`: the open pixel (`/t/o/<token>/`) and the click redirect (`/t/c/<token>/`)
against a GET no-op view (config.bench_urls `bench/noop-get`), on the web setup of the Procfile: gunicorn
`config.wsgi`, 2 sync workers, --preload, the access log, DEBUG off, with bench_trigger's settings module (the
bench URLconf).

wrk (one thread, a fixed number of connections, closed loop) takes each request's path from a file, in order, from
an offset on: the token lists of write_token_lists, every message once and some again. Each
window of a kind starts where the last ended, so a run hits mostly distinct rows. Requests carry a browser's
User-Agent and come from 127.0.0.1 long after sending: campaigns.tracking.request_machine_reason and the seconds
rule take them for a person's.
Windows take turns over several rounds; afterwards the Engagement table's counts are checked against the requests
wrk completed and the responses gunicorn's access log shows."""

import json
import random
import re
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.core.management.base import CommandError
from django.db import connection

from campaigns import tracking
from campaigns.management.commands import _bench_reports_data as data
from campaigns.models import Run
from config import bench as bench_helpers

VIEWS = ("no-op view", "open pixel", "click redirect")
NOOP_PATH = "/bench/noop-get"
SETTINGS_MODULE = "campaigns.management.commands._bench_trigger_settings"
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15"
)
WRK_SCRIPT = r"""
-- bench_reports --tracking: GET one path a request, taken in order from a file (one a line) from an offset on.
local paths, count, offset, counter = {}, 0, 0, 0
function init(args)
  for line in io.lines(args[1]) do
    count = count + 1
    paths[count] = line
  end
  offset = tonumber(args[2])
end
wrk.headers["User-Agent"] = "USER_AGENT"
wrk.headers["Accept"] = "text/html,image/avif,image/webp,image/png,*/*;q=0.8"
wrk.headers["Accept-Language"] = "fr-FR,fr;q=0.9,en;q=0.8"
function request()
  local path = paths[(offset + counter) % count + 1]
  counter = counter + 1
  return wrk.format("GET", path)
end
function done(summary, latency, requests)
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
""".replace("USER_AGENT", USER_AGENT)
_ACCESS = re.compile(r'"GET (\S+) HTTP/[\d.]+" (\d{3}) ')


@dataclass
class Tracking:
    """What the windows share: the run's directories, the server, each kind's path file and where it is at."""

    directory: Path  # logs, kept
    scratch: Path  # the wrk script and the token lists (a temporary directory)
    port: int
    connections: int
    database: str
    env: dict
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VIEWS, 0))
    completed: Counter = field(default_factory=Counter)  # wrk's answered requests (no error status) by view

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def web_log(self) -> Path:
        return self.directory / "web.log"


_PIXEL_SOURCE = re.compile(r'src="([^"]+)"')


def open_path(delivery_id: int) -> str:
    """The path of a message's open pixel, as the send path writes it (campaigns.tracking.with_open_pixel)."""
    return urlsplit(_PIXEL_SOURCE.search(tracking.with_open_pixel("", delivery_id)).group(1)).path


def click_path(delivery_id: int, version_id: int, position: int) -> str:
    return urlsplit(tracking.link_urls(delivery_id, version_id, data.LINKS)[position]).path


def write_token_lists(run_id: int, directory: Path, *, repeat_share: float, seed: int = 16) -> dict:
    """open.txt and click.txt in `directory`: one tracking path a line, that of every message of the run that went out
    once, in a shuffled order (a click on one of its links, drawn at random), and after about `repeat_share` of them
    one seen before again (a second load, a second click). What each holds."""
    run = Run.objects.get(pk=run_id)
    sent = run.deliveries.filter(status__in=data.ENGAGED)
    ids = list(sent.order_by("id").values_list("id", flat=True))
    chance = random.Random(seed)
    made = {}
    for kind in ("open", "click"):
        order = ids[:]
        chance.shuffle(order)
        lines: list[str] = []
        for delivery_id in order:
            lines.append(
                open_path(delivery_id)
                if kind == "open"
                else click_path(delivery_id, run.version_id, chance.randrange(data.LINKS))
            )
            if chance.random() < repeat_share:
                lines.append(lines[chance.randrange(len(lines))])
        (directory / f"{kind}.txt").write_text("\n".join(lines) + "\n")
        made[kind] = {"paths": len(lines), "distinct": len(set(lines))}
    return made


def start_web(bench: Tracking, web_workers: int, gunicorn: str, manage: list[str]) -> None:
    """gunicorn as the Procfile runs it (after `manage.py preflight`), with the bench URLconf."""
    subprocess.run(manage + ["preflight"], env=bench.env, check=True)  # noqa: S603 - our interpreter, as the Procfile
    command = [gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{bench.port}", "--workers", str(web_workers)]
    command += ["--preload", "--no-control-socket", "--access-logfile", "-"]
    env = {**bench.env, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}
    bench.processes["web"] = bench_helpers.start_group(command, env=env, log=bench.web_log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if bench.processes["web"].poll() is not None:
            raise CommandError(f"gunicorn exited ({bench.processes['web'].returncode}): see {bench.web_log}")
        if _get_status(bench.url(NOOP_PATH)) == 200:
            return
        time.sleep(0.5)
    raise CommandError(f"gunicorn did not answer within 60 s: see {bench.web_log}")


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our loopback server
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def write_script(bench: Tracking) -> None:
    (bench.scratch / "tracking.lua").write_text(WRK_SCRIPT)
    (bench.scratch / "noop.txt").write_text(NOOP_PATH + "\n")


def _paths_file(bench: Tracking, view: str) -> Path:
    return bench.scratch / {"no-op view": "noop.txt", "open pixel": "open.txt", "click redirect": "click.txt"}[view]


def cpu(bench: Tracking) -> dict:
    """config.bench.cpu_snapshot of gunicorn, wrk (waited for), PostgreSQL and Redis."""
    return bench_helpers.cpu_snapshot(bench.processes, bench.database, waited_children="load generator")


def window(bench: Tracking, view: str, seconds: float) -> dict:
    """One closed-loop window of wrk on `view`, then a wait until the server has answered all it took. The next
    window of the view starts past every path this one may have sent (answered or in flight)."""
    before = cpu(bench)
    command = ["wrk", "-t1", f"-c{bench.connections}", f"-d{seconds:g}s", "--timeout", "10s"]
    command += ["-s", str(bench.scratch / "tracking.lua"), bench.url(NOOP_PATH), "--"]
    command += [str(_paths_file(bench, view)), str(bench.offsets[view])]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603 - our arguments
    line = next((line for line in completed.stdout.splitlines() if line.startswith("WRK ")), None)
    if line is None:
        raise CommandError(f"wrk printed no summary: {completed.stdout} {completed.stderr}")
    used = bench_helpers.cpu_used(before, cpu(bench))
    summary = json.loads(line[4:])
    settled = settle(bench)
    bench.offsets[view] += summary["requests"] + bench.connections
    bench.completed[view] += summary["requests"] - summary["status"]
    return {
        **bench_helpers.wrk_figures(view, summary),
        "cpu": used,
        "settle_seconds": settled,
        "wrk": summary,
    }


def settle(bench: Tracking, quiet: float = 1.0, timeout: float = 30) -> float:
    """Wait until the access log has not grown for `quiet` seconds: every request taken has been answered."""
    started = last_change = time.monotonic()
    size = -1
    while time.monotonic() - started < timeout:
        now_size = bench.web_log.stat().st_size
        if now_size != size:
            size, last_change = now_size, time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            break
        time.sleep(0.1)
    return time.monotonic() - started


def access_counts(bench: Tracking) -> dict[str, dict[str, int]]:
    """Responses in gunicorn's access log by view and status."""
    counts: dict[str, Counter] = {view: Counter() for view in VIEWS}
    with open(bench.web_log, errors="replace") as lines:
        for line in lines:
            found = _ACCESS.search(line)
            if not found:
                continue
            path, status = found.groups()
            if path.startswith("/t/o/"):
                counts["open pixel"][status] += 1
            elif path.startswith("/t/c/"):
                counts["click redirect"][status] += 1
            elif path == NOOP_PATH:
                counts["no-op view"][status] += 1
    return {view: dict(counter) for view, counter in counts.items()}


def engagement_counts(run_id: int) -> dict[str, dict]:
    """The Engagement table for the run: rows, requests counted (the sum of `count`) and people's / machines'."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT e.kind, e.machine, count(*), coalesce(sum(e.count), 0)::bigint
            FROM campaigns_engagement e JOIN campaigns_delivery d ON d.id = e.delivery_id
            WHERE d.run_id = %s GROUP BY e.kind, e.machine
            """,
            [run_id],
        )
        rows = cursor.fetchall()
    counted = {}
    for kind in ("open", "click"):
        mine = [row for row in rows if row[0] == kind]
        counted[kind] = {
            "rows": sum(row[2] for row in mine),
            "requests": sum(row[3] for row in mine),
            "machine_requests": sum(row[3] for row in mine if row[1]),
        }
    return counted


def check(bench: Tracking, run_id: int) -> dict:
    """The requests each tracking view answered, by wrk's count and by the access log, against what the Engagement
    table counted."""
    access = access_counts(bench)
    counted = engagement_counts(run_id)
    result = {}
    for view, kind, status in (("open pixel", "open", "200"), ("click redirect", "click", "302")):
        result[view] = {
            "wrk_completed": bench.completed[view],
            "access_log_ok": access[view].get(status, 0),
            "access_log_statuses": access[view],
            "engagement_requests": counted[kind]["requests"],
            "engagement_rows": counted[kind]["rows"],
            "engagement_machine_requests": counted[kind]["machine_requests"],
            "ok_status": status,
        }
    result["no-op view"] = {"wrk_completed": bench.completed["no-op view"], "access_log_statuses": access["no-op view"]}
    return result


def print_results(write, results: dict, *, goal: float) -> None:
    options, windows = results["options"], results["windows"]
    data = results["data"]
    write(
        f"\nTracking endpoints: wrk 1 thread, {options['connections']} connections, {options['seconds']:g} s windows, "
        f"median of {options['rounds']} rounds (each round's figure in brackets); gunicorn {options['web_workers']} "
        f"sync workers, --preload, DEBUG off"
    )
    write(
        f"data: {data['deliveries']:,} sent messages; token lists: opens {data['tokens']['open']['paths']:,} paths "
        f"({data['tokens']['open']['distinct']:,} distinct), clicks {data['tokens']['click']['paths']:,} "
        f"({data['tokens']['click']['distinct']:,} distinct); User-Agent: a browser's (Safari), from 127.0.0.1, an "
        "hour after sending: a person's requests for campaigns.tracking.request_machine_reason"
    )
    medians = {
        view: {name: statistics.median(w[name] for w in runs) for name in ("rps", "p50_ms", "p99_ms")}
        for view, runs in windows.items()
    }
    write(f"{'':<16}{'requests/s':>30}{'p50 ms':>24}{'p99 ms':>24}{'errors':>8}")
    for view, runs in windows.items():
        cells = []
        for name, width in (("rps", 30), ("p50_ms", 24), ("p99_ms", 24)):
            form = "{:.0f}" if name == "rps" else "{:.1f}"
            each = "/".join(form.format(w[name]) for w in runs)
            cells.append(f"{form.format(medians[view][name])} [{each}]".rjust(width))
        write(f"{view:<16}{''.join(cells)}{sum(w['errors'] for w in runs):>8}")
    for view in VIEWS[1:]:
        ratio = medians[view]["rps"] / medians["no-op view"]["rps"]
        rounds = ", ".join(
            f"{t['rps'] / n['rps']:.2f}" for t, n in zip(windows[view], windows["no-op view"], strict=True)
        )
        write(
            f"{view} / no-op view: {ratio:.2f}x (rounds: {rounds})   goal >= {goal}x: "
            f"{'met' if ratio >= goal else 'NOT met'}"
        )
    write("CPU a request (ms: cores x 1000 / requests a second, median of rounds) and cores used")
    names = ("web", "PostgreSQL", "load generator", "rest of the machine", "machine busy")
    write(f"{'':<16}{'web ms':>10}{'PG ms':>10}" + "".join(f"{name[:14]:>16}" for name in names))
    for view, runs in windows.items():
        per = [statistics.median(w["cpu"].get(name, 0.0) * 1000 / w["rps"] for w in runs) for name in names[:2]]
        cores = [statistics.median(w["cpu"].get(name, 0.0) for w in runs) for name in names]
        write(f"{view:<16}" + "".join(f"{v:>10.2f}" for v in per) + "".join(f"{v:>16.2f}" for v in cores))
    write("Counted against answered (every window, warm-up included):")
    for view in VIEWS[1:]:
        c = results["check"][view]
        same = c["engagement_requests"] == c["access_log_ok"]
        write(
            f"  {view}: wrk completed {c['wrk_completed']:,}; access log {c['access_log_ok']:,} answered "
            f"{c['ok_status']} (all statuses: {c['access_log_statuses']}); Engagement counted "
            f"{c['engagement_requests']:,} requests in {c['engagement_rows']:,} rows "
            f"({c['engagement_machine_requests']:,} as machines'): "
            f"{'equal to the access log' if same else 'DIFFERENT from the access log'}, "
            f"{c['engagement_requests'] - c['wrk_completed']:+,} against wrk"
        )
    write(
        "  (wrk counts a request once its answer arrives within the window; those in flight when a window closes, at "
        f"most {options['connections']} a window, are served and counted by the server but not by wrk)"
    )
