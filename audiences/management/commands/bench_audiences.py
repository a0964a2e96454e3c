"""Benchmark of audience evaluation on PostgreSQL: N profiles (default 1,000,000) with realistic attributes, and
three rules (an equality, a date range, consent + membership of an uploaded list) timed to count and to stream
every member id through audience_member_ids, against hand-written SQL for the same predicates in the same run,
with their query plans, and the peak RSS of streaming 10,000 and of streaming N members (one process each).

It runs in a database of its own (default: `campaigns_bench` on the server of DATABASE_URL, created if missing)
and never in the one the settings point at. The data is generated in SQL and kept for the next run (--rebuild
makes it anew). Results are recorded in docs/benchmarks.md ("Audiences").

    manage.py bench_audiences [--profiles 1000000] [--database-url postgres://.../campaigns_bench]
"""

import base64
import json
import os
import resource
import secrets
import statistics
import subprocess
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.indexes import sync_attribute_indexes
from audiences.models import AttributeDefinition, Audience
from audiences.selectors.audiences import audience_member_ids, audience_profiles, audience_size
from config import bench

BENCH_DATABASE = "campaigns_bench"
LIST_NAME = "Bench: spring event attendees"
ATTRIBUTES = [  # name, type, indexed
    ("customer_no", "number", True),
    ("plan", "string", True),
    ("country", "string", False),
    ("signup_date", "date", True),
    ("last_seen_at", "datetime", False),
    ("age", "number", False),
    ("vip", "boolean", False),
    ("tags", "string_list", True),
]
# The rules measured, with the same predicate written by hand. {list} is the uploaded list's id.
CASES = [
    (
        "equality: plan = pro",
        {"attribute": "plan", "op": "equals", "value": "pro"},
        "SELECT {select} FROM audiences_profile p WHERE (p.attributes -> 'plan') = '\"pro\"'::jsonb {page}",
    ),
    (
        "date range: signup_date between 2025-01-01 and 2025-03-31",
        {"attribute": "signup_date", "op": "between", "value": ["2025-01-01", "2025-03-31"]},
        "SELECT {select} FROM audiences_profile p WHERE (p.attributes -> 'signup_date') "
        "BETWEEN '\"2025-01-01\"'::jsonb AND '\"2025-03-31\"'::jsonb {page}",
    ),
    (
        "consent + list: email opted in AND member of an uploaded list",
        {"all": [{"consent": {"channel": "email", "state": "opted_in"}}, {"member_of": "{list}"}]},
        # Written as one would by hand: from the list's members, joined to their consent; no profile row read.
        "SELECT {select_member} FROM audiences_audiencemember m JOIN audiences_consent c "
        "ON c.profile_id = m.profile_id AND c.channel = 'email' AND c.state = 'opted_in' "
        "WHERE m.audience_id = {list} {page_member}",
    ),
]


