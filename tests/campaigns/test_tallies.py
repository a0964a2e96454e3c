"""The counters the database keeps of each run (campaigns.models.Tally): whatever writes the ledger (the ORM's update
and bulk_update, hand-written SQL, inserts), the counts by status and reason, by domain and in time are those of the
ledger itself, before and after compaction; engagement counts people once however many links they click, even when
two first clicks arrive at once; a compaction running while a write is still open loses nothing."""

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audiences.models import Profile
from campaigns.engine import planning, scheduler
from campaigns.models import Delivery, DeliveryTally, Engagement, EngagementTally, Run, Tally
from campaigns.selectors import reports
from campaigns.services import tallies
from campaigns.services.lifecycle import Content, campaign_activate
from campaigns.services.tracking import engagement_record
from tests.campaigns.test_execution import CONTENT, make_campaign
from tests.conftest import make_email_configuration

pytestmark = pytest.mark.both_databases

S = Delivery.Status
STATUSES = [s for s in S.values]
REASONS = ["", "no_consent", "smtp_550", "smtp_421", "retries_exhausted", "complaint"]
DOMAINS = ["Example.COM", "mail.example.org", "b.example", "c.example"]


LINKS = Content(
    "Links",
    '<p><a href="https://shop.example/a">A</a> <a href="https://shop.example/b">B</a> '
    '<a href="https://shop.example/c">C</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    "",
)


def _planned_run(marketer, everyone, count: int = 40, content: Content = CONTENT) -> int:
    Profile.objects.bulk_create(
        Profile(email=f"Person{i}@{DOMAINS[i % len(DOMAINS)]}", attributes={"n": i}) for i in range(count)
    )
    campaign = make_campaign(marketer, make_email_configuration(port=9), everyone, content=content)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    return run_id


def _ledger(run_id: int) -> Counter:
    rows = Delivery.objects.filter(run_id=run_id).values_list("status", "reason")
    return Counter(rows)


def _tallied(run_id: int) -> Counter:
    counted = reports.figures_of_runs([run_id])[run_id].by_reason
    return Counter({key: n for key, n in counted.items() if n})


def _ledger_by_domain(run_id: int) -> Counter:
    counted = Counter()
    for status, address in Delivery.objects.filter(run_id=run_id).values_list("status", "address"):
        if status not in Delivery.OPEN_STATUSES:
            counted[address.partition("@")[2].lower(), status] += 1
    return counted


def _tallied_by_domain(run_id: int) -> Counter:
    rows = DeliveryTally.objects.filter(run_id=run_id, grain=Tally.Grain.DOMAIN).values_list("domain", "status", "n")
    return Counter({(domain, status): n for domain, status, n in rows if n})


def _write(rng: random.Random, run_id: int) -> None:
    """One write of the ledger, by one of the ways the code writes it."""
    ids = list(Delivery.objects.filter(run_id=run_id).values_list("id", flat=True))
    chosen = rng.sample(ids, rng.randint(1, min(12, len(ids))))
    status, reason = rng.choice(STATUSES), rng.choice(REASONS)
    way = rng.choice(["update", "bulk_update", "sql", "untouched"])
    if way == "update":
        Delivery.objects.filter(id__in=chosen).update(status=status, reason=reason)
    elif way == "bulk_update":
        rows = list(Delivery.objects.filter(id__in=chosen))
        for row in rows:
            row.status, row.reason = rng.choice(STATUSES), rng.choice(REASONS)
        Delivery.objects.bulk_update(rows, ["status", "reason"])
    elif way == "sql":
        table = Delivery._meta.db_table
        marks = ", ".join(["%s"] * len(chosen))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET status = %s, reason = %s WHERE id IN ({marks})",  # noqa: S608
                [status, reason, *chosen],
            )
    else:  # a write that moves nothing: no count may change
        Delivery.objects.filter(id__in=chosen).update(attempts=7, detail="touched")


