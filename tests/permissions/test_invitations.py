"""Invitation links: a password set once, within the link's lifetime; only the token's hash is stored."""

import hashlib
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from permissions.models import AuditEvent, Invitation
from permissions.services.invitations import INVITATION_LIFETIME
from permissions.services.users import user_invite

User = get_user_model()
NEW_PASSWORD = "violet-tugboat-meadow-47"


@pytest.fixture
def invited(personas):
    """An invited user and the raw token of their link, as the Users tab creates them."""
    user, sent = user_invite(actor=personas["ada"], email="grace@example.com", full_name="Grace Hopper")
    assert sent
    token = _token_in(mail.outbox[-1])
    return user, token


def _token_in(message) -> str:
    [link] = [word for word in message.body.split() if "/invitations/" in word]
    return link.rstrip("/").rsplit("/", 1)[-1]


def _url(token):
    return reverse("permissions:invitation_accept", args=[token])


def _accept(client, token, password=NEW_PASSWORD):
    return client.post(_url(token), {"new_password1": password, "new_password2": password})


def test_the_link_shows_the_username_and_sets_the_password(client, invited):
    user, token = invited

    page = client.get(_url(token))
    response = _accept(client, token)

    assert page.status_code == 200
    assert "grace@example.com" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:list")
    user.refresh_from_db()
    assert user.is_active and user.check_password(NEW_PASSWORD)
    assert client.session["_auth_user_id"] == str(user.pk)
    assert AuditEvent.objects.filter(action="user.invitation_accepted", object_id=str(user.pk)).exists()


def test_a_new_user_without_a_role_lands_on_the_page_naming_the_role_needed(client, invited):
    _, token = invited

    response = _accept(client, token)
    landing = client.get(response["Location"])

    assert landing.status_code == 403
    assert "Campaign viewer" in landing.content.decode()


def test_the_password_validators_apply(client, invited):
    user, token = invited

    response = _accept(client, token, password="grace@example.com")
    short = _accept(client, token, password="abc12")

    assert response.status_code == short.status_code == 200
    assert "too similar" in response.content.decode()
    assert "too short" in short.content.decode()
    user.refresh_from_db()
    assert not user.has_usable_password() and not user.is_active
    assert Invitation.objects.get(user=user).used_at is None


def test_an_expired_link_says_so(client, invited, time_machine):
    _, token = invited
    time_machine.move_to(timezone.now() + INVITATION_LIFETIME + timedelta(minutes=1))

    page = client.get(_url(token))
    submit = _accept(client, token)

    assert page.status_code == submit.status_code == 410
    assert "This invitation has expired" in page.content.decode()
    assert not User.objects.get(email="grace@example.com").has_usable_password()


def test_a_link_still_works_just_before_it_expires(client, invited, time_machine):
    _, token = invited
    time_machine.move_to(timezone.now() + INVITATION_LIFETIME - timedelta(minutes=1))

    assert _accept(client, token).status_code == 302


def test_a_used_link_says_so_the_second_time(client, invited):
    user, token = invited
    _accept(client, token)
    client.logout()

    page = client.get(_url(token))
    again = _accept(client, token, password="another-secret-word-99")

    assert page.status_code == again.status_code == 410
    assert "already used" in page.content.decode()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert "_auth_user_id" not in client.session


def test_an_unknown_link_gets_a_clear_page(client, db):
    response = client.get(_url("not-a-real-token"))

    assert response.status_code == 404
    assert "This invitation link is not valid" in response.content.decode()


def test_a_resent_invitation_replaces_the_earlier_link(client, personas, invited):
    user, first = invited

    response = client.post(reverse("permissions:user_invite", args=[user.pk]))  # anonymous: refused
    assert response.status_code == 302 and len(mail.outbox) == 1
    client.force_login(personas["ada"])
    client.post(reverse("permissions:user_invite", args=[user.pk]))
    client.logout()
    second = _token_in(mail.outbox[-1])

    assert first != second
    assert client.get(_url(first)).status_code == 410
    assert _accept(client, second).status_code == 302


def test_an_active_user_with_a_password_gets_no_invitation(client, personas):
    client.force_login(personas["ada"])

    response = client.post(reverse("permissions:user_invite", args=[personas["vera"].pk]), follow=True)

    assert not mail.outbox
    assert "has set a password already" in response.content.decode()


def test_deactivating_an_invited_user_withdraws_the_link(client, personas, invited):
    user, token = invited
    client.force_login(personas["ada"])

    client.post(reverse("permissions:user_deactivate", args=[user.pk]))
    client.logout()

    assert client.get(_url(token)).status_code == 410
    user.refresh_from_db()
    assert not user.is_active
    assert AuditEvent.objects.filter(action="user.invitation_withdrawn", object_id=str(user.pk)).exists()


def test_only_the_tokens_sha256_is_stored(invited):
    user, token = invited

    invitation = Invitation.objects.get(user=user)

    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    dump = " ".join(
        str(value) for row in AuditEvent.objects.values_list("before", "after", "object_repr") for value in row
    )
    assert token not in dump
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Invitation._meta.db_table}")
        assert token not in repr(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_two_submissions_of_one_link_at_once_set_the_password_once(django_user_model):
    from django.contrib.auth.models import Group

    from permissions.roles import Role

    ada = django_user_model.objects.create_user("ada", "ada@example.com", "pw")
    ada.groups.add(Group.objects.get(name=Role.ADMINISTRATOR))
    user, sent = user_invite(actor=ada, email="grace@example.com")
    token = _token_in(mail.outbox[-1])
    passwords = ["first-choice-phrase-11", "second-choice-phrase-22"]
    barrier = threading.Barrier(len(passwords))
    statuses = []

    def submit(password):
        barrier.wait()
        try:
            statuses.append(_accept(Client(), token, password).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=[password]) for password in passwords]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [302, 410]
    user.refresh_from_db()
    assert sum(user.check_password(password) for password in passwords) == 1
    assert AuditEvent.objects.filter(action="user.invitation_accepted").count() == 1
