"""Reads for campaign and run reports, the home dashboard and the metrics endpoint.

Every figure comes from the counters the database keeps (campaigns.models.Tally): the grain rows of a run and its
raw rows not yet compacted, a few hundred rows whatever the size of the run; never from counting the ledger.
"""

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.db.models import Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from campaigns.models import Delivery, DeliveryTally, Engagement, EngagementTally, Run, Tally
from channels.classification import SMTP_REASON

S = Delivery.Status
G = Tally.Grain
ON_THE_WAY = frozenset(Delivery.OPEN_STATUSES)
# Taken by the provider: what a bounce or a complaint may later befall.
ACCEPTED = frozenset({S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED})
# A message's first outcome: what the live rate counts.
OUTCOMES = frozenset({S.SENT, S.FAILED, S.UNKNOWN})
_TOTALS = Q(grain=G.RAW) | Q(grain=G.TOTAL)
_TIMES = Q(grain=G.RAW, bucket__isnull=False) | Q(grain=G.TIME)
_DOMAINS = (Q(grain=G.RAW) & ~Q(status__in=ON_THE_WAY)) | Q(grain=G.DOMAIN)
RATE_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class DeliveryCounts:
    targeted: int = 0
    excluded: int = 0
    pending: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0

    @property
    def to_send(self) -> int:
        return self.targeted - self.excluded - self.cancelled

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.unknown

    @property
    def percent_done(self) -> int:
        return int(100 * self.done / self.to_send) if self.to_send else 100


@dataclass(frozen=True)
class Engaged:
    """Opens, clicks or unsubscribes: `people` messages engaged (unique), `uniques` engagement rows (for clicks, each
    message's distinct links), `total` requests."""

    uniques: int = 0
    people: int = 0
    total: int = 0


@dataclass(frozen=True)
class Rate:
    label: str
    part: int
    whole: int
    explanation: str

    @property
    def percent(self) -> float | None:
        return 100 * self.part / self.whole if self.whole else None


@dataclass
class Figures:
    """The counts of one run or of several together."""

    by_reason: Counter = field(default_factory=Counter)  # (status, reason) -> messages
    engagement: dict = field(default_factory=dict)  # (kind, machine) -> Engaged

    def status(self, *statuses) -> int:
        return sum(n for (status, _reason), n in self.by_reason.items() if status in statuses)

    def reasons(self, status) -> list[tuple[str, int]]:
        """(reason label, messages) of a status, largest first."""
        rows = Counter()
        for (each, reason), n in self.by_reason.items():
            if each == status and n:
                rows[reason_label(reason)] += n
        return rows.most_common()

    @property
    def excluded_reasons(self) -> list[tuple[str, int]]:
        return self.reasons(S.EXCLUDED)

    @property
    def failed_reasons(self) -> list[tuple[str, int]]:
        return self.reasons(S.FAILED)

    def engaged(self, kind, *, machine=False) -> Engaged:
        return self.engagement.get((kind, machine), Engaged())

    @property
    def counts(self) -> DeliveryCounts:
        """The campaign page's status panel's figures."""
        return DeliveryCounts(
            targeted=sum(self.by_reason.values()),
            excluded=self.status(S.EXCLUDED),
            pending=self.status(*ON_THE_WAY),
            sent=self.status(S.SENT, S.DELIVERED, S.OPENED, S.CLICKED),
            failed=self.status(S.FAILED, S.BOUNCED, S.COMPLAINED),
            unknown=self.status(S.UNKNOWN),
            cancelled=self.status(S.CANCELLED),
        )

    @property
    def targeted(self) -> int:
        return sum(self.by_reason.values())

    @property
    def accepted(self) -> int:
        return self.status(*ACCEPTED)

    @property
    def hard_bounces(self) -> int:
        """Bounced after acceptance (the provider's report), or refused for good at the handover (SMTP 5xx)."""
        refused = sum(n for (status, reason), n in self.by_reason.items() if status == S.FAILED and _smtp(reason, "5"))
        return self.status(S.BOUNCED) + refused

    @property
    def soft_bounces(self) -> int:
        """Deferred by the receiving side until the retries ran out (SMTP 4xx)."""
        return sum(
            n
            for (status, reason), n in self.by_reason.items()
            if status == S.FAILED and (reason == Delivery.Reason.RETRIES_EXHAUSTED or _smtp(reason, "4"))
        )

    @property
    def failed(self) -> int:
        """Refused or given up at the handover (bounces and complaints after it are counted apart)."""
        return self.status(S.FAILED)

    @property
    def attempted(self) -> int:
        return self.accepted + self.status(S.FAILED, S.UNKNOWN)

    @property
    def delivered(self) -> int:
        """Accepted and not bounced since."""
        return self.accepted - self.status(S.BOUNCED)

    @property
    def opens(self) -> Engaged:
        return self.engaged(Engagement.Kind.OPEN)

    @property
    def clicks(self) -> Engaged:
        return self.engaged(Engagement.Kind.CLICK)

    @property
    def machine_opens(self) -> Engaged:
        return self.engaged(Engagement.Kind.OPEN, machine=True)

    @property
    def machine_clicks(self) -> Engaged:
        return self.engaged(Engagement.Kind.CLICK, machine=True)

    @property
    def unsubscribes(self) -> int:
        return (
            self.engaged(Engagement.Kind.UNSUBSCRIBE).people
            + self.engaged(Engagement.Kind.UNSUBSCRIBE, machine=True).people
        )

    @property
    def complaints(self) -> int:
        return self.status(S.COMPLAINED)

    @property
    def rates(self) -> list[Rate]:
        delivered, opened = self.delivered, self.opens.people
        return [
            Rate("Delivery rate", delivered, self.attempted, "delivered ÷ handed to the provider or failed"),
            Rate("Open rate", opened, delivered, "people who opened ÷ delivered (machine opens left out)"),
            Rate("Click-through rate", self.clicks.people, delivered, "people who clicked ÷ delivered"),
            Rate("Click-to-open rate", self.clicks.people, opened, "people who clicked ÷ people who opened"),
            Rate("Bounce rate", self.hard_bounces + self.soft_bounces, self.attempted, "hard and soft ÷ attempted"),
            Rate("Unsubscribe rate", self.unsubscribes, delivered, "unsubscribed through the message ÷ delivered"),
            Rate("Complaint rate", self.complaints, delivered, "marked as spam ÷ delivered"),
        ]


