"""Benchmark of a scheduled campaign's send on the production setup, against the ceiling measured in the same run.
Results are recorded in docs/benchmarks.md ("Campaign send").

It starts, as the Procfile does, the scheduler and the pool of the bulk queues (`rqworker-pool triggered campaigns
maintenance` at `nice -n 10`, 2 then 4 workers), and Postfix's `smtp-sink` on loopback as the relay
(`_bench_send_load`, which counts messages where they arrive). Then, for each pool size, in rounds whose order
turns:

1. The ceiling: as many processes as workers, each pushing pre-rendered message bytes with plain smtplib over one
   reused connection.
2. The campaign: a scheduled marketing campaign (subject and HTML with five profile attributes and a loop) to
   100,000 profiles with email consent (1,000,000 with --million), made and activated through the product's
   services; the scheduler starts its run, a worker plans it, the pool sends it.
3. With --latency-ms (5 by default): both again through a TCP proxy adding that much to every round trip, after
   the ceiling through the proxy with nothing added (the proxy's own cost); the campaign for a window of
   --latency-window seconds, then stopped.
4. With --post-office: django-post_office on the same work (`_bench_send_post_office`).

Messages per second are counted at the sink, from its first message to its last of the window; over the same
span, the CPU a message of each group of processes (the send workers, PostgreSQL, smtp-sink, its counter, the
proxies, the scheduler, Redis, this process, the rest of the machine, the whole machine) from /proc, and the
machine's idle share (config.bench.CpuSampler). With py-spy installed, a profile of the send workers follows.
It runs in a database of its own (default campaigns_bench_send on 127.0.0.1, never the one the settings use) and
Redis database 12 (flushed); every process it starts is stopped at the end, and it checks that none is left.

    manage.py bench_send [--quick] [--million] [--post-office] [--rounds 3] [--workers 2 4]
"""

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from campaigns.management.commands import _bench_send_report as report
from config import bench as bench_helpers

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/campaigns_bench_send"
DEFAULT_POST_OFFICE_URL = "postgres://postgres@127.0.0.1:5432/campaigns_bench_po"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
LOAD = "campaigns.management.commands._bench_send_load"
POST_OFFICE = "campaigns.management.commands._bench_send_post_office"
SINK = "/usr/sbin/smtp-sink"
PROFILE_HZ = 100
CPU_INTERVAL = 0.2  # seconds between two readings of /proc during a window


@dataclass
class Bench:
    directory: Path
    smtp_port: int
    options: dict
    database: str = ""
    env: dict = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    sink: "report.SinkLog | None" = None

    @property
    def proxy_port(self) -> int:
        return self.smtp_port + 1

    @property
    def bare_proxy_port(self) -> int:
        return self.smtp_port + 2


