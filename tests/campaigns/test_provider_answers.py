"""Whatever a provider answers, the ledger records it and the run goes on: NULs and lone surrogates in ids and
details, a Retry-After of any size, redirects. A provider's answer must never stall a slice it already has."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.models import Audience, Profile
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery, Run
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from tests.channels.conftest import make_configuration
from tests.channels.http_servers import ProviderServer, Reply

SECRET = "webhook-signing-secret-1"


@pytest.fixture
def provider():
    """A receiver on loopback that answers from a script (as in the channels tests)."""
    server = ProviderServer().start()
    yield server
    server.stop()


def webhook_run(personas, url: str, people: int = 3) -> int:
    Profile.objects.bulk_create(Profile(attributes={"first_name": f"N{i}"}) for i in range(people))
    campaign = campaign_create(
        actor=personas["april"],
        name="CRM sync",
        channel_configuration=make_configuration("webhook", url=url, signing_secret=SECRET),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("Hi {{ profile.first_name }}", "<p>Hi</p>", "Hi"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)
    return run_id


@pytest.mark.parametrize("provider_id", ["a\x00b", "a\ud800b", "x" * 10_000])
def test_an_unstorable_provider_id_is_recorded_cleaned_and_the_run_completes(personas, redis, provider, provider_id):
    # json.dumps writes \u0000 and \ud800 as escapes: the answer is valid JSON that decodes to unstorable text.
    provider.script = lambda request: Reply(202, {"id": provider_id})

    run_id = webhook_run(personas, f"{provider.url}/in")

    deliveries = list(Delivery.objects.filter(run_id=run_id))
    assert len(provider.requests) == 3
    assert {d.status for d in deliveries} == {Delivery.Status.SENT}
    assert all(len(d.provider_message_id) <= 255 and "\x00" not in d.provider_message_id for d in deliveries)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.parametrize("retry_after", ["inf", "1e12", "nan", "-5", "99999999999999999999"])
def test_any_retry_after_schedules_a_retry_within_a_day(personas, redis, provider, retry_after):
    provider.script = lambda request: Reply(503, {"error": "busy"}, headers={"Retry-After": retry_after})
    before = timezone.now()

    run_id = webhook_run(personas, f"{provider.url}/in", people=2)

    deliveries = list(Delivery.objects.filter(run_id=run_id))
    assert {d.status for d in deliveries} == {Delivery.Status.PENDING}
    assert all(before < d.next_attempt_at <= before + timedelta(days=1, minutes=1) for d in deliveries)
    assert all(d.attempts == 1 and d.reason == "provider_error" for d in deliveries)


def test_a_redirect_is_not_followed_and_the_message_is_not_sent_twice(personas, redis, provider):
    elsewhere = ProviderServer().start()
    try:
        provider.script = lambda request: Reply(307, headers={"Location": f"{elsewhere.url}/other"})

        run_id = webhook_run(personas, f"{provider.url}/in", people=2)

        deliveries = list(Delivery.objects.filter(run_id=run_id))
        assert len(provider.requests) == 2 and elsewhere.requests == []  # nor its signature re-sent elsewhere
        assert {(d.status, d.reason) for d in deliveries} == {(Delivery.Status.FAILED, "http_307")}
    finally:
        elsewhere.stop()


@pytest.mark.parametrize("location", ["/caf\xe9", "http://[::1", "http://%zz/"])
def test_a_redirect_with_an_unreadable_location_is_failed_never_a_crash(personas, redis, provider, location):
    provider.script = lambda request: Reply(302, headers={"Location": location})

    run_id = webhook_run(personas, f"{provider.url}/in", people=1)

    [delivery] = Delivery.objects.filter(run_id=run_id)
    assert len(provider.requests) == 1
    assert (delivery.status, delivery.reason) == (Delivery.Status.FAILED, "http_302")


def test_a_provider_error_code_of_any_length_fails_the_message_with_a_bounded_reason(personas, redis, provider):
    """Twilio's `code` is copied into the reason (`twilio_<code>`, 40 characters in the ledger) and the detail
    (500): a 600-digit code must fail the message, not the write of the whole slice."""
    from audiences.models import Consent
    from tests.campaigns.test_failures import make_profiles, sms_configuration

    for profile in make_profiles(2):  # unknown SMS consent does not allow marketing
        Consent.objects.create(profile=profile, channel="sms", state=Consent.State.OPTED_IN)
    provider.script = lambda request: Reply(400, {"code": 10**600, "message": "no"})
    campaign = campaign_create(
        actor=personas["april"],
        name="Texts",
        channel_configuration=sms_configuration(provider.url),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("", "", "Hello"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)

    deliveries = list(Delivery.objects.filter(run_id=run_id))
    assert len(provider.requests) == 2
    assert {d.status for d in deliveries} == {Delivery.Status.FAILED}
    assert all(d.reason.startswith("twilio_1000") and len(d.reason) == 40 for d in deliveries)
    assert all(len(d.detail) == 500 for d in deliveries)
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE
