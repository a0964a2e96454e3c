"""Account security: login throttling, login failure bursts in the audit log, cookies, HSTS and the CSP."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from permissions.models import AuditEvent
from tests.conftest import PASSWORD
from tests.test_settings import run_python


def _log_in(client, username, password, address="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def _logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# Login throttling (django-axes)


def test_the_right_password_is_refused_after_too_many_failures_from_one_address(client, personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _log_in(client, "vera", "wrong").status_code == 200
    assert _log_in(client, "vera", "wrong").status_code == 429  # the failure that reaches the limit

    response = _log_in(client, "vera", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert not _logged_in(client)


def test_a_lockout_is_per_username_and_address(client, personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, "vera", "wrong")

    assert _log_in(client, "manny", PASSWORD).status_code == 302
    client.logout()
    assert _log_in(client, "vera", PASSWORD, address="10.0.0.2").status_code == 302


def test_failures_below_the_limit_do_not_lock(client, personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _log_in(client, "vera", "wrong")

    assert _log_in(client, "vera", PASSWORD).status_code == 302


def test_a_lockout_ends_after_the_cool_off_time(client, personas, settings, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, "vera", "wrong")
    assert _log_in(client, "vera", PASSWORD).status_code == 429

    time_machine.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))

    assert _log_in(client, "vera", PASSWORD).status_code == 302


def test_a_username_longer_than_any_account_is_refused_on_the_form_without_an_attempt(client, personas):
    """Django's login form does not check the username's length; django-axes' log of the attempt keeps 255
    characters, and PostgreSQL refused the longer name with a server error."""
    from axes.models import AccessAttempt

    response = _log_in(client, "x" * 300, "wrong")

    assert response.status_code == 200
    assert "at most 150 characters" in response.content.decode()
    assert not AccessAttempt.objects.exists()


def test_the_test_clients_login_without_a_request_still_authenticates(client, personas):
    assert client.login(username="vera", password=PASSWORD)


# Login failure bursts


def test_a_burst_of_failures_on_one_account_is_audited_once(client, personas, redis, settings):
    settings.LOGIN_FAILURE_BURST = 3
    for attempt in range(7):  # from several addresses: axes locks one address out, the burst spans them
        _log_in(client, "vera", f"wrong-{attempt}", address=f"10.0.1.{attempt}")

    [event] = AuditEvent.objects.filter(action="login.failure_burst")
    assert event.after["scope"] == "account"
    assert event.after["username"] == "vera"
    assert event.after["failures"] == 3
    assert event.object_id == str(personas["vera"].pk)
    assert event.ip_address == "10.0.1.2"
    assert event.actor is None and event.actor_label == "anonymous"
    assert "wrong" not in json.dumps([event.before, event.after, event.object_repr])


def test_a_burst_from_one_address_across_accounts_is_audited_once(client, personas, redis, settings):
    settings.LOGIN_FAILURE_BURST = 3
    for username in ["vera", "manny", "april", "otto", "nobody"]:
        _log_in(client, username, "wrong", address="10.0.2.9")

    [event] = AuditEvent.objects.filter(action="login.failure_burst")
    assert event.after["scope"] == "address"
    assert event.ip_address == "10.0.2.9"
    assert event.object_type == ""


def test_a_new_burst_after_the_window_is_audited_again(client, personas, redis, settings):
    settings.LOGIN_FAILURE_BURST = 2
    settings.LOGIN_FAILURE_BURST_SECONDS = 1
    for attempt in range(2):
        _log_in(client, "vera", "wrong", address=f"10.0.3.{attempt}")
    time.sleep(1.2)  # the window is a Redis key's lifetime: frozen time does not reach it
    for attempt in range(2, 4):
        _log_in(client, "vera", "wrong", address=f"10.0.3.{attempt}")

    assert AuditEvent.objects.filter(action="login.failure_burst").count() == 2


def test_logins_go_on_when_redis_does_not_answer(client, personas, settings):
    settings.REDIS_URL = "unix:///nonexistent/redis.sock"

    assert _log_in(client, "vera", "wrong").status_code == 200
    assert _log_in(client, "vera", PASSWORD).status_code == 302


# Cookies and headers


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True)
def test_session_and_csrf_cookies_are_secure_httponly_and_lax(client, personas):
    client.get(reverse("login"))
    response = _log_in(client, "vera", PASSWORD)

    for name in ["sessionid", "csrftoken"]:
        cookie = response.cookies[name]
        assert cookie["secure"] and cookie["httponly"], name
        assert cookie["samesite"] == "Lax", name
    assert int(response.cookies["sessionid"]["max-age"]) <= 24 * 60 * 60


@pytest.mark.parametrize(
    ("debug", "expected"),
    [("0", "True True True Lax 300"), ("1", "False False True Lax 0")],
    ids=["production", "debug"],
)
def test_cookies_are_secure_and_hsts_is_set_only_without_debug(tmp_path, debug, expected):
    code = (
        "from config import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.CSRF_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE, "
        "s.SECURE_HSTS_SECONDS)"
    )
    result = run_python(
        ["-c", code],
        var_dir=tmp_path,
        DEBUG=debug,
        SECRET_KEY="k" * 50,
        FIELD_ENCRYPTION_KEYS="dGVzdC1vbmx5LWZpZWxkLWtleS0wMTIzNDU2Nzg5YWI=",
        SECURE_HSTS_SECONDS="300",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@override_settings(SECURE_HSTS_SECONDS=300)
def test_hsts_is_sent_on_https(client, db):
    response = client.get(reverse("login"), secure=True)

    assert response["Strict-Transport-Security"] == "max-age=300"
    assert response["Referrer-Policy"] == "same-origin"


def test_pages_carry_a_content_security_policy_with_a_fresh_nonce(client, personas):
    client.force_login(personas["ada"])
    nonces = []
    for url in [reverse("login"), reverse("campaigns:list"), reverse("permissions:roles")]:
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        nonce = re.search(r"script-src 'self' 'nonce-([\w-]+)'", policy).group(1)
        assert f'nonce="{nonce}"' in response.content.decode(), url
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        for directive in ["default-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]:
            assert directive in policy
        nonces.append(nonce)

    assert len(set(nonces)) == len(nonces)


def test_no_page_carries_inline_script_or_style(client, personas):
    client.force_login(personas["ada"])
    for url in [reverse("campaigns:list"), reverse("permissions:roles"), reverse("permissions:users")]:
        page = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), url
        assert " style=" not in page and "<style" not in page, url


# Password hashing


def test_passwords_are_hashed_with_argon2id_and_older_hashes_upgrade_on_login(client, django_user_model):
    from config import settings as product_settings

    with override_settings(PASSWORD_HASHERS=product_settings.PASSWORD_HASHERS):
        from django.contrib.auth.hashers import make_password

        new = django_user_model.objects.create_user("nina", "nina@example.com", PASSWORD)
        old = django_user_model.objects.create_user("olga", "olga@example.com")
        # A hash written before Argon2 became the default: PBKDF2 at Django's cost.
        old.password = make_password(PASSWORD, hasher="pbkdf2_sha256")
        old.save(update_fields=["password"])

        assert new.password.startswith("argon2$argon2id$")
        assert _log_in(client, "olga", PASSWORD).status_code == 302

    old.refresh_from_db()
    assert old.password.startswith("argon2$argon2id$")  # upgraded by the login
    assert _logged_in(client)
