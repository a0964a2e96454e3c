"""The audit log page: filters, pagination, the streamed CSV export, and who may see them."""

import csv
import io
from datetime import datetime

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from permissions.models import AuditEvent
from permissions.services.audit import audit_record


def _at(event, when: str):
    AuditEvent.objects.filter(pk=event.pk).update(created_at=datetime.fromisoformat(when))
    return event


@pytest.fixture
def events(personas):
    ada, vera = personas["ada"], personas["vera"]
    return [
        _at(audit_record(actor=ada, action="user.roles_changed", obj=vera, before={"roles": []}), "2026-03-01T10:00Z"),
        _at(audit_record(actor=ada, action="user.deactivated", obj=vera), "2026-03-05T23:30Z"),
        _at(audit_record(actor=vera, action="campaign.created", after={"name": "Sale"}), "2026-03-10T08:00Z"),
    ]


def _listed(client, **filters):
    response = client.get(reverse("permissions:audit"), filters)
    assert response.status_code == 200
    return [event.action for event in response.context["events"]]


def test_the_audit_page_lists_events_newest_first(client, personas, events):
    client.force_login(personas["ada"])

    assert _listed(client) == ["campaign.created", "user.deactivated", "user.roles_changed"]


def test_the_audit_page_filters_by_actor_action_type_and_days(client, personas, events):
    client.force_login(personas["ada"])

    assert _listed(client, actor="VERA") == ["campaign.created"]
    assert _listed(client, action="user.deactivated") == ["user.deactivated"]
    assert _listed(client, object_type="auth.user") == ["user.deactivated", "user.roles_changed"]
    assert _listed(client, since="2026-03-05", until="2026-03-05") == ["user.deactivated"]
    assert _listed(client, since="2026-03-02") == ["campaign.created", "user.deactivated"]
    assert _listed(client, until="2026-03-01") == ["user.roles_changed"]
    assert _listed(client, actor="ada", object_type="auth.user", since="2026-03-02") == ["user.deactivated"]


def test_an_impossible_date_range_is_an_error_not_everything(client, personas, events):
    client.force_login(personas["ada"])

    response = client.get(reverse("permissions:audit"), {"since": "2026-03-09", "until": "2026-03-01"})

    assert "until" in response.context["form"].errors
    assert list(response.context["events"]) == []


def test_the_audit_page_is_paginated(client, personas):
    for number in range(55):
        audit_record(actor=personas["ada"], action="test.event", after={"n": number})
    client.force_login(personas["ada"])

    first = client.get(reverse("permissions:audit"), {"action": "test.event"})
    second = client.get(reverse("permissions:audit"), {"action": "test.event", "page": 2})

    assert len(first.context["events"]) == 50 and len(second.context["events"]) == 5
    assert "action=test.event&amp;page=2" in first.content.decode()


def test_the_csv_export_streams_the_filtered_events(client, personas, events):
    client.force_login(personas["ada"])

    response = client.get(reverse("permissions:audit_export"), {"object_type": "auth.user"})

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "actor", "action", "object_type", "object_id", "object", "before", "after", "ip_address"]
    assert [row[2] for row in rows[1:]] == ["user.deactivated", "user.roles_changed"]
    vera_id = str(personas["vera"].pk)
    assert rows[2][:6] == ["2026-03-01T10:00:00+00:00", "ada", "user.roles_changed", "auth.user", vera_id, "vera"]
    assert rows[2][6] == '{"roles": []}'
    assert AuditEvent.objects.filter(action="audit.exported", actor=personas["ada"]).exists()


def test_the_csv_export_records_the_filters_the_form_read(client, personas, events):
    client.force_login(personas["ada"])

    response = client.get(reverse("permissions:audit_export"), {"object_type": "auth.user", "utm": "\x00"})

    b"".join(response.streaming_content)
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.after == {"filters": {"object_type": "auth.user"}}


@pytest.mark.parametrize("filters", [{"actor": "a\x00b"}, {"since": "2026-02-30"}, {"action": "no.such.action"}])
def test_an_export_with_a_filter_to_fix_answers_400_naming_it_and_records_nothing(client, personas, events, filters):
    """A NUL in a filter reached the audit event recording the export: PostgreSQL refused it (a server error)."""
    client.force_login(personas["ada"])

    response = client.get(reverse("permissions:audit_export"), filters)

    assert response.status_code == 400
    [name] = filters
    assert response.context["form"].errors[name]
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_csv_export_defuses_spreadsheet_formulas(client, personas):
    audit_record(actor=personas["ada"], action='=HYPERLINK("http://evil")')
    client.force_login(personas["ada"])

    body = b"".join(client.get(reverse("permissions:audit_export")).streaming_content).decode()

    assert "'=HYPERLINK" in body
    assert "\n=HYPERLINK" not in body and ",=HYPERLINK" not in body


@pytest.mark.parametrize("username", ["april", "manny", "vera", "otto"])
def test_only_audit_viewers_see_the_log_or_export_it(client, personas, events, username):
    client.force_login(personas[username])

    assert client.get(reverse("permissions:audit")).status_code == 403
    assert client.get(reverse("permissions:audit_export")).status_code == 403


def test_viewing_without_the_export_permission_hides_and_refuses_the_export(client, personas, events):
    from django.contrib.auth.models import Group, Permission

    auditors = Group.objects.create(name="Auditors")
    auditors.permissions.add(Permission.objects.get(codename="view_auditevent"))
    personas["otto"].groups.add(auditors)
    client.force_login(personas["otto"])

    page = client.get(reverse("permissions:audit"))
    export = client.get(reverse("permissions:audit_export"))

    assert page.status_code == 200 and "Export CSV" not in page.content.decode()
    assert export.status_code == 403


def test_secret_looking_values_never_reach_the_log(personas):
    event = audit_record(actor=personas["ada"], action="x", after={"password": "hunter2", "smtp_secret": "s3"})

    assert event.after == {"password": "[redacted]", "smtp_secret": "[redacted]"}
