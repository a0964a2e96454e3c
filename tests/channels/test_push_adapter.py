"""The push adapter against a local HTTP server playing both Google's OAuth2 token endpoint and FCM v1."""

import base64
import json
import time

import pytest
import time_machine
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from channels.adapters.base import OutboundMessage, Outcome
from tests.channels.http_servers import Reply
from tests.smtp_servers import free_port

PROJECT = "demo-shop"
SEND_PATH = f"/v1/projects/{PROJECT}/messages:send"
CLIENT_EMAIL = "fcm-sender@demo-shop.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def key_pair():
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, private_key.public_key()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeGoogle:
    """The script of the provider server: grants tokens for correctly signed JWTs, sends with a valid token."""

    def __init__(self, public_key, token_uri):
        self.public_key = public_key
        self.token_uri = token_uri
        self.issued = []
        self.claims = []
        self.expires_in = 3600
        self.send_errors: dict[str, Reply] = {}

    def __call__(self, request):
        if request.path == "/token":
            return self.grant(request)
        if request.path == SEND_PATH:
            if request.headers.get("authorization") != f"Bearer {self.issued[-1] if self.issued else '-'}":
                return Reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": "bad token"}})
            token = request.json["message"]["token"]
            if token in self.send_errors:
                return self.send_errors[token]
            return Reply(200, {"name": f"projects/{PROJECT}/messages/0:{token}"})
        return Reply(404, {})

    def grant(self, request):
        form = request.form
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        header, claims, signature = form["assertion"].split(".")
        try:
            self.public_key.verify(
                b64url_decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        assert json.loads(b64url_decode(header)) == {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
        self.claims.append(json.loads(b64url_decode(claims)))
        self.issued.append(f"ya29.token-{len(self.issued) + 1}")
        return Reply(200, {"access_token": self.issued[-1], "expires_in": self.expires_in, "token_type": "Bearer"})


@pytest.fixture
def google(provider, key_pair):
    fake = FakeGoogle(key_pair[1], f"{provider.url}/token")
    provider.script = fake
    return fake


@pytest.fixture
def push_adapter(open_adapter, provider, key_pair):
    def open_(private_key=None, **values):
        account = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "key-1",
            "private_key": private_key or key_pair[0],
            "client_email": CLIENT_EMAIL,
            "token_uri": f"{provider.url}/token",
        }
        settings = {"project_id": PROJECT, "service_account_json": json.dumps(account), "send_endpoint": provider.url}
        return open_adapter("push", **{**settings, **values})

    return open_


def push(n: int, **overrides) -> OutboundMessage:
    values = {"delivery_id": n, "to": f"device-token-{n}", "subject": f"Sale {n}", "text": f"Everything -{n}%"}
    return OutboundMessage(**{**values, **overrides})


def test_signs_a_jwt_gets_an_access_token_and_sends_the_notification(push_adapter, provider, google):
    [result] = push_adapter().send([push(42)])

    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == f"projects/{PROJECT}/messages/0:device-token-42"
    [claims] = google.claims
    assert claims["iss"] == CLIENT_EMAIL
    assert claims["aud"] == f"{provider.url}/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 60
    sent = provider.requests[-1]
    assert (sent.method, sent.path) == ("POST", SEND_PATH)
    assert sent.headers["authorization"] == "Bearer ya29.token-1"
    assert sent.headers["idempotency-key"] == "delivery-42"
    assert sent.json == {
        "message": {
            "token": "device-token-42",
            "notification": {"title": "Sale 42", "body": "Everything -42%"},
            "data": {"delivery_id": "42"},
        }
    }


def test_the_access_token_is_reused_until_near_expiry(push_adapter, provider, google):
    adapter = push_adapter(connections=3)

    for batch in range(3):
        results = adapter.send([push(batch * 10 + i) for i in range(6)])
        assert {r.outcome for r in results} == {Outcome.SENT}

    assert adapter.tokens_fetched == 1
    with time_machine.travel(time.time() + 3600 - 240, tick=True):  # inside the renewal margin
        adapter.send([push(100)])
        adapter.send([push(101)])
    assert adapter.tokens_fetched == 2


@pytest.mark.parametrize("expires_in", ["soon", None, "inf", -5, [3600]])
def test_a_token_lifetime_that_is_not_a_number_is_read_as_an_hour(push_adapter, provider, google, expires_in):
    google.expires_in = expires_in
    adapter = push_adapter()

    results = adapter.send([push(1), push(2)])

    assert {r.outcome for r in results} == {Outcome.SENT}
    assert adapter.tokens_fetched == 1


def test_a_refused_access_token_is_forgotten_and_fetched_again(push_adapter, provider, google):
    adapter = push_adapter()
    adapter.send([push(1)])
    google.issued.append("ya29.rotated-elsewhere")  # the server no longer takes the token the adapter holds

    [refused] = adapter.send([push(2)])
    [sent] = adapter.send([push(3)])

    assert (refused.outcome, refused.reason) == (Outcome.TRANSIENT, "auth_failed")
    assert sent.outcome == Outcome.SENT
    assert adapter.tokens_fetched == 2


def test_a_key_the_token_endpoint_refuses_fails_the_slice_transiently(push_adapter, provider, google):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )

    results = push_adapter(private_key=other_key.decode()).send([push(1), push(2)])

    assert {(r.outcome, r.reason) for r in results} == {(Outcome.TRANSIENT, "auth_failed")}
    assert "invalid_grant" in results[0].detail
    assert all(request.path == "/token" for request in provider.requests), "no message went out"


