"""Benchmarks of profiles at a million, on PostgreSQL, each a section that runs on its own:

- `--search`: the profiles page's search. N profiles (default 1,000,000) with an email and a phone (each also an
  identity) and a first and last name, generated in SQL; then the page's reads for an exact email, an exact phone,
  an email prefix, a first name, a first name and the start of a last name, a search matching nothing, the list
  without a search, and deep keyset pages, each through the page's own selector
  (`audiences.selectors.profiles.profiles_search_page`: the search, the page of 50, how many match), against a
  primary-key lookup (`#id`) through the same code in the same run: medians of interleaved turns, the ratio to
  the lookup (goal: within 5x), and the EXPLAIN ANALYZE of every statement each search sends.
- `--imports`: a contacts file with the defects of real exports (bad emails, phones and numbers, repeated emails,
  opt-outs; `write_contacts`) of 20,000 and 1,000,000 rows (`--import-rows`), imported through the product's
  path: queued as the mapping page queues it, run by a burst `rqworker` of the pool's worker class on the
  maintenance queue; and in the same run its baseline (`baseline`): the same parsing and the same validation,
  then one COPY per chunk into one plain table. Rows per second of both and their ratio (goal: the import at
  >= 0.7x), and the peak RSS of the worker at each size (goal: flat, <= 1.2x from the smallest to the largest).
  Each size is measured in 3 turns (1 at a million), baseline and import alternating, the profile tables
  emptied before each.

Without a flag every section runs. It runs in a database of its own (default `campaigns_bench_imports` on the
server of DATABASE_URL, created if missing), never in the one the settings use. The data is kept for the next
run (--rebuild makes it anew); the imports section empties the profile tables, so the search section, which
runs after it, generates its profiles again. Results are recorded in docs/benchmarks.md ("Imports", "Profile
search").

    manage.py bench_imports [--imports] [--import-rows 20000 1000000] [--search] [--profiles 1000000]
        [--repeat 21] [--database-url postgres://.../db]
"""

import csv
import itertools
import os
import random
import statistics
import subprocess
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings
from psycopg.types.json import Jsonb

from audiences import csv_files
from audiences.models import AttributeDefinition, Profile, ProfileImport
from audiences.schemas import ProfileSchema
from audiences.selectors.profiles import profiles_search_page
from audiences.services.attributes import attributes_declare
from audiences.services.imports import RowChecker, collecting_new_objects_only, import_create, import_start
from config import bench

BENCH_DATABASE = "campaigns_bench_imports"
SECTIONS = ("imports", "search")
IMPORT_GOAL = 0.7  # the import at >= 0.7x of its baseline's rows per second (printed, never asserted)
IMPORT_CHUNK = 1000  # the import's own chunk (IMPORTS_CHUNK_ROWS)
IMPORT_MAPPING = {
    "email": "email",
    "phone": "phone",
    "crm_id": "identity:crm_id",
    "first_name": "attribute:first_name",
    "city": "attribute:city",
    "points": "attribute:points",
    "signed_up": "attribute:signed_up",
    "tags": "attribute:tags",
    "newsletter": "consent:email",
}
IMPORT_TYPES = {
    "first_name": "string",
    "city": "string",
    "points": "number",
    "signed_up": "date",
    "tags": "string_list",
}
PAGE_SIZE = 50  # the profiles page's (audiences.views.profiles.PROFILES_PER_PAGE)
GOAL_RATIO = 5.0  # each search within 5x of a primary-key lookup (printed, never asserted)
LOOKUP = "primary key (#id)"

