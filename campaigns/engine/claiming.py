"""Claiming a slice of a run's due deliveries for one worker."""

import uuid
from datetime import datetime

from django.db import transaction

from campaigns.models import Delivery


def claim_slice(*, run_id: int, limit: int, now: datetime) -> tuple[uuid.UUID, list[Delivery]]:
    """Claim up to `limit` due pending deliveries with a conditional UPDATE; return them.

    `status = 'pending'` in the UPDATE is what guarantees two workers never share a row. The ids are
    picked first, in the same transaction: on PostgreSQL with FOR UPDATE SKIP LOCKED so concurrent
    claimers pass each other by (an `IN (subquery ... LIMIT n FOR UPDATE SKIP LOCKED)` inside the UPDATE
    is rescanned per row by a nested-loop semi-join and claims far more than n); on SQLite Django leaves
    FOR UPDATE out and the IMMEDIATE transaction serializes claimers.
    """
    token = uuid.uuid4()
    with transaction.atomic():
        candidates = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(run_id=run_id, status=Delivery.Status.PENDING, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        candidate_ids = list(candidates)
        claimed = Delivery.objects.filter(id__in=candidate_ids, status=Delivery.Status.PENDING).update(
            status=Delivery.Status.CLAIMED, claim_token=token, claimed_at=now
        )
    if not claimed:
        return token, []
    # By the ids in hand (the primary key), never by a scan of the ledger for the token.
    deliveries = Delivery.objects.filter(id__in=candidate_ids, claim_token=token, status=Delivery.Status.CLAIMED)
    deliveries = deliveries.select_related("profile")
    return token, list(deliveries.order_by("id"))