class Command(BaseCommand):
    help = "Benchmark audience counts and member streaming on PostgreSQL against hand-written SQL."

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=1_000_000, help="How many profiles (default 1,000,000).")
        parser.add_argument(
            "--database-url",
            help=f"The PostgreSQL database to use (default: {BENCH_DATABASE} on DATABASE_URL's server).",
        )
        parser.add_argument("--rebuild", action="store_true", help="Generate the profiles anew even if present.")
        parser.add_argument("--page-size", type=int, default=settings.CAMPAIGNS_PLAN_CHUNK, help="Ids per page.")
        parser.add_argument("--repeat", type=int, default=7, help="Timed runs of each measure (median shown).")
        parser.add_argument("--small", type=int, default=10_000, help="The smaller audience for peak RSS.")
        # Internal: run inside the benchmark database / stream one audience and report RSS.
        parser.add_argument("--in-bench-database", action="store_true", help="(internal)")
        parser.add_argument("--stream", type=int, metavar="AUDIENCE_ID", help="(internal)")
        parser.add_argument("--materialize", action="store_true", help="(internal) all ids at once, for contrast")

    def handle(self, *args, **options):
        if options["stream"] is not None:
            return self._stream_and_report(options["stream"], options["page_size"], options["materialize"])
        if options["in_bench_database"]:
            return self._run(options)
        return self._launch(options)

    # The parent: pick and create the benchmark database, run there -----------------------------------------

    def _launch(self, options):
        url = bench.bench_database(command="bench_audiences", url=options["database_url"], default_name=BENCH_DATABASE)
        self.stdout.write(f"Benchmark database: {bench.database_name(url)}", self.style.MIGRATE_HEADING)
        arguments = [
            "--in-bench-database",
            f"--profiles={options['profiles']}",
            f"--page-size={options['page_size']}",
            f"--repeat={options['repeat']}",
            f"--small={options['small']}",
            *(["--rebuild"] if options["rebuild"] else []),
        ]
        # Our own interpreter and arguments: nothing here comes from outside.
        completed = subprocess.run(bench.manage("bench_audiences", *arguments), env=_env(url), check=False)  # noqa: S603
        if completed.returncode:
            raise CommandError(f"the benchmark failed (exit status {completed.returncode})")

    # Inside the benchmark database ---------------------------------------------------------------------------

    def _run(self, options):
        if connection.vendor != "postgresql":
            raise CommandError("bench_audiences measures PostgreSQL only.")
        call_command("migrate", verbosity=0)
        count, page = options["profiles"], options["page_size"]
        self._ensure_data(count, options["rebuild"])
        uploaded = Audience.objects.get(name=LIST_NAME)
        self._print_setup()

        for title, rule, hand_sql in CASES:
            rule = json.loads(json.dumps(rule).replace('"{list}"', str(uploaded.pk)))
            audience, _ = Audience.objects.update_or_create(
                name=f"Bench: {title}", defaults={"kind": "rule", "rule": rule}
            )
            hand = hand_sql.replace("{list}", str(uploaded.pk))
            self._measure(title, audience, hand, page, options["repeat"])

        self._measure_memory(count, page, options["small"])
        self.stdout.write(f"\nload average at the end: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")

    def _ensure_data(self, count: int, rebuild: bool) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM audiences_profile")
            present = cursor.fetchone()[0]
        declared = {name for name, _, _ in ATTRIBUTES}
        if (
            present == count
            and not rebuild
            and AttributeDefinition.objects.filter(name__in=declared).count() == len(declared)
        ):
            self.stdout.write(f"Reusing the {count:,} profiles already generated (--rebuild to make them anew).")
        else:
            started = time.perf_counter()
            _generate(count)
            self.stdout.write(f"Generated {count:,} profiles in {time.perf_counter() - started:.1f} s.")
        started = time.perf_counter()
        result = sync_attribute_indexes()
        if result.created or result.dropped:
            self.stdout.write(
                f"Indexes: created {result.created}, dropped {result.dropped} ({time.perf_counter() - started:.1f} s)."
            )
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE audiences_profile")
            cursor.execute("VACUUM ANALYZE audiences_consent")
            cursor.execute("VACUUM ANALYZE audiences_audiencemember")

    def _print_setup(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0].split(" on ")[0]
            cursor.execute(
                "SELECT pg_size_pretty(pg_table_size('audiences_profile')), "
                "pg_size_pretty(pg_indexes_size('audiences_profile'))"
            )
            table, indexes = cursor.fetchone()
        self.stdout.write(f"{version}; profiles table {table}, its indexes {indexes}")
        self.stdout.write(f"{os.cpu_count()} CPUs, load average {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
        indexed = [name for name, _, flag in ATTRIBUTES if flag]
        self.stdout.write(f"Indexed attributes: {', '.join(indexed)}")

    def _measure(self, title: str, audience: Audience, hand: str, page: int, repeat: int) -> None:
        self.stdout.write(f"\n## {title}", self.style.MIGRATE_HEADING)
        self.stdout.write(f"rule: {json.dumps(audience.rule)}")
        self.stdout.write(f"hand SQL: {hand.format(select='…', select_member='…', page='', page_member='')}")
        queries = {
            "count": hand.format(select="count(*)", select_member="count(*)", page="", page_member=""),
            "page": hand.format(
                select="p.id",
                select_member="m.profile_id",
                page="AND p.id > %(after)s ORDER BY p.id LIMIT %(limit)s",
                # The bound on both sides of the join, as one tunes it by hand.
                page_member="AND m.profile_id > %(after)s AND c.profile_id > %(after)s "
                "ORDER BY m.profile_id LIMIT %(limit)s",
            ),
            "all": hand.format(
                select="p.id", select_member="m.profile_id", page="ORDER BY p.id", page_member="ORDER BY m.profile_id"
            ),
        }
        measures = {
            "count (ORM)": lambda: audience_size(audience),
            "count (hand SQL)": lambda: _fetch_one(queries["count"]),
            "stream, keyset pages (ORM)": lambda: _stream_orm(audience, page),
            "stream, keyset pages (hand SQL)": lambda: _stream_hand(queries["page"], page),
            "stream, one server-side cursor (hand SQL)": lambda: _stream_cursor(queries["all"], page),
        }
        results = _timed(measures, repeat)
        counts = {result for result, _ in results.values()}
        if len(counts) != 1:
            raise CommandError(f"{title}: the measures disagree on the member count: {results}")
        self.stdout.write(f"members: {counts.pop():,}")
        seconds = {name: median for name, (_, median) in results.items()}
        for name, value in seconds.items():
            self.stdout.write(f"  {name:<44} {value * 1000:9.1f} ms")
        stream = seconds["stream, keyset pages (ORM)"]
        self.stdout.write(
            f"  ratio ORM / hand SQL: count {seconds['count (ORM)'] / seconds['count (hand SQL)']:.2f}x, "
            f"stream {stream / seconds['stream, keyset pages (hand SQL)']:.2f}x "
            f"(vs one cursor {stream / seconds['stream, one server-side cursor (hand SQL)']:.2f}x)"
        )
        middle = _middle_id()
        for name, sql, params in [
            ("count (ORM)", _executed_sql(lambda: audience_size(audience)), None),
            ("first page (ORM)", _executed_sql(lambda: audience_member_ids(audience, after_id=0, limit=page)), None),
            (
                f"page after id {middle} (ORM)",
                _executed_sql(lambda: audience_member_ids(audience, after_id=middle, limit=page)),
                None,
            ),
            ("count (hand SQL)", queries["count"], None),
            (f"page after id {middle} (hand SQL)", queries["page"], {"after": middle, "limit": page}),
        ]:
            self.stdout.write(f"\nEXPLAIN ANALYZE {name}:")
            for line in _explain(sql, params):
                self.stdout.write(f"    {line}")

    def _measure_memory(self, count: int, page: int, small: int) -> None:
        self.stdout.write("\n## Peak RSS while streaming (one process each)", self.style.MIGRATE_HEADING)
        peaks = {}
        for size, materialize in ((small, False), (count, False), (count, True)):
            rule = {"attribute": "customer_no", "op": "lte", "value": size}
            audience, _ = Audience.objects.update_or_create(
                name=f"Bench: first {size} customers", defaults={"kind": "rule", "rule": rule}
            )
            arguments = [f"--stream={audience.pk}", f"--page-size={page}", *(["--materialize"] if materialize else [])]
            completed = subprocess.run(  # noqa: S603 - our own interpreter and arguments
                bench.manage("bench_audiences", *arguments),
                env=os.environ.copy(),  # the benchmark's own: its database, DEBUG off
                capture_output=True,
                text=True,
                check=True,
            )
            report = json.loads(completed.stdout.strip().splitlines()[-1])
            if not materialize:
                peaks[size] = report["maxrss_kib"]
            how = "all ids in one list, for contrast" if materialize else "keyset pages"
            self.stdout.write(
                f"  {report['members']:>9,} members, {how}: {report['seconds']:.2f} s, "
                f"peak RSS {report['maxrss_kib'] / 1024:.1f} MiB "
                f"(before streaming {report['rss_before_kib'] / 1024:.1f} MiB)"
            )
        self.stdout.write(f"  ratio {count:,} / {small:,}: {peaks[count] / peaks[small]:.3f}x")

    # A child process: stream one audience, report time and peak RSS -------------------------------------------

    def _stream_and_report(self, audience_id: int, page: int, materialize: bool) -> None:
        audience = Audience.objects.get(pk=audience_id)
        audience_member_ids(audience, after_id=0, limit=1)  # connections, imports and caches set up first
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        if materialize:
            members = len(list(audience_profiles(audience).order_by("pk").values_list("pk", flat=True)))
        else:
            members = _stream_orm(audience, page)
        seconds = time.perf_counter() - started
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        self.stdout.write(
            json.dumps({"members": members, "seconds": seconds, "maxrss_kib": maxrss, "rss_before_kib": rss_before})
        )


def _stream_orm(audience: Audience, page: int) -> int:
    members, after = 0, 0
    while ids := audience_member_ids(audience, after_id=after, limit=page):
        members += len(ids)
        after = ids[-1]
    return members


def _stream_hand(sql: str, page: int) -> int:
    members, after = 0, 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, {"after": after, "limit": page})
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return members
            members += len(ids)
            after = ids[-1]


