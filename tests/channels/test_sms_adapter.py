"""The SMS adapter against a local HTTP server playing a Twilio-compatible provider."""

import base64

import pytest
from django.utils import timezone

from audiences.models import Audience, Consent, Profile
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.adapters.base import OutboundMessage, Outcome
from tests.channels.conftest import make_configuration
from tests.channels.http_servers import BlackholeServer, Reply
from tests.smtp_servers import free_port

SID = "AC0123456789"


def sms(n: int, **overrides) -> OutboundMessage:
    return OutboundMessage(**{"delivery_id": n, "to": f"+1555000{n:04d}", "text": f"Hello {n}", **overrides})


@pytest.fixture
def sms_adapter(open_adapter, provider):
    def open_(**values):
        settings = {
            "base_url": provider.url,
            "account_sid": SID,
            "auth_token": "twilio-auth-token-secret",
            "from_number": "+15559990000",
            **values,
        }
        return open_adapter("sms", **settings)

    return open_


def created(request):
    return Reply(201, {"sid": f"SM{request.form['To'][-4:]}", "status": "queued"})


def test_posts_the_message_as_a_form_with_basic_auth_and_idempotency_keys(sms_adapter, provider):
    provider.script = created

    [result] = sms_adapter().send([sms(42, text="Soldes d'été ☀️")])

    assert (result.outcome, result.provider_message_id) == (Outcome.SENT, "SM0042")
    [request] = provider.requests
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert request.form == {"To": "+15550000042", "From": "+15559990000", "Body": "Soldes d'été ☀️"}
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(f"{SID}:twilio-auth-token-secret".encode()).decode()
    )
    assert request.headers["i-twilio-idempotency-token"] == "delivery-42"
    assert request.headers["idempotency-key"] == "delivery-42"


def test_a_slice_keeps_as_many_requests_in_flight_as_connections_over_reused_connections(sms_adapter, provider):
    provider.script = lambda request: Reply(201, {"sid": "SM" + request.form["To"]}, delay=0.1)
    adapter = sms_adapter(connections=4)

    for batch in range(2):
        results = adapter.send([sms(batch * 100 + i) for i in range(12)])
        assert [r.outcome for r in results] == [Outcome.SENT] * 12
        assert [r.provider_message_id for r in results] == [f"SM+1555000{batch * 100 + i:04d}" for i in range(12)]

    assert provider.max_in_flight == 4
    assert provider.connections_used() == 4, "the session's pool keeps its connections across slices"


def test_rate_limited_answers_are_transient_with_the_providers_retry_after(sms_adapter, provider):
    provider.script = lambda request: Reply(429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "7"})

    results = sms_adapter().send([sms(1), sms(2)])

    assert {(r.outcome, r.reason, r.retry_after) for r in results} == {(Outcome.TRANSIENT, "rate_limited", 7.0)}


def test_server_errors_are_transient(sms_adapter, provider):
    provider.queue(Reply(503, {"message": "unavailable"}), Reply(500, body=b"oops"))

    results = sms_adapter(connections=1).send([sms(1), sms(2), sms(3)])

    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.TRANSIENT, "provider_error"),
        (Outcome.TRANSIENT, "provider_error"),
        (Outcome.SENT, ""),
    ]


def test_invalid_numbers_are_permanent_invalid_address_and_other_errors_keep_the_providers_code(sms_adapter, provider):
    errors = {
        "+15550000001": Reply(400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}),
        "+15550000002": Reply(400, {"code": 21614, "message": "'To' number is not a valid mobile number"}),
        "+15550000003": Reply(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}),
        "+15550000004": Reply(400, {"code": 21602, "message": "Message body is required."}),
        "+15550000005": Reply(404, body=b"not json"),
    }
    provider.script = lambda request: errors[request.form["To"]]

    results = sms_adapter().send([sms(n) for n in range(1, 6)])

    assert [(r.outcome, r.reason) for r in results] == [
        (Outcome.PERMANENT, "invalid_address"),
        (Outcome.PERMANENT, "invalid_address"),
        (Outcome.PERMANENT, "recipient_opted_out"),
        (Outcome.PERMANENT, "twilio_21602"),
        (Outcome.PERMANENT, "http_404"),
    ]
    assert "not a valid phone number" in results[0].detail