def test_unregistered_and_invalid_tokens_are_permanent_invalid_address(push_adapter, provider, google):
    def fcm_error(code, status, error_code=None, message="", violations=None):
        details = []
        if error_code:
            details.append({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code})
        if violations:
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations})
        return Reply(code, {"error": {"code": code, "status": status, "message": message, "details": details}})

    google.send_errors = {
        "device-token-1": fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
        "device-token-2": fcm_error(
            400,
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
            [{"field": "message.token", "description": "Invalid registration token"}],
        ),
        "device-token-3": fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
        "device-token-4": fcm_error(
            400,
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "Invalid value at 'message.data[0].value'",
            [{"field": "message.data[0].value", "description": "Invalid value"}],
        ),
        "device-token-5": Reply(
            429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, headers={"Retry-After": "30"}
        ),
        "device-token-6": fcm_error(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
    }

    results = push_adapter().send([push(n) for n in range(1, 8)])

    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.PERMANENT, "invalid_address"),
        (Outcome.PERMANENT, "invalid_address"),
        (Outcome.PERMANENT, "invalid_address"),
        (Outcome.PERMANENT, "fcm_invalid_argument"),
        (Outcome.TRANSIENT, "rate_limited"),
        (Outcome.TRANSIENT, "provider_error"),
        (Outcome.SENT, ""),
    ]
    assert results[4].retry_after == 30.0
    assert "UNREGISTERED" in results[0].detail


def test_malformed_fcm_error_details_are_read_without_crashing(push_adapter, provider, google):
    google.send_errors = {
        "device-token-1": Reply(400, {"error": {"status": "INVALID_ARGUMENT", "details": [{"fieldViolations": [1]}]}}),
        "device-token-2": Reply(400, {"error": {"status": "INVALID_ARGUMENT", "details": {"fieldViolations": 3}}}),
        "device-token-3": Reply(400, {"error": {"status": ["INVALID_ARGUMENT"], "details": [None, "x"]}}),
    }

    results = push_adapter().send([push(n) for n in range(1, 5)])

    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.PERMANENT, Outcome.PERMANENT, Outcome.SENT]
    assert [r.reason for r in results[:2]] == ["fcm_invalid_argument", "fcm_invalid_argument"]


def test_requests_go_out_concurrently_over_a_bounded_pool(push_adapter, provider, google):
    def slow(request):
        reply = google(request)
        if request.path == SEND_PATH:
            reply.delay = 0.1
        return reply

    provider.script = slow

    results = push_adapter(connections=4).send([push(i) for i in range(12)])

    assert {r.outcome for r in results} == {Outcome.SENT}
    assert provider.max_in_flight == 4
    assert provider.connections_used() <= 4


def test_a_provider_that_is_down_fails_every_message_transiently(push_adapter):
    port = free_port()
    adapter = push_adapter(send_endpoint=f"http://127.0.0.1:{port}", token_uri=f"http://127.0.0.1:{port}/token")

    results = adapter.send([push(i) for i in range(3)])

    assert {(r.outcome, r.reason) for r in results} == {(Outcome.TRANSIENT, "connect_failed")}


def test_a_connection_dropped_after_the_request_is_indeterminate(push_adapter, provider, google):
    adapter = push_adapter(connections=1)
    adapter.send([push(1)])  # the token first
    provider.queue(Reply(drop=True))

    dropped, sent = adapter.send([push(2), push(3)])

    assert (dropped.outcome, dropped.reason) == (Outcome.INDETERMINATE, "connection_lost")
    assert sent.outcome == Outcome.SENT