def _stream_cursor(sql: str, page: int) -> int:
    members = 0
    connection.ensure_connection()
    with connection.connection.transaction(), connection.connection.cursor(name="bench_members") as cursor:
        cursor.itersize = page
        cursor.execute(sql)
        while rows := cursor.fetchmany(page):
            members += len(rows)
    return members


def _fetch_one(sql: str):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _timed(measures: dict, repeat: int) -> dict[str, tuple[int, float]]:
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


def _middle_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT (min(id) + max(id)) / 2 FROM audiences_profile")
        return cursor.fetchone()[0]


def _executed_sql(call) -> str:
    """The SQL the last query of `call` sent, values included (psycopg binds them on the client)."""
    with CaptureQueriesContext(connection) as captured:
        call()
    return captured.captured_queries[-1]["sql"]


def _explain(sql: str, params: dict | None) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
        return [row[0] for row in cursor.fetchall()]


def _generate(count: int) -> None:
    """Profiles, consent and an uploaded list, generated in SQL (a Python loop would take minutes)."""
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE audiences_profile RESTART IDENTITY CASCADE")
        Audience.objects.filter(name__startswith="Bench: ").delete()
        for name, type_, indexed in ATTRIBUTES:
            AttributeDefinition.objects.update_or_create(name=name, defaults={"type": type_, "indexed": indexed})
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO audiences_profile (email, phone, attributes, timezone, locale, created_at, updated_at)
            SELECT
                'customer' || g || '@example.com',
                CASE WHEN r.phone < 0.6 THEN '+336' || lpad((g %% 100000000)::text, 8, '0') ELSE '' END,
                jsonb_strip_nulls(jsonb_build_object(
                    'customer_no', g,
                    'plan', CASE WHEN r.plan < 0.78 THEN 'free' WHEN r.plan < 0.90 THEN 'pro'
                                 WHEN r.plan < 0.97 THEN 'team' ELSE 'enterprise' END,
                    'country', (ARRAY['FR', 'DE', 'US', 'GB', 'ES', 'IT', 'NL', 'BE'])[1 + floor(r.country * 8)::int],
                    'signup_date', to_char(date '2019-01-01' + floor(r.signup * 2600)::int, 'YYYY-MM-DD'),
                    'last_seen_at', CASE WHEN r.seen < 0.85 THEN to_char(
                        timestamp '2026-11-01' - r.seen * interval '700 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END,
                    'age', CASE WHEN r.age < 0.8 THEN 18 + floor(r.age * 77)::int END,
                    'vip', r.vip < 0.04,
                    'tags', to_jsonb(ARRAY(
                        SELECT tag FROM unnest(ARRAY['newsletter', 'sale', 'beta', 'events', 'b2b']) AS tag
                        WHERE random() < 0.25 + 0 * g
                    ))
                )),
                (ARRAY['Europe/Paris', 'Europe/Berlin', 'America/New_York', 'Europe/London'])[1 + g %% 4],
                (ARRAY['fr-FR', 'de-DE', 'en-US', 'en-GB'])[1 + g %% 4],
                timestamp with time zone '2019-01-01' + g * (interval '2600 days' / %s),
                now()
            FROM generate_series(1, %s) AS g,
                LATERAL (SELECT random() + 0 * g AS plan, random() AS country, random() AS signup, random() AS seen,
                                random() AS age, random() AS vip, random() AS phone) AS r
            """,
            [count, count],
        )
        # Email consent: 45% opted in, 10% opted out, 15% recorded as unknown, 30% never asked (no row).
        cursor.execute(
            """
            INSERT INTO audiences_consent (profile_id, channel, state, source, updated_at)
            SELECT id, 'email',
                   CASE WHEN r < 0.45 THEN 'opted_in' WHEN r < 0.55 THEN 'opted_out' ELSE 'unknown' END,
                   'bench', now()
            FROM (SELECT id, random() AS r FROM audiences_profile) AS drawn
            WHERE r < 0.70
            """
        )
        uploaded = Audience.objects.create(name=LIST_NAME, kind=Audience.Kind.UPLOADED)
        # About 10% of the profiles are on the list.
        cursor.execute(
            """
            INSERT INTO audiences_audiencemember (audience_id, profile_id)
            SELECT %s, id FROM audiences_profile WHERE random() < 0.10
            """,
            [uploaded.pk],
        )


def _env(url: str) -> dict:
    """The benchmark's environment: its database, and DEBUG off (query logging would distort time and memory).
    The benchmark database holds no secrets: throwaway keys stand in for those DEBUG off requires."""
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false"}
    if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
        env["SECRET_KEY"] = secrets.token_urlsafe(50)
    if not env.get("FIELD_ENCRYPTION_KEYS") and not env.get("FIELD_ENCRYPTION_KEYS_FILE"):
        env["FIELD_ENCRYPTION_KEYS"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return env
