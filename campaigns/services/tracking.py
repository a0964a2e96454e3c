"""Counting what tracking links see (campaigns.tracking): hits written to Engagement many at a time, so the public
endpoints stay fast.

A web process keeps the hits of its requests and writes them every CAMPAIGNS_TRACKING_FLUSH_MS (a thread of
its own, one statement per kind and CHUNK hits), so a request to a tracking link waits for no database: one
round trip and the database's work a request were most of its time (docs/benchmarks.md, "Reports and tracking").
The cost: a web process killed without a chance to exit (SIGKILL, out of memory) loses the hits of its last
fraction of a second; one stopped as gunicorn stops its workers writes them first. With the setting at 0 (SQLite,
the tests), each request writes its own hit before it answers.
"""

import atexit
import logging
import os
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    connection,
    transaction,
)
from django.dispatch import receiver

from campaigns import tracking
from campaigns.models import Delivery, Engagement
from channels.unsubscribe import unsubscribed
from config import rawsql

log = logging.getLogger(__name__)

# Hits kept while the database cannot take them (it is down): past this many, new ones are dropped and logged.
MAX_PENDING = 200_000
# Hits written in one statement at most.
CHUNK = 5_000
# How long a batch waits for a lock before it gives up, to be written at the next interval.
LOCK_WAIT = "200ms"
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's error when lock_timeout ends the wait


@dataclass(frozen=True, slots=True)
class Hit:
    """One request to a tracking link: an open (`link` None) or a click on the link at position `link`, `machine`
    when the request is a machine's by what it is (campaigns.tracking.request_machine_reason). Whether it is a
    machine's by coming within seconds of the message's sending is decided when it is written."""

    delivery_id: int
    link: int | None
    machine: bool
    at: datetime

    @property
    def kind(self) -> str:
        return Engagement.Kind.OPEN if self.link is None else Engagement.Kind.CLICK


@receiver(unsubscribed)
def _on_unsubscribed(sender, delivery_id, at, **kwargs):
    if delivery_id is not None:
        engagement_record(delivery_id=delivery_id, link=None, machine=False, now=at, kind=Engagement.Kind.UNSUBSCRIBE)


def hit_count(hit: Hit) -> None:
    """Count a request to a tracking link: kept and written with the others within CAMPAIGNS_TRACKING_FLUSH_MS,
    or now when that is 0. A hit on a message that does not exist (any more) is not counted."""
    if _flush_seconds() <= 0:
        hits_record([hit])
    else:
        _pending.add(hit)


def hits_record(hits: list[Hit], *, lock_wait: bool = True) -> int:
    """Write `hits`: each open, or click on a link, of a delivery makes its row the first time (first_at, last_at,
    count) and adds to its count and dates its last_at after, people's and machines' in rows of their own. A hit
    is a machine's by its `machine`, or by coming within campaigns.tracking's seconds of its message's sending (or
    before its sending is recorded), decided from the delivery in the same statement. Hits on a delivery that does
    not exist are left out. One statement a kind (INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE): no
    count is lost or made twice by concurrent writers. On SQLite, a statement a hit, together in one transaction.
    Returns how many rows were written. Without `lock_wait` (the writer thread's batches), a statement waiting
    longer than LOCK_WAIT for a message's row fails instead (see _batch_statement); a request's own write waits.

    Outside a transaction the statement commits without waiting for the write-ahead log to reach the disk
    (PostgreSQL's synchronous_commit off for its own transaction): a crash of the database server may lose the
    last fraction of a second of opens and clicks, never anything else."""
    written = 0
    for kind in (Engagement.Kind.OPEN, Engagement.Kind.CLICK):
        of_kind = [hit for hit in hits if hit.kind == kind]
        if not of_kind:
            continue
        if connection.vendor == "postgresql":
            written += _execute(*_batch_statement(kind, of_kind, lock_wait=lock_wait))
            continue
        with transaction.atomic() if len(of_kind) > 1 else nullcontext():
            for hit in of_kind:
                written += _execute(*_row_statement(kind, hit.delivery_id, hit.link, hit.machine, hit.at, True))
    return written


