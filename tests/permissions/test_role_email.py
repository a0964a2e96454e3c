"""An existing user given a role is told by email (and in the app), with a link to the installation."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from permissions.models import Notification
from permissions.roles import Role
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)  # the email job runs in a worker, after the commit


@pytest.fixture
def mail_server(smtp_server, settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 5},
        }
    }
    settings.SITE_URL = "https://campaigns.example.org"
    return smtp_server


def test_a_user_given_a_role_on_their_page_gets_an_email_with_the_role_and_a_link(client, personas, redis, mail_server):
    client.force_login(personas["ada"])
    otto = personas["otto"]

    client.post(reverse("permissions:user_roles", args=[otto.pk]), {"roles": [Role.VIEWER.value]})
    assert not mail_server.messages  # sent by the maintenance worker, off the request path
    run_burst_worker()

    [received] = mail_server.messages
    assert received["rcpt_tos"] == ["otto@example.com"]
    message = received["message"]
    assert message["Subject"] == "You were given the role “Campaign viewer”"
    body = message.get_content()
    assert "ada gave you the role “Campaign viewer”" in body
    assert "https://campaigns.example.org/" in body
    assert Notification.objects.get(user=otto).title == "You were given the role “Campaign viewer”"


def test_a_user_added_to_a_role_on_the_roles_page_gets_an_email(client, personas, redis, mail_server):
    client.force_login(personas["ada"])
    approver = Group.objects.get(name=Role.APPROVER.value)

    client.post(reverse("permissions:role_add_member", args=[approver.pk]), {"user": "vera@example.com"})
    run_burst_worker()

    assert [m["rcpt_tos"] for m in mail_server.messages] == [["vera@example.com"]]
    assert "“Campaign approver”" in mail_server.messages[0]["message"]["Subject"]


def test_only_granted_roles_are_announced(client, personas, redis, mail_server):
    client.force_login(personas["ada"])
    manny = personas["manny"]

    # Manny loses the manager role: no email.
    client.post(reverse("permissions:user_roles", args=[manny.pk]), {"roles": []})
    run_burst_worker()
    assert not mail_server.messages

    # Two roles at once: one email naming both.
    client.post(reverse("permissions:user_roles", args=[manny.pk]), {"roles": [Role.MANAGER.value, Role.VIEWER.value]})
    run_burst_worker()
    [received] = mail_server.messages
    assert received["message"]["Subject"] == "You were given the roles “Campaign manager” and “Campaign viewer”"


def test_a_refused_change_sends_nothing(client, personas, redis, mail_server):
    # Otto may change users but holds only the viewer's permissions: granting the approver role is refused, and
    # with it the viewer role asked for in the same change.
    user_admins = Group.objects.create(name="User admins")
    for codename in ("view_user", "change_user", "view_campaign", "view_report"):
        user_admins.permissions.add(Permission.objects.get(codename=codename))
    personas["otto"].groups.add(user_admins)
    client.force_login(personas["otto"])

    roles = [Role.VIEWER.value, Role.APPROVER.value]
    response = client.post(
        reverse("permissions:user_roles", args=[personas["manny"].pk]), {"roles": roles}, follow=True
    )
    run_burst_worker()

    assert "You cannot grant or remove “Campaign approver”" in response.content.decode()
    assert not mail_server.messages
    assert not Notification.objects.exists()


def test_nobody_is_emailed_about_their_own_change_nor_an_invited_user_about_roles(client, personas, redis, mail_server):
    client.force_login(personas["ada"])

    client.post(
        reverse("permissions:user_roles", args=[personas["ada"].pk]),
        {"roles": [Role.ADMINISTRATOR.value, Role.VIEWER.value]},
    )
    client.post(
        reverse("permissions:user_add"),
        {"full_name": "New Person", "email": "new@example.com", "roles": [Role.VIEWER.value]},
    )
    run_burst_worker()

    # The invited user gets the invitation only, and it is sent in the request (permissions.services.invitations).
    subjects = [m["message"]["Subject"] for m in mail_server.messages]
    assert [m["rcpt_tos"] for m in mail_server.messages] == [["new@example.com"]], subjects
    assert "given the role" not in subjects[0]
    assert not Notification.objects.exists()
