"""Counting what tracking links see (campaigns.tracking): one upsert a request, so the public endpoints stay fast."""

from datetime import datetime

from django.db import IntegrityError, connection

from campaigns.models import Engagement
from config import rawsql


def engagement_record(*, delivery_id: int, link: int | None, machine: bool, now: datetime) -> bool:
    """Count one open (`link` None) or one click on the link at position `link` of a delivery: the first makes its
    row (first_at, last_at, count 1), each next one adds 1 to its count and dates last_at, in one statement
    (INSERT ... ON CONFLICT DO UPDATE), so concurrent requests neither lose a count nor make a second row. People's
    and machines' requests are counted in rows of their own. False when the delivery no longer exists."""
    kind = Engagement.Kind.OPEN if link is None else Engagement.Kind.CLICK
    table = connection.ops.quote_name(Engagement._meta.db_table)
    # The arbiter of each kind is its partial unique index (engagement_one_open, engagement_one_click).
    target = (
        "(delivery_id, machine) WHERE kind = 'open'"
        if link is None
        else "(delivery_id, link, machine) WHERE kind = 'click'"
    )
    sql = (
        f"INSERT INTO {table} (delivery_id, kind, link, machine, first_at, last_at, count) "  # noqa: S608
        f"VALUES (%s, %s, %s, %s, %s, %s, 1) ON CONFLICT {target} "
        f"DO UPDATE SET count = {table}.count + 1, last_at = excluded.last_at"
    )
    at = rawsql.value(Engagement, "first_at", now)
    try:
        with rawsql.cursor() as cursor:
            cursor.execute(sql, [delivery_id, kind, link, machine, at, at])
    except IntegrityError:
        return False  # deleted with its campaign between the redirect's read and this write
    return True
