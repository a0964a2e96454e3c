"""The deliveries export of a run: one CSV row per delivery, in id order, with its engagement summed up (opens and
clicks by people, with the first time, and by machines apart). Read in chunks: one query walks the run's deliveries
through a server-side cursor, and one more a chunk sums the engagement of that chunk, so neither memory nor the
number of queries grows with the run."""

from datetime import UTC, datetime
from itertools import batched

from django.db.models import Min, Q, Sum

from campaigns.models import Delivery, Engagement, Run

CHUNK_SIZE = 2000
DELIVERY_COLUMNS = [
    "delivery_id",
    "profile_id",
    "address",
    "channel",
    "status",
    "reason",
    "detail",
    "attempts",
    "due_at",
    "first_attempt_at",
    "sent_at",
    "first_opened_at",
    "opens",
    "machine_opens",
    "first_clicked_at",
    "clicks",
    "machine_clicks",
]
# The delivery's own columns, as fields (its id first); the engagement columns follow them.
_DELIVERY_FIELDS = ("id", *DELIVERY_COLUMNS[1 : DELIVERY_COLUMNS.index("sent_at") + 1])
_OPEN, _CLICK = Q(kind=Engagement.Kind.OPEN), Q(kind=Engagement.Kind.CLICK)
_PERSON, _MACHINE = Q(machine=False), Q(machine=True)
_ENGAGEMENT = {
    "first_opened_at": Min("first_at", filter=_OPEN & _PERSON),
    "opens": Sum("count", filter=_OPEN & _PERSON),
    "machine_opens": Sum("count", filter=_OPEN & _MACHINE),
    "first_clicked_at": Min("first_at", filter=_CLICK & _PERSON),
    "clicks": Sum("count", filter=_CLICK & _PERSON),
    "machine_clicks": Sum("count", filter=_CLICK & _MACHINE),
}
_NO_ENGAGEMENT = dict.fromkeys(_ENGAGEMENT)


def run_delivery_rows(*, run: Run):
    """The rows of DELIVERY_COLUMNS for every delivery of `run`, lazily, in id order; times in UTC ISO 8601, counts
    0 where nothing was seen, first times empty where no person was."""
    deliveries = Delivery.objects.filter(run=run).order_by("id").values_list(*_DELIVERY_FIELDS)
    for chunk in batched(deliveries.iterator(chunk_size=CHUNK_SIZE), CHUNK_SIZE):
        engagement = _engagement(delivery_ids=[row[0] for row in chunk])
        for row in chunk:
            seen = engagement.get(row[0], _NO_ENGAGEMENT)
            yield [
                *row[:8],
                *(_utc(value) for value in row[8:]),
                _utc(seen["first_opened_at"]),
                seen["opens"] or 0,
                seen["machine_opens"] or 0,
                _utc(seen["first_clicked_at"]),
                seen["clicks"] or 0,
                seen["machine_clicks"] or 0,
            ]


def _engagement(*, delivery_ids: list[int]) -> dict[int, dict]:
    rows = (
        Engagement.objects.filter(delivery_id__in=delivery_ids).values("delivery_id").order_by().annotate(**_ENGAGEMENT)
    )
    return {row["delivery_id"]: row for row in rows}


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
