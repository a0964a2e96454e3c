"""API key pages and what a key's secret may never become: stored, shown twice, logged or audited."""

import hashlib
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.services import lifecycle
from permissions.models import ApiKey, AuditEvent
from permissions.services.api_keys import LAST_USED_RESOLUTION, api_key_authenticate, api_key_create, api_key_revoke
from tests.conftest import make_email_configuration

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SECRET_PATTERN = re.compile(r"cmk_[a-z0-9]{8}_[a-z0-9]{40}")


@pytest.fixture
def configuration(db):
    return make_email_configuration(port=25)


def _campaign(personas, configuration, name="Password reset", kind=Campaign.Kind.API_TRIGGERED):
    audience = None
    if kind == Campaign.Kind.SCHEDULED:
        from audiences.models import Audience

        audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.RULE, rule={})
    return lifecycle.campaign_create(
        actor=personas["ada"],
        name=name,
        kind=kind,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content("Reset your password", "<p>{{ context.link }}</p>", "{{ context.link }}"),
    )


@pytest.fixture
def triggered(personas, configuration):
    return _campaign(personas, configuration)


def _create(client, **fields):
    data = {"name": "Shop backend", **fields}
    return client.post(reverse("permissions:api_key_create"), data)


def _secret_in(response) -> str:
    found = SECRET_PATTERN.findall(response.content.decode())
    assert len(found) == 1, found
    return found[0]


def _bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


# Creating


