"""The REST API fuzzed from its own OpenAPI schema, over real HTTP against the live test server.

For every operation, schemathesis generates requests from the schema the server publishes (valid ones, and
invalid ones: wrong types, out-of-range ids, malformed bodies) and each goes out with every kind of key that
matters. Whatever is sent, the answer must be no 5xx, a status the operation documents, the content type and
body it documents for that status; an invalid request must be refused. Bounded and derandomized: the same
requests on every run.

Run it alone with `bin/test tests/test_api_fuzz.py`; FUZZ_EXAMPLES and FUZZ_SEED explore further (docs/api.md).
The end of the file holds the regression tests of the error contract the security review asked for.
"""

import json
import os
import re
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audiences.models import AttributeDefinition, Audience, Identity, IdentityNamespace, Profile
from campaigns.models import Campaign
from campaigns.services import lifecycle, triggers
from channels.models import InboxMessage
from config.api import api
from permissions.api import PROBLEM_CONTENT_TYPE
from permissions.services.api_keys import api_key_create
from tests.channels.conftest import make_configuration
from tests.conftest import make_email_configuration
from tests.problems import problem as _problem

SCHEMA = api.get_openapi_schema()
# One test per operation, named after it. (schemathesis' own pytest plugin would do this, but under pytest 9.2
# its items share one node id and `from_fixture` fails on the renamed `Node._nodeid`.)
OPERATIONS = sorted(f"{method.upper()} {path}" for path, methods in SCHEMA["paths"].items() for method in methods)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
# Examples per operation, each sent with every kind of key. The run is derandomized (the same requests every
# time) unless FUZZ_SEED asks for another sequence, to explore further locally.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = int(os.environ["FUZZ_SEED"]) if os.environ.get("FUZZ_SEED") else None


@pytest.fixture
def world(live_server, personas, redis):
    """What the operations can find: profiles with inbox messages, two API-triggered campaigns (the first active,
    with an audience, so calls to trigger it can succeed), calls made to it, one key of each kind (the one-campaign
    key covers the first campaign). The send jobs the calls enqueue go to the tests' Redis database, emptied after."""
    ada = personas["ada"]
    for name, kind in (("email", "email"), ("phone", "phone"), ("crm_id", "text")):
        IdentityNamespace.objects.get_or_create(name=name, defaults={"label": name, "kind": kind, "builtin": True})
    AttributeDefinition.objects.create(name="first_name", type="string")
    AttributeDefinition.objects.create(name="loyalty_points", type="number")
    configuration = make_email_configuration(port=25)
    campaigns = [
        lifecycle.campaign_create(
            actor=ada,
            name=name,
            kind=Campaign.Kind.API_TRIGGERED,
            category=Campaign.Category.TRANSACTIONAL,
            channel_configuration=configuration,
            audience=audience,
            content=lifecycle.Content("Hi {{ profile.first_name }}", "<p>{{ context.link }}</p>", "{{ context.link }}"),
        )
        for name, audience in (
            ("Password reset", Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)),
            ("Order shipped", None),
        )
    ]
    live = lifecycle.campaign_activate(campaign=campaigns[0], actor=ada)
    all_campaigns, all_campaigns_secret = api_key_create(actor=ada, name="all", all_triggered_campaigns=True)
    keys = {
        "profiles": api_key_create(actor=ada, name="crm", profiles=True)[1],
        "all campaigns": all_campaigns_secret,
        "one campaign": api_key_create(actor=ada, name="one", campaign_ids=[campaigns[0].pk])[1],
        "no key": None,
        "unknown key": "cmk_nothere_" + "x" * 40,
    }
    return {
        "keys": keys,
        "campaign": live,
        "prefix": all_campaigns.prefix,
        "in_app": make_configuration("in_app", name="App inbox"),
    }


def _existing_ids(world) -> dict[str, int | str]:
    """Ids of rows that exist now: a fresh profile (the fuzzer erases some) with a message in its inbox, and a call
    that triggered the first campaign for it (by execution id and by requestId)."""
    profile = Profile.objects.create(email="zoe@example.com", attributes={"first_name": "Zoé"})
    Identity.objects.create(profile=profile, namespace="email", value=f"zoe{profile.pk}@example.com")
    message = InboxMessage.objects.create(profile=profile, configuration=world["in_app"], delivery_id=profile.pk)
    body = {"context": {"link": "https://shop.test/r"}, "recipients": [{"profileId": profile.pk}]}
    call = triggers.trigger_unitary(
        earlier=None,
        campaign=world["campaign"],
        api_key_prefix=world["prefix"],
        request_id=f"fuzz-{profile.pk}",
        digest=triggers.body_hash(body),
        context=body["context"],
        recipients=[triggers.RecipientIn(profile_id=profile.pk)],
    )
    return {
        "campaign_id": world["campaign"].pk,
        "profile_id": profile.pk,
        "message_id": message.pk,
        "execution_id": call.body["executionId"],
        "request_id": call.body["requestId"],
    }


