"""The deliveries export of a run: a streamed CSV, one row per delivery in id order with its status, reason, times
and engagement (people's opens and clicks apart from machines'), formula cells inert, for holders of
campaigns.export_delivery only, audited, in a number of queries that does not grow with the run."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.models import Audience, Profile
from campaigns import exports
from campaigns.models import Delivery, Engagement, Run
from campaigns.services.lifecycle import Content, campaign_create
from permissions.models import AuditEvent
from tests.conftest import make_email_configuration

SENT_AT = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)
HEADER = [
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


@pytest.fixture
def ledger(personas):
    """A run with a delivery clicked by a person (and scanned by a machine), one opened by a machine only, one
    excluded, one failed, and one whose address looks like a formula; and a run of another campaign."""
    configuration = make_email_configuration(port=25)
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    campaign, other = (
        campaign_create(
            actor=personas["ada"],
            name=name,
            channel_configuration=configuration,
            audience=audience,
            content=Content("Hi", '<a href="https://shop.example.com/">Shop</a>', "Hi"),
        )
        for name in ("Spring sale", "Other")
    )
    run = _run(campaign, "2026-03-02T10:30")
    other_run = _run(other, "2026-03-02T10:30")
    profiles = [Profile.objects.create(email=f"p{index}@example.com") for index in range(5)]
    clicked, machine_opened, excluded, failed, formula = (
        _delivery(run, profiles[0], status=Delivery.Status.SENT, attempts=1, sent=True),
        _delivery(run, profiles[1], status=Delivery.Status.DELIVERED, attempts=2, sent=True),
        _delivery(run, profiles[2], status=Delivery.Status.EXCLUDED, reason=Delivery.Reason.SUPPRESSED),
        _delivery(
            run,
            profiles[3],
            status=Delivery.Status.FAILED,
            reason=Delivery.Reason.RETRIES_EXHAUSTED,
            detail="550 mailbox unavailable",
            attempts=3,
        ),
        _delivery(run, profiles[4], status=Delivery.Status.PENDING, address='=HYPERLINK("http://x")@example.com'),
    )
    _engaged(clicked, Engagement.Kind.OPEN, minutes=5, count=2)
    _engaged(clicked, Engagement.Kind.OPEN, machine=True, minutes=0, count=1)
    _engaged(clicked, Engagement.Kind.CLICK, link=0, minutes=7, count=1)
    _engaged(clicked, Engagement.Kind.CLICK, link=1, minutes=6, count=3)
    _engaged(clicked, Engagement.Kind.CLICK, link=0, machine=True, minutes=0, count=4)
    _engaged(machine_opened, Engagement.Kind.OPEN, machine=True, minutes=0, count=1)
    _delivery(other_run, profiles[0], status=Delivery.Status.SENT, sent=True)
    return {
        "campaign": campaign,
        "run": run,
        "other_run": other_run,
        "deliveries": [clicked, machine_opened, excluded, failed, formula],
        "profiles": profiles,
    }


def _run(campaign, occurrence) -> Run:
    return Run.objects.create(
        campaign=campaign, version=campaign.latest_version(), occurrence=occurrence, state=Run.State.COMPLETE
    )


def _delivery(run, profile, *, status, reason="", detail="", attempts=0, sent=False, address=None) -> Delivery:
    return Delivery.objects.create(
        run=run,
        version=run.version,
        profile=profile,
        channel="email",
        channel_configuration=run.campaign.channel_configuration,
        address=profile.email if address is None else address,
        due_at=SENT_AT - timedelta(minutes=1),
        status=status,
        reason=reason,
        detail=detail,
        attempts=attempts,
        first_attempt_at=SENT_AT if attempts else None,
        sent_at=SENT_AT if sent else None,
    )


def _engaged(delivery, kind, *, minutes, count, link=None, machine=False) -> None:
    at = SENT_AT + timedelta(minutes=minutes)
    Engagement.objects.create(
        delivery=delivery, kind=kind, link=link, machine=machine, first_at=at, last_at=at, count=count
    )


def _url(campaign_id, run_id) -> str:
    return f"/campaigns/{campaign_id}/runs/{run_id}/deliveries.csv"


def _rows(response) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export_streams_one_row_per_delivery_with_status_reason_times_and_engagement(client, personas, ledger):
    client.force_login(personas["ada"])
    run = ledger["run"]
    clicked, machine_opened, excluded, failed, formula = ledger["deliveries"]
    ids = [profile.pk for profile in ledger["profiles"]]

    response = client.get(_url(ledger["campaign"].pk, run.pk))

    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="campaign-{ledger["campaign"].pk}-run-{run.pk}-deliveries.csv"'
    )
    rows = _rows(response)
    due, sent = "2026-03-02T09:29:15Z", "2026-03-02T09:30:15Z"
    assert rows == [
        HEADER,
        # People's opens and clicks: the first time and the sum over links; machines' counted apart.
        [str(clicked.pk), str(ids[0]), "p0@example.com", "email", "sent", "", "", "1", due, sent, sent]
        + ["2026-03-02T09:35:15Z", "2", "1", "2026-03-02T09:36:15Z", "4", "4"],
        [str(machine_opened.pk), str(ids[1]), "p1@example.com", "email", "delivered", "", "", "2", due, sent, sent]
        + ["", "0", "1", "", "0", "0"],
        [str(excluded.pk), str(ids[2]), "p2@example.com", "email", "excluded", "suppressed", "", "0", due, "", ""]
        + ["", "0", "0", "", "0", "0"],
        [str(failed.pk), str(ids[3]), "p3@example.com", "email", "failed", "retries_exhausted"]
        + ["550 mailbox unavailable", "3", due, sent, "", "", "0", "0", "", "0", "0"],
        # A cell a spreadsheet would run as a formula is made inert.
        [str(formula.pk), str(ids[4]), '\'=HYPERLINK("http://x")@example.com', "email", "pending", "", "", "0", due]
        + ["", "", "", "0", "0", "", "0", "0"],
    ]


def test_export_is_audited(client, personas, ledger):
    client.force_login(personas["ada"])
    run = ledger["run"]

    _rows(client.get(_url(ledger["campaign"].pk, run.pk)))

    event = AuditEvent.objects.get(action="deliveries.exported")
    assert (event.actor_label, event.object_type, event.object_id) == ("ada", "campaigns.run", str(run.pk))
    assert event.after == {"campaign": ledger["campaign"].pk}


@pytest.mark.parametrize("username", ["april", "manny", "vera", "otto"])
def test_only_holders_of_export_delivery_may_export_or_see_the_link(client, personas, ledger, username):
    client.force_login(personas[username])
    campaign = ledger["campaign"]

    response = client.get(_url(campaign.pk, ledger["run"].pk))

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="deliveries.exported").exists()
    if username != "otto":
        assert "Download deliveries (CSV)" not in client.get(f"/campaigns/{campaign.pk}/").content.decode()


def test_the_campaign_page_links_each_run_to_its_export(client, personas, ledger):
    client.force_login(personas["ada"])
    campaign = ledger["campaign"]

    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    status = client.get(f"/campaigns/{campaign.pk}/status/").content.decode()

    link = f'href="{_url(campaign.pk, ledger["run"].pk)}"'
    assert link in page and link in status
    assert "Download deliveries (CSV)" in page


def test_a_run_of_another_campaign_or_no_run_is_not_found(client, personas, ledger):
    client.force_login(personas["ada"])
    campaign = ledger["campaign"]

    assert client.get(_url(campaign.pk, ledger["other_run"].pk)).status_code == 404
    assert client.get(_url(campaign.pk, ledger["other_run"].pk + 1000)).status_code == 404
    assert client.get(_url(campaign.pk, 2**70)).status_code == 404
    assert not AuditEvent.objects.filter(action="deliveries.exported").exists()


def _add_deliveries(run, count) -> None:
    for index in range(count):
        _delivery(run, Profile.objects.create(email=f"more{index}@example.com"), status=Delivery.Status.SENT, sent=True)


def test_the_number_of_queries_does_not_grow_with_the_run(client, personas, ledger, django_assert_max_num_queries):
    client.force_login(personas["ada"])
    url = _url(ledger["campaign"].pk, ledger["run"].pk)
    with CaptureQueriesContext(connection) as five:
        assert len(_rows(client.get(url))) == 1 + 5
    _add_deliveries(ledger["run"], 200)

    with django_assert_max_num_queries(len(five)):
        assert len(_rows(client.get(url))) == 1 + 205


def test_a_large_run_is_read_in_chunks_with_one_engagement_query_a_chunk(
    client, personas, ledger, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(exports, "CHUNK_SIZE", 3)
    client.force_login(personas["ada"])
    url = _url(ledger["campaign"].pk, ledger["run"].pk)
    with CaptureQueriesContext(connection) as two_chunks:
        rows = _rows(client.get(url))
    _add_deliveries(ledger["run"], 40)

    with django_assert_max_num_queries(len(two_chunks) + 13):
        more = _rows(client.get(url))

    assert more[: len(rows)] == rows
    assert [int(row[0]) for row in more[1:]] == sorted(int(row[0]) for row in more[1:])
    assert len(more) == 1 + 45


@pytest.mark.django_db(transaction=True)
def test_export_streams_outside_a_transaction_as_the_server_serves_it(client, personas, ledger, monkeypatch):
    """Served in autocommit, the rows are read after the view has returned, through a cursor kept across commits."""
    monkeypatch.setattr(exports, "CHUNK_SIZE", 2)
    client.force_login(personas["ada"])

    rows = _rows(client.get(_url(ledger["campaign"].pk, ledger["run"].pk)))

    assert [int(row[0]) for row in rows[1:]] == [delivery.pk for delivery in ledger["deliveries"]]
    assert rows[1][-6:] == ["2026-03-02T09:35:15Z", "2", "1", "2026-03-02T09:36:15Z", "4", "4"]
