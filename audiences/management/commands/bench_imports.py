"""Benchmarks of profiles at a million, on PostgreSQL, each a section that runs on its own:

- `--search`: the profiles page's search. N profiles (default 1,000,000) with an email and a phone (each also an
  identity) and a first and last name, generated in SQL; then the page's reads for an exact email, an exact phone,
  an email prefix, a first name, a first name and the start of a last name, a search matching nothing, the list
  without a search, and deep keyset pages, each through the page's own selector
  (`audiences.selectors.profiles.profiles_search_page`: the search, the page of 50, how many match), against a
  primary-key lookup (`#id`) through the same code in the same run: medians of interleaved turns, the ratio to
  the lookup (goal: within 5x), and the EXPLAIN ANALYZE of every statement each search sends.
- The import of a million rows through the real import path is the other section (to come: a `--imports` flag
  and its method next to `_search`, added to SECTIONS).

Without a flag every section runs. It runs in a database of its own (default `campaigns_bench_imports` on the
server of DATABASE_URL, created if missing), never in the one the settings use. The data is kept for the next
run (--rebuild makes it anew). Results are recorded in docs/benchmarks.md ("Profile search").

    manage.py bench_imports [--search] [--profiles 1000000] [--repeat 21] [--database-url postgres://.../db]
"""

import os
import statistics
import time
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.models import AttributeDefinition, Profile
from audiences.selectors.profiles import profiles_search_page
from config import bench

BENCH_DATABASE = "campaigns_bench_imports"
SECTIONS = ("search",)
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
    help = "Benchmark profiles at a million on PostgreSQL: the profiles page's search against a primary-key lookup."

    def add_arguments(self, parser):
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
        url = options["database_url"] or _bench_url(settings.DATABASE_URL)
        if not url.startswith(("postgres://", "postgresql://")):
            raise CommandError(f"bench_imports measures PostgreSQL only: {url!r} is not a PostgreSQL URL.")
        if bench.database_name(url) == settings.DATABASES["default"]["NAME"]:
            raise CommandError("Refusing to run in the database the settings use: pass --database-url of another.")
        bench.create_database(url)
        self.stdout.write(f"Benchmark database: {bench.database_name(url)}", self.style.MIGRATE_HEADING)
        arguments = [
            f"--profiles={options['profiles']}",
            f"--repeat={options['repeat']}",
            *[f"--{section}" for section in SECTIONS if options[section]],
            *(["--rebuild"] if options["rebuild"] else []),
        ]
        if status := bench.run_in_bench_database("bench_imports", url, settings.REDIS_URL, arguments):
            raise CommandError(f"the benchmark failed (exit status {status})")

    # Inside the benchmark database ---------------------------------------------------------------------------

    def _run(self, options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_imports measures PostgreSQL only.")
        call_command("migrate", verbosity=0)
        chosen = [section for section in SECTIONS if options[section]] or list(SECTIONS)
        for section in chosen:
            getattr(self, f"_{section}")(options)
        self.stdout.write(f"\nload average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")

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
            with CaptureQueriesContext(connection) as captured:
                profiles_search_page(query, before=before, size=PAGE_SIZE)
            for statement in captured.captured_queries:
                sql = statement["sql"]
                if sql.startswith("EXPLAIN"):
                    self.stdout.write(f"\n  (the count's estimate) {sql[:120]}…")
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
        "first name, a page deep in the list": (first, count // 2),
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


def _bench_url(url: str) -> str:
    if not url.startswith(("postgres://", "postgresql://")):
        raise CommandError(
            "bench_imports measures PostgreSQL only: DATABASE_URL is not PostgreSQL. "
            f"Pass --database-url postgres://user@host:5432/{BENCH_DATABASE}."
        )
    return urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DATABASE}"))