def _smtp(reason: str, first_digit: str) -> bool:
    """An SMTP reply's reason (`smtp_550`, or with an enhanced code `smtp_5.1.1`) of that class."""
    match = SMTP_REASON.match(reason)
    return bool(match) and (match["enhanced"] or match["basic"])[0] == first_digit


def reason_label(reason: str) -> str:
    try:
        return Delivery.Reason(reason).label
    except ValueError:
        return reason or "Unspecified"


def figures_of_runs(run_ids: list[int]) -> dict[int, Figures]:
    """The figures of each run: two queries."""
    figures = {run_id: Figures() for run_id in run_ids}
    deliveries = DeliveryTally.objects.filter(_TOTALS, run_id__in=run_ids)
    for run_id, status, reason, n in deliveries.values_list("run_id", "status", "reason").annotate(n=Sum("n")):
        figures[run_id].by_reason[status, reason] += n
    for run_id, key, engaged in _engagement_rows(EngagementTally.objects.filter(_TOTALS, run_id__in=run_ids)):
        figures[run_id].engagement[key] = engaged
    return figures


def figures_of_campaign(*, campaign_id: int) -> Figures:
    """Every run of a campaign together: two queries."""
    figures = Figures()
    deliveries = DeliveryTally.objects.filter(_TOTALS, run__campaign_id=campaign_id)
    for status, reason, n in deliveries.values_list("status", "reason").annotate(n=Sum("n")).order_by():
        figures.by_reason[status, reason] += n
    engagement = EngagementTally.objects.filter(_TOTALS, run__campaign_id=campaign_id)
    for _run, key, engaged in _engagement_rows(engagement, by_run=False):
        figures.engagement[key] = engaged
    return figures


def _engagement_rows(rows, *, by_run: bool = True):
    names = ["run_id", "kind", "machine"] if by_run else ["kind", "machine"]
    summed = rows.values_list(*names).annotate(u=Sum("uniques"), p=Sum("people"), t=Sum("total")).order_by()
    for row in summed:
        *key, uniques, people, total = row
        run_id = key.pop(0) if by_run else None
        yield run_id, (key[0], bool(key[1])), Engaged(uniques, people, total)


