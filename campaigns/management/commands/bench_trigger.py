"""Benchmark of the trigger API (`POST /api/v1/campaigns/{id}/trigger`) on the production setup, with baselines
from the same run. Results are recorded in docs/benchmarks.md ("Trigger API").

It starts, as the Procfile does: gunicorn (`config.wsgi`, 2 sync workers, --preload), the transactional worker
pool (1 worker), the pool of the other queues (2 workers, at `nice -n 10`), the scheduler, and a recording SMTP
relay on loopback (`_bench_trigger_load`); the web server's URLconf adds two baseline views (config.bench_urls). Then:

1. Throughput, closed loop (wrk, a fixed number of connections, one thread): a no-op JSON view, a minimal view
   (one row inserted, one no-op job enqueued on commit) and the unitary trigger with one recipient and a new
   requestId per call; windows taking turns over several rounds, medians reported.
2. Trigger-to-SMTP latency, open loop (a load process calling at a fixed rate, 200/s for 30 s by default): the
   load process records when it sent each requestId, the relay when it accepted the message carrying it (in the
   subject), on one clock. Twice: alone, and while a 100,000-recipient scheduled campaign sends through the same
   relay (started by the scheduler when the campaign is activated).
3. With py-spy installed, a profile of the web workers under trigger load.

It runs in a database of its own (default campaigns_bench on 127.0.0.1, created and migrated if needed; never
the one the settings use) and Redis database 13 (flushed at the start). Every process it starts is stopped at
the end, and it checks that none is left.

    manage.py bench_trigger [--quick] [--rate 200] [--window 30] [--campaign-size 100000]
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from campaigns.management.commands import _bench_trigger_report as report
from config import bench as bench_helpers

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/campaigns_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
TRIGGER_DOMAIN = "trigger.bench.test"
CAMPAIGN_DOMAIN = "campaign.bench.test"
MINIMAL_TABLE = "bench_trigger_minimal"
VIEWS = ("no-op view", "minimal view", "trigger")
# Goals, printed next to the figures (never asserted).
GOAL_THROUGHPUT_RATIO = 0.7
GOAL_P99_SECONDS = 1.0

WRK_SCRIPT = r"""
-- bench_trigger: POST one unitary call per request, a new requestId each (the same body to every view).
local counter, prefix, recipients = 0, "x", 1000
thread_id = 0
local threads = {}
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end
function init(args)
  prefix = args[1]
  recipients = tonumber(args[2])
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TRIGGER_KEY")
function request()
  counter = counter + 1
  local id = prefix .. "-" .. thread_id .. "-" .. counter
  local body = '{"requestId":"' .. id .. '","context":{"request_id":"' .. id .. '"},"recipients":[{"identity":'
    .. '{"namespace":"email","value":"t' .. (counter % recipients) .. '@TRIGGER_DOMAIN"}}]}'
  return wrk.format(nil, nil, nil, body)
end
function done(summary, latency, requests)
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
""".replace("TRIGGER_DOMAIN", TRIGGER_DOMAIN)


@dataclass
class Bench:
    """What the measuring steps share: the run's directory, ports, the objects made, and the processes started."""

    directory: Path
    port: int
    smtp_port: int
    connections: int
    recipients: int
    database: str
    trigger_id: int = 0
    newsletter_id: int = 0
    secret: str = ""
    env: dict = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def trigger_path(self) -> str:
        return f"/api/v1/campaigns/{self.trigger_id}/trigger"

    @property
    def relay_log(self) -> Path:
        return self.directory / "relay.tsv"