FIRST_NAMES = (
    "Marie Jean Pierre Sophie Luc Camille Nicolas Julie Thomas Emma Louis Léa Hugo Chloé Paul Manon Arthur Inès "
    "Jules Sarah Noah Zoé Adam Alice Gabriel Anna Raphaël Lina Ethan Jade Nathan Lucie Victor Clara Oscar Eva "
    "Samuel Rose Tom Mila"
).split()
LAST_NAMES = (
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre Michel Garcia "
    "David Bertrand Roux Vincent Fournier Morel Girard André Lefèvre Mercier Dupont Lambert Bonnet François "
    "Martinez Legrand Garnier Faure Rousseau Blanc Guerin Muller Henry Roussel Nicolas Perrin Morin Mathieu "
    "Clement Gauthier Dumont Lopez Fontaine Chevalier Robin Masson Sanchez Gerard Nguyen Boyer Denis Lemaire "
    "Duval Joly Gautier"
).split()
# Half the last names are LAST_NAMES', the other half made of two or three of these syllables (about 28,000 names):
# a common name and a long tail, as in a real list of contacts.
SYLLABLES = (
    "ber lan mar tin rou vel gar nier mon dal fer ran bou chet lor vin pel tier cor nel sau vage mer cier bar dou "
    "lin fau"
).split()
DOMAINS = ["example.com", "mail.test", "shop.test", "corp.test"]


