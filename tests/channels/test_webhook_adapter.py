"""The webhook adapter against a local HTTP server playing the organization's receiver."""

import hashlib
import hmac
import time

import pytest
from django.utils import timezone

from audiences.models import Audience, Profile
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.adapters.base import OutboundMessage, Outcome
from tests.channels.conftest import make_configuration
from tests.channels.http_servers import Reply
from tests.smtp_servers import free_port

SECRET = "whsec-0123456789abcdef"


def event(n: int, **overrides) -> OutboundMessage:
    values = {
        "delivery_id": n,
        "to": str(1000 + n),
        "subject": f"Order {n} shipped",
        "html": f"<p>Zoë, order {n} is on its way</p>",
        "text": f"Zoë, order {n} is on its way",
        "campaign_id": 7,
    }
    return OutboundMessage(**{**values, **overrides})


@pytest.fixture
def webhook_adapter(open_adapter, provider):
    def open_(**values):
        return open_adapter("webhook", **{"url": f"{provider.url}/hooks/campaigns", "signing_secret": SECRET, **values})

    return open_


def verify(header: str, body: bytes, secret: str, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/channels.md tells it."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) <= tolerance


def test_posts_the_rendered_message_as_signed_json(webhook_adapter, provider):
    [result] = webhook_adapter().send([event(42)])

    assert (result.outcome, result.provider_message_id) == (Outcome.SENT, "delivery-42")
    [request] = provider.requests
    assert (request.method, request.path) == ("POST", "/hooks/campaigns")
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["idempotency-key"] == "delivery-42"
    body = request.json
    assert {key: body[key] for key in body if key != "sent_at"} == {
        "delivery_id": 42,
        "campaign": 7,
        "profile_id": 1042,
        "subject": "Order 42 shipped",
        "text": "Zoë, order 42 is on its way",
        "html": "<p>Zoë, order 42 is on its way</p>",
    }
    assert body["sent_at"].endswith("Z")
    assert verify(request.headers["x-campaign-signature"], request.body, SECRET)


def test_the_signature_fails_for_a_tampered_body_or_another_secret(webhook_adapter, provider):
    webhook_adapter().send([event(1)])

    [request] = provider.requests
    header = request.headers["x-campaign-signature"]
    assert not verify(header, request.body.replace(b"Order 1", b"Order 9"), SECRET)
    assert not verify(header, request.body, "another-secret-of-16")


def test_a_receivers_own_id_is_kept(webhook_adapter, provider):
    provider.script = lambda request: Reply(202, {"id": "evt_123"})

    [result] = webhook_adapter().send([event(1)])

    assert (result.outcome, result.provider_message_id) == (Outcome.SENT, "evt_123")


def test_requests_go_out_concurrently(webhook_adapter, provider):
    provider.script = lambda request: Reply(200, delay=0.1)

    results = webhook_adapter(connections=3).send([event(i) for i in range(9)])

    assert {r.outcome for r in results} == {Outcome.SENT}
    assert provider.max_in_flight == 3


def test_429_and_5xx_are_transient_other_4xx_permanent(webhook_adapter, provider):
    provider.queue(
        Reply(429, headers={"Retry-After": "2"}),
        Reply(502, body=b"bad gateway"),
        Reply(422, {"error": "unknown campaign"}),
    )

    limited, down, refused = webhook_adapter(connections=1).send([event(1), event(2), event(3)])

    assert (limited.outcome, limited.reason, limited.retry_after) == (Outcome.TRANSIENT, "rate_limited", 2.0)
    assert (down.outcome, down.reason) == (Outcome.TRANSIENT, "provider_error")
    assert (refused.outcome, refused.reason) == (Outcome.PERMANENT, "http_422")
    # The status, never the receiver's answer: details are shown on pages.
    assert (down.detail, refused.detail) == ("HTTP 502 Bad Gateway", "HTTP 422 Unprocessable Content")


def test_a_receiver_that_is_down_fails_every_message_transiently(webhook_adapter):
    results = webhook_adapter(url=f"http://127.0.0.1:{free_port()}/hook").send([event(i) for i in range(4)])

    assert {(r.outcome, r.reason) for r in results} == {(Outcome.TRANSIENT, "connect_failed")}


def test_a_connection_dropped_after_the_request_is_indeterminate(webhook_adapter, provider):
    provider.script = lambda request: Reply(drop=True)

    results = webhook_adapter().send([event(1), event(2)])

    assert {(r.outcome, r.reason) for r in results} == {(Outcome.INDETERMINATE, "connection_lost")}


@pytest.mark.django_db(transaction=True)
def test_a_webhook_campaign_posts_each_recipients_message_with_its_ids(personas, redis, provider):
    people = Profile.objects.bulk_create(Profile(attributes={"first_name": f"N{i}"}) for i in range(3))
    campaign = campaign_create(
        actor=personas["april"],
        name="CRM sync",
        channel_configuration=make_configuration("webhook", url=f"{provider.url}/in", signing_secret=SECRET),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("Hi {{ profile.first_name }}", "<p>Hi</p>", "Hi {{ profile.first_name }}"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)

    bodies = sorted((r.json for r in provider.requests), key=lambda body: body["profile_id"])
    deliveries = {d.profile_id: d for d in Delivery.objects.all()}
    assert [(b["profile_id"], b["campaign"], b["subject"]) for b in bodies] == [
        (p.pk, campaign.pk, f"Hi N{i}") for i, p in enumerate(people)
    ]
    assert [b["delivery_id"] for b in bodies] == [deliveries[p.pk].pk for p in people]
    assert {d.status for d in deliveries.values()} == {Delivery.Status.SENT}
    assert all(verify(r.headers["x-campaign-signature"], r.body, SECRET) for r in provider.requests)
