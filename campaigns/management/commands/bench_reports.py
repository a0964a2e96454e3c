"""Benchmark of issue 16's performance goals, each part on its own flag (both without one). Results are recorded in
docs/benchmarks.md ("Reports and tracking") and saved to var/bench-reports/results.json.

1. `--tracking`: the open pixel and the click redirect against a GET no-op view on the Procfile's web setup
   (gunicorn, 2 sync workers, --preload, DEBUG off; _bench_reports_tracking), driven by wrk from token lists of a
   sent campaign of `--tracking-deliveries` messages whose configuration tracks opens and clicks. Windows take
   turns over `--rounds` rounds, medians reported, open/no-op and click/no-op printed beside the goal (>= 0.7x);
   then the Engagement table's counts against the requests wrk completed and the access log's answers.
2. `--reports`: a weekly campaign's run of `--deliveries` messages (1,000,000) with engagement, written in SQL into
   the real tables (_bench_reports_data); the counters' compaction (`campaigns.services.tallies.tallies_compact`,
   when it exists); then, in the same process, one `SELECT count(*)` of the run's deliveries against the server
   time of the status partial and the report pages (_bench_reports_pages), the pages' ratios to the count beside
   the goal (<= 1.0x). Then `--past-runs` earlier runs of the same size, and the same measures again: they must not
   grow.

It runs in a database of its own (default campaigns_bench_reports on DATABASE_URL's server, created and migrated;
never the one the settings use), with Redis database 12 (flushed). Campaigns and everything under them are emptied
at each start, profiles are kept. The processes it starts are stopped at the end, and it checks that none is left.

    manage.py bench_reports [--tracking] [--reports] [--seconds 10] [--rounds 3] [--deliveries 1000000]
        [--past-runs 4] [--repeat 7] [--database-url postgres://.../db]
"""

import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from config import bench as bench_helpers

BENCH_DATABASE = "campaigns_bench_reports"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
PARTS = ("tracking", "reports")
# Goals, printed next to the figures (never asserted).
GOAL_TRACKING_RATIO = 0.7
GOAL_PAGE_RATIO = 1.0
TALLIES = "campaigns.services.tallies"
_PASSED = (
    "redis_url",
    "port",
    "web_workers",
    "connections",
    "seconds",
    "rounds",
    "tracking_deliveries",
    "repeat_share",
    "deliveries",
    "past_runs",
    "repeat",
)