def engagement_record(
    *,
    delivery_id: int,
    link: int | None,
    machine: bool,
    now: datetime,
    kind: str | None = None,
) -> bool:
    """Count one hit of `kind` (UNSUBSCRIBE: a confirmed unsubscribe link) now, as hits_record does, but `machine`
    alone deciding whose it is. False when the delivery does not exist (nothing written). Inside a transaction (the
    unsubscribe page's), under a savepoint: a failure here does not abort it."""
    kind = kind or (Engagement.Kind.OPEN if link is None else Engagement.Kind.CLICK)
    try:
        return _execute(*_row_statement(kind, delivery_id, link, machine, now, False)) > 0
    except IntegrityError:
        return False  # deleted with its campaign between the check and this write


def _execute(sql: str, params: list) -> int:
    if not connection.in_atomic_block:
        return rawsql.execute_unchecked(sql, params)
    with transaction.atomic(), rawsql.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# --- Statements ---------------------------------------------------------------------------------------------------

_SENT = "coalesce(d.sent_at, d.first_attempt_at)"


def _upsert(kind: str, select: str) -> str:
    """INSERT ... `select` ON CONFLICT on the kind's own partial unique index (engagement_one_open, _click,
    _unsubscribe): a row already there adds the new count and keeps the earliest first_at and the latest last_at
    (two processes' hits are written in either order)."""
    table = connection.ops.quote_name(Engagement._meta.db_table)
    target = (
        "(delivery_id, link, machine) WHERE kind = 'click'"
        if kind == Engagement.Kind.CLICK
        else f"(delivery_id, machine) WHERE kind = '{kind}'"
    )
    earlier, later = ("least", "greatest") if connection.vendor == "postgresql" else ("min", "max")
    return (
        f"INSERT INTO {table} (delivery_id, kind, link, machine, first_at, last_at, count) {select} "  # noqa: S608
        f"ON CONFLICT {target} DO UPDATE SET count = {table}.count + excluded.count, "
        f"first_at = {earlier}({table}.first_at, excluded.first_at), "
        f"last_at = {later}({table}.last_at, excluded.last_at)"
    )