@pytest.mark.parametrize("seed", range(4))
def test_counts_are_the_ledgers_whatever_writes_it_and_whenever_it_is_compacted(marketer, everyone, seed):
    rng = random.Random(seed)
    run_id = _planned_run(marketer, everyone)
    assert _tallied(run_id) == _ledger(run_id) == Counter({(S.PENDING, ""): 40})
    now = timezone.now()
    for step in range(25):
        _write(rng, run_id)
        if rng.random() < 0.3:
            now += timedelta(hours=rng.choice([0, 1, 30]))
            tallies.tallies_compact(now=now)
            assert _tallied_by_domain(run_id) == _ledger_by_domain(run_id), step
        assert _tallied(run_id) == _ledger(run_id), step
    tallies.tallies_compact(now=now)
    assert not DeliveryTally.objects.filter(run_id=run_id, grain=Tally.Grain.RAW).exists()
    assert _tallied(run_id) == _ledger(run_id)
    assert _tallied_by_domain(run_id) == _ledger_by_domain(run_id)
    tallies.tallies_compact(now=now)  # nothing left to do: changes nothing
    assert _tallied(run_id) == _ledger(run_id)


def test_status_panel_counts_and_timeline(marketer, everyone):
    run_id = _planned_run(marketer, everyone, count=10)
    ids = list(Delivery.objects.filter(run_id=run_id).order_by("id").values_list("id", flat=True))
    Delivery.objects.filter(id__in=ids[:6]).update(status=S.SENT)
    Delivery.objects.filter(id__in=ids[6:8]).update(status=S.FAILED, reason="smtp_550")
    Delivery.objects.filter(id__in=ids[8:9]).update(status=S.EXCLUDED, reason="no_consent")
    Delivery.objects.filter(id__in=ids[:1]).update(status=S.BOUNCED, reason="smtp_511")
    counts = reports.delivery_counts(run_id=run_id)
    assert (counts.targeted, counts.sent, counts.failed, counts.excluded, counts.pending) == (10, 5, 3, 1, 1)
    figures = reports.figures_of_runs([run_id])[run_id]
    assert (figures.accepted, figures.delivered, figures.hard_bounces, figures.attempted) == (6, 5, 3, 8)
    timeline = reports.run_timeline(run_id=run_id)
    # Entries: 6 messages were sent, 2 failed; the bounce later does not take back that they were sent.
    assert sum(timeline.series["Sent"]) == 6
    assert sum(timeline.series["Failed"]) == 2
    tallies.tallies_compact(now=timezone.now())
    assert reports.run_timeline(run_id=run_id).series == timeline.series