class Command(BaseCommand):
    help = "Benchmark the tracking endpoints against a no-op view, and the report pages against a count of a run."

    def add_arguments(self, parser):
        parser.add_argument("--tracking", action="store_true", help="Only the tracking endpoints.")
        parser.add_argument("--reports", action="store_true", help="Only the status partial and report pages.")
        parser.add_argument(
            "--database-url", help=f"Its own PostgreSQL database (default: {BENCH_DATABASE} on DATABASE_URL's server)."
        )
        parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Its own Redis database (flushed).")
        parser.add_argument("--port", type=int, default=8098, help="The web server's port on 127.0.0.1.")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (the Procfile's 2).")
        parser.add_argument("--connections", type=int, default=8, help="wrk connections (closed loop).")
        parser.add_argument("--seconds", type=float, default=10, help="Each tracking window.")
        parser.add_argument("--rounds", type=int, default=3, help="Tracking rounds (medians reported).")
        parser.add_argument(
            "--tracking-deliveries", type=int, default=100_000, help="Messages of the tracked campaign."
        )
        parser.add_argument(
            "--repeat-share", type=float, default=0.1, help="Share of token-list entries that repeat an earlier one."
        )
        parser.add_argument("--deliveries", type=int, default=1_000_000, help="Messages of each report run.")
        parser.add_argument("--past-runs", type=int, default=4, help="Earlier runs added for the second measure.")
        parser.add_argument("--repeat", type=int, default=7, help="Timed turns of each page (median shown).")
        parser.add_argument("--in-bench-database", action="store_true", help="(internal)")

    def handle(self, *args, **options):
        if options["in_bench_database"]:
            return self._run(options)
        return self._launch(options)

    # The parent: the benchmark's database and environment, then the benchmark in a child ------------------------

    def _launch(self, options):
        chosen = [part for part in PARTS if options[part]] or list(PARTS)
        if "tracking" in chosen and shutil.which("wrk") is None:
            raise CommandError("wrk is needed for the tracking windows: apt-get install -y wrk")
        url = bench_helpers.bench_database(
            command="bench_reports", url=options["database_url"], default_name=BENCH_DATABASE
        )
        self._say(f"Benchmark database: {bench_helpers.database_name(url)}", heading=True)
        passed = [f"--{name.replace('_', '-')}={options[name]}" for name in _PASSED]
        passed += [f"--{part}" for part in chosen]
        if status := bench_helpers.run_in_bench_database("bench_reports", url, options["redis_url"], passed):
            raise CommandError(f"the benchmark failed (exit status {status})")

    # Inside the benchmark's database ----------------------------------------------------------------------------

    def _run(self, options):
        bench_helpers.refuse_unless_bench_database()
        if connection.vendor != "postgresql":
            raise CommandError("bench_reports measures PostgreSQL only.")
        call_command("migrate", verbosity=0)
        directory = Path(settings.VAR_DIR) / "bench-reports"
        directory.mkdir(parents=True, exist_ok=True)
        results_path = directory / "results.json"
        saved = json.loads(results_path.read_text()) if results_path.exists() else {}
        chosen = [part for part in PARTS if options[part]] or list(PARTS)
        for part in chosen:
            started = time.monotonic()
            saved[part] = getattr(self, f"_{part}")(options)
            saved[part]["finished_at"] = timezone.now().isoformat()
            saved[part]["minutes"] = (time.monotonic() - started) / 60
            results_path.write_text(json.dumps(saved, indent=1, default=str))
        self._say(f"\nresults saved to {results_path}; load average at the end: {_load()}")

    def _say(self, text: str, heading: bool = False) -> None:
        self.stdout.write(text, self.style.MIGRATE_HEADING if heading else None)
        self.stdout.flush()

    def _setup(self) -> dict:
        from campaigns.management.commands import _bench_trigger_report

        if shutil.which("wrk"):
            return _bench_trigger_report.machine_setup(connection)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return {"cpu": os.cpu_count(), "postgresql": cursor.fetchone()[0], "load_average_at_start": _load()}

    # --tracking ---------------------------------------------------------------------------------------------------

    def _tracking(self, options) -> dict:
        from campaigns.management.commands import _bench_reports_data as data
        from campaigns.management.commands import _bench_reports_tracking as tracking

        self._say("\n# Tracking endpoints against a no-op view", heading=True)
        results: dict = {"options": options, "setup": self._setup()}
        data.reset()
        self._say(data.ensure_recipients(options["tracking_deliveries"]))
        made = data.make_campaign(name="Bench reports: tracked newsletter", weekly=False)
        run = data.make_run(made, occurrence=timezone.now() - timedelta(hours=2), sending=timedelta(minutes=30))
        filled = data.fill_run(
            made, run, count=options["tracking_deliveries"], seed=1, engagement=False, sent_only=True
        )
        data.mark_completed(made.campaign_id)
        data.vacuum_analyze()
        self._say(
            f"{made.summary}: run {run.pk} of {filled['deliveries']:,} messages sent "
            f"({filled['deliveries_seconds']:.1f} s)"
        )
        with tempfile.TemporaryDirectory(prefix="bench-reports-") as scratch:
            bench = tracking.Tracking(
                directory=bench_helpers.fresh_directory("bench-reports/tracking"),
                scratch=Path(scratch),
                port=options["port"],
                connections=options["connections"],
                database=settings.DATABASES["default"]["NAME"],
                env=os.environ.copy(),
            )
            tracking.write_script(bench)
            started = time.perf_counter()
            tokens = tracking.write_token_lists(run.pk, bench.scratch, repeat_share=options["repeat_share"])
            self._say(f"token lists written in {time.perf_counter() - started:.1f} s: {tokens}")
            results["data"] = {"run": run.pk, "deliveries": filled["deliveries"], "tokens": tokens}
            gunicorn = str(Path(sys.executable).parent / "gunicorn")
            try:
                tracking.start_web(bench, options["web_workers"], gunicorn, bench_helpers.manage())
                self._say(f"gunicorn started (process group {bench.processes['web'].pid})")
                self._say("Warming up: 2 s of each view", heading=True)
                results["warm_up"] = [tracking.window(bench, view, 2) for view in tracking.VIEWS]
                results["windows"] = self._tracking_windows(bench, options)
            finally:
                # Stopped first: a web process writes the hits it still keeps as it stops.
                results["left"] = bench_helpers.stop_groups(bench.processes, self._say)
            results["check"] = tracking.check(bench, run.pk)
        tracking.print_results(self.stdout.write, results, goal=GOAL_TRACKING_RATIO)
        self._say(f"processes left after the run: {results['left'] or 'none'}")
        return results

    def _tracking_windows(self, bench, options) -> dict:
        from campaigns.management.commands import _bench_reports_tracking as tracking

        self._say(
            f"Windows: {options['seconds']:g} s each, {options['rounds']} rounds, the order turning", heading=True
        )
        windows: dict[str, list[dict]] = {view: [] for view in tracking.VIEWS}
        views = tracking.VIEWS
        for number in range(options["rounds"]):
            for view in views[number % 3 :] + views[: number % 3]:
                measured = tracking.window(bench, view, options["seconds"])
                windows[view].append(measured)
                self._say(
                    f"  round {number + 1} {view:<15} {measured['rps']:8.1f} req/s  p50 {measured['p50_ms']:6.1f} ms  "
                    f"p99 {measured['p99_ms']:6.1f} ms  errors {measured['errors']}  cores: web "
                    f"{measured['cpu'].get('web', 0):.2f}, PostgreSQL {measured['cpu'].get('PostgreSQL', 0):.2f}"
                )
        return windows

    # --reports ----------------------------------------------------------------------------------------------------

    def _reports(self, options) -> dict:
        from campaigns.management.commands import _bench_reports_data as data
        from campaigns.management.commands import _bench_reports_pages as pages

        self._say("\n# Status partial and report pages against a count of the run", heading=True)
        count, past = options["deliveries"], options["past_runs"]
        results: dict = {"options": options, "setup": self._setup(), "runs": [], "sets": []}
        data.reset()
        self._say(data.ensure_recipients(count))
        made = data.make_campaign(name="Bench reports: weekly newsletter", weekly=True)
        occurrences = data.weekly_occurrences(timezone.now(), 1 + past)
        self._say(made.summary)
        user = data.viewer()
        measured_run = None
        for stage, occurrence_list in (("the measured run", occurrences[:1]), ("past runs", occurrences[1:])):
            for occurrence in occurrence_list:
                run = data.make_run(made, occurrence=occurrence, sending=timedelta(hours=2))
                measured_run = measured_run or run
                filled = data.fill_run(made, run, count=count, seed=run.pk, engagement=True)
                results["runs"].append({**filled, "occurrence": run.occurrence})
                rows = sum(filled["engagement_rows"].values())
                self._say(
                    f"{stage}: run {run.pk} ({run.occurrence}): {filled['deliveries']:,} deliveries in "
                    f"{filled['deliveries_seconds']:.1f} s, {rows:,} engagement rows in "
                    f"{filled['engagement_seconds']:.1f} s"
                )
            if stage == "the measured run":
                results["ledger"] = data.ledger_summary(measured_run.pk)
                self._say(f"the measured run's ledger: {results['ledger']}")
            if not occurrence_list:
                continue
            prepared = self._compact_and_vacuum()
            runs = 1 + (past if stage == "past runs" else 0)
            self._say(f"Measuring with {runs} run(s): {prepared}", heading=True)
            measured = self._measure_pages(made.campaign_id, measured_run, user, options["repeat"])
            measured.update(runs=runs, deliveries=count * runs, prepared=prepared)
            results["sets"].append(measured)
            for label, ms in measured["medians_ms"].items():
                self._say(f"  {label}: {ms:.1f} ms")
            for note in measured["notes"]:
                self._say(f"  note: {note}")
        self._say("\nReports: server time, median of turns", heading=True)
        pages.print_sets(self.stdout.write, results["sets"], goal=GOAL_PAGE_RATIO)
        return results

    def _measure_pages(self, campaign_id: int, run, user, repeat: int) -> dict:
        """Every page with the run complete; then the status partial and the run's report with the run marked as
        sending (what the partial polls every 2 s shows then: progress, rate, time left), the run put back after."""
        from campaigns.management.commands import _bench_reports_pages as pages
        from campaigns.models import Run

        measured = pages.measure(campaign_id=campaign_id, run_id=run.pk, user=user, repeat=repeat)
        Run.objects.filter(pk=run.pk).update(state=Run.State.SENDING, finished_at=None, heartbeat_at=timezone.now())
        try:
            sending = pages.measure(
                campaign_id=campaign_id,
                run_id=run.pk,
                user=user,
                repeat=repeat,
                only=("status partial", "run report"),
                suffix=", run sending",
            )
        finally:
            Run.objects.filter(pk=run.pk).update(state=run.state, finished_at=run.finished_at, heartbeat_at=None)
        return pages.merged(measured, sending)

    def _compact_and_vacuum(self) -> dict:
        """The counters' compaction as the scheduler's tick would do it (until nothing is left), then VACUUM
        (ANALYZE)."""
        from campaigns.management.commands import _bench_reports_data as data

        prepared: dict = {}
        if importlib.util.find_spec(TALLIES) is None or not hasattr(
            importlib.import_module(TALLIES), "tallies_compact"
        ):
            prepared["compaction"] = f"{TALLIES}.tallies_compact does not exist: nothing compacted"
        else:
            tallies_compact = importlib.import_module(TALLIES).tallies_compact
            started, passes = time.perf_counter(), []
            while (compacted := tallies_compact(now=timezone.now())) and len(passes) < 100:
                passes.append(compacted)
            prepared["compaction"] = (
                f"tallies_compact: {len(passes)} pass(es) compacting {sum(passes)} run(s) in "
                f"{time.perf_counter() - started:.1f} s"
            )
        prepared["vacuum_analyze_seconds"] = round(data.vacuum_analyze(), 1)
        return prepared


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
