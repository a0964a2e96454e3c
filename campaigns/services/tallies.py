"""Compacting the counters the database keeps (campaigns.models.Tally, migration 0014's triggers).

Each statement that changes the ledger adds raw delta rows; the scheduler's tick sums a run's raw rows into the rows
of each grain (totals, minutes, domains), so a report reads a few hundred rows however large the run and however many
runs came before. Raw rows are taken with `DELETE ... RETURNING`: exactly the rows summed are removed, and a row
committed meanwhile waits for the next pass. A lock of the run keeps two schedulers from compacting it at once.
"""

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.db import connection, transaction

from campaigns.models import Delivery, DeliveryTally, EngagementTally, Tally
from config import rawsql

RUNS_A_PASS = 50
# Minutes are kept for a day, then hours.
MINUTES_KEPT = timedelta(days=1)
# A run with more domains than this keeps its DOMAINS_KEPT largest apart and counts the others together.
DOMAINS_FOLDED_OVER = 200
DOMAINS_KEPT = 100
ON_THE_WAY = frozenset(Delivery.OPEN_STATUSES)
# A key of pg_advisory_xact_lock's two-integer space (the frequency caps use the one-bigint space: no overlap).
_RUN_LOCK = 1952737645

G = Tally.Grain


def tallies_compact(*, now: datetime, limit: int = RUNS_A_PASS) -> int:
    """Compact the raw rows of up to `limit` runs of each table; the number of runs compacted."""
    runs = set(_runs_with_raw_rows(DeliveryTally, limit)) | set(_runs_with_raw_rows(EngagementTally, limit))
    for run_id in sorted(runs):
        run_tallies_compact(run_id=run_id, now=now)
    return len(runs)


def _runs_with_raw_rows(model, limit: int) -> list[int]:
    rows = model.objects.filter(grain=G.RAW).order_by("run_id").values_list("run_id", flat=True).distinct()
    return list(rows[:limit])


@transaction.atomic
def run_tallies_compact(*, run_id: int, now: datetime) -> None:
    """Sum one run's raw rows into its grain rows (both tables)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, mod(%s, 2147483647)::int)", [_RUN_LOCK, run_id])
    hour_from = now - MINUTES_KEPT
    kept_domains = _compact_deliveries(run_id, hour_from)
    _compact_engagement(run_id, hour_from, kept_domains)


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


def _hour(bucket: datetime | None, hour_from: datetime) -> datetime | None:
    if bucket is None or bucket >= hour_from:
        return bucket
    return bucket.replace(minute=0, second=0, microsecond=0)


def _compact_deliveries(run_id: int, hour_from: datetime) -> set[str]:
    """The deliveries' grains; returns the domains the run keeps apart (those of its domain grain)."""
    raw = _taken(DeliveryTally, run_id, ["status", "reason", "domain", "bucket", "n"])
    kept = list(DeliveryTally.objects.filter(run_id=run_id).exclude(grain=G.RAW))
    if not raw:
        return {row.domain for row in kept if row.grain == G.DOMAIN}
    totals, minutes, domains = Counter(), Counter(), Counter()
    for row in kept:
        if row.grain == G.TOTAL:
            totals[row.status, row.reason] += row.n
        elif row.grain == G.TIME:
            minutes[row.status, _hour(row.bucket, hour_from)] += row.n
        elif row.grain == G.DOMAIN:
            domains[row.domain, row.status] += row.n
    folded = any(row.grain == G.DOMAIN and row.domain == Tally.OTHER_DOMAINS for row in kept)
    known = {row.domain for row in kept if row.grain == G.DOMAIN}
    for row in raw:
        totals[row.status, row.reason] += row.n
        if row.bucket is not None:  # a message arriving in a state a timeline shows (deltas leaving have none)
            minutes[row.status, _hour(row.bucket, hour_from)] += row.n
        if row.status not in ON_THE_WAY:
            domain = row.domain if not folded or row.domain in known else Tally.OTHER_DOMAINS
            domains[domain, row.status] += row.n
    domains = _folded(domains)
    rows = [DeliveryTally(run_id=run_id, grain=G.TOTAL, status=s, reason=r, n=n) for (s, r), n in totals.items() if n]
    rows += [DeliveryTally(run_id=run_id, grain=G.TIME, status=s, bucket=b, n=n) for (s, b), n in minutes.items() if n]
    rows += [
        DeliveryTally(run_id=run_id, grain=G.DOMAIN, domain=d, status=s, n=n) for (d, s), n in domains.items() if n
    ]
    DeliveryTally.objects.filter(id__in=[row.id for row in kept]).delete()
    DeliveryTally.objects.bulk_create(rows, batch_size=500)
    return {row.domain for row in rows if row.grain == G.DOMAIN}


def _folded(domains: Counter) -> Counter:
    """Past DOMAINS_FOLDED_OVER domains, all but the DOMAINS_KEPT largest are counted as one: for good, so a domain's
    count is never split between its own row and the others' (later messages to it are counted with the others)."""
    sizes = Counter()
    for (domain, _status), n in domains.items():
        sizes[domain] += n
    if len(sizes) <= DOMAINS_FOLDED_OVER:
        return domains
    largest = {domain for domain, _n in sizes.most_common(DOMAINS_KEPT)} - {Tally.OTHER_DOMAINS}
    folded = Counter()
    for (domain, status), n in domains.items():
        folded[domain if domain in largest else Tally.OTHER_DOMAINS, status] += n
    return folded


def _compact_engagement(run_id: int, hour_from: datetime, kept_domains: set[str]) -> None:
    raw = _taken(EngagementTally, run_id, ["kind", "machine", "link", "domain", "bucket", "uniques", "people", "total"])
    if not raw:
        return
    kept = list(EngagementTally.objects.filter(run_id=run_id).exclude(grain=G.RAW))
    by_grain = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for row in kept:
        key = {
            G.TOTAL: (row.kind, row.machine, row.link),
            G.TIME: (row.kind, row.machine, _hour(row.bucket, hour_from)),
            G.DOMAIN: (row.kind, row.machine, row.domain),
        }[row.grain]
        _add(by_grain[row.grain][key], row.uniques, row.people, row.total)
    folded = Tally.OTHER_DOMAINS in kept_domains
    for row in raw:
        counts = (row.uniques, row.people, row.total)
        _add(by_grain[G.TOTAL][row.kind, row.machine, row.link], *counts)
        _add(by_grain[G.TIME][row.kind, row.machine, _hour(row.bucket, hour_from)], *counts)
        domain = row.domain if not folded or row.domain in kept_domains else Tally.OTHER_DOMAINS
        _add(by_grain[G.DOMAIN][row.kind, row.machine, domain], *counts)
    rows = []
    for grain, counts in by_grain.items():
        for (kind, machine, third), (uniques, people, total) in counts.items():
            if not (uniques or people or total):
                continue
            where = {G.TOTAL: "link", G.TIME: "bucket", G.DOMAIN: "domain"}[grain]
            rows.append(
                EngagementTally(
                    run_id=run_id,
                    grain=grain,
                    kind=kind,
                    machine=machine,
                    uniques=uniques,
                    people=people,
                    total=total,
                    **{where: third},
                )
            )
    EngagementTally.objects.filter(id__in=[row.id for row in kept]).delete()
    EngagementTally.objects.bulk_create(rows, batch_size=500)


def _add(counts: list[int], uniques: int, people: int, total: int) -> None:
    counts[0] += uniques
    counts[1] += people
    counts[2] += total
