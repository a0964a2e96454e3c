"""The suppression list pages: search, streamed CSV export, manual add and remove, for administrators, audited."""

import csv
import io

import pytest

from channels.models import Suppression
from channels.services.suppression import suppress_addresses
from permissions.models import AuditEvent


@pytest.fixture
def ada(client, personas):
    client.force_login(personas["ada"])
    return client


@pytest.fixture
def listed(db):
    suppress_addresses(channel="email", addresses=["Dead@Example.com", "gone@example.org"], reason="hard_bounce")
    suppress_addresses(channel="email", addresses=["angry@example.com"], reason="complaint")
    suppress_addresses(channel="sms", addresses=["+447700900123"], reason="hard_bounce")


def test_automatic_suppression_is_normalized_and_idempotent(db):
    assert (
        suppress_addresses(channel="email", addresses=[" Zoe@Example.COM ", "zoe@example.com"], reason="complaint") == 1
    )
    assert suppress_addresses(channel="email", addresses=["ZOE@example.com"], reason="hard_bounce") == 0

    assert list(Suppression.objects.values_list("address", "reason")) == [("zoe@example.com", "complaint")]


def test_list_searches_addresses_and_filters_channel_and_reason(ada, listed):
    everything = ada.get("/channels/suppression/")
    search = ada.get("/channels/suppression/", {"q": "EXAMPLE.COM"})
    complaints = ada.get("/channels/suppression/", {"reason": "complaint"})
    texts = ada.get("/channels/suppression/", {"channel": "sms"})

    assert everything.status_code == 200
    assert [row.address for row in search.context["suppressions"]] == ["angry@example.com", "dead@example.com"]
    assert [row.address for row in complaints.context["suppressions"]] == ["angry@example.com"]
    assert [row.address for row in texts.context["suppressions"]] == ["+447700900123"]
    assert b"gone@example.org" in everything.content


def test_export_streams_the_filtered_list_as_csv_and_is_audited(ada, listed):
    response = ada.get("/channels/suppression/export/", {"channel": "email"})

    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="suppression-list-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["channel", "address", "reason", "added_at"]
    assert sorted(row[1] for row in rows[1:]) == ["angry@example.com", "dead@example.com", "gone@example.org"]
    event = AuditEvent.objects.get(action="suppression.exported")
    assert event.after["filters"]["channel"] == "email"


def test_manual_add_normalizes_refuses_a_duplicate_and_is_audited(ada, listed):
    response = ada.post("/channels/suppression/add/", {"channel": "email", "address": "  New@Example.COM "})
    duplicate = ada.post("/channels/suppression/add/", {"channel": "email", "address": "DEAD@example.com"})
    not_a_number = ada.post("/channels/suppression/add/", {"channel": "sms", "address": "07700 900123"})

    assert response.status_code == 302
    added = Suppression.objects.get(address="new@example.com")
    assert (added.channel, added.reason) == ("email", "manual")
    assert duplicate.status_code == 200 and "already suppressed" in duplicate.content.decode()
    assert not_a_number.status_code == 200 and "international form" in not_a_number.content.decode()
    event = AuditEvent.objects.get(action="suppression.added")
    assert (event.actor_label, event.after) == ("ada", {"channel": "email", "address": "new@example.com"})


def test_remove_takes_the_address_off_and_is_audited(ada, listed):
    row = Suppression.objects.get(address="dead@example.com")

    response = ada.post(f"/channels/suppression/{row.pk}/remove/")

    assert response.status_code == 302
    assert not Suppression.objects.filter(pk=row.pk).exists()
    event = AuditEvent.objects.get(action="suppression.removed")
    assert event.before == {"channel": "email", "address": "dead@example.com", "reason": "hard_bounce"}


@pytest.mark.parametrize("username", ["april", "manny", "vera", "otto"])
def test_only_administrators_change_or_export_the_list(client, personas, listed, username):
    client.force_login(personas[username])
    row = Suppression.objects.first()

    assert (
        client.post("/channels/suppression/add/", {"channel": "email", "address": "x@example.com"}).status_code == 403
    )
    assert client.post(f"/channels/suppression/{row.pk}/remove/").status_code == 403
    assert client.get("/channels/suppression/export/").status_code == 403
    assert Suppression.objects.count() == 4 and not AuditEvent.objects.filter(action__startswith="suppression").exists()


def test_export_makes_formula_cells_inert(client, personas):
    from channels.models import Suppression

    Suppression.objects.create(channel="email", address="=cmd|' /C calc'!A0@example.com", reason="manual")
    client.force_login(personas["ada"])

    body = b"".join(client.get("/channels/suppression/export/").streaming_content).decode()

    assert "'=cmd|" in body
