"""Reads for campaign pages and reports. Counts come from the ledger, by an indexed aggregate."""

from dataclasses import dataclass

from django.db.models import Count

from campaigns.models import Delivery

_SENT = {Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.OPENED, Delivery.Status.CLICKED}
_FAILED = {Delivery.Status.FAILED, Delivery.Status.BOUNCED, Delivery.Status.COMPLAINED}


@dataclass(frozen=True)
class DeliveryCounts:
    targeted: int = 0
    excluded: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0

    @property
    def to_send(self) -> int:
        return self.targeted - self.excluded

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.unknown

    @property
    def percent_done(self) -> int:
        return int(100 * self.done / self.to_send) if self.to_send else 100


def delivery_counts(*, campaign_id: int | None = None, run_id: int | None = None) -> DeliveryCounts:
    """Counts by outcome for a campaign's runs or one run."""
    rows = Delivery.objects.all()
    rows = rows.filter(run_id=run_id) if run_id is not None else rows.filter(run__campaign_id=campaign_id)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by())
    return DeliveryCounts(
        targeted=sum(by_status.values()),
        excluded=by_status.get(Delivery.Status.EXCLUDED, 0),
        pending=sum(by_status.get(status, 0) for status in Delivery.OPEN_STATUSES),
        sent=sum(by_status.get(status, 0) for status in _SENT),
        failed=sum(by_status.get(status, 0) for status in _FAILED),
        unknown=by_status.get(Delivery.Status.UNKNOWN, 0),
    )


def exclusion_counts(*, campaign_id: int) -> dict[str, int]:
    rows = Delivery.objects.filter(run__campaign_id=campaign_id, status=Delivery.Status.EXCLUDED)
    return dict(rows.values_list("reason").annotate(n=Count("id")).order_by("reason"))
