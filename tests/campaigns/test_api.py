"""The REST API with bearer keys: the calling key, campaign reads in and out of scope, refusals."""

import pytest

from audiences.models import Audience
from campaigns.models import Campaign
from campaigns.services import lifecycle
from permissions.services.api_keys import api_key_create, api_key_revoke
from tests.conftest import make_email_configuration
from tests.problems import problem as _problem


@pytest.fixture
def configuration(db):
    return make_email_configuration(port=25)


def _triggered(actor, configuration, name="Password reset"):
    return lifecycle.campaign_create(
        actor=actor,
        name=name,
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=configuration,
        audience=None,
        content=lifecycle.Content(
            "Reset your password, {{ profile.first_name }}",
            '<p><a href="{{ context.reset_url }}">Reset</a></p>',
            "{{ context.reset_url }} (valid {{ context.hours | default: 24 }} hours)",
        ),
    )


@pytest.fixture
def reset(personas, configuration):
    return _triggered(personas["ada"], configuration)


@pytest.fixture
def other(personas, configuration):
    return _triggered(personas["ada"], configuration, name="Order shipped")


@pytest.fixture
def scheduled(personas, configuration):
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.RULE, rule={})
    return lifecycle.campaign_create(
        actor=personas["ada"],
        name="Newsletter",
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content("News", "<p>News</p>", "News"),
    )


def _key(personas, **scope):
    return api_key_create(actor=personas["ada"], name="Shop backend", **scope)


def _get(client, path, secret):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {secret}")


def _missing_id(*campaigns):
    return max(campaign.pk for campaign in campaigns) + 1000


# The calling key


def test_me_names_the_key_and_its_scopes(client, personas, reset):
    key, secret = _key(personas, campaign_ids=[reset.pk], profiles=True)

    response = _get(client, "/api/v1/me", secret)

    assert response.status_code == 200
    assert response.json() == {
        "name": "Shop backend",
        "prefix": key.prefix,
        "scopes": {"all_triggered_campaigns": False, "campaign_ids": [reset.pk], "profiles": True},
    }
    assert key.key_hash not in response.content.decode()
    assert secret not in response.content.decode()


def test_more_than_one_space_after_bearer_is_accepted(client, personas, reset):
    # RFC 6750: credentials = "Bearer" 1*SP b64token
    _, secret = _key(personas, all_triggered_campaigns=True)
    response = client.get(f"/api/v1/campaigns/{reset.pk}", HTTP_AUTHORIZATION=f"Bearer  {secret}")
    assert response.status_code == 200


# Reading a campaign


def test_key_reads_a_chosen_campaign(client, personas, reset):
    _, secret = _key(personas, campaign_ids=[reset.pk])

    response = _get(client, f"/api/v1/campaigns/{reset.pk}", secret)

    assert response.status_code == 200
    assert response.json() == {
        "id": reset.pk,
        "name": "Password reset",
        "kind": "api_triggered",
        "category": "transactional",
        "status": "draft",
        "channel": "email",
        "personalization_fields": ["context.hours", "context.reset_url", "profile.first_name"],
    }


def test_key_for_all_triggered_campaigns_reads_any_of_them(client, personas, reset, other):
    _, secret = _key(personas, all_triggered_campaigns=True)

    for campaign in (reset, other):
        response = _get(client, f"/api/v1/campaigns/{campaign.pk}", secret)
        assert response.status_code == 200
        assert response.json()["name"] == campaign.name


def test_response_carries_nothing_personal(client, personas, reset):
    _, secret = _key(personas, all_triggered_campaigns=True)

    body = _get(client, f"/api/v1/campaigns/{reset.pk}", secret).content.decode()

    for personal in ("ada", "news@example.com", "127.0.0.1", "owner"):
        assert personal not in body


def test_out_of_scope_campaign_is_forbidden_whether_or_not_it_exists(client, personas, reset, other):
    _, secret = _key(personas, campaign_ids=[reset.pk])
    missing = _missing_id(reset, other)

    existing = _get(client, f"/api/v1/campaigns/{other.pk}", secret)
    absent = _get(client, f"/api/v1/campaigns/{missing}", secret)

    assert _problem(existing, 403, "forbidden")["detail"] == f"this key may not trigger campaign {other.pk}"
    # No existence oracle: a campaign that does not exist is refused the same way.
    assert _problem(absent, 403, "forbidden")["detail"] == f"this key may not trigger campaign {missing}"


def test_missing_campaign_is_404_only_for_a_key_that_could_read_it(client, personas, reset):
    _, secret = _key(personas, all_triggered_campaigns=True)
    missing = _missing_id(reset)

    response = _get(client, f"/api/v1/campaigns/{missing}", secret)

    assert _problem(response, 404, "not-found")["detail"] == f"there is no API-triggered campaign {missing}"