def test_admin_creates_a_key_and_sees_its_secret_once(client, personas, triggered, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(personas["ada"])

    response = _create(client, campaigns=[triggered.pk])

    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    secret = _secret_in(response)
    key = ApiKey.objects.get()
    assert key.name == "Shop backend"
    assert key.campaign_ids == [triggered.pk]
    assert not key.all_triggered_campaigns and not key.profiles
    assert secret.startswith(f"cmk_{key.prefix}_")
    assert "Location" not in response  # nothing carries the secret on to another page
    # Not kept anywhere the next request could find it.
    assert secret not in json.dumps(dict(client.session))
    for url in (reverse("permissions:api_key_list"), reverse("permissions:api_key_detail", args=[key.pk])):
        page = client.get(url)
        assert page.status_code == 200
        assert f"cmk_{key.prefix}_…" in page.content.decode()
        assert secret not in page.content.decode()
        assert key.key_hash not in page.content.decode()
    assert secret not in caplog.text


def test_database_holds_only_the_hash_and_prefix(client, personas, triggered):
    client.force_login(personas["ada"])
    secret = _secret_in(_create(client, all_triggered_campaigns="on"))

    key = ApiKey.objects.get()
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = json.dumps(list(ApiKey.objects.values()), default=str)
    assert secret not in stored
    assert secret.split("_")[2] not in stored  # the random part, on its own, is nowhere either


def test_audit_event_records_the_scope_but_not_the_secret(client, personas, triggered):
    client.force_login(personas["ada"])
    secret = _secret_in(_create(client, campaigns=[triggered.pk], profiles="on"))

    event = AuditEvent.objects.get(action="api_key.created")
    assert event.actor == personas["ada"]
    assert event.after["campaign_ids"] == [triggered.pk]
    assert event.after["profiles"] is True
    recorded = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert secret not in recorded
    assert ApiKey.objects.get().key_hash not in recorded


def test_a_key_needs_at_least_one_scope(client, personas):
    client.force_login(personas["ada"])

    response = _create(client)

    assert response.status_code == 200
    assert "at least one scope" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_chosen_campaigns_must_exist_and_be_api_triggered(client, personas, configuration, triggered):
    scheduled = _campaign(personas, configuration, name="Newsletter", kind=Campaign.Kind.SCHEDULED)
    client.force_login(personas["ada"])

    response = _create(client, campaigns=[triggered.pk, scheduled.pk, 987654])

    assert response.status_code == 200
    errors = response.context["form"].errors["campaigns"]
    assert f"Campaign {scheduled.pk} is not API-triggered" in " ".join(errors)
    assert "Campaign 987654 does not exist." in errors
    assert not ApiKey.objects.exists()


@pytest.mark.both_databases  # SQLite raised OverflowError comparing the id
def test_a_campaign_id_past_64_bits_is_no_campaign_id(client, personas, triggered):
    client.force_login(personas["ada"])

    response = _create(client, campaigns=[triggered.pk, "9" * 20, "-" + "9" * 400])

    assert response.status_code == 200
    errors = response.context["form"].errors["campaigns"]
    assert errors == [f"“{'9' * 20}” is not a campaign id.", f"“-{'9' * 400}” is not a campaign id."]
    assert not ApiKey.objects.exists()


def test_create_form_offers_only_api_triggered_campaigns(client, personas, configuration, triggered):
    _campaign(personas, configuration, name="Weekly newsletter", kind=Campaign.Kind.SCHEDULED)
    client.force_login(personas["ada"])

    page = client.get(reverse("permissions:api_key_create")).content.decode()

    assert "Password reset" in page
    assert "Weekly newsletter" not in page


# Who may see the pages


@pytest.mark.parametrize("username", ["april", "manny", "vera", "otto"])
def test_only_administrators_reach_the_key_pages(client, personas, username):
    key, _ = api_key_create(actor=personas["ada"], name="Existing", profiles=True)
    client.force_login(personas[username])

    assert client.get(reverse("permissions:api_key_list")).status_code == 403
    assert client.get(reverse("permissions:api_key_detail", args=[key.pk])).status_code == 403
    assert client.get(reverse("permissions:api_key_create")).status_code == 403
    assert _create(client, profiles="on").status_code == 403
    assert client.post(reverse("permissions:api_key_revoke", args=[key.pk])).status_code == 403
    assert ApiKey.objects.count() == 1
    key.refresh_from_db()
    assert key.revoked_at is None


def test_anonymous_visitors_are_sent_to_log_in(client, personas):
    key, _ = api_key_create(actor=personas["ada"], name="Existing", profiles=True)
    for url in (
        reverse("permissions:api_key_list"),
        reverse("permissions:api_key_create"),
        reverse("permissions:api_key_detail", args=[key.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    response = client.post(reverse("permissions:api_key_revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is None


def test_every_key_page_is_guarded_by_a_permission():
    from permissions.views import api_keys as views

    assert views.api_key_list.required_permissions == ("permissions.view_apikey",)
    assert views.api_key_detail.required_permissions == ("permissions.view_apikey",)
    assert views.api_key_create.required_permissions == ("permissions.add_apikey",)
    assert views.api_key_revoke.required_permissions == ("permissions.change_apikey",)


def test_list_shows_scope_creator_and_state(client, personas, triggered):
    api_key_create(actor=personas["ada"], name="Backend", campaign_ids=[triggered.pk])
    revoked, _ = api_key_create(actor=personas["ada"], name="Old CRM sync", profiles=True)
    api_key_revoke(actor=personas["ada"], key=revoked)
    client.force_login(personas["ada"])

    page = client.get(reverse("permissions:api_key_list")).content.decode()

    assert "Backend" in page and "Password reset" in page
    assert "Old CRM sync" in page and "Profiles (upsert, export, erase)" in page
    assert "Revoked" in page
    assert "ada" in page


# Revoking


def test_revoke_is_post_only(client, personas):
    key, _ = api_key_create(actor=personas["ada"], name="Backend", profiles=True)
    client.force_login(personas["ada"])

    assert client.get(reverse("permissions:api_key_revoke", args=[key.pk])).status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None


def test_revoked_key_is_refused_on_its_next_request(client, personas, triggered):
    key, secret = api_key_create(actor=personas["ada"], name="Backend", campaign_ids=[triggered.pk])
    assert client.get("/api/v1/me", **_bearer(secret)).status_code == 200
    client.force_login(personas["ada"])

    response = client.post(reverse("permissions:api_key_revoke", args=[key.pk]))

    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == personas["ada"]
    assert AuditEvent.objects.filter(action="api_key.revoked", object_id=str(key.pk)).exists()
    client.logout()
    refused = client.get("/api/v1/me", **_bearer(secret))
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    detail = client.get(reverse("permissions:api_key_detail", args=[key.pk]))
    assert detail.status_code == 302  # logged out; the page itself needs an administrator


# Last use and the hash


def test_last_use_is_recorded_and_coalesced(client, personas):
    key, secret = api_key_create(actor=personas["ada"], name="Backend", profiles=True)
    assert key.last_used_at is None

    with time_machine.travel(NOW, tick=False):
        client.get("/api/v1/me", **_bearer(secret))
    key.refresh_from_db()
    assert key.last_used_at == NOW

    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        client.get("/api/v1/me", **_bearer(secret))
    key.refresh_from_db()
    assert key.last_used_at == NOW  # within the window: no write

    later = NOW + LAST_USED_RESOLUTION + timedelta(seconds=1)
    with time_machine.travel(later, tick=False):
        client.get("/api/v1/me", **_bearer(secret))
    key.refresh_from_db()
    assert key.last_used_at == later


def test_failed_attempts_do_not_count_as_use(client, personas):
    key, secret = api_key_create(actor=personas["ada"], name="Backend", profiles=True)

    client.get("/api/v1/me", **_bearer(secret[:-1] + ("a" if secret[-1] != "a" else "b")))

    key.refresh_from_db()
    assert key.last_used_at is None


def test_the_prefix_alone_authenticates_nothing(client, personas):
    key, secret = api_key_create(actor=personas["ada"], name="Backend", profiles=True)

    for guess in (key.prefix, f"cmk_{key.prefix}", f"cmk_{key.prefix}_", f"cmk_{key.prefix}_{key.key_hash}"):
        assert api_key_authenticate(guess) is None
        assert client.get("/api/v1/me", **_bearer(guess)).status_code == 401
    # The stored hash is not a key either: it cannot be replayed in its place.
    assert client.get("/api/v1/me", **_bearer(key.key_hash)).status_code == 401
    assert api_key_authenticate(secret) == key


def test_errors_never_echo_the_key(client, personas, caplog):
    caplog.set_level(logging.DEBUG)
    key, secret = api_key_create(actor=personas["ada"], name="Backend", profiles=True)
    api_key_revoke(actor=personas["ada"], key=key)

    response = client.get("/api/v1/campaigns/1", **_bearer(secret))

    assert response.status_code == 401
    assert secret not in response.content.decode()
    assert secret not in caplog.text


def test_nav_links_to_the_key_pages_only_for_those_who_may_see_them(client, personas):
    link = f'href="{reverse("permissions:api_key_list")}"'
    client.force_login(personas["ada"])
    assert link in client.get(reverse("campaigns:list")).content.decode()
    client.force_login(personas["vera"])
    assert link not in client.get(reverse("campaigns:list")).content.decode()


@pytest.mark.django_db
def test_a_key_sent_with_the_wrong_scheme_is_refused_and_never_logged(client, personas, caplog, settings):
    settings.DEBUG = True  # ninja's own bearer class logs the header in debug mode
    _, secret = api_key_create(actor=personas["ada"], name="wrong scheme", profiles=True)

    with caplog.at_level("DEBUG"):
        response = client.get("/api/v1/me", headers={"Authorization": f"Token {secret}"})

    assert response.status_code == 401
    assert secret not in caplog.text
