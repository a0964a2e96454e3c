"""The profile API: upsert one or many, export, erase; only for keys with the profiles scope."""

import json

import pytest

from audiences.models import AttributeDefinition, Consent, ConsentEvent, Identity, Profile
from permissions.models import AuditEvent
from permissions.services.api_keys import api_key_create, api_key_revoke
from tests.problems import problem as _problem

URL = "/api/v1/profiles"


@pytest.fixture
def keys(personas):
    ada = personas["ada"]
    revoked, revoked_secret = api_key_create(actor=ada, name="old", profiles=True)
    api_key_revoke(actor=ada, key=revoked)
    return {
        "profiles": api_key_create(actor=ada, name="CRM sync", profiles=True)[1],
        "campaigns": api_key_create(actor=ada, name="Shop", all_triggered_campaigns=True)[1],
        "revoked": revoked_secret,
    }


@pytest.fixture
def schema(db):
    AttributeDefinition.objects.create(name="first_name", type="string")
    AttributeDefinition.objects.create(name="loyalty_points", type="number")


def _call(client, method, path, secret, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body) if body is not None else "")
    return client.generic(
        method, path, data=data, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )


def _upsert(client, keys, *profiles):
    return _call(client, "POST", URL, keys["profiles"], {"profiles": list(profiles)})


# Upsert -------------------------------------------------------------------------------------------------


def test_upsert_creates_then_updates_by_any_identity(client, keys, schema):
    created = _upsert(
        client,
        keys,
        {"email": "Zoe@Example.COM", "identities": {"crm_id": "C-1"}, "attributes": {"first_name": "Zoé"}},
    )
    assert created.status_code == 200, created.content
    [result] = created.json()["results"]
    assert result["status"] == "created" and result["errors"] == []
    profile = Profile.objects.get(pk=result["profile_id"])
    assert profile.email == "Zoe@example.com"

    updated = _upsert(client, keys, {"identities": {"crm_id": "C-1"}, "attributes": {"loyalty_points": "12"}})

    assert updated.json()["results"][0] == {"index": 0, "status": "updated", "profile_id": profile.pk, "errors": []}
    profile.refresh_from_db()
    assert profile.attributes == {"first_name": "Zoé", "loyalty_points": 12}


def test_one_bad_input_is_rejected_with_its_fields_and_the_others_stored(client, keys, schema):
    response = _upsert(
        client,
        keys,
        {"email": "ok@example.com"},
        {"email": "not-an-address", "attributes": {"loyalty_points": "many", "shoe_size": 42}},
        {"phone": "+33612345678", "consent": {"sms": "opted_in"}},
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["updated"], body["rejected"]) == (2, 0, 1)
    rejected = body["results"][1]
    assert rejected["status"] == "rejected" and rejected["profile_id"] is None
    fields = {error["field"] for error in rejected["errors"]}
    assert {"email", "attributes.loyalty_points", "attributes.shoe_size"} <= fields
    assert Profile.objects.count() == 2
    sms = Consent.objects.get(channel="sms")
    assert ConsentEvent.objects.get(profile=sms.profile).source.startswith("api key ")


def test_identities_of_two_profiles_in_one_input_are_rejected_naming_both(client, keys, schema):
    first = _upsert(client, keys, {"email": "a@example.com"}).json()["results"][0]["profile_id"]
    second = _upsert(client, keys, {"identities": {"crm_id": "C-2"}}).json()["results"][0]["profile_id"]

    response = _upsert(client, keys, {"email": "a@example.com", "identities": {"crm_id": "C-2"}})

    [result] = response.json()["results"]
    assert result["status"] == "rejected"
    [error] = result["errors"]
    assert f"profile {first}" in error["problem"] and f"profile {second}" in error["problem"]
    assert Identity.objects.filter(profile_id=first).count() == 1  # nothing merged


def test_an_email_domain_that_is_not_valid_punycode_is_rejected_like_any_bad_domain(client, keys):
    response = _upsert(client, keys, {"email": "zoe@xn--a.com"}, {"email": "zoe@xn--zz.example"})

    assert response.status_code == 200
    assert [result["errors"] for result in response.json()["results"]] == [
        [{"field": "email", "problem": "'xn--a.com' is not a valid domain name"}],
        [{"field": "email", "problem": "'xn--zz.example' is not a valid domain name"}],
    ]


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("{}", "profiles"),
        ('{"profiles": []}', "profiles"),
        ('{"profiles": "zoe@example.com"}', "profiles"),
        ('{"profiles": [42]}', "profiles.0"),
    ],
)
def test_a_malformed_body_is_422_naming_the_field(client, keys, raw, named):
    response = _call(client, "POST", URL, keys["profiles"], raw=raw)

    assert response.status_code == 422, response.content
    assert named in response.json()["detail"]