def test_many_domains_keep_the_largest_apart_and_count_the_rest_together(marketer, everyone, monkeypatch):
    monkeypatch.setattr(tallies, "DOMAINS_FOLDED_OVER", 3)
    monkeypatch.setattr(tallies, "DOMAINS_KEPT", 2)
    Profile.objects.bulk_create(
        Profile(email=f"p{i}@d{min(i, 5)}.example", attributes={}) for i in range(12)
    )  # d5.example has 7 people, d0..d4 one each
    campaign = make_campaign(marketer, make_email_configuration(port=9), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    Delivery.objects.filter(run_id=run_id).update(status=S.SENT)
    tallies.tallies_compact(now=timezone.now())
    domains = _tallied_by_domain(run_id)
    assert domains[("d5.example", S.SENT)] == 7
    assert sum(n for (domain, _s), n in domains.items() if domain != Tally.OTHER_DOMAINS) == 8  # d5 and one more
    assert domains[(Tally.OTHER_DOMAINS, S.SENT)] == 4
    # A later change to a domain counted with the others stays with the others: no negative count of its own.
    folded = next(d for d in (f"d{i}.example" for i in range(5)) if (d, S.SENT) not in domains)
    Delivery.objects.filter(run_id=run_id, address__endswith=folded).update(status=S.BOUNCED)
    tallies.tallies_compact(now=timezone.now())
    domains = _tallied_by_domain(run_id)
    assert (folded, S.BOUNCED) not in domains
    assert domains[(Tally.OTHER_DOMAINS, S.SENT)] == 3 and domains[(Tally.OTHER_DOMAINS, S.BOUNCED)] == 1
    rows = reports.run_domains(run_id=run_id)
    assert rows[0].domain == "d5.example" and rows[-1].domain == Tally.OTHER_DOMAINS
    assert sum(row.messages for row in rows) == 12


def _engagement(run_id: int) -> dict:
    figures = reports.figures_of_runs([run_id])[run_id]
    return {key: (e.uniques, e.people, e.total) for key, e in figures.engagement.items()}


def test_people_are_counted_once_however_many_links_they_click(marketer, everyone):
    run_id = _planned_run(marketer, everyone, count=3, content=LINKS)
    first, second, _third = Delivery.objects.filter(run_id=run_id).order_by("id").values_list("id", flat=True)
    now = timezone.now()
    for delivery_id, link, machine in [
        (first, None, False),
        (first, None, False),
        (first, None, True),
        (first, 0, False),
        (first, 0, False),
        (first, 1, False),
        (second, 1, False),
        (second, 2, True),
    ]:
        assert engagement_record(delivery_id=delivery_id, link=link, machine=machine, now=now)
    expected = {
        ("open", False): (1, 1, 2),
        ("open", True): (1, 1, 1),
        ("click", False): (3, 2, 4),  # links 0 and 1 of the first, link 1 of the second; two people
        ("click", True): (1, 1, 1),
    }
    assert _engagement(run_id) == expected
    tallies.tallies_compact(now=now)
    assert _engagement(run_id) == expected
    links = reports.run_links(run=Run.objects.get(pk=run_id))
    assert [(row.url, row.people, row.total, row.machine_total) for row in links] == [
        ("https://shop.example/b", 2, 2, 0),  # most people first; the unsubscribe link is never tracked
        ("https://shop.example/a", 1, 2, 0),
        ("https://shop.example/c", 0, 0, 1),
    ]
    # Exactly the engagement rows: one per message, kind, link and machine flag.
    assert Engagement.objects.filter(delivery__run_id=run_id).count() == 6


@pytest.mark.django_db(transaction=True)
def test_two_first_clicks_at_once_count_one_person(marketer, everyone):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write at a time: there is no race to check")
    run_id = _planned_run(marketer, everyone, count=1)
    delivery_id = Delivery.objects.get(run_id=run_id).pk
    now = timezone.now()
    first_written, release = threading.Event(), threading.Event()
    errors = []

    def first_click():
        try:
            with transaction.atomic():
                engagement_record(delivery_id=delivery_id, link=0, machine=False, now=now)
                first_written.set()
                release.wait(10)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=first_click)
    thread.start()
    assert first_written.wait(10)
    other = threading.Thread(
        target=lambda: (engagement_record(delivery_id=delivery_id, link=1, machine=False, now=now), connection.close())
    )
    other.start()
    other.join(0.5)
    assert other.is_alive()  # waits for the first click's transaction: the person's lock
    release.set()
    thread.join(10)
    other.join(10)
    assert not errors
    assert _engagement(run_id) == {("click", False): (2, 1, 2)}


@pytest.mark.django_db(transaction=True)
def test_a_compaction_while_a_write_is_open_loses_nothing(marketer, everyone):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one write at a time: nothing can be open while a compaction runs")
    run_id = _planned_run(marketer, everyone, count=6)
    ids = list(Delivery.objects.filter(run_id=run_id).values_list("id", flat=True))
    written, release = threading.Event(), threading.Event()

    def open_write():
        try:
            with transaction.atomic():
                Delivery.objects.filter(id__in=ids[:3]).update(status=S.SENT)
                written.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=open_write)
    thread.start()
    assert written.wait(10)
    tallies.tallies_compact(now=timezone.now())  # sees the planning's rows, not the open write's
    release.set()
    thread.join(10)
    assert _tallied(run_id) == _ledger(run_id) == Counter({(S.SENT, ""): 3, (S.PENDING, ""): 3})
    tallies.tallies_compact(now=timezone.now())
    assert _tallied(run_id) == _ledger(run_id)
    assert EngagementTally.objects.filter(run_id=run_id).count() == 0