def test_scheduled_campaigns_are_invisible_through_the_api(client, personas, reset, scheduled):
    _, all_campaigns = _key(personas, all_triggered_campaigns=True)
    _, chosen = _key(personas, campaign_ids=[reset.pk])
    missing = _missing_id(reset, scheduled)

    as_scheduled = _get(client, f"/api/v1/campaigns/{scheduled.pk}", all_campaigns)
    as_missing = _get(client, f"/api/v1/campaigns/{missing}", all_campaigns)

    assert as_scheduled.status_code == 404
    # Told apart from a campaign that does not exist by nothing but the id.
    assert as_scheduled.json()["detail"].replace(str(scheduled.pk), "N") == as_missing.json()["detail"].replace(
        str(missing), "N"
    )
    assert _get(client, f"/api/v1/campaigns/{scheduled.pk}", chosen).status_code == 403


def test_profile_only_key_cannot_read_campaigns(client, personas, reset):
    _, secret = _key(personas, profiles=True)

    response = _get(client, f"/api/v1/campaigns/{reset.pk}", secret)

    assert _problem(response, 403, "forbidden")["detail"] == f"this key may not trigger campaign {reset.pk}"


def test_a_bad_campaign_id_is_a_json_error(client, personas, reset):
    _, secret = _key(personas, all_triggered_campaigns=True)

    for bad in ("abc", "0", "-3", str(2**70)):
        response = _get(client, f"/api/v1/campaigns/{bad}", secret)
        assert _problem(response, 422, "invalid-request")["detail"].startswith("invalid request: campaign_id"), bad


# Refusals before anything is read


def test_revoked_key_is_refused(client, personas, reset):
    key, secret = _key(personas, all_triggered_campaigns=True)
    api_key_revoke(actor=personas["ada"], key=key)

    for path in ("/api/v1/me", f"/api/v1/campaigns/{reset.pk}"):
        response = _get(client, path, secret)
        assert _problem(response, 401, "unauthenticated")["detail"] == "unknown or revoked API key"
        assert response["WWW-Authenticate"] == "Bearer"


def test_unknown_key_is_refused(client, personas, reset):
    _key(personas, all_triggered_campaigns=True)

    response = _get(client, f"/api/v1/campaigns/{reset.pk}", "cmk_abcdefgh_" + "x" * 40)

    assert _problem(response, 401, "unauthenticated")["detail"] == "unknown or revoked API key"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "authentication required: send Authorization: Bearer <key>"),
        ("", "authentication required: send Authorization: Bearer <key>"),
        ("Token {secret}", "malformed Authorization header: expected Bearer <key>"),
        ("{secret}", "malformed Authorization header: expected Bearer <key>"),
        ("Basic dXNlcjpwYXNz", "malformed Authorization header: expected Bearer <key>"),
        ("Bearer", "malformed Authorization header: expected Bearer <key>"),
        ("Bearer ", "malformed Authorization header: expected Bearer <key>"),
        ("Bearer {secret} extra", "unknown or revoked API key"),
    ],
)
def test_missing_or_malformed_header_is_refused(client, personas, reset, header, detail):
    _, secret = _key(personas, all_triggered_campaigns=True)
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header.format(secret=secret)}

    response = client.get(f"/api/v1/campaigns/{reset.pk}", **extra)

    assert _problem(response, 401, "unauthenticated")["detail"] == detail
    assert response["WWW-Authenticate"] == "Bearer"
    assert secret not in response.content.decode()


def test_refused_key_learns_nothing_about_campaigns(client, personas, reset):
    missing = _missing_id(reset)

    existing = client.get(f"/api/v1/campaigns/{reset.pk}")
    absent = client.get(f"/api/v1/campaigns/{missing}")

    # The same answer but for `instance`, the path each asked.
    existing_body, absent_body = _problem(existing, 401, "unauthenticated"), _problem(absent, 401, "unauthenticated")
    assert {**existing_body, "instance": None} == {**absent_body, "instance": None}
    assert existing.headers.keys() == absent.headers.keys()


# The schema

# The operations a caller uses without a key.
WITHOUT_KEY = {"GET /api/v1/health"}


def test_schema_lists_every_operation_with_its_security_and_scope(client):
    schema = client.get("/api/openapi.json").json()

    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {"type": "http", "scheme": "bearer"}
    scopes = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if f"{method.upper()} {path}" in WITHOUT_KEY:
                # No key, so no 401 and no scope.
                assert "security" not in operation and "x-required-scope" not in operation, (method, path)
                assert not {"401", "403"} & set(operation["responses"]), (method, path)
                continue
            assert operation["security"] == [{"ApiKeyAuth": []}], (method, path)
            assert "401" in operation["responses"], (method, path)
            scopes[f"{method.upper()} {path}"] = operation["x-required-scope"]
    assert scopes["GET /api/v1/me"] == "any"
    assert scopes["GET /api/v1/campaigns/{campaign_id}"] == "campaign"
    assert scopes["POST /api/v1/campaigns/{campaign_id}/trigger"] == "campaign"


def test_docs_page_is_served(client):
    assert client.get("/api/docs").status_code == 200
