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
    *, delivery_id: int, link: int | None, machine: bool, now: datetime, kind: str | None = None
) -> bool:
    """Count one open (`link` None) or one click on the link at position `link` of a delivery: the first makes its
    row (first_at, last_at, count 1), each next one adds 1 to its count and dates last_at, in one statement
    (INSERT ... ON CONFLICT DO UPDATE), so concurrent requests neither lose a count nor make a second row. People's
    and machines' requests are counted in rows of their own. `kind` UNSUBSCRIBE counts a confirmed unsubscribe link
    instead. False when the delivery no longer exists."""
    kind = kind or (Engagement.Kind.OPEN if link is None else Engagement.Kind.CLICK)
    table = connection.ops.quote_name(Engagement._meta.db_table)
    # The arbiter of each kind is its partial unique index (engagement_one_open, _click, _unsubscribe).
    target = (
        f"(delivery_id, machine) WHERE kind = '{kind}'"
        if kind != Engagement.Kind.CLICK
        else "(delivery_id, link, machine) WHERE kind = 'click'"
    )
    # Nothing is written for a message that no longer exists (a foreign key checked only at commit, as Django makes
    # them on PostgreSQL, would fail the transaction of the page that called this).
    deliveries = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"INSERT INTO {table} (delivery_id, kind, link, machine, first_at, last_at, count) "  # noqa: S608
        f"SELECT id, %s, %s, %s, %s, %s, 1 FROM {deliveries} WHERE id = %s ON CONFLICT {target} "
        f"DO UPDATE SET count = {table}.count + 1, last_at = excluded.last_at"
    )
    at = rawsql.value(Engagement, "first_at", now)
    try:
        # Inside a transaction (the unsubscribe page's), a savepoint keeps a failure here from aborting it; the
        # tracking endpoints run in autocommit and pay for none.
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), rawsql.cursor() as cursor:
            cursor.execute(sql, [kind, link, machine, at, at, delivery_id])
            return cursor.rowcount > 0
    except IntegrityError:
        return False  # deleted with its campaign between the check and this write
