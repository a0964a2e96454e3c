"""The audit log's Address column: the client address of the web or API request that caused each event."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from permissions.models import AuditEvent
from permissions.roles import Role
from permissions.services.audit import audit_record


def _give_vera_a_role(client, personas, **meta):
    client.force_login(personas["ada"])
    url = reverse("permissions:user_roles", args=[personas["vera"].pk])
    return client.post(url, {"roles": [Role.VIEWER.value, Role.MANAGER.value]}, **meta)


def test_a_web_action_records_the_client_address(client, personas):
    response = _give_vera_a_role(client, personas, REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user.roles_changed")
    assert event.ip_address == "203.0.113.7"
    page = client.get(reverse("permissions:audit")).content.decode()
    assert '<td class="nowrap">203.0.113.7</td>' in page


def test_forwarded_headers_are_not_believed(client, personas):
    # No setting names a trusted proxy: a header the client writes itself says nothing of where it is.
    _give_vera_a_role(
        client, personas, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1", HTTP_X_REAL_IP="198.51.100.2"
    )

    assert AuditEvent.objects.get(action="user.roles_changed").ip_address == "203.0.113.7"


def test_an_ipv6_address_is_recorded_without_its_interface(client, personas):
    _give_vera_a_role(client, personas, REMOTE_ADDR="FE80::1%eth0")

    assert AuditEvent.objects.get(action="user.roles_changed").ip_address == "fe80::1"


@pytest.mark.parametrize(
    "remote_addr", ["", "not an address", "999.1.1.1", "10.0.0.1, 10.0.0.2", "10.0.0.1\x00", "\ud800", "1" * 10_000]
)
def test_a_remote_address_that_is_not_an_ip_address_is_left_out_and_the_action_goes_through(
    client, personas, remote_addr
):
    response = _give_vera_a_role(client, personas, REMOTE_ADDR=remote_addr)

    assert response.status_code == 302
    assert set(personas["vera"].groups.values_list("name", flat=True)) == {Role.VIEWER.value, Role.MANAGER.value}
    assert AuditEvent.objects.get(action="user.roles_changed").ip_address is None


def test_an_action_outside_a_request_has_no_address(client, personas):
    _give_vera_a_role(client, personas, REMOTE_ADDR="203.0.113.7")  # a request before leaves nothing behind

    event = audit_record(actor=personas["ada"], action="test.job", obj=Group.objects.get(name=Role.VIEWER))

    assert event.ip_address is None