def delivery_counts(*, campaign_id: int | None = None, run_id: int | None = None) -> DeliveryCounts:
    """The status panel's counts, of a campaign's runs or of one run."""
    if run_id is not None:
        return figures_of_runs([run_id])[run_id].counts
    return figures_of_campaign(campaign_id=campaign_id).counts


def delivery_status_totals() -> dict[str, int]:
    """Messages by status over every run."""
    rows = DeliveryTally.objects.filter(_TOTALS).values_list("status").annotate(n=Sum("n")).order_by()
    return {status: n for status, n in rows if n}


# The timeline ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    buckets: list[datetime]
    step: timedelta
    series: dict[str, list[int]]  # name -> a value per bucket


TIMELINE_SERIES = ("Sent", "Failed", "Opened (people)", "Clicked (people)")


def run_timeline(*, run_id: int) -> Timeline:
    """Messages sent and failed, and people's first opens and clicks, by minute, hour or day as the span needs (at
    most a few hundred points)."""
    points: dict[str, Counter] = {name: Counter() for name in TIMELINE_SERIES}
    deliveries = DeliveryTally.objects.filter(_TIMES, run_id=run_id, status__in=[S.SENT, S.FAILED])
    for status, bucket, n in deliveries.values_list("status", "bucket").annotate(n=Sum("n")).order_by():
        points["Sent" if status == S.SENT else "Failed"][bucket] += n
    engagement = EngagementTally.objects.filter(
        _TIMES, run_id=run_id, machine=False, kind__in=[Engagement.Kind.OPEN, Engagement.Kind.CLICK]
    )
    for kind, bucket, people in engagement.values_list("kind", "bucket").annotate(p=Sum("people")).order_by():
        points["Opened (people)" if kind == Engagement.Kind.OPEN else "Clicked (people)"][bucket] += people
    moments = [bucket for counter in points.values() for bucket in counter]
    if not moments:
        return Timeline(buckets=[], step=timedelta(minutes=1), series={name: [] for name in TIMELINE_SERIES})
    step = _step(min(moments), max(moments))
    zone = timezone.get_current_timezone()  # days and hours begin on the reader's clock
    buckets = [_floor(min(moments), step, zone)]
    last = _floor(max(moments), step, zone)
    while buckets[-1] < last:
        buckets.append(_following(buckets[-1], step, zone))
    position = {bucket: i for i, bucket in enumerate(buckets)}
    series = {}
    for name, counter in points.items():
        values = [0] * len(buckets)
        for bucket, n in counter.items():
            values[position[_floor(bucket, step, zone)]] += n
        series[name] = values
    return Timeline(buckets=buckets, step=step, series=series)


def _step(first: datetime, last: datetime) -> timedelta:
    """Minutes for a span of up to 3 hours (kept by the minute for a run's first day), hours up to 10 days, days
    beyond."""
    span = last - first
    if span <= timedelta(hours=3):
        return timedelta(minutes=1)
    if span <= timedelta(days=10):
        return timedelta(hours=1)
    return timedelta(days=1)


def _floor(moment: datetime, step: timedelta, zone) -> datetime:
    local = moment.astimezone(zone)
    if step >= timedelta(days=1):
        return datetime.combine(local.date(), time(0), tzinfo=zone)
    if step >= timedelta(hours=1):
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(second=0, microsecond=0)


def _following(bucket: datetime, step: timedelta, zone) -> datetime:
    if step >= timedelta(days=1):
        return datetime.combine(bucket.date() + timedelta(days=1), time(0), tzinfo=zone)
    return _floor((bucket.astimezone(UTC) + step), step, zone)


# While a run sends ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    per_second: float | None
    seconds_left: float | None


def run_live(*, run: Run, counts: DeliveryCounts, now: datetime) -> Live:
    """Messages a second over the last few minutes (first outcomes: sent, failed, unknown) and, at that pace, the
    time left for what is still on its way; None when nothing was sent in that window."""
    since = max((now - RATE_WINDOW).replace(second=0, microsecond=0), run.sending_at or run.created_at)
    rows = DeliveryTally.objects.filter(
        _TIMES, run_id=run.pk, status__in=OUTCOMES, bucket__gte=since.replace(second=0, microsecond=0)
    )
    done = rows.aggregate(n=Sum("n"))["n"] or 0
    seconds = (now - since).total_seconds()
    if not done or seconds <= 0:
        return Live(per_second=None, seconds_left=None)
    per_second = done / seconds
    return Live(per_second=per_second, seconds_left=math.ceil(counts.pending / per_second) if counts.pending else 0)