class Command(BaseCommand):
    help = "Benchmark a scheduled campaign's send (RQ workers, smtp-sink) against the plain-smtplib ceiling."

    def add_arguments(self, parser):
        parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="Its own PostgreSQL database.")
        parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Its own Redis database (flushed).")
        parser.add_argument("--smtp-port", type=int, default=2600, help="The sink; the proxies take the next two.")
        parser.add_argument("--recipients", type=int, default=100_000, help="The campaign's recipients.")
        parser.add_argument("--million", action="store_true", help="1,000,000 recipients.")
        parser.add_argument("--workers", type=int, nargs="+", default=[2, 4], help="Pool sizes measured.")
        parser.add_argument(
            "--send-jobs", type=int, default=0, help="CAMPAIGNS_SEND_JOBS_PER_RUN (0: as many as workers)."
        )
        parser.add_argument("--rounds", type=int, default=3, help="Rounds (medians reported).")
        parser.add_argument("--ceiling-messages", type=int, default=100_000, help="At most, for the ceiling.")
        parser.add_argument("--latency-ms", type=float, default=5, help="Added to each round trip (0: no such run).")
        parser.add_argument("--latency-window", type=float, default=30, help="Seconds of each latency window.")
        parser.add_argument("--post-office", action="store_true", help="Also django-post_office on the same work.")
        parser.add_argument("--post-office-messages", type=int, default=20_000, help="Its emails a round.")
        parser.add_argument("--post-office-database-url", default=DEFAULT_POST_OFFICE_URL)
        parser.add_argument("--send-timeout", type=float, default=900, help="Longest wait for one send.")
        parser.add_argument("--profile-seconds", type=float, default=20, help="py-spy on the send workers (0: none).")
        parser.add_argument(
            "--quick",
            action="store_true",
            help="10,000 recipients, 1 round, 10 s latency windows, 5,000 post_office emails, a 10 s profile.",
        )
        parser.add_argument("--in-bench-database", action="store_true", help="(internal)")

    def handle(self, *args, **options):
        if options["quick"]:
            options.update(
                recipients=10_000, rounds=1, latency_window=10, post_office_messages=5_000, profile_seconds=10
            )
        if options["million"]:
            options["recipients"] = 1_000_000
        if options["in_bench_database"]:
            return self._run(options)
        return self._launch(options)

    # The parent: the benchmark's databases and environment, then the benchmark in a child ----------------------

    def _launch(self, options):
        url = options["database_url"]
        if not url.startswith(("postgres://", "postgresql://")):
            raise CommandError(f"bench_send measures the production setup, on PostgreSQL: {url!r} is not one.")
        if settings.DATABASES["default"]["NAME"] in (
            bench_helpers.database_name(url),
            bench_helpers.database_name(options["post_office_database_url"]),
        ):
            raise CommandError("Refusing to run in the database the settings use: pass --database-url of another.")
        if not Path(SINK).exists():
            raise CommandError(
                f"{SINK} is needed: apt-get install -y postfix (then stop its daemon: postfix stop), see "
                "docs/benchmarks.md"
            )
        bench_helpers.create_database(url)
        if options["post_office"]:
            _install_post_office()
            bench_helpers.create_database(options["post_office_database_url"])
        passed = [f"--{name.replace('_', '-')}={options[name]}" for name in _PASSED]
        passed += ["--workers", *map(str, options["workers"])]
        passed += ["--post-office"] if options["post_office"] else []
        if status := bench_helpers.run_in_bench_database("bench_send", url, options["redis_url"], passed):
            raise CommandError(f"the benchmark failed (exit status {status})")

    # Inside the benchmark's environment -------------------------------------------------------------------------

    def _run(self, options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_send measures PostgreSQL only.")
        from campaigns.management.commands import _bench_send_setup as setup

        directory = bench_helpers.fresh_directory("bench-send")
        bench = Bench(
            directory=directory,
            smtp_port=options["smtp_port"],
            options=options,
            database=settings.DATABASES["default"]["NAME"],
            env=os.environ.copy(),
        )
        self._say("Setting up", heading=True)
        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        setup.reset()
        summary = setup.prepare_profiles(options["recipients"])
        self._say(f"data ready in {time.perf_counter() - started:.1f} s: {summary}")
        results: dict = {"options": options, "setup": report.machine_setup(connection), "rounds": []}
        try:
            self._start_relay(bench)
            for round_number in range(options["rounds"]):
                order = options["workers"] if round_number % 2 == 0 else options["workers"][::-1]
                for workers in order:
                    self._say(f"Round {round_number + 1}, {workers} workers", heading=True)
                    results["rounds"].append(self._round(bench, round_number, workers))
            if options["profile_seconds"]:
                results["profile"] = self._profile(bench, min(options["workers"]))
        finally:
            results["left"] = bench_helpers.stop_groups(bench.processes, self._say)
        (directory / "results.json").write_text(json.dumps(results, indent=1, default=str))
        report.print_all(self.stdout.write, results)

    def _say(self, text: str, heading: bool = False) -> None:
        self.stdout.write(text, self.style.MIGRATE_HEADING if heading else None)
        self.stdout.flush()

    # Processes ---------------------------------------------------------------------------------------------------

    def _start(self, bench: Bench, name: str, command: list[str], env: dict | None = None) -> subprocess.Popen:
        process = bench_helpers.start_group(command, env=env or bench.env, log=bench.directory / f"{name}.log")
        bench.processes[name] = process
        return process

    def _start_relay(self, bench: Bench) -> None:
        """The sink, the two proxies (with the latency, and with none), and the scheduler, for the whole run."""
        python = sys.executable
        out = bench.directory / "sink.tsv"
        self._start(bench, "sink", [python, "-m", LOAD, "sink", "--port", str(bench.smtp_port), "--out", str(out)])
        latency = bench.options["latency_ms"]
        if latency:
            for name, port, added in (("proxy", bench.proxy_port, latency), ("bare proxy", bench.bare_proxy_port, 0)):
                command = [python, "-m", LOAD, "proxy", "--port", str(port), "--upstream", str(bench.smtp_port)]
                self._start(bench, name, command + ["--round-trip-ms", f"{added:g}"])
        subprocess.run(bench_helpers.manage("preflight"), env=bench.env, check=True)  # noqa: S603 - as the Procfile
        self._start(bench, "scheduler", bench_helpers.manage("run_scheduler"))
        deadline = time.monotonic() + 30
        while not out.exists() or not report.listening(bench.smtp_port):
            if time.monotonic() > deadline:
                raise CommandError(f"the sink did not start within 30 s: see {bench.directory / 'sink.log'}")
            time.sleep(0.2)
        bench.sink = report.SinkLog(out)
        self._say("started (process groups): " + ", ".join(f"{n} {p.pid}" for n, p in bench.processes.items()))

    def _start_pool(self, bench: Bench, workers: int) -> subprocess.Popen:
        from rq import Worker

        from config import queues

        env = {**bench.env, "CAMPAIGNS_SEND_JOBS_PER_RUN": str(bench.options["send_jobs"] or workers)}
        command = ["nice", "-n", "10", *bench_helpers.manage("rqworker-pool", "triggered", "campaigns", "maintenance")]
        command += ["--num-workers", str(workers), "--serializer", "rq.serializers.JSONSerializer"]
        pool = self._start(bench, "pool", command, env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if pool.poll() is not None:
                raise CommandError(f"the pool exited ({pool.returncode}): see {bench.directory / 'pool.log'}")
            found = Worker.all(connection=queues.connection(queues.CAMPAIGNS))
            if sum("campaigns" in worker.queue_names() for worker in found) >= workers:
                return pool
            time.sleep(0.3)
        raise CommandError(f"the pool's {workers} workers did not register within 60 s")

    def _stop_pool(self, bench: Bench) -> dict:
        """Stop the pool; returns the peak RSS of each of its workers (VmHWM), read just before."""
        pool = bench.processes["pool"]
        peaks = report.peak_rss_of_workers(pool.pid)
        left = bench_helpers.stop_groups({"pool": pool}, self._say)
        del bench.processes["pool"]
        if left:
            raise CommandError(f"the pool left processes behind: {left}")
        return peaks

    # Measures ----------------------------------------------------------------------------------------------------

    def _round(self, bench: Bench, round_number: int, workers: int) -> dict:
        options = bench.options
        result = {"round": round_number + 1, "workers": workers}
        result["ceiling"] = self._ceiling(bench, workers, bench.smtp_port, seconds=options["send_timeout"])
        result["campaign"] = self._campaign(bench, workers, bench.smtp_port, window=None)
        if options["latency_ms"]:
            window = options["latency_window"]
            result["proxy_cost"] = self._ceiling(bench, workers, bench.bare_proxy_port, seconds=window)
            result["ceiling_latency"] = self._ceiling(bench, workers, bench.proxy_port, seconds=window)
            result["campaign_latency"] = self._campaign(bench, workers, bench.proxy_port, window=window)
        if options["post_office"]:
            result["post_office"] = self._post_office(bench, workers)
        return result

    def _ceiling(self, bench: Bench, workers: int, port: int, seconds: float) -> dict:
        messages = min(bench.options["recipients"], bench.options["ceiling_messages"])
        each = messages // workers
        base = bench.sink.count()
        senders = []
        try:
            for i in range(workers):
                senders.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                        [sys.executable, "-m", LOAD, "ceiling", "--port", str(port), "--first", str(i * each)]
                        + ["--count", str(each), "--seconds", f"{seconds:g}"],
                        stdout=subprocess.PIPE,
                        text=True,
                        start_new_session=True,  # a group of their own: their CPU is measured as they run
                    )
                )
            sent = 0
            with self._cpu_sampler(bench, senders) as sampler:
                for sender in senders:
                    out, _ = sender.communicate(timeout=seconds + 120)
                    if sender.returncode:
                        raise CommandError(f"a ceiling sender failed (exit status {sender.returncode})")
                    sent += int(out.split()[-1])
                measured = bench.sink.wait_for(base, sent, timeout=30)
        finally:
            for sender in senders:
                if sender.poll() is None:
                    sender.kill()
                    sender.wait()
        measured["cpu"] = _window_cpu(sampler, measured)
        label = {bench.smtp_port: "ceiling", bench.proxy_port: "ceiling +latency"}.get(port, "ceiling via proxy 0 ms")
        self._say(f"  {label:<24}{report.window_line(measured)}")
        return measured

    def _campaign(self, bench: Bench, workers: int, port: int, window: float | None) -> dict:
        from campaigns.management.commands import _bench_send_setup as setup

        setup.reset()
        pool = self._start_pool(bench, workers)
        label = "campaign" if window is None else "campaign +latency"
        try:
            with self._cpu_sampler(bench, pool) as sampler:
                campaign_id = setup.make_campaign(name=f"Bench send {time.time_ns()}", smtp_port=port)
                base = bench.sink.count()
                activated, activated_wall = time.monotonic(), datetime.now(UTC)
                setup.activate(campaign_id)
                recipients = bench.options["recipients"]
                if window is None:
                    measured = bench.sink.wait_for(base, recipients, timeout=bench.options["send_timeout"])
                else:
                    measured = bench.sink.wait_for(base, recipients, timeout=window + 600, window=window)
                    setup.stop(campaign_id)
                times = setup.run_times(campaign_id)
                if window is None:
                    # The send jobs record the last outcomes after the sink has the messages: wait for the run's end.
                    deadline = time.monotonic() + 60
                    while times.state != "complete" and time.monotonic() < deadline:
                        time.sleep(0.5)
                        times = setup.run_times(campaign_id)
        finally:
            measured_rss = self._stop_pool(bench)
        measured["cpu"] = _window_cpu(sampler, measured)
        if measured["first_at"]:
            # From the activation to the first message: the scheduler's start of the run, the planning.
            measured["cpu_before_first_message"] = sampler.seconds_between(activated, measured["first_at"])
        measured.update(
            first_message_seconds=(measured["first_at"] - activated) if measured["first_at"] else None,
            planning_seconds=(times.sending_at - times.created_at).total_seconds() if times.sending_at else None,
            run_created_seconds=(times.created_at - activated_wall).total_seconds(),
            run_state=times.state,
            statuses=times.statuses,
            rss_mib=measured_rss,
        )
        self._say(f"  {label:<24}{report.window_line(measured)}")
        return measured

    def _cpu_sampler(self, bench: Bench, senders) -> bench_helpers.CpuSampler:
        """The CPU of each group, sampled from /proc (config.bench.CpuSampler): the send workers (the pool and its
        children, or the ceiling's processes), smtp-sink and its counter, the proxies, the scheduler, PostgreSQL
        (the bench database's backends and the server's own processes), Redis and this process."""
        groups = {
            "send workers": senders,
            "sink counter": bench.processes["sink"],
            "proxy": [bench.processes[name] for name in ("proxy", "bare proxy") if name in bench.processes],
            "scheduler": bench.processes["scheduler"],
        }

        def take() -> dict:
            return bench_helpers.cpu_snapshot(groups, bench.database, commands={"smtp-sink": "smtp-sink"}, own="bench")

        return bench_helpers.CpuSampler(take, interval=CPU_INTERVAL)

    def _post_office(self, bench: Bench, workers: int) -> dict:
        env = {
            **bench.env,
            "BENCH_PO_DATABASE_URL": bench.options["post_office_database_url"],
            "BENCH_PO_SMTP_PORT": str(bench.smtp_port),
        }
        count = bench.options["post_office_messages"]
        with open(bench.directory / "post_office.log", "ab") as log:
            prepare = [sys.executable, "-m", POST_OFFICE, "prepare", "--count", str(count)]
            subprocess.run(prepare, env=env, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=600)  # noqa: S603
            base = bench.sink.count()
            send = [sys.executable, "-m", POST_OFFICE, "send", "--processes", str(workers)]
            send += ["--lockfile", str(bench.directory / "post_office")]
            subprocess.run(  # noqa: S603 - our own interpreter and arguments
                send, env=env, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=bench.options["send_timeout"]
            )
        measured = bench.sink.wait_for(base, count, timeout=30)
        self._say(f"  {'django-post_office':<24}{report.window_line(measured)}")
        return measured

    def _profile(self, bench: Bench, workers: int) -> dict:
        """py-spy on each send worker, every thread, on the CPU only, for a while once the campaign's messages
        arrive."""
        from campaigns.management.commands import _bench_send_setup as setup

        py_spy = Path(sys.executable).parent / "py-spy"
        if not py_spy.exists():
            self._say("py-spy is not installed (.venv/bin/pip install py-spy): no profile.")
            return {}
        seconds = bench.options["profile_seconds"]
        self._say(f"Profile: py-spy on the {workers} workers for {seconds:g} s of the campaign", heading=True)
        setup.reset()
        pool = self._start_pool(bench, workers)
        spies = []
        try:
            campaign_id = setup.make_campaign(name=f"Bench send profile {time.time_ns()}", smtp_port=bench.smtp_port)
            base = bench.sink.count()
            setup.activate(campaign_id)
            bench.sink.wait_for(base, 1, timeout=300)
            for pid in report.worker_pids(pool.pid):
                out = bench.directory / f"profile-{pid}.txt"
                command = [str(py_spy), "record", "--pid", str(pid), "--rate", str(PROFILE_HZ), "--duration"]
                command += [f"{seconds:g}", "--format", "raw", "--threads", "--nonblocking", "--output", str(out)]
                spy = subprocess.Popen(  # noqa: S603 - our own arguments
                    command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                )
                spies.append((out, spy))
            before = bench.sink.count()
            started = time.monotonic()
            for _, spy in spies:
                spy.wait(timeout=seconds + 60)
            messages = bench.sink.count() - before
            elapsed = time.monotonic() - started
            setup.stop(campaign_id)
        finally:
            for _, spy in spies:
                if spy.poll() is None:
                    spy.kill()
                    spy.wait()
            self._stop_pool(bench)
        analysed = report.analyse_profile([out for out, _ in spies], rate=PROFILE_HZ, messages=messages)
        rate = messages / elapsed
        return {"messages": messages, "seconds": elapsed, "rate_under_py_spy": rate, "rate_hz": PROFILE_HZ, **analysed}


def _window_cpu(sampler: bench_helpers.CpuSampler, measured: dict) -> dict | None:
    """The CPU seconds each group used from the window's first message at the sink to its last."""
    if not measured["first_at"] or not measured["last_at"]:
        return None
    return sampler.seconds_between(measured["first_at"], measured["last_at"])


_PASSED = (
    "redis_url",
    "smtp_port",
    "recipients",
    "send_jobs",
    "rounds",
    "ceiling_messages",
    "latency_ms",
    "latency_window",
    "post_office_messages",
    "post_office_database_url",
    "send_timeout",
    "profile_seconds",
)


def _install_post_office() -> None:
    """django-post_office is only for this comparison: installed in the virtualenv when asked for, never a
    requirement of the product."""
    if importlib.util.find_spec("post_office") is None:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "django-post_office"]
        subprocess.run(pip, check=True)  # noqa: S603 - our own interpreter, a fixed package