def test_rows_written_together_count_each_person_once(marketer, everyone):
    """Engagement written in bulk (one statement for many rows, as an import or a backfill writes them) counts as the
    same requests written one by one."""
    run_id = _planned_run(marketer, everyone, count=2, content=LINKS)
    first, second = Delivery.objects.filter(run_id=run_id).order_by("id").values_list("id", flat=True)
    now = timezone.now()
    assert engagement_record(delivery_id=second, link=0, machine=False, now=now)

    def row(delivery_id, kind, link, count):
        return Engagement(delivery_id=delivery_id, kind=kind, link=link, first_at=now, last_at=now, count=count)

    Engagement.objects.bulk_create(
        [
            row(first, "click", 0, 2),
            row(first, "click", 1, 1),
            row(first, "click", 2, 1),
            row(second, "click", 1, 1),  # the second person had clicked before
            row(first, "open", None, 3),
        ]
    )
    assert _engagement(run_id) == {("click", False): (5, 2, 6), ("open", False): (1, 1, 3)}


def test_runs_waiting_longest_are_compacted_first_and_a_pass_costs_what_it_adds(marketer, everyone):
    from django.test.utils import CaptureQueriesContext

    older = _planned_run(marketer, everyone, count=30)
    tallies.tallies_compact(now=timezone.now())
    Delivery.objects.filter(run_id=older).update(status=S.SENT)  # a big run's counters, compacted
    tallies.tallies_compact(now=timezone.now())
    newer = Run.objects.create(
        campaign=Run.objects.get(pk=older).campaign, version=Run.objects.get(pk=older).version, occurrence="later"
    )
    profile = Profile.objects.create(email="late@example.com")
    Delivery.objects.create(
        run=newer,
        version_id=Run.objects.get(pk=older).version_id,
        profile=profile,
        channel="email",
        channel_configuration_id=Run.objects.get(pk=older).version.channel_configuration_id,
        address="late@example.com",
        due_at=timezone.now(),
    )  # the newer run's row waits longer than the older run's next one
    one = Delivery.objects.filter(run_id=older).first()
    Delivery.objects.filter(pk=one.pk).update(status=S.FAILED, reason="smtp_550")
    assert tallies._runs_waiting(limit=1) == [newer.pk]
    with CaptureQueriesContext(connection) as queries:
        assert tallies.tallies_compact(now=timezone.now(), limit=2) == 2
    assert len(queries) <= 25  # a few statements a run, not one per counter it already has
    assert _tallied(older) == _ledger(older) and _tallied(newer.pk) == _ledger(newer.pk)


def test_minutes_for_the_first_day_then_hours(marketer, everyone):
    run_id = _planned_run(marketer, everyone, count=2)
    run = Run.objects.get(pk=run_id)
    later = run.created_at + timedelta(days=2, minutes=17)
    DeliveryTally.objects.create(run=run, status=S.SENT, bucket=run.created_at.replace(second=0, microsecond=0), n=1)
    DeliveryTally.objects.create(run=run, status=S.SENT, bucket=later.replace(second=0, microsecond=0), n=1)
    tallies.tallies_compact(now=later)
    buckets = sorted(DeliveryTally.objects.filter(run=run, grain=Tally.Grain.TIME).values_list("bucket", flat=True))
    assert buckets == [
        run.created_at.replace(second=0, microsecond=0),
        later.replace(minute=0, second=0, microsecond=0),
    ]


def test_an_erased_address_leaves_its_domain(marketer, everyone):
    run_id = _planned_run(marketer, everyone, count=4)
    Delivery.objects.filter(run_id=run_id).update(status=S.SENT)
    tallies.tallies_compact(now=timezone.now())
    erased = Delivery.objects.filter(run_id=run_id, address__iendswith="@b.example").get()
    Delivery.objects.filter(pk=erased.pk).update(address="")  # as campaigns.privacy blanks it
    tallies.tallies_compact(now=timezone.now())
    assert _tallied_by_domain(run_id) == _ledger_by_domain(run_id)
    assert "b.example" not in {row.domain for row in reports.run_domains(run_id=run_id)}
    assert sum(reports.run_timeline(run_id=run_id).series["Sent"]) == 4  # not sent again