def _asynchronous(*, lock_wait: bool = True) -> str:
    """A condition that turns PostgreSQL's synchronous_commit off for the transaction of a statement run alone
    (set_config(..., true) lasts until its commit); nothing inside a transaction or on SQLite. Without `lock_wait`,
    the statement also gives up after LOCK_WAIT of waiting for a lock (lock_timeout)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return ""
    condition = " AND set_config('synchronous_commit', 'off', true) IS NOT NULL"
    if not lock_wait:
        condition += f" AND set_config('lock_timeout', '{LOCK_WAIT}', true) IS NOT NULL"
    return condition


def _row_statement(kind, delivery_id, link, machine, at, by_sending_time: bool) -> tuple[str, list]:
    machine_sql, machine_params = "%s", [machine]
    if by_sending_time:
        machine_sql = f"(%s OR {_SENT} IS NULL OR {_SENT} > %s)"
        machine_params.append(rawsql.value(Delivery, "sent_at", at - tracking.machine_interval()))
    deliveries = connection.ops.quote_name(Delivery._meta.db_table)
    at = rawsql.value(Engagement, "first_at", at)
    select = f"SELECT d.id, %s, %s, {machine_sql}, %s, %s, 1 FROM {deliveries} d WHERE d.id = %s{_asynchronous()}"  # noqa: S608
    return _upsert(kind, select), [kind, link, *machine_params, at, at, delivery_id]


def _batch_statement(kind: str, hits: list[Hit], *, lock_wait: bool) -> tuple[str, list]:
    """PostgreSQL: the hits as arrays (one statement text, prepared once, whatever their number), grouped into one
    row per delivery, link and whose. Its clicks lock their messages' rows together (0014's insert trigger, in id
    order), which a writer updating several of them in another order (the send path's outcomes, provider feedback)
    could wait on while holding one the batch wants: without `lock_wait`, the batch gives up after LOCK_WAIT
    instead, before PostgreSQL's deadlock check (1 s) could choose the other to fail, and is written at the next
    interval."""
    deliveries = connection.ops.quote_name(Delivery._meta.db_table)
    select = (
        f"SELECT d.id, %s, h.link, (h.machine OR {_SENT} IS NULL OR {_SENT} > h.at - %s), min(h.at), max(h.at), "  # noqa: S608
        "count(*) FROM unnest(%s::bigint[], %s::integer[], %s::boolean[], %s::timestamptz[]) "
        f"AS h(delivery_id, link, machine, at) JOIN {deliveries} d ON d.id = h.delivery_id "
        # In the same order in every writer: two processes' batches wait for each other's rows, never in a cycle.
        f"WHERE true{_asynchronous(lock_wait=lock_wait)} GROUP BY d.id, h.link, 4 ORDER BY d.id, h.link, 4"
    )
    columns = [[hit.delivery_id, hit.link, hit.machine, hit.at] for hit in hits]
    return _upsert(kind, select), [kind, tracking.machine_interval(), *map(list, zip(*columns, strict=True))]


# --- Kept hits ----------------------------------------------------------------------------------------------------


def _flush_seconds() -> float:
    return settings.CAMPAIGNS_TRACKING_FLUSH_MS / 1000


class _Pending:
    """The hits of this process not written yet, and the thread that writes them. Started by the first hit in each
    process (gunicorn forks its workers from a master that never counts one); at exit, the thread is stopped and
    waited for, then what is left is written."""

    def __init__(self):
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        self._pid = None
        self._dropped = 0
        self._stop = threading.Event()
        self._thread = None
        self._failing = False

    def add(self, hit: Hit) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            if len(self._hits) >= MAX_PENDING:
                self._dropped += 1
                return
            self._hits.append(hit)

    def _start(self) -> None:
        self._pid, self._hits, self._stop, self._thread = os.getpid(), [], threading.Event(), None
        atexit.register(self._exit)
        if (interval := _flush_seconds()) > 0:
            self._thread = threading.Thread(
                target=self._run, args=[interval, self._stop], name="tracking-hits", daemon=True
            )
            self._thread.start()

    def _run(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                if not self.flush():
                    connection.close()  # nothing came: no connection is held between bursts
            except Exception:
                log.exception("tracking hits: the writer failed; it goes on at the next interval")

    def _exit(self) -> None:
        if self._pid != os.getpid():
            return  # registered by the process this one was forked from
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # a batch it took is written before the rest
        self.flush()

    def flush(self) -> bool:
        """Write the hits kept, in the calling thread (with its own database connection), a kind and CHUNK hits a
        statement, each committed alone; False when there were none. While the database cannot take them (down,
        read-only, a lock not granted in time), those not written are kept for the next time; a batch it refuses
        otherwise is tried once more (a message deleted meanwhile is then left out), then dropped and logged."""
        with self._lock:
            hits, self._hits = self._hits, []
            dropped, self._dropped = self._dropped, 0
        if dropped:
            log.error("%d tracking hits dropped: %d were waiting for the database already", dropped, MAX_PENDING)
        if not hits:
            return False
        kept: list[Hit] = []
        for kind in (Engagement.Kind.OPEN, Engagement.Kind.CLICK):
            of_kind = [hit for hit in hits if hit.kind == kind]
            for start in range(0, len(of_kind), CHUNK):
                chunk = of_kind[start : start + CHUNK]
                if kept or not self._write(chunk):
                    kept += chunk  # once one could not be written, the next ones wait too
        if kept:
            with self._lock:
                room = max(0, MAX_PENDING - len(self._hits))
                self._hits[:0] = kept[:room]
                self._dropped += len(kept) - len(kept[:room])
        return True

    def _write(self, chunk: list[Hit]) -> bool:
        """Write a chunk: False when it is to be kept for the next time."""
        for attempt in (1, 2):
            try:
                hits_record(chunk, lock_wait=False)
            except (OperationalError, InterfaceError, InternalError) as error:
                if getattr(error.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                    return False  # a message's row held by another writer past LOCK_WAIT: the next interval
                if not self._failing:
                    log.exception("tracking hits not written: kept until the database takes them")
                self._failing = True
                connection.close()
                return False
            except DatabaseError:
                if attempt == 2:
                    log.exception("%d tracking hits refused by the database: dropped", len(chunk))
            else:
                if self._failing:
                    log.warning("tracking hits written again")
                self._failing = False
                return True
        return True


_pending = _Pending()