class Command(BaseCommand):
    help = (
        "Benchmark profiles at a million on PostgreSQL: imports against a parse + validate + COPY baseline, and the "
        "profiles page's search against a primary-key lookup."
    )

    def add_arguments(self, parser):
        parser.add_argument("--imports", action="store_true", help="Only the import against its baseline.")
        parser.add_argument(
            "--import-rows",
            type=int,
            nargs="+",
            default=[20_000, 1_000_000],
            help="The sizes of the files imported (default 20000 1000000).",
        )
        parser.add_argument("--baseline-file", help="(internal: run the baseline on this file and print its time)")
        parser.add_argument("--search", action="store_true", help="Only the profiles page's search.")
        parser.add_argument("--profiles", type=int, default=1_000_000, help="How many profiles (default 1,000,000).")
        parser.add_argument("--repeat", type=int, default=21, help="Timed turns of each measure (median shown).")
        parser.add_argument("--rebuild", action="store_true", help="Generate the profiles anew even if present.")
        parser.add_argument(
            "--database-url",
            help=f"The PostgreSQL database to use (default: {BENCH_DATABASE} on DATABASE_URL's server).",
        )
        parser.add_argument("--in-bench-database", action="store_true", help="(internal)")

    def handle(self, *args, **options):
        if options["in_bench_database"]:
            return self._run(options)
        return self._launch(options)

    # The parent: pick and create the benchmark database, run there -----------------------------------------

    def _launch(self, options):
        url = bench.bench_database(command="bench_imports", url=options["database_url"], default_name=BENCH_DATABASE)
        self.stdout.write(f"Benchmark database: {bench.database_name(url)}", self.style.MIGRATE_HEADING)
        arguments = [
            f"--profiles={options['profiles']}",
            "--import-rows",
            *[str(rows) for rows in options["import_rows"]],
            f"--repeat={options['repeat']}",
            *[f"--{section}" for section in SECTIONS if options[section]],
            *(["--rebuild"] if options["rebuild"] else []),
        ]
        if status := bench.run_in_bench_database("bench_imports", url, settings.REDIS_URL, arguments):
            raise CommandError(f"the benchmark failed (exit status {status})")

    # Inside the benchmark database ---------------------------------------------------------------------------

    def _run(self, options):
        bench.refuse_unless_bench_database()
        if connection.vendor != "postgresql":
            raise CommandError("bench_imports measures PostgreSQL only.")
        call_command("migrate", verbosity=0)
        if options["baseline_file"]:
            self.stdout.write(f"seconds={baseline(Path(options['baseline_file'])):.3f}")
            return
        chosen = [section for section in SECTIONS if options[section]] or list(SECTIONS)
        for section in chosen:
            getattr(self, f"_{section}")(options)
        self.stdout.write(f"\nload average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")

    # The import ----------------------------------------------------------------------------------------------

    def _imports(self, options):
        self.stdout.write("\n# The import of a contacts file, against its baseline", self.style.MIGRATE_HEADING)
        directory = Path(settings.VAR_DIR) / "bench-imports"
        directory.mkdir(parents=True, exist_ok=True)
        attributes_declare(IMPORT_TYPES)
        user = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_user(
            "bench", "bench@example.com", is_superuser=True
        )
        results = []
        for rows in options["import_rows"]:
            path = directory / f"contacts-{rows}.csv"
            if not path.exists():
                started = time.perf_counter()
                defects = write_contacts(path, rows)
                self.stdout.write(f"Wrote {path} in {time.perf_counter() - started:.1f} s: {defects}")
            turns = 3 if rows <= 100_000 else 1
            for turn in range(1, turns + 1):
                _empty_profiles()
                baseline_seconds, baseline_rss = self._baseline_in_a_child(path)
                _empty_profiles()
                import_seconds, import_rss, counts = self._import_through_a_worker(path, user)
                ratio = baseline_seconds / import_seconds
                results.append((rows, turn, rows / baseline_seconds, rows / import_seconds, ratio, import_rss))
                self.stdout.write(
                    f"  {rows:>9,} rows, turn {turn}: baseline {rows / baseline_seconds:>7,.0f} rows/s "
                    f"({baseline_seconds:.1f} s, peak RSS {baseline_rss:.1f} MiB); "
                    f"import {rows / import_seconds:>7,.0f} rows/s ({import_seconds:.1f} s, "
                    f"worker peak RSS {import_rss:.1f} MiB); import/baseline {ratio:.2f}x (goal >= {IMPORT_GOAL}x); "
                    f"{counts}"
                )
        _empty_profiles()
        self.stdout.write("\nSummary (medians per size):")
        self.stdout.write(
            f"  {'rows':>9} {'baseline rows/s':>16} {'import rows/s':>14} {'ratio':>6} {'worker RSS':>11}"
        )
        for rows in options["import_rows"]:
            mine = [result for result in results if result[0] == rows]
            base, imported, ratio, rss = (statistics.median(result[i] for result in mine) for i in (2, 3, 4, 5))
            verdict = "goal met" if ratio >= IMPORT_GOAL else "GOAL NOT MET"
            self.stdout.write(
                f"  {rows:>9,} {base:>16,.0f} {imported:>14,.0f} {ratio:>5.2f}x {rss:>8.1f} MiB  {verdict}"
            )
        sizes = options["import_rows"]
        if len(sizes) > 1:
            low, high = (max(r[5] for r in results if r[0] == size) for size in (min(sizes), max(sizes)))
            verdict = "goal met" if high <= 1.2 * low else "GOAL NOT MET"
            self.stdout.write(
                f"  worker peak RSS {max(sizes):,} / {min(sizes):,} rows: {high / low:.2f}x (goal <= 1.2x) {verdict}"
            )

    def _baseline_in_a_child(self, path: Path) -> tuple[float, float]:
        """The baseline in a process of its own (so its peak RSS is its own): seconds and MiB."""
        output, rss = _measured(bench.manage("bench_imports", "--in-bench-database", f"--baseline-file={path}"))
        return float(output.strip().splitlines()[-1].split("=")[1]), rss

    def _import_through_a_worker(self, path: Path, user) -> tuple[float, float, str]:
        """The import as the product runs it: queued from the mapping's choices, run by a burst worker of the
        pool's class on the maintenance queue. Seconds from the import's start to its end (as its page shows),
        the worker's peak RSS, and what the import counted."""
        with path.open("rb") as handle:
            profile_import = import_create(actor=user, upload=File(handle, name=path.name))
        import_start(profile_import=profile_import, actor=user, mapping=IMPORT_MAPPING, default_region="FR")
        _, rss = _measured(
            bench.manage("rqworker", "--burst", "--worker-class", "config.worker.CampaignWorker", "maintenance")
        )
        done = ProfileImport.objects.get(pk=profile_import.pk)
        if done.status != ProfileImport.Status.DONE:
            raise CommandError(f"import {done.pk} ended {done.status}: {done.error}")
        seconds = (done.finished_at - done.started_at).total_seconds()
        counts = (
            f"stored {done.rows_stored:,} ({done.rows_with_warnings:,} with a field left out), rejected "
            f"{done.rows_rejected:,}, profiles created {done.profiles_created:,}, updated {done.profiles_updated:,}"
        )
        return seconds, rss, counts

    # The profiles page's search ------------------------------------------------------------------------------

    def _search(self, options):
        self.stdout.write("\n# The profiles page's search", self.style.MIGRATE_HEADING)
        count = options["profiles"]
        self._ensure_search_data(count, options["rebuild"])
        self._print_setup()
        cases = _search_cases(count)
        measures = {name: _page_read(query, before) for name, (query, before) in cases.items()}
        results = _timed(measures, options["repeat"])
        lookup = results[LOOKUP][1]
        self.stdout.write(
            f"\nMedian of {options['repeat']} interleaved turns; each: profiles_search_page(query, size={PAGE_SIZE})"
        )
        self.stdout.write(f"  {'search':<44} {'query':<30} {'shown':>5} {'matches':>16} {'ms':>7} {'ratio':>6}")
        for name, ((shown, matches), median) in results.items():
            query, before = cases[name]
            typed = query + (f" before={before}" if before else "")
            ratio = median / lookup
            verdict = "" if name == LOOKUP else ("  goal met" if ratio <= GOAL_RATIO else "  GOAL NOT MET")
            self.stdout.write(
                f"  {name:<44} {typed[:30]:<30} {shown:>5} {matches:>16} {median * 1000:7.2f} {ratio:5.1f}x{verdict}"
            )
        for name, (query, before) in cases.items():
            self.stdout.write(f"\n## EXPLAIN ANALYZE: {name} ({query!r}{f', before={before}' if before else ''})")
            # Without prepared statements the page sends each statement in full, so that it can be explained here;
            # prepared, the fetching statement is explained in the first round trip and run by name in the second.
            with override_settings(DATABASE_PREPARED_STATEMENTS=False), CaptureQueriesContext(connection) as captured:
                profiles_search_page(query, before=before, size=PAGE_SIZE)
            for statement in captured.captured_queries:
                sql = statement["sql"]
                if "EXPLAIN" in sql:
                    what = "the count's estimate" if sql.startswith("EXPLAIN") else "the name attributes, the estimate"
                    self.stdout.write(f"\n  ({what}) {sql[:120]}…")
                    continue
                self.stdout.write("")
                for line in _explain(sql):
                    self.stdout.write(f"    {line}")

    def _ensure_search_data(self, count: int, rebuild: bool) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM audiences_profile")
            profiles = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM audiences_identity")
            identities = cursor.fetchone()[0]
        names = AttributeDefinition.objects.filter(name__in=["first_name", "last_name"], type="string").count()
        if profiles == count and identities == 2 * count and names == 2 and not rebuild:
            self.stdout.write(f"Reusing the {count:,} profiles already generated (--rebuild to make them anew).")
        else:
            started = time.perf_counter()
            _generate(count)
            self.stdout.write(f"Generated {count:,} profiles in {time.perf_counter() - started:.1f} s.")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audiences_profile")
            cursor.execute("VACUUM ANALYZE audiences_identity")

    def _print_setup(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
            cursor.execute(
                "SELECT pg_size_pretty(pg_table_size('audiences_profile')), "
                "pg_size_pretty(pg_indexes_size('audiences_profile')), "
                "pg_size_pretty(pg_total_relation_size('audiences_identity'))"
            )
            table, indexes, identities = cursor.fetchone()
            cursor.execute(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'audiences_profile'::regclass "
                "ORDER BY 1"
            )
            names = [name for (name,) in cursor.fetchall()]
        self.stdout.write(f"{version}; profiles table {table}, its indexes {indexes}; identities {identities}")
        self.stdout.write(f"Indexes of the profiles table: {', '.join(names)}")
        self.stdout.write(f"{os.cpu_count()} CPUs, load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")


def baseline(path: Path) -> float:
    """The import's baseline: the same parsing (csv_files.RecordReader) and the same validation (the import's
    RowChecker: pydantic, emails, phones, attribute types, a bad field left out), with the cycle collector
    looking at new objects only as in the import's processes, then one COPY of each chunk's valid rows into
    one plain table, committed per chunk as the import commits. Seconds."""
    schema = ProfileSchema.load(default_region="FR")
    with path.open("rb") as binary:
        fmt = csv_files.detect_format(binary)
    plans = csv_files.plan_columns(fmt.header, IMPORT_MAPPING, valid_targets={v for v, _ in csv_files.target_choices()})
    checker = RowChecker(plans=plans, schema=schema, width=len(fmt.header), strict=False, separator="|")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_import_baseline (line integer, email text, phone text, "
            "identities jsonb, attributes jsonb, consent jsonb)"
        )
        cursor.execute("TRUNCATE bench_import_baseline")
    started = time.perf_counter()
    with path.open("rb") as binary, collecting_new_objects_only():
        records = iter(csv_files.RecordReader(binary, delimiter=fmt.delimiter))
        next(records, None)  # the header
        while chunk := list(itertools.islice(records, IMPORT_CHUNK)):
            rows = [checker.row(record) for record in chunk]
            with transaction.atomic(), connection.cursor() as cursor:
                statement = (
                    "COPY bench_import_baseline (line, email, phone, identities, attributes, consent) FROM STDIN"
                )
                with cursor.cursor.copy(statement) as copy:
                    for row in rows:
                        if row.item is not None:
                            item = row.item
                            copy.write_row(
                                (
                                    row.record.line,
                                    item.email,
                                    item.phone,
                                    Jsonb(item.identities),
                                    Jsonb(item.attributes),
                                    Jsonb(item.consent),
                                )
                            )
    return time.perf_counter() - started


def write_contacts(path: Path, count: int, *, seed: int = 15) -> str:
    """A contacts export with the defects of real ones, streamed to `path`: about 2% bad emails, 3% bad phones,
    2% numbers written "12,5k", 3% of rows repeating an earlier row's email (the same person again, with other
    details), opt-outs written no/unsubscribed/0, blank cells. What it wrote, counted."""
    rng = random.Random(seed)
    defects = {"bad email": 0, "bad phone": 0, "bad number": 0, "repeated email": 0, "opt-out": 0}
    cities = ["Paris", "Lyon", "London", "Berlin", "Madrid", "Zürich", "Köln", "Québec"]
    tags = ["vip", "beta", "churn-risk", "newsletter", "b2b"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "phone", "crm_id", "first_name", "city", "points", "signed_up", "tags", "newsletter"])
        for n in range(count):
            roll = rng.random()
            if roll < 0.02:
                email = f"person{n}@example"  # no dot in the domain
                defects["bad email"] += 1
            elif roll < 0.05 and n > 10:
                email = f"person{rng.randrange(n)}@example.com"
                defects["repeated email"] += 1
            else:
                email = f"person{n}@example.com"
            if rng.random() < 0.03:
                phone = f"+33 1 {n % 100:02d}"
                defects["bad phone"] += 1
            else:
                phone = f"06 {n // 1000000 % 100:02d} {n // 10000 % 100:02d} {n // 100 % 100:02d} {n % 100:02d}"
            if rng.random() < 0.02:
                points = f"{rng.randrange(1, 99)},{rng.randrange(10)}k"
                defects["bad number"] += 1
            else:
                points = str(rng.randrange(5000))
            newsletter = rng.choice(["yes", "no", "", "unsubscribed", "1", "0", "opted_in"])
            defects["opt-out"] += newsletter in ("no", "unsubscribed", "0")
            writer.writerow(
                [
                    email,
                    phone,
                    f"C{n:08d}",
                    f"Name{n}",
                    rng.choice(cities),
                    points,
                    f"20{rng.randrange(10, 26)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                    "|".join(rng.sample(tags, rng.randrange(0, 3))),
                    newsletter,
                ]
            )
    return ", ".join(f"{name} {number:,}" for name, number in defects.items())