def test_refused_credentials_are_transient_so_they_can_be_fixed_within_the_retry_window(sms_adapter, provider):
    provider.script = lambda request: Reply(401, {"code": 20003, "message": "Authenticate"})

    [result] = sms_adapter().send([sms(1)])

    assert (result.outcome, result.reason) == (Outcome.TRANSIENT, "auth_failed")
    assert "twilio-auth-token-secret" not in result.detail


def test_a_provider_that_is_down_fails_every_message_transiently(sms_adapter):
    adapter = sms_adapter(base_url=f"http://127.0.0.1:{free_port()}")

    results = adapter.send([sms(i) for i in range(6)])

    assert {(r.outcome, r.reason) for r in results} == {(Outcome.TRANSIENT, "connect_failed")}


def test_a_connect_timeout_is_transient(sms_adapter):
    blackhole = BlackholeServer()
    try:
        results = sms_adapter(base_url=blackhole.url, timeout_seconds=0.3).send([sms(1), sms(2)])
    finally:
        blackhole.stop()

    assert {(r.outcome, r.reason) for r in results} == {(Outcome.TRANSIENT, "connect_failed")}


def test_a_connection_dropped_after_the_request_is_indeterminate(sms_adapter, provider):
    provider.queue(Reply(drop=True))
    provider.script = created

    dropped, sent = sms_adapter(connections=1).send([sms(1), sms(2)])

    assert (dropped.outcome, dropped.reason) == (Outcome.INDETERMINATE, "connection_lost")
    assert sent.outcome == Outcome.SENT
    assert len(provider.requests) == 2, "the dropped request reached the provider"


def test_an_answer_slower_than_the_timeout_is_indeterminate(sms_adapter, provider):
    provider.script = lambda request: Reply(201, {"sid": "SMlate"}, delay=0.6)

    [result] = sms_adapter(timeout_seconds=0.2).send([sms(1)])

    assert (result.outcome, result.reason) == (Outcome.INDETERMINATE, "timeout")


def test_an_empty_message_is_refused_without_a_request(sms_adapter, provider):
    [result] = sms_adapter().send([sms(1, text="  ", subject="")])

    assert (result.outcome, result.reason) == (Outcome.PERMANENT, "rejected")
    assert provider.requests == []


@pytest.mark.django_db(transaction=True)
def test_an_sms_campaign_goes_through_the_send_path_to_the_provider(personas, redis, provider):
    people = Profile.objects.bulk_create(
        Profile(phone=f"+1555000{n:04d}", attributes={"first_name": f"N{n}"}) for n in range(1, 7)
    )
    Consent.objects.bulk_create(Consent(profile=p, channel="sms", state=Consent.State.OPTED_IN) for p in people)
    provider.script = lambda request: (
        Reply(400, {"code": 21211, "message": "invalid 'To'"})
        if request.form["To"].endswith("0003")
        else created(request)
    )
    configuration = make_configuration(
        "sms", base_url=provider.url, account_sid=SID, auth_token="token-0123", from_number="+15559990000"
    )
    campaign = campaign_create(
        actor=personas["april"],
        name="SMS sale",
        channel_configuration=configuration,
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("", "", "Hi {{ profile.first_name }}, 20% off today"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)

    outcomes = {d.address: (d.status, d.reason, d.provider_message_id) for d in Delivery.objects.all()}
    assert outcomes.pop("+15550000003") == (Delivery.Status.FAILED, "invalid_address", "")
    assert outcomes == {p.phone: (Delivery.Status.SENT, "", f"SM{p.phone[-4:]}") for p in people if p.phone in outcomes}
    assert len(outcomes) == 5
    assert sorted(r.form["Body"] for r in provider.requests)[0] == "Hi N1, 20% off today"


def test_one_message_that_cannot_be_encoded_fails_alone_and_the_others_are_sent(sms_adapter, provider):
    provider.script = created

    results = sms_adapter().send([sms(1), sms(2, text="Hello \ud800"), sms(3, to="+1555\udc000003"), sms(4)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.PERMANENT, Outcome.PERMANENT, Outcome.SENT]
    assert [r.reason for r in results[1:3]] == ["message_error", "message_error"]
    assert sorted(request.form["To"] for request in provider.requests) == ["+15550000001", "+15550000004"]