def _invalid_only_inside_profile_inputs(case) -> bool:
    """Whether an invalid request is invalid only inside the inputs of `profiles`: the upsert validates each input
    on its own and answers 200 with the invalid ones rejected (docs/api.md), not 4xx for the whole request."""
    mutations = getattr(case.meta.phase.data, "mutations", ()) if case.meta else ()
    inputs = "/properties/profiles/items"
    return bool(mutations) and all(
        mutation.schema_pointer == inputs or mutation.schema_pointer.startswith(f"{inputs}/") for mutation in mutations
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_operation_answers_as_documented_whatever_it_is_sent(operation, world, live_server):
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/openapi.json")
    # The keys are ours to choose (below), not the fuzzer's. Valid requests without NUL characters, which the
    # API refuses (400) before any handler runs: invalid requests still try them.
    schema.config.generation.update(with_security_parameters=False, allow_x00=False)
    target = schema.find_operation_by_label(operation)
    assert target is not None, f"{operation} is not in the served schema"

    @seed(SEED)
    @given(data=st.data(), mode=st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=SEED is None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def fuzz(data, mode):
        case = data.draw(target.as_strategy(mode), label="case")
        if mode == GenerationMode.POSITIVE and case.path_parameters and data.draw(st.booleans(), label="existing"):
            # Random ids are almost never rows: point half the valid ones at rows, so handlers get past 404.
            ids = _existing_ids(world)
            case.path_parameters = {name: ids[name] for name in case.path_parameters}
            if isinstance(case.body, dict) and case.body.get("recipients"):
                # The schema cannot say "identity or profileId, exactly one": the first recipient, by profileId
                # alone, is someone who exists, so the call gets past 422 to be accepted.
                first = {**case.body["recipients"][0], "identity": None, "profileId": ids["profile_id"]}
                case.body["recipients"] = [first]
        per_input = _invalid_only_inside_profile_inputs(case)
        checks = [check for check in CHECKS if not (per_input and check is negative_data_rejection)]
        for kind, secret in world["keys"].items():
            headers = {"Authorization": f"Bearer {secret}"} if secret else {}
            try:
                response = case.call_and_validate(base_url=live_server.url, headers=headers, checks=checks)
                if per_input and response.status_code == 200:
                    assert "rejected" in {result["status"] for result in response.json()["results"]}
            except Exception as error:
                error.add_note(f"{operation}, with key: {kind}")
                raise

    fuzz()


# The security review's findings, each through the API --------------------------------------------------------

# The error statuses each operation answers, written out: an operation added without a row here fails.
ERROR_STATUSES = {
    "GET /api/v1/me": {401},
    "GET /api/v1/campaigns/{campaign_id}": {401, 403, 404, 422},
    "POST /api/v1/profiles": {400, 401, 403, 422},
    "GET /api/v1/profiles/{profile_id}/export": {401, 403, 404, 422},
    "DELETE /api/v1/profiles/{profile_id}": {401, 403, 404, 422},
    "GET /api/v1/inbox/{profile_id}/messages": {401, 403, 404, 422},
    "POST /api/v1/inbox/{profile_id}/messages/{message_id}/read": {401, 403, 404, 422},
    "DELETE /api/v1/inbox/{profile_id}/messages/{message_id}": {401, 403, 404, 422},
    "POST /api/v1/campaigns/{campaign_id}/trigger": {400, 401, 403, 404, 409, 413, 422, 429},
    "POST /api/v1/campaigns/{campaign_id}/trigger-audience": {400, 401, 403, 404, 409, 413, 422, 429},
    "GET /api/v1/executions/{execution_id}": {401, 404, 422},
    "GET /api/v1/trigger-requests/{request_id}": {401, 404, 409, 422},
    "GET /api/v1/health": {503},
}
# Error statuses that are not problems: the health check's 503 is its usual answer, saying what is down.
NOT_PROBLEMS = {("GET /api/v1/health", 503): "HealthOut"}
PROBLEM_SCHEMAS = {422: "InvalidRequestOut", 429: "RetryOut"}
# A valid body for the operations with a path parameter that need one: only the path is then at fault.
VALID_BODIES = {
    "POST /api/v1/campaigns/{campaign_id}/trigger": {"requestId": "r-1", "recipients": [{"profileId": 1}]},
    "POST /api/v1/campaigns/{campaign_id}/trigger-audience": {"requestId": "r-1"},
}
MEGABYTE = 2**20


def _responses(operation: str) -> dict:
    method, path = operation.split(" ")
    return {int(status): response for status, response in SCHEMA["paths"][path][method.lower()]["responses"].items()}


def _body_schema(operation: str, status: int) -> str:
    """The schema of the body `operation` documents for `status`, under the content type it documents: every
    error is application/problem+json (RFC 9457)."""
    content = _responses(operation)[status]["content"]
    problem = status >= 400 and (operation, status) not in NOT_PROBLEMS
    return content[PROBLEM_CONTENT_TYPE if problem else "application/json"]["schema"]["$ref"].rpartition("/")[2]


@pytest.fixture
def secrets(personas):
    ada = personas["ada"]
    return {
        "profiles": api_key_create(actor=ada, name="crm", profiles=True)[1],
        "all campaigns": api_key_create(actor=ada, name="all", all_triggered_campaigns=True)[1],
    }


def test_every_operation_documents_each_error_status_it_answers_with_its_body():
    assert set(OPERATIONS) == set(ERROR_STATUSES)
    for operation, statuses in ERROR_STATUSES.items():
        responses = _responses(operation)
        documented = {status for status in responses if status >= 400}
        assert documented == statuses, operation
        for status in statuses:
            expected = NOT_PROBLEMS.get((operation, status)) or PROBLEM_SCHEMAS.get(status, "ErrorOut")
            assert _body_schema(operation, status) == expected, (operation, status)
            assert len(responses[status]["content"]) == 1, (operation, status)
        if 429 in statuses:
            assert set(responses[429]["headers"]) == {"Retry-After"}, operation
        if 401 in statuses:
            assert set(responses[401]["headers"]) == {"WWW-Authenticate"}, operation
    problem = {"type", "title", "status", "detail", "instance"}
    schemas = SCHEMA["components"]["schemas"]
    assert set(schemas["ErrorOut"]["required"]) == set(schemas["RetryOut"]["required"]) == problem
    assert set(schemas["InvalidRequestOut"]["required"]) == problem | {"errors"}
    assert "pointer" in schemas["InvalidField"]["properties"]


def test_the_health_check_answers_its_503_as_documented(client, db, monkeypatch):
    """Not a problem: the usual HealthOut, as application/json, naming what is down."""

    def down(*args, **kwargs):
        raise ConnectionError("Redis does not answer")

    monkeypatch.setattr("config.api.django_rq.get_connection", down)

    response = client.get("/api/v1/health")

    assert response.status_code == 503
    assert response["Content-Type"].partition(";")[0] == "application/json"
    assert response.json() == {"status": "down", "database": "ok", "redis": "down"}
    assert _body_schema("GET /api/v1/health", 503) == "HealthOut"


def _secret(secrets, path: str) -> str:
    """The key an operation on `path` is for: the profile and inbox APIs need the profiles scope."""
    return secrets["profiles" if path.startswith(("/api/v1/profiles", "/api/v1/inbox")) else "all campaigns"]


# Every path parameter is a whole number or a UUID, but a requestId: any 1 to 200 visible ASCII characters.
@pytest.mark.parametrize(
    "operation", [operation for operation in OPERATIONS if "{" in operation and "{request_id}" not in operation]
)
def test_a_path_parameter_that_is_not_a_whole_number_is_a_documented_422(client, secrets, operation):
    method, path = operation.split(" ")
    headers = {"Authorization": f"Bearer {_secret(secrets, path)}"}
    body = json.dumps(VALID_BODIES[operation]) if operation in VALID_BODIES else ""

    response = client.generic(
        method, re.sub(r"\{\w+\}", "abc", path), data=body, content_type="application/json", headers=headers
    )

    body = _problem(response, 422, "invalid-request")
    assert body["detail"].startswith("invalid request: ")
    assert {error["loc"][0] for error in body["errors"]} == {"path"}
    assert {error["pointer"] for error in body["errors"]} == {None}  # pointers are into the body
    assert _body_schema(operation, 422) == "InvalidRequestOut"


def test_a_request_id_of_letters_in_the_path_is_a_request_id_not_a_422(client, secrets):
    headers = {"Authorization": f"Bearer {secrets['all campaigns']}"}

    response = client.get("/api/v1/trigger-requests/abc", headers=headers)

    _problem(response, 404, "not-found")
    spaced = client.get("/api/v1/trigger-requests/a%20b", headers=headers)  # not visible ASCII
    assert [error["loc"] for error in _problem(spaced, 422, "invalid-request")["errors"]] == [["path", "request_id"]]


@pytest.mark.parametrize("request_id", ["order/42", "a/b/", "/", "../x"])
def test_a_request_id_with_a_slash_is_found_by_it(client, personas, secrets, request_id):
    """A requestId is any visible ASCII, "/" too: sent as %2F, it reaches the operation, not Django's HTML 404."""
    ada = personas["ada"]
    campaign = lifecycle.campaign_create(
        actor=ada,
        name="Order shipped",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=make_email_configuration(port=25),
        audience=None,
        content=lifecycle.Content("Shipped", "<p>Shipped</p>", "Shipped"),
    )
    campaign = lifecycle.campaign_activate(campaign=campaign, actor=ada)
    profile = Profile.objects.create(email="zoe@example.com")
    triggers.trigger_unitary(
        earlier=None,
        campaign=campaign,
        api_key_prefix="fuzz",
        request_id=request_id,
        digest=triggers.body_hash({"recipients": [{"profileId": profile.pk}]}),
        context={},
        recipients=[triggers.RecipientIn(profile_id=profile.pk)],
    )
    headers = {"Authorization": f"Bearer {secrets['all campaigns']}"}

    response = client.get(f"/api/v1/trigger-requests/{quote(request_id, safe='')}", headers=headers)

    assert response.status_code == 200, response.content[:300]
    assert response.json()["requestId"] == request_id
    _problem(client.get("/api/v1/trigger-requests/order%2F43", headers=headers), 404, "not-found")


@pytest.mark.parametrize("operation", [operation for operation in OPERATIONS if 400 in ERROR_STATUSES[operation]])
def test_a_body_that_is_not_json_is_a_documented_400(client, secrets, operation):
    method, path = operation.split(" ")
    headers = {"Authorization": f"Bearer {_secret(secrets, path)}"}

    response = client.generic(
        method, re.sub(r"\{\w+\}", "1", path), data="not json", content_type="application/json", headers=headers
    )

    body = _problem(response, 400, "bad-request")
    assert body["detail"] == "invalid request: body: is not JSON: Expecting value (line 1, column 1)"
    assert "errors" not in body
    assert _body_schema(operation, 400) == "ErrorOut"


@pytest.mark.parametrize(
    "profile",
    [
        {"email": "zoe@example.com", "attributes": {"n" * MEGABYTE: 1}},
        {"email": "zoe@example.com", "identities": {"n" * MEGABYTE: "C-1"}},
        {"email": "zoe@example.com", "consent": {"n" * MEGABYTE: "opted_in"}},
        {"email": "zoe@example.com", "n" * MEGABYTE: 1},
    ],
    ids=["attribute", "identity namespace", "consent channel", "field"],
)
def test_a_megabyte_name_is_refused_without_being_repeated(client, secrets, profile):
    body = json.dumps({"profiles": [profile]})
    headers = {"Authorization": f"Bearer {secrets['profiles']}"}

    response = client.post("/api/v1/profiles", data=body, content_type="application/json", headers=headers)

    problem = _problem(response, 422, "invalid-request")
    assert len(response.content) < 2000, response.content[:300]
    assert "n" * 100 not in response.content.decode()
    assert "keys have at most 64" in problem["detail"]
    assert not Profile.objects.exists()


@pytest.mark.parametrize("field", ["email", "phone", "country", "timezone", "locale"])
def test_a_megabyte_value_is_rejected_without_being_repeated(client, secrets, field):
    value = {"phone": "9" * MEGABYTE, "email": "zoe@" + "n" * MEGABYTE}.get(field, "n" * MEGABYTE)
    profile = {"identities": {"crm_id": "C-1"}, field: value}
    headers = {"Authorization": f"Bearer {secrets['profiles']}"}

    response = client.post(
        "/api/v1/profiles", data=json.dumps({"profiles": [profile]}), content_type="application/json", headers=headers
    )

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["status"] == "rejected" and [error["field"] for error in result["errors"]] == [field]
    assert len(response.content) < 1000, response.content[:300]


def test_a_megabyte_path_or_query_parameter_is_not_repeated(client, secrets):
    headers = {"Authorization": f"Bearer {secrets['profiles']}"}

    in_path = client.get("/api/v1/profiles/" + "n" * MEGABYTE + "/export", headers=headers)
    in_query = client.get("/api/v1/inbox/1/messages?limit=" + "n" * MEGABYTE, headers=headers)

    for response in (in_path, in_query):
        _problem(response, 422, "invalid-request")
        assert len(response.content) < 1000, response.content[:300]


@pytest.mark.parametrize("size", [2_000_001, 3 * MEGABYTE], ids=["over the parser's limit", "over Django's limit"])
def test_a_body_too_large_to_read_is_a_json_400(client, secrets, size):
    body = '{"profiles": [{"email": "' + "n" * size + '"}]}'
    headers = {"Authorization": f"Bearer {secrets['profiles']}"}

    response = client.post("/api/v1/profiles", data=body, content_type="application/json", headers=headers)

    body = _problem(response, 400, "bad-request")
    assert body["detail"] == "invalid request: body: is larger than 2,000,000 bytes"
    assert "errors" not in body