# By domain, by link ------------------------------------------------------------------------------------------------

DOMAINS_SHOWN = 10


@dataclass(frozen=True)
class DomainRow:
    domain: str
    messages: int
    accepted: int
    bounced: int
    failed: int
    opened: int
    clicked: int

    @property
    def open_rate(self) -> float | None:
        delivered = self.accepted - self.bounced
        return 100 * self.opened / delivered if delivered > 0 else None


def run_domains(*, run_id: int, limit: int = DOMAINS_SHOWN) -> list[DomainRow]:
    """The run's largest recipient domains (email), the rest together as "Other domains"."""
    by_domain: dict[str, Counter] = {}
    deliveries = DeliveryTally.objects.filter(_DOMAINS, run_id=run_id).exclude(domain="")
    for domain, status, n in deliveries.values_list("domain", "status").annotate(n=Sum("n")).order_by():
        by_domain.setdefault(domain, Counter())[status] += n
    engagement = EngagementTally.objects.filter(
        Q(grain=G.RAW) | Q(grain=G.DOMAIN),
        run_id=run_id,
        machine=False,
        kind__in=[Engagement.Kind.OPEN, Engagement.Kind.CLICK],
    ).exclude(domain="")
    for domain, kind, people in engagement.values_list("domain", "kind").annotate(p=Sum("people")).order_by():
        by_domain.setdefault(domain, Counter())[kind] += people
    rows = [
        DomainRow(
            domain=domain,
            messages=sum(n for key, n in counts.items() if key in S.values),
            accepted=sum(counts[status] for status in ACCEPTED),
            bounced=counts[S.BOUNCED],
            failed=counts[S.FAILED],
            opened=counts[Engagement.Kind.OPEN],
            clicked=counts[Engagement.Kind.CLICK],
        )
        for domain, counts in by_domain.items()
        if any(counts.values())
    ]
    rows.sort(key=lambda row: (row.domain == Tally.OTHER_DOMAINS, -row.messages, row.domain))
    named = [row for row in rows if row.domain != Tally.OTHER_DOMAINS]
    shown, rest = named[:limit], [row for row in rows if row not in named[:limit]]
    if rest:
        shown.append(
            DomainRow(
                domain=Tally.OTHER_DOMAINS,
                **{
                    name: sum(getattr(row, name) for row in rest)
                    for name in ("messages", "accepted", "bounced", "failed", "opened", "clicked")
                },
            )
        )
    return shown


@dataclass(frozen=True)
class LinkRow:
    position: int
    url: str
    people: int  # messages whose person clicked it (unique clicks)
    total: int
    machine_total: int


def run_links(*, run: Run) -> list[LinkRow]:
    """The tracked links of the run's version, most clicked by people first."""
    from campaigns.tracking import version_links

    urls = version_links(run.version.html_body).urls
    counts: dict[int, list[int]] = {}
    rows = EngagementTally.objects.filter(_TOTALS, run_id=run.pk, kind=Engagement.Kind.CLICK)
    for link, machine, uniques, total in (
        rows.values_list("link", "machine").annotate(u=Sum("uniques"), t=Sum("total")).order_by()
    ):
        entry = counts.setdefault(link, [0, 0, 0])
        if machine:
            entry[2] += total
        else:
            entry[0] += uniques
            entry[1] += total
    links = [
        LinkRow(
            position=i,
            url=url,
            people=counts.get(i, [0, 0, 0])[0],
            total=counts.get(i, [0, 0, 0])[1],
            machine_total=counts.get(i, [0, 0, 0])[2],
        )
        for i, url in enumerate(urls)
    ]
    links.sort(key=lambda row: (-row.people, -row.total, row.position))
    return links


def oldest_due_pending(*, now: datetime) -> datetime | None:
    """The due time of the oldest message still pending and due at `now` among the runs that are sending, or None.
    One query: a subquery per sending run, each served by the index delivery_claim (run, status, due_at), so the
    ledger is never scanned whatever its size; paused and planning runs are left out (nothing of theirs should
    be going out)."""
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, due_at__lte=now)
    first_due = due.filter(run_id=OuterRef("pk")).order_by("due_at").values("due_at")[:1]
    sending = Run.objects.filter(state=Run.State.SENDING).annotate(first_due=Subquery(first_due))
    return sending.aggregate(oldest=Min("first_due"))["oldest"]
