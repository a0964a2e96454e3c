"""Compacting the counters the database keeps (campaigns.models.Tally, migration 0014's triggers).

Each statement that changes the ledger adds raw delta rows; the scheduler's tick adds a run's raw rows to the rows of
each grain (totals, minutes, domains), so a report reads a bounded number of rows however large the run and however
many runs came before. Raw rows are taken with `DELETE ... RETURNING`: exactly the rows summed are removed, and a row
committed meanwhile waits for the next pass. Each grain row is added to in place (`INSERT ... ON CONFLICT DO UPDATE`
on its unique key, migration 0015), so a pass costs what its raw rows do, not what the run has gathered. A run being
compacted by another scheduler is left to it.
"""

import time
from collections import Counter
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Min

from campaigns.models import Delivery, DeliveryTally, EngagementTally, Run, Tally
from config import rawsql

RUNS_A_PASS = 50
# A pass stops taking new runs after this long: the tick has other work.
PASS_SECONDS = 2.0
# Minutes are kept for a run's first day, hours after it.
MINUTES_KEPT = timedelta(days=1)
# A run with more domains than this keeps its DOMAINS_KEPT largest apart and counts the others together.
DOMAINS_FOLDED_OVER = 200
DOMAINS_KEPT = 100
ON_THE_WAY = frozenset(Delivery.OPEN_STATUSES)
# A key of pg_advisory_xact_lock's two-integer space (the frequency caps use the one-bigint space: no overlap).
_RUN_LOCK = 1952737645
_ROWS_A_STATEMENT = 400

G = Tally.Grain


def tallies_compact(*, now: datetime, limit: int = RUNS_A_PASS) -> int:
    """Compact the raw rows of up to `limit` runs, those waiting longest first; the number of runs compacted."""
    started = time.monotonic()
    done = 0
    for run_id in _runs_waiting(limit):
        if time.monotonic() - started > PASS_SECONDS:
            break
        done += run_tallies_compact(run_id=run_id, now=now)
    return done


def _runs_waiting(limit: int) -> list[int]:
    """The runs with raw rows, by their oldest raw row: a run written to all the time never starves the others."""
    waiting = Counter()
    for model in (DeliveryTally, EngagementTally):
        rows = model.objects.filter(grain=G.RAW).values_list("run_id").order_by()
        for run_id, oldest in rows.annotate(oldest=Min("id")):
            waiting[run_id] = min(waiting.get(run_id, oldest), oldest)
    return [run_id for run_id, _oldest in sorted(waiting.items(), key=lambda item: item[1])[:limit]]


def run_tallies_compact(*, run_id: int, now: datetime) -> bool:
    """Add one run's raw rows to its grain rows (both tables); False when another process is compacting it."""
    with transaction.atomic():
        if not _lock(run_id):
            return False
        started = Run.objects.filter(pk=run_id).values_list("created_at", flat=True).first()
        if started is None:
            return True  # deleted since: its rows went with it
        hour_from = started + MINUTES_KEPT
        kept = _compact_deliveries(run_id, hour_from)
        _compact_engagement(run_id, hour_from, kept)
    return True


def _lock(run_id: int) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite runs one write at a time
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, mod(%s, 2147483647)::int)", [_RUN_LOCK, run_id])
        return cursor.fetchone()[0]


def _taken(model, run_id: int, names: list[str]) -> list[Tally]:
    """Delete the run's raw rows of `model` and return them, with the fields `names`."""
    table = connection.ops.quote_name(model._meta.db_table)
    with rawsql.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE run_id = %s AND grain = %s "  # noqa: S608
            f"RETURNING {rawsql.columns(model, names, '')}",
            [run_id, G.RAW],
        )
        return [rawsql.instance(model, names, row) for row in cursor.fetchall()]


def _bucket(bucket: datetime | None, hour_from: datetime) -> datetime | None:
    if bucket is None or bucket < hour_from:
        return bucket
    return bucket.replace(minute=0, second=0, microsecond=0)


def _known_domains(model, run_id: int) -> set[str]:
    rows = model.objects.filter(run_id=run_id, grain=G.DOMAIN).values_list("domain", flat=True).distinct()
    return set(rows.order_by())


def _compact_deliveries(run_id: int, hour_from: datetime) -> set[str]:
    """The deliveries' grains; returns the domains the run keeps apart (those of its domain grain)."""
    raw = _taken(DeliveryTally, run_id, ["status", "reason", "domain", "bucket", "n"])
    known = _known_domains(DeliveryTally, run_id)
    if not raw:
        return known
    folded = Tally.OTHER_DOMAINS in known
    totals, minutes, domains = Counter(), Counter(), Counter()
    for row in raw:
        totals[row.status, row.reason] += row.n
        if row.bucket is not None:  # a message arriving in a state a timeline shows (deltas leaving have none)
            minutes[row.status, _bucket(row.bucket, hour_from)] += row.n
        if row.status not in ON_THE_WAY:
            domain = Tally.OTHER_DOMAINS if folded and row.domain not in known else row.domain
            domains[domain, row.status] += row.n
    add = _adder(DeliveryTally, run_id, ["n"])
    add(G.TOTAL, ["status", "reason"], {key: (n,) for key, n in totals.items() if n})
    add(G.TIME, ["status", "bucket"], {key: (n,) for key, n in minutes.items() if n})
    add(G.DOMAIN, ["domain", "status"], {key: (n,) for key, n in domains.items() if n})
    # Messages on their way come and go, and a blanked address leaves its domain: such rows end at 0.
    DeliveryTally.objects.filter(run_id=run_id, grain__in=[G.TOTAL, G.DOMAIN], n=0).delete()
    known |= {domain for domain, _status in domains}
    if not folded and len(known) > DOMAINS_FOLDED_OVER:
        known = _fold_domains(run_id)
    return known