class Command(BaseCommand):
    help = "Benchmark the trigger API on gunicorn + RQ workers + an SMTP relay, against baseline views."

    def add_arguments(self, parser):
        parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Its own PostgreSQL database.")
        parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Its own Redis database (flushed).")
        parser.add_argument("--port", type=int, default=8099, help="The web server's port on 127.0.0.1.")
        parser.add_argument("--smtp-port", type=int, default=2599, help="The relay's port on 127.0.0.1.")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (the Procfile's 2).")
        parser.add_argument("--connections", type=int, default=8, help="wrk connections (closed loop).")
        parser.add_argument("--seconds", type=float, default=10, help="Each throughput window.")
        parser.add_argument("--rounds", type=int, default=3, help="Throughput rounds (medians reported).")
        parser.add_argument("--rate", type=float, default=200, help="Open-loop trigger calls per second.")
        parser.add_argument("--window", type=float, default=30, help="Seconds of each open-loop window.")
        parser.add_argument("--campaign-size", type=int, default=100_000, help="Recipients of the large campaign.")
        parser.add_argument("--recipients", type=int, default=1000, help="Profiles the trigger calls cycle through.")
        parser.add_argument("--profile-seconds", type=float, default=20, help="py-spy on the web workers (0: none).")
        parser.add_argument(
            "--quick",
            action="store_true",
            help="A short run: 3 s windows, 1 round, 6 s open loop, a 20,000-recipient campaign, 6 s profile.",
        )
        parser.add_argument("--in-bench-database", action="store_true", help="(internal)")

    def handle(self, *args, **options):
        if options["quick"]:
            options.update(seconds=3, rounds=1, window=6, campaign_size=20_000, profile_seconds=6)
        if options["in_bench_database"]:
            return self._run(options)
        return self._launch(options)

    # The parent: the benchmark's database and environment, then the benchmark in a child ------------------------

    def _launch(self, options):
        url = options["database_url"]
        if not url.startswith(("postgres://", "postgresql://")):
            raise CommandError(f"bench_trigger measures the production setup, on PostgreSQL: {url!r} is not one.")
        if bench_helpers.database_name(url) == settings.DATABASES["default"]["NAME"]:
            raise CommandError("Refusing to run in the database the settings use: pass --database-url of another.")
        if shutil.which("wrk") is None:
            raise CommandError("wrk is needed for the closed-loop windows: apt-get install -y wrk")
        bench_helpers.create_database(url)
        passed = [
            f"--{name.replace('_', '-')}={options[name]}"
            for name in (
                "redis_url",
                "port",
                "smtp_port",
                "web_workers",
                "connections",
                "seconds",
                "rounds",
                "rate",
                "window",
                "campaign_size",
                "recipients",
                "profile_seconds",
            )
        ]
        if status := bench_helpers.run_in_bench_database("bench_trigger", url, options["redis_url"], passed):
            raise CommandError(f"the benchmark failed (exit status {status})")

    # Inside the benchmark's environment -------------------------------------------------------------------------

    def _run(self, options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_trigger measures PostgreSQL only.")
        from campaigns.management.commands import _bench_trigger_setup as setup

        directory = bench_helpers.fresh_directory("bench-trigger")
        bench = Bench(
            directory=directory,
            port=options["port"],
            smtp_port=options["smtp_port"],
            connections=options["connections"],
            recipients=options["recipients"],
            database=settings.DATABASES["default"]["NAME"],
            env=os.environ.copy(),
        )
        self._say("Setting up", heading=True)
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        setup.reset(MINIMAL_TABLE)
        made = setup.prepare(
            smtp_port=bench.smtp_port,
            trigger_recipients=bench.recipients,
            campaign_size=options["campaign_size"],
            trigger_domain=TRIGGER_DOMAIN,
            campaign_domain=CAMPAIGN_DOMAIN,
        )
        bench.trigger_id, bench.newsletter_id, bench.secret = made.trigger_id, made.newsletter_id, made.secret
        bench.env["BENCH_TRIGGER_KEY"] = bench.secret
        self._say(f"data ready in {time.perf_counter() - started:.1f} s: {made.summary}")
        results: dict = {"options": options, "setup": report.machine_setup(connection)}
        try:
            self._start_processes(bench, options["web_workers"])
            results["queries"] = setup.queries_of_one_call(bench.trigger_id, bench.secret, TRIGGER_DOMAIN)
            self._warm_up(bench)
            results["throughput"] = self._throughput(bench, options)
            if options["profile_seconds"]:
                results["profile"] = self._profile(bench, options["profile_seconds"])
            results["alone"] = self._latency_window(bench, options, "alone", campaign=False)
            results["campaign"] = self._latency_window(bench, options, "campaign", campaign=True)
        finally:
            left = self._stop_processes(bench)
        results["left"] = left
        (directory / "results.json").write_text(json.dumps(results, indent=1, default=str))
        report.print_all(self.stdout.write, results, goals=(GOAL_THROUGHPUT_RATIO, GOAL_P99_SECONDS))

    def _say(self, text: str, heading: bool = False) -> None:
        self.stdout.write(text, self.style.MIGRATE_HEADING if heading else None)
        self.stdout.flush()

    # Processes ---------------------------------------------------------------------------------------------------

    def _start_processes(self, bench: Bench, web_workers: int) -> None:
        python, manage = sys.executable, str(settings.BASE_DIR / "manage.py")
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        subprocess.run([python, manage, "preflight"], env=bench.env, check=True)  # noqa: S603 - as the Procfile
        web_env = {**bench.env, "DJANGO_SETTINGS_MODULE": "campaigns.management.commands._bench_trigger_settings"}
        serializer = ["--serializer", "rq.serializers.JSONSerializer"]
        commands = {
            "relay": (
                [python, "-m", "campaigns.management.commands._bench_trigger_load", "smtp"]
                + ["--port", str(bench.smtp_port), "--out", str(bench.relay_log)],
                bench.env,
            ),
            "web": (
                [gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{bench.port}", "--workers", str(web_workers)]
                + ["--preload", "--no-control-socket", "--access-logfile", "-"],
                web_env,
            ),
            "transactional": (
                [python, manage, "rqworker-pool", "transactional", "--num-workers", "1", *serializer],
                bench.env,
            ),
            "worker": (
                ["nice", "-n", "10", python, manage, "rqworker-pool", "triggered", "campaigns", "maintenance"]
                + ["--num-workers", "2", *serializer],
                bench.env,
            ),
            "scheduler": ([python, manage, "run_scheduler"], bench.env),
        }
        for name, (command, env) in commands.items():
            bench.processes[name] = bench_helpers.start_group(command, env=env, log=bench.directory / f"{name}.log")
        self._wait_until_ready(bench)
        pids = ", ".join(f"{name} {process.pid}" for name, process in bench.processes.items())
        self._say(f"started (process groups): {pids}")

    def _wait_until_ready(self, bench: Bench) -> None:
        import django_rq
        from rq import Worker

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, process in bench.processes.items():
                if process.poll() is not None:
                    raise CommandError(f"{name} exited ({process.returncode}): see {bench.directory / name}.log")
            workers = Worker.all(connection=django_rq.get_connection("transactional"))
            queues = [name for worker in workers for name in worker.queue_names()]
            if (
                report.http_status(bench.url("/bench/noop")) == 202
                and queues.count("transactional") >= 1
                and queues.count("campaigns") >= 2
                and bench.relay_log.exists()
            ):
                return
            time.sleep(0.5)
        raise CommandError(f"the processes did not get ready within 60 s: see the logs in {bench.directory}")

    def _cpu(self, bench: Bench, loader: subprocess.Popen | None = None) -> dict:
        """A snapshot of the CPU used so far by each group started, the load generator (wrk once waited for, or the
        open-loop process as it runs), PostgreSQL and Redis: config.bench.cpu_snapshot."""
        groups = {**bench.processes, **({"load generator": loader} if loader else {})}
        return bench_helpers.cpu_snapshot(groups, bench.database, waited_children="load generator")

    def _stop_processes(self, bench: Bench) -> list[str]:
        return bench_helpers.stop_groups(bench.processes, self._say)

    # Measures ----------------------------------------------------------------------------------------------------

    def _warm_up(self, bench: Bench) -> None:
        """A few seconds of each view (imports, connections, caches), and a first call sent end to end."""
        self._say("Warming up", heading=True)
        for view in VIEWS:
            self._wrk(bench, view, seconds=2, prefix=f"warm-{uuid.uuid4().hex[:6]}")
        self._settle(bench)

    def _throughput(self, bench: Bench, options) -> dict:
        self._say(
            f"Throughput: closed loop, wrk 1 thread {bench.connections} connections, {options['seconds']:g} s per "
            f"window, {options['rounds']} rounds",
            heading=True,
        )
        windows: dict[str, list[dict]] = {view: [] for view in VIEWS}
        for round_number in range(options["rounds"]):
            # The order turns each round, so that a moment of load on the shared machine falls on all alike.
            order = VIEWS[round_number % 3 :] + VIEWS[: round_number % 3]
            for view in order:
                cpu_before = self._cpu(bench)
                measured = self._wrk(bench, view, options["seconds"], prefix=f"tp{round_number}-{uuid.uuid4().hex[:6]}")
                measured["cpu"] = bench_helpers.cpu_used(cpu_before, self._cpu(bench))
                measured["settle"] = self._settle(bench)
                windows[view].append(measured)
                self._say(
                    f"  round {round_number + 1} {view:<13} {measured['rps']:8.1f} req/s  "
                    f"p50 {measured['p50_ms']:6.1f} ms  p99 {measured['p99_ms']:6.1f} ms  "
                    f"non-2xx/errors {measured['errors']}  "
                    f"(then {measured['settle']['seconds']:.1f} s until the queues were empty)"
                )
        return windows

    def _wrk(self, bench: Bench, view: str, seconds: float, prefix: str) -> dict:
        script = bench.directory / "trigger.lua"
        if not script.exists():
            script.write_text(WRK_SCRIPT)
        path = {"no-op view": "/bench/noop", "minimal view": "/bench/minimal", "trigger": bench.trigger_path}[view]
        command = [
            "wrk",
            "-t1",
            f"-c{bench.connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            bench.url(path),
            "--",
            prefix,
            str(bench.recipients),
        ]
        completed = subprocess.run(  # noqa: S603 - our own arguments
            command, env=bench.env, capture_output=True, text=True, check=True
        )
        line = next((line for line in completed.stdout.splitlines() if line.startswith("WRK ")), None)
        if line is None:
            raise CommandError(f"wrk printed no summary: {completed.stdout} {completed.stderr}")
        summary = json.loads(line[4:])
        return {**bench_helpers.wrk_figures(view, summary), "wrk": summary}

    def _settle(self, bench: Bench, timeout: float = 900) -> dict:
        """Wait until the web server has answered every call it holds (no new call for 2 s), the trigger's messages
        are sent and the transactional queue is empty: each window starts from rest."""
        import django_rq

        from campaigns.models import Delivery, TriggerRequest

        started = time.monotonic()
        sent_before = Delivery.objects.filter(run__campaign_id=bench.trigger_id, status="sent").count()
        busy = ("pending", "claimed", "in_flight")
        calls, still_since = -1, time.monotonic()
        while time.monotonic() - started < timeout:
            now_calls = TriggerRequest.objects.filter(campaign_id=bench.trigger_id).count()
            if now_calls != calls:
                calls, still_since = now_calls, time.monotonic()
            queue = django_rq.get_queue("transactional")
            waiting = Delivery.objects.filter(run__campaign_id=bench.trigger_id, status__in=busy).count()
            quiet = time.monotonic() - still_since >= 2
            if quiet and not waiting and not queue.count and not queue.started_job_registry.count:
                break
            time.sleep(0.25)
        else:
            raise CommandError(f"the calls and the transactional queue did not settle within {timeout:.0f} s")
        sent = Delivery.objects.filter(run__campaign_id=bench.trigger_id, status="sent").count() - sent_before
        return {"seconds": time.monotonic() - started, "sent": sent}

    def _profile(self, bench: Bench, seconds: float) -> dict:
        """py-spy on the web workers while wrk drives the trigger, on the wall clock: time waiting for PostgreSQL and
        Redis counts, as it does for a caller."""
        py_spy = Path(sys.executable).parent / "py-spy"
        if not py_spy.exists():
            self._say("py-spy is not installed (.venv/bin/pip install py-spy): no profile.")
            return {}
        workers = bench_helpers.children_of(bench.processes["web"].pid)
        self._say(f"Profile: py-spy on the web workers {workers} during {seconds:g} s of trigger load", heading=True)
        spies = []
        for pid in workers:
            out = bench.directory / f"profile-{pid}.txt"
            command = [str(py_spy), "record", "--pid", str(pid), "--rate", "100", "--duration", f"{seconds:g}"]
            command += ["--format", "raw", "--idle", "--output", str(out)]
            spy = subprocess.Popen(  # noqa: S603 - our own arguments
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
            )
            spies.append((out, spy))
        time.sleep(0.5)
        cpu_before = self._cpu(bench)
        measured = self._wrk(bench, "trigger", seconds, prefix=f"prof-{uuid.uuid4().hex[:6]}")
        cpu = bench_helpers.cpu_used(cpu_before, self._cpu(bench))
        for _, spy in spies:
            spy.wait(timeout=60)
        self._settle(bench)
        analysed = report.analyse_profile(report.read_collapsed([out for out, _ in spies]))
        return {"rps_under_py_spy": measured["rps"], "web_cores": cpu.get("web", 0.0), **analysed}

    def _latency_window(self, bench: Bench, options, name: str, campaign: bool) -> dict:
        from campaigns.models import Delivery, Run

        label = f"with a {options['campaign_size']:,}-recipient campaign sending" if campaign else "alone"
        self._say(
            f"Trigger to SMTP, open loop: {options['rate']:g} calls/s for {options['window']:g} s, {label}",
            heading=True,
        )
        relay = report.RelayLog(bench.relay_log)
        relay.read()
        if campaign:
            from campaigns.management.commands._bench_trigger_setup import activate_newsletter

            activated = time.monotonic()
            activate_newsletter(bench.newsletter_id)
            # The window opens once the campaign is sending in earnest (the scheduler started it, a worker
            # planned it, the send jobs reached the relay).
            while relay.campaign_count() < 500:
                if time.monotonic() - activated > 600:
                    raise CommandError("the large campaign did not start sending within 600 s")
                time.sleep(0.2)
                relay.read()
            self._say(
                f"  the campaign reached the relay {relay.campaign_times[0] - activated:.1f} s after its activation"
            )
        out = bench.directory / f"openloop-{name}.json"
        # The load process in a session of its own, its CPU counted as it runs (it is waited for after the window).
        loader = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "campaigns.management.commands._bench_trigger_load", "openloop"]
            + ["--port", str(bench.port), "--path", bench.trigger_path, "--key-env", "BENCH_TRIGGER_KEY"]
            + ["--rate", f"{options['rate']:g}", "--duration", f"{options['window']:g}"]
            + ["--recipients", str(bench.recipients), "--prefix", f"ol-{name}-{uuid.uuid4().hex[:6]}"]
            + ["--out", str(out)],
            env=bench.env,
            start_new_session=True,
        )
        cpu_before = self._cpu(bench, loader)
        time.sleep(options["window"] + 0.2)
        cpu = bench_helpers.cpu_used(cpu_before, self._cpu(bench, loader))
        newsletter_left = None
        if campaign:
            newsletter_left = Delivery.objects.filter(
                run__campaign_id=bench.newsletter_id, status__in=("pending", "claimed", "in_flight")
            ).count()
        if loader.wait() != 0:
            raise CommandError(f"the load generator failed (exit status {loader.returncode})")
        loaded = json.loads(out.read_text())
        window_seconds = loaded["ended"] - loaded["started"]
        accepted = {call["id"]: call["sent"] for call in loaded["calls"] if call["status"] == 202}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            relay.read()
            if all(request_id in relay.trigger_times for request_id in accepted):
                break
            time.sleep(0.5)
        result = report.latency_result(loaded, relay, accepted)
        result["cpu"] = cpu
        if campaign:
            in_window = relay.campaign_between(loaded["started"], loaded["ended"])
            result["campaign"] = {
                "sent_in_window": in_window,
                "rate_in_window": in_window / window_seconds,
                "left_at_window_end": newsletter_left,
                "sent_before_window": relay.campaign_between(0, loaded["started"]),
            }
            from campaigns.management.commands._bench_trigger_setup import stop_newsletter

            stop_newsletter(bench.newsletter_id)
            relay.read()
            result["campaign"]["sent_in_all"] = relay.campaign_count()
            result["campaign"]["run_states"] = list(
                Run.objects.filter(campaign_id=bench.newsletter_id).values_list("state", flat=True)
            )
        self._say(report.latency_line(result))
        result["settle"] = self._settle(bench)
        return result
