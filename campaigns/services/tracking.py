"""Counting what tracking links see (campaigns.tracking): one upsert a request, so the public endpoints stay fast."""

from contextlib import nullcontext
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.dispatch import receiver

from campaigns.models import Delivery, Engagement
from channels.unsubscribe import unsubscribed
from config import rawsql


@receiver(unsubscribed)
def _on_unsubscribed(sender, delivery_id, at, **kwargs):
    if delivery_id is not None:
        engagement_record(delivery_id=delivery_id, link=None, machine=False, now=at, kind=Engagement.Kind.UNSUBSCRIBE)


def engagement_record(
    *,
    delivery_id: int,
    link: int | None,
    machine: bool,
    now: datetime,
    kind: str | None = None,
    machine_after: datetime | None = None,
) -> bool:
    """Count one open (`link` None) or one click on the link at position `link` of a delivery: the first makes its
    row (first_at, last_at, count 1), each next one adds 1 to its count and dates last_at, in one statement
    (INSERT ... ON CONFLICT DO UPDATE), so concurrent requests neither lose a count nor make a second row. People's
    and machines' requests are counted in rows of their own: `machine`, or with `machine_after`, also a delivery
    sent after that time (or whose sending is not recorded yet), decided in the same statement. `kind` UNSUBSCRIBE
    counts a confirmed unsubscribe link instead. False when the delivery does not exist (nothing written).

    A tracking endpoint's request (autocommit) commits without waiting for the write-ahead log to reach the disk
    (PostgreSQL's synchronous_commit off, for that transaction only): a crash of the database server may lose the
    last fraction of a second of opens and clicks, never anything else; the wait was most of the request's time."""
    kind = kind or (Engagement.Kind.OPEN if link is None else Engagement.Kind.CLICK)
    table = connection.ops.quote_name(Engagement._meta.db_table)
    # The arbiter of each kind is its partial unique index (engagement_one_open, _click, _unsubscribe).
    target = (
        f"(delivery_id, machine) WHERE kind = '{kind}'"
        if kind != Engagement.Kind.CLICK
        else "(delivery_id, link, machine) WHERE kind = 'click'"
    )
    machine_sql, machine_params = "%s", [machine]
    if machine_after is not None:
        sent = "coalesce(sent_at, first_attempt_at)"
        machine_sql = f"(%s OR {sent} IS NULL OR {sent} > %s)"
        machine_params.append(rawsql.value(Delivery, "sent_at", machine_after))
    # Nothing is written for a message that does not exist (a foreign key checked only at commit, as Django makes
    # them on PostgreSQL, would fail the transaction of the page that called this).
    deliveries = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"INSERT INTO {table} (delivery_id, kind, link, machine, first_at, last_at, count) "  # noqa: S608
        f"SELECT id, %s, %s, {machine_sql}, %s, %s, 1 FROM {deliveries} WHERE id = %s ON CONFLICT {target} "
        f"DO UPDATE SET count = {table}.count + 1, last_at = excluded.last_at"
    )
    at = rawsql.value(Engagement, "first_at", now)
    params = [kind, link, *machine_params, at, at, delivery_id]
    asynchronous = connection.vendor == "postgresql" and not connection.in_atomic_block
    try:
        # Inside a transaction (the unsubscribe page's), a savepoint keeps a failure here from aborting it.
        with transaction.atomic() if connection.in_atomic_block or asynchronous else nullcontext():
            with rawsql.cursor() as cursor:
                if asynchronous:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute(sql, params)
                return cursor.rowcount > 0
    except IntegrityError:
        return False  # deleted with its campaign between the check and this write