def _fold_domains(run_id: int) -> set[str]:
    """Past DOMAINS_FOLDED_OVER domains, all but the DOMAINS_KEPT largest are counted as one, for good: a domain's
    count is never split between its own row and the others' (later messages to it are counted with the others).
    Once a run; returns the domains kept apart."""
    sizes = Counter()
    rows = list(DeliveryTally.objects.filter(run_id=run_id, grain=G.DOMAIN))
    for row in rows:
        sizes[row.domain] += row.n
    kept = {domain for domain, _n in sizes.most_common(DOMAINS_KEPT)} | {Tally.OTHER_DOMAINS}
    for model, key, counts in (
        (DeliveryTally, ["status"], ["n"]),
        (EngagementTally, ["kind", "machine"], ["uniques", "people", "total"]),
    ):
        moved = [row for row in model.objects.filter(run_id=run_id, grain=G.DOMAIN) if row.domain not in kept]
        summed = Counter()
        for row in moved:
            for position, name in enumerate(counts):
                summed[(Tally.OTHER_DOMAINS, *(getattr(row, k) for k in key)), position] += getattr(row, name)
        model.objects.filter(id__in=[row.id for row in moved]).delete()
        by_key = {}
        for (row_key, position), value in summed.items():
            by_key.setdefault(row_key, [0] * len(counts))[position] = value
        _adder(model, run_id, counts)(G.DOMAIN, ["domain", *key], {k: tuple(v) for k, v in by_key.items()})
    return kept


def _compact_engagement(run_id: int, hour_from: datetime, kept_domains: set[str]) -> None:
    raw = _taken(EngagementTally, run_id, ["kind", "machine", "link", "domain", "bucket", "uniques", "people", "total"])
    if not raw:
        return
    folded = Tally.OTHER_DOMAINS in kept_domains
    links, kinds, minutes, domains = {}, {}, {}, {}
    for row in raw:
        counts = (row.uniques, row.people, row.total)
        if row.link is None:
            _add(kinds, (row.kind, bool(row.machine)), counts)
        else:
            _add(links, (row.kind, bool(row.machine), row.link), counts)
        _add(minutes, (row.kind, bool(row.machine), _bucket(row.bucket, hour_from)), counts)
        domain = Tally.OTHER_DOMAINS if folded and row.domain not in kept_domains else row.domain
        _add(domains, (row.kind, bool(row.machine), domain), counts)
    add = _adder(EngagementTally, run_id, ["uniques", "people", "total"])
    add(G.TOTAL, ["kind", "machine", "link"], links, where="link IS NOT NULL")
    add(G.TOTAL, ["kind", "machine"], kinds, where="link IS NULL")
    add(G.TIME, ["kind", "machine", "bucket"], minutes)
    add(G.DOMAIN, ["kind", "machine", "domain"], domains)


def _add(counts: dict, key: tuple, values: tuple) -> None:
    counts[key] = tuple(a + b for a, b in zip(counts.get(key, (0,) * len(values)), values, strict=True))


def _adder(model, run_id: int, counts: list[str]):
    """A function adding {key values: count values} to the grain rows of `model` with those keys: one upsert a few
    hundred rows, on the grain's unique key (`where`: the rest of its partial index's condition)."""
    table = connection.ops.quote_name(model._meta.db_table)
    defaults = {"domain": "", "bucket": None, "reason": "", "link": None}

    def add(grain: str, key: list[str], rows: dict, *, where: str = "") -> None:
        if not rows:
            return
        filled = [name for name in defaults if name not in key and _has(model, name)]
        names = ["run_id", "grain", *key, *filled, *counts]
        condition = f"grain = '{grain}'" + (f" AND {where}" if where else "")
        sql_head = f"INSERT INTO {table} ({', '.join(names)}) VALUES "  # noqa: S608
        sql_tail = f" ON CONFLICT (run_id, {', '.join(key)}) WHERE {condition} DO UPDATE SET " + ", ".join(
            f"{name} = {table}.{name} + excluded.{name}" for name in counts
        )
        items = list(rows.items())
        for start in range(0, len(items), _ROWS_A_STATEMENT):
            chunk = items[start : start + _ROWS_A_STATEMENT]
            params = []
            for key_values, count_values in chunk:
                values = [run_id, grain, *key_values, *(defaults[name] for name in filled), *count_values]
                params += [rawsql.value(model, name, value) for name, value in zip(names, values, strict=True)]
            marks = ", ".join([f"({rawsql.placeholders(len(names))})"] * len(chunk))
            with rawsql.cursor() as cursor:
                cursor.execute(sql_head + marks + sql_tail, params)

    return add


def _has(model, name: str) -> bool:
    return any(field.name == name for field in model._meta.concrete_fields)