def test_a_body_that_is_not_json_is_400(client, keys):
    response = _call(client, "POST", URL, keys["profiles"], raw="not json")

    body = _problem(response, 400, "bad-request")
    assert body["detail"] == "invalid request: body: is not JSON: Expecting value (line 1, column 1)"


def test_at_most_1000_profiles_per_call(client, keys):
    too_many = [{"email": f"p{i}@example.com"} for i in range(1001)]

    response = _call(client, "POST", URL, keys["profiles"], {"profiles": too_many})

    assert response.status_code == 422
    assert "profiles" in response.json()["detail"]
    assert not Profile.objects.exists()


def test_1000_profiles_in_one_call(client, keys):
    response = _call(
        client, "POST", URL, keys["profiles"], {"profiles": [{"email": f"p{i}@example.com"} for i in range(1000)]}
    )

    assert response.status_code == 200
    assert response.json()["created"] == 1000


# Export and erase ---------------------------------------------------------------------------------------


@pytest.fixture
def zoe(db):
    profile = Profile.objects.create(email="zoe@example.com", attributes={"first_name": "Zoé"})
    Identity.objects.create(profile=profile, namespace="email", value="zoe@example.com")
    return profile


def test_export_returns_everything_about_the_profile_and_is_audited(client, keys, zoe):
    response = _call(client, "GET", f"{URL}/{zoe.pk}/export", keys["profiles"])

    assert response.status_code == 200
    body = response.json()
    assert body["profile"]["email"] == "zoe@example.com"
    assert body["identities"] == [{"namespace": "email", "value": "zoe@example.com"}]
    assert {"consent", "consent_history", "push_tokens", "deliveries", "trigger_requests"} <= set(body)
    event = AuditEvent.objects.get(action="profile.exported")
    assert event.actor is None and event.actor_label.startswith("API key ")


def test_erase_removes_the_profile_and_answers_204(client, keys, zoe):
    response = _call(client, "DELETE", f"{URL}/{zoe.pk}", keys["profiles"])

    assert response.status_code == 204 and response.content == b""
    assert not Profile.objects.filter(pk=zoe.pk).exists()
    assert not Identity.objects.exists()
    assert AuditEvent.objects.get(action="profile.erased").object_id == str(zoe.pk)
    assert _call(client, "DELETE", f"{URL}/{zoe.pk}", keys["profiles"]).status_code == 404


def test_missing_profile_is_404_for_a_profiles_key(client, keys, zoe):
    response = _call(client, "GET", f"{URL}/{zoe.pk + 1000}/export", keys["profiles"])

    assert _problem(response, 404, "not-found")["detail"] == f"there is no profile {zoe.pk + 1000}"


# Scopes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", URL), ("GET", URL + "/{id}/export"), ("DELETE", URL + "/{id}"), ("GET", URL + "/999999/export")],
)
def test_a_key_without_the_profiles_scope_gets_403_whatever_it_asks(client, keys, zoe, method, path):
    # A malformed body too: the scope is checked before the body is read.
    response = _call(client, method, path.replace("{id}", str(zoe.pk)), keys["campaigns"], raw="not json")

    body = _problem(response, 403, "forbidden")
    assert body["detail"] == "this key may not read or change profiles: it needs the profiles scope"
    assert Profile.objects.filter(pk=zoe.pk).exists()
    assert not AuditEvent.objects.filter(action__startswith="profile.").exists()


@pytest.mark.parametrize("who", ["revoked", "unknown", "none"])
def test_revoked_unknown_or_missing_keys_get_401(client, keys, zoe, who):
    headers = {}
    if who != "none":
        headers["Authorization"] = f"Bearer {keys['revoked'] if who == 'revoked' else 'cmk_nothere_' + 'x' * 40}"

    response = client.delete(f"{URL}/{zoe.pk}", headers=headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert Profile.objects.filter(pk=zoe.pk).exists()


def test_a_browser_session_is_no_api_credential(client, personas, zoe):
    client.force_login(personas["ada"])

    assert client.get(f"{URL}/{zoe.pk}/export").status_code == 401


def test_the_schema_documents_scope_security_and_the_profile_fields(client):
    schema = client.get("/api/openapi.json").json()

    upsert = schema["paths"][URL]["post"]
    assert upsert["x-required-scope"] == "profiles" and upsert["security"] == [{"ApiKeyAuth": []}]
    body = schema["components"]["schemas"]["ProfilesIn"]["properties"]["profiles"]
    assert body["maxItems"] == 1000
    assert {"email", "phone", "identities", "attributes", "consent"} <= set(body["items"]["properties"])
    for named in ("identities", "attributes", "consent"):
        assert body["items"]["properties"][named]["propertyNames"] == {"maxLength": 64}