def _empty_profiles() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE audiences_profile, audiences_identity, audiences_consent, audiences_consentevent, "
            "audiences_audiencemember, audiences_importrowerror, audiences_profileimport CASCADE"
        )


def _measured(command: list[str]) -> tuple[str, float]:
    """Run `command` under /usr/bin/time: what it printed, and its peak RSS in MiB."""
    completed = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        ["/usr/bin/time", "-f", "rss_kib=%M", *command], capture_output=True, text=True, check=True
    )
    line = [line for line in completed.stderr.splitlines() if line.startswith("rss_kib=")][-1]
    return completed.stdout, int(line.split("=")[1]) / 1024


def _search_cases(count: int) -> dict[str, tuple[str, int | None]]:
    """name -> (what is typed in the search, the `before=` of a deep page or None), from one profile of the data."""
    person = Profile.objects.get(pk=count * 7 // 9)
    local = person.email.split("@")[0]
    first, last = person.attributes["first_name"], person.attributes["last_name"]
    phone = person.phone
    typed_phone = f"{phone[:3]} {phone[3]} {' '.join(phone[i : i + 2] for i in range(4, len(phone), 2))}"
    return {
        LOOKUP: (f"#{person.pk}", None),
        "exact email (an identity)": (person.email.upper(), None),
        "exact phone, typed +33 6 12 34 56 78": (typed_phone, None),
        "email prefix": (local[: local.index(".") + 4], None),
        "first name": (first, None),
        "first name and start of the last": (f"{first} {last[:3]}", None),
        "no match": ("nobody.here@nowhere.test", None),
        "no search, newest page": ("", None),
        "no search, a page deep in the list": ("", count // 2),
        # The "Older →" link of a page half-way down: its bound is the last profile that page shows, a match.
        "first name, a page deep in the list": (first, profiles_search_page(first, before=count // 2).older),
        "first name, deep, a bound typed by hand": (first, count // 2),
    }


def _page_read(query: str, before: int | None):
    """What the profiles page reads for a search: its page of profiles (materialized) and how many match."""

    def read():
        page = profiles_search_page(query, before=before, size=PAGE_SIZE)
        how = {"exact": "", "more": "more than ", "estimate": "about "}[page.count.how]
        return len(page.profiles), f"{how}{page.count.value:,}"

    return read


def _timed(measures: dict, repeat: int) -> dict[str, tuple[object, float]]:
    """Each measure's result and median time. The measures take turns, so that a moment of load on the
    machine falls on all of them alike; a first round warms caches and plans."""
    results = {name: measure() for name, measure in measures.items()}
    times: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeat):
        for name, measure in measures.items():
            started = time.perf_counter()
            measure()
            times[name].append(time.perf_counter() - started)
    return {name: (results[name], statistics.median(times[name])) for name in measures}


def _explain(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")
        return [row[0] for row in cursor.fetchall()]


def _generate(count: int) -> None:
    """Profiles with an email and a phone, each also an identity, and a first and last name, generated in SQL (a
    Python loop would take minutes): first names from FIRST_NAMES (2.5% each), last names from LAST_NAMES or
    SYLLABLES, emails first.last<n>@domain."""
    for name, label in (("first_name", "First name"), ("last_name", "Last name")):
        AttributeDefinition.objects.update_or_create(name=name, defaults={"type": "string", "label": label})
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE audiences_profile RESTART IDENTITY CASCADE")
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO audiences_profile (email, phone, attributes, timezone, locale, created_at, updated_at)
            SELECT
                lower(translate(first, 'éèëïçô', 'eeeico')) || '.' || lower(translate(last, 'éèëïçô', 'eeeico'))
                    || g || '@' || domain,
                '+336' || lpad(g::text, 8, '0'),
                jsonb_build_object('first_name', first, 'last_name', last),
                'Europe/Paris', 'fr-FR', now(), now()
            FROM (
                SELECT g,
                       (%(first)s::text[])[1 + floor(random() * cardinality(%(first)s::text[]))::int] AS first,
                       CASE WHEN random() < 0.5
                           THEN (%(last)s::text[])[1 + floor(random() * cardinality(%(last)s::text[]))::int]
                           ELSE initcap(
                               (%(syllables)s::text[])[1 + floor(random() * cardinality(%(syllables)s::text[]))::int]
                               || (%(syllables)s::text[])[1 + floor(random() * cardinality(%(syllables)s::text[]))::int]
                               || CASE WHEN random() < 0.5 THEN (%(syllables)s::text[])[
                                      1 + floor(random() * cardinality(%(syllables)s::text[]))::int] ELSE '' END)
                       END AS last,
                       (%(domains)s::text[])[1 + floor(random() * cardinality(%(domains)s::text[]))::int] AS domain
                FROM generate_series(1, %(count)s) AS g
            ) AS drawn
            ORDER BY g
            """,
            {"first": FIRST_NAMES, "last": LAST_NAMES, "syllables": SYLLABLES, "domains": DOMAINS, "count": count},
        )
        cursor.execute(
            """
            INSERT INTO audiences_identity (profile_id, namespace, value)
            SELECT id, 'email', email FROM audiences_profile
            UNION ALL SELECT id, 'phone', phone FROM audiences_profile
            """
        )
