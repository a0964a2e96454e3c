"""Claiming a slice of a run's due deliveries for one worker."""

import uuid
from datetime import datetime

from django.db import connection

from audiences.models import Profile
from campaigns.engine import workers
from campaigns.models import Delivery
from config import rawsql

_DELIVERY_FIELDS = [field.attname for field in Delivery._meta.concrete_fields]
_PROFILE_FIELDS = [field.attname for field in Profile._meta.concrete_fields]


def claim_slice(
    *, run_id: int, limit: int, now: datetime, soonest_retry: bool = False
) -> tuple[uuid.UUID, list[Delivery]]:
    """Claim up to `limit` due pending deliveries of the run with one conditional UPDATE; return them (by id, each
    with its profile). With `soonest_retry` (a probe of a provider that was down), a retry not due yet is taken
    too when none is due: the one due soonest.

    `status = 'pending'` in the UPDATE is what guarantees two workers never share a row. The rows are picked in a
    materialized CTE, computed once: on PostgreSQL with FOR UPDATE SKIP LOCKED so concurrent claimers pass each
    other by (an `IN (subquery ... LIMIT n FOR UPDATE SKIP LOCKED)` straight inside the UPDATE is rescanned per row
    by a nested-loop semi-join and claims far more than n); on SQLite the IMMEDIATE transaction of the statement
    serializes claimers. One statement, through a cursor: it runs for every slice (config.rawsql). The rows name
    this process's lease (campaigns.engine.workers), so they are released within seconds if it dies.
    """
    token = uuid.uuid4()
    table = connection.ops.quote_name(Delivery._meta.db_table)
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    due = "(due_at <= %s OR next_attempt_at IS NOT NULL)" if soonest_retry else "due_at <= %s"
    sql = (
        f"WITH picked AS MATERIALIZED (SELECT id FROM {table} "  # noqa: S608
        f"WHERE run_id = %s AND status = %s AND {due} ORDER BY due_at, id LIMIT %s{lock}) "
        f"UPDATE {table} SET status = %s, claim_token = %s, claimed_at = %s, claimed_by = %s "
        f"WHERE id IN (SELECT id FROM picked) AND status = %s "
        f"RETURNING {rawsql.columns(Delivery, _DELIVERY_FIELDS, '')}"
    )
    at = rawsql.value(Delivery, "claimed_at", now)
    params = [run_id, Delivery.Status.PENDING, at, limit]
    params += [Delivery.Status.CLAIMED, rawsql.value(Delivery, "claim_token", token), at]
    params += [rawsql.value(Delivery, "claimed_by", workers.current()), Delivery.Status.PENDING]
    deliveries = sorted(rawsql.fetch(Delivery, _DELIVERY_FIELDS, sql, params), key=lambda delivery: delivery.pk)
    if not deliveries:
        return token, []
    wanted = sorted({delivery.profile_id for delivery in deliveries if delivery.profile_id})
    profiles = {}
    if wanted:
        among, listed = rawsql.one_of("p.id", wanted)
        sql = f"SELECT {rawsql.columns(Profile, _PROFILE_FIELDS, 'p')} FROM {Profile._meta.db_table} p WHERE {among}"  # noqa: S608
        profiles = {profile.pk: profile for profile in rawsql.fetch(Profile, _PROFILE_FIELDS, sql, listed)}
    profile = Delivery._meta.get_field("profile")
    for delivery in deliveries:
        # As select_related gave it: None for a profile erased since.
        profile.set_cached_value(delivery, profiles.get(delivery.profile_id))
    return token, deliveries
