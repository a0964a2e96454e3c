"""Failure injection on the send path: servers down, 4xx and 5xx replies, dropped connections, and retries
within the configuration's window. Every test counts the ledger: each message is accounted for."""

import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from rq.registry import ScheduledJobRegistry

from audiences.models import Consent, Profile
from audiences.services.push_tokens import push_token_register
from campaigns.engine import outcomes, planning, recovery, scheduler, sending
from campaigns.models import Campaign, Delivery, Run
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.adapters.base import Outcome, SendResult
from channels.models import ChannelConfiguration, Suppression
from channels.schemas import SETTINGS_MODELS
from config.queues import CAMPAIGNS
from config.scheduler import scheduler_tick
from tests.channels.http_servers import ProviderServer, Reply
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import DroppingSMTPServer, RecordingSMTPServer, free_port

CONTENT = Content(subject="Sale", html_body="<p>Sale for {{ profile.id }}</p>", text_body="Sale for {{ profile.id }}")


def make_profiles(count: int, **fields) -> list[Profile]:
    return Profile.objects.bulk_create(
        Profile(email=f"person{i}@example.com", phone=f"+1555000{i:04d}", **fields) for i in range(count)
    )


def start(marketer, configuration, audience, name="Sale") -> Campaign:
    campaign = campaign_create(
        actor=marketer, name=name, channel_configuration=configuration, audience=audience, content=CONTENT
    )
    campaign_activate(campaign=campaign, actor=marketer)
    return campaign


def statuses(campaign) -> Counter:
    return Counter(Delivery.objects.filter(run__campaign=campaign).values_list("status", flat=True))


def sms_configuration(provider_url: str, **values) -> ChannelConfiguration:
    configuration = ChannelConfiguration(name=f"Texts {provider_url}", channel="sms")
    settings = {"base_url": provider_url, "account_sid": "AC1", "auth_token": "token", "from_number": "+15559990000"}
    configuration.set_settings(SETTINGS_MODELS["sms"](**{**settings, **values}))
    configuration.save()
    return configuration


@pytest.mark.django_db(transaction=True)
def test_replies_are_classified_dead_mailboxes_suppressed_and_retries_scheduled(redis, marketer, everyone):
    profiles = make_profiles(9)
    server = RecordingSMTPServer().start()
    server.recorder.rejected_recipients = {
        "person0@example.com": "550 5.1.1 <person0@example.com>: no such user",
        "person1@example.com": "554 5.7.1 Service unavailable; client host blocked",
        "person2@example.com": "452 4.2.2 Mailbox full, try again later",
        "person3@example.com": "550 Requested action not taken",  # no enhanced code: not proof of a dead mailbox
    }
    try:
        campaign = start(marketer, make_email_configuration(port=server.port, connections=1), everyone)
        scheduler_tick()
        run_burst_worker()
    finally:
        server.stop()

    rows = {d.profile_id: d for d in Delivery.objects.filter(run__campaign=campaign)}
    dead, blocked, full, bare = (rows[p.pk] for p in profiles[:4])
    assert (dead.status, dead.reason) == ("failed", "smtp_5.1.1")
    assert (blocked.status, blocked.reason) == ("failed", "smtp_5.7.1")
    assert (bare.status, bare.reason) == ("failed", "smtp_550")
    assert "no such user" in dead.detail
    assert list(Suppression.objects.values_list("channel", "address", "reason")) == [
        ("email", "person0@example.com", "hard_bounce")
    ]
    # The full mailbox waits for its next attempt, counted in the ledger.
    assert (full.status, full.attempts, full.reason, full.claim_token) == ("pending", 1, "smtp_4.2.2", None)
    assert full.first_attempt_at is not None
    assert full.due_at == full.next_attempt_at == full.first_attempt_at + timedelta(seconds=60)
    assert statuses(campaign) == Counter({"sent": 5, "failed": 3, "pending": 1})
    assert Run.objects.get(campaign=campaign).state == Run.State.SENDING  # not complete while a retry is due


@pytest.mark.django_db(transaction=True)
def test_a_suppressed_dead_mailbox_is_excluded_from_the_next_campaign(redis, marketer, everyone):
    make_profiles(3)
    server = RecordingSMTPServer().start()
    server.recorder.rejected_recipients = {"person1@example.com": "550 5.1.1 no such user"}
    try:
        configuration = make_email_configuration(port=server.port, connections=1)
        first = start(marketer, configuration, everyone, name="First")
        scheduler_tick()
        run_burst_worker()
        second = start(marketer, configuration, everyone, name="Second")
        scheduler_tick()
        run_burst_worker()
    finally:
        server.stop()

    assert statuses(first) == Counter({"sent": 2, "failed": 1})
    assert statuses(second) == Counter({"sent": 2, "excluded": 1})
    assert Delivery.objects.get(run__campaign=second, status="excluded").reason == "suppressed"
    assert len(server.messages) == 4


@pytest.mark.django_db(transaction=True)
def test_retries_stop_at_the_configurations_window_with_retries_exhausted(redis, marketer, everyone):
    [profile] = make_profiles(1)
    server = RecordingSMTPServer().start()
    server.recorder.rejected_recipients = {profile.email: "451 4.3.0 Temporary local problem"}
    try:
        campaign = start(marketer, make_email_configuration(port=server.port, retry_window_seconds=3600), everyone)
        scheduler_tick()
        run_burst_worker()
        delivery = Delivery.objects.get(run__campaign=campaign)
        assert (delivery.status, delivery.attempts) == ("pending", 1)

        # 59 minutes after the first attempt the next retry (5 minutes after the second) would fall outside the
        # one-hour window: the second attempt is the last.
        Delivery.objects.filter(pk=delivery.pk).update(
            first_attempt_at=timezone.now() - timedelta(minutes=59), due_at=timezone.now()
        )
        sending.send_run(run_id=delivery.run_id)
    finally:
        server.stop()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.attempts) == ("failed", "retries_exhausted", 2)
    assert "4.3.0 Temporary local problem" in delivery.detail  # what kept failing
    assert Run.objects.get(pk=delivery.run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_provider_down_keeps_its_run_pending_while_another_configurations_run_sends(redis, marketer, everyone):
    make_profiles(12)
    up = RecordingSMTPServer().start()
    down_port = free_port()  # nothing listens: every connection is refused
    try:
        healthy = start(marketer, make_email_configuration(port=up.port, name="Up"), everyone, name="Healthy")
        stranded = start(marketer, make_email_configuration(port=down_port, name="Down"), everyone, name="Stranded")
        scheduler_tick()
        run_burst_worker()
    finally:
        up.stop()

    assert statuses(healthy) == Counter({"sent": 12})
    assert Run.objects.get(campaign=healthy).state == Run.State.COMPLETE
    assert len(up.messages) == 12
    # The down provider cost each of its run's jobs one slice: those rows wait for a retry, the rest were
    # never tried. Nothing is left claimed or in flight, nothing failed.
    assert statuses(stranded) == Counter({"pending": 12})
    rows = Delivery.objects.filter(run__campaign=stranded)
    tried = rows.filter(attempts=1)
    assert 0 < tried.count() <= 10  # two jobs, slices of five
    assert set(tried.values_list("reason", flat=True)) == {"connect_failed"}
    assert all(row.due_at > timezone.now() for row in tried)
    assert rows.filter(attempts=0).count() == 12 - tried.count()
    # Each job left one successor for when the provider is worth trying again, instead of hammering it.
    assert ScheduledJobRegistry(CAMPAIGNS, connection=redis).count == 2


@pytest.mark.django_db(transaction=True)
def test_run_stranded_by_a_down_relay_completes_when_it_is_back_each_message_once(redis, marketer, everyone):
    make_profiles(8)
    relay = RecordingSMTPServer()
    campaign = start(marketer, make_email_configuration(port=relay.port, connections=1), everyone)
    scheduler_tick()
    run_burst_worker()  # the relay is not started yet: connections refused
    assert statuses(campaign) == Counter({"pending": 8})

    relay.start()
    try:
        # The backoff has passed and the scheduler wakes the run from the ledger (Redis may have lost the jobs).
        redis.flushdb()
        Delivery.objects.filter(run__campaign=campaign).update(due_at=timezone.now())
        recovery.redispatch_stalled_runs(now=timezone.now() + timedelta(minutes=5))
        run_burst_worker()
    finally:
        relay.stop()

    assert statuses(campaign) == Counter({"sent": 8})
    assert sorted(Counter(r for m in relay.messages for r in m["rcpt_tos"]).values()) == [1] * 8
    assert Run.objects.get(campaign=campaign).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_connection_dropped_after_data_leaves_unknown_never_resent(redis, marketer, everyone):
    make_profiles(6)
    dropper = DroppingSMTPServer().start()
    try:
        campaign = start(marketer, make_email_configuration(port=dropper.port, connections=2), everyone)
        scheduler_tick()
        run_burst_worker()
        scheduler_tick()  # nothing pending: nothing is sent again
        run_burst_worker()
    finally:
        dropper.stop()

    assert statuses(campaign) == Counter({"unknown": 6})
    assert set(Delivery.objects.values_list("reason", flat=True)) == {"connection_lost"}
    assert dropper.received_data == 6  # each message's data went out once
    assert Run.objects.get(campaign=campaign).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_provider_errors_invalid_numbers_and_retry_after(redis, marketer, everyone):
    profiles = make_profiles(5)
    for profile in profiles:
        Consent.objects.create(profile=profile, channel="sms", state=Consent.State.OPTED_IN)
    provider = ProviderServer().start()

    def answer(request):
        to = request.form["To"]
        if to == profiles[0].phone:
            return Reply(400, {"code": 21211, "message": "Invalid 'To' Phone Number"})
        if to == profiles[1].phone:
            return Reply(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"})
        if to == profiles[2].phone:
            return Reply(503, {"message": "Service unavailable"}, headers={"Retry-After": "120"})
        return Reply(201, {"sid": f"SM{to[-4:]}"})

    provider.script = answer
    try:
        campaign = start(marketer, sms_configuration(provider.url), everyone)
        scheduler_tick()
        run_burst_worker()
    finally:
        provider.stop()

    rows = {d.profile_id: d for d in Delivery.objects.filter(run__campaign=campaign)}
    invalid, stopped, busy = (rows[p.pk] for p in profiles[:3])
    assert (invalid.status, invalid.reason) == ("failed", "invalid_address")
    assert list(Suppression.objects.values_list("channel", "address", "reason")) == [
        ("sms", profiles[0].phone, "hard_bounce")
    ]
    # The provider's record of a STOP becomes the person's consent, the one place opt-outs live.
    assert (stopped.status, stopped.reason) == ("failed", "recipient_opted_out")
    consent = Consent.objects.get(profile=profiles[1], channel="sms")
    assert (consent.state, consent.source) == ("opted_out", "provider opt-out")
    # A 5xx with Retry-After: retried no sooner than the provider asked.
    assert (busy.status, busy.attempts) == ("pending", 1)
    assert busy.due_at == busy.first_attempt_at + timedelta(seconds=120)
    assert statuses(campaign) == Counter({"sent": 2, "failed": 2, "pending": 1})


@pytest.mark.django_db(transaction=True)
def test_invalid_push_token_is_retired_not_suppressed(redis, marketer, everyone):
    [profile] = make_profiles(1)
    push_token_register(profile=profile, token="dead-token", platform="android", app="shop")
    campaign = start(marketer, make_email_configuration(port=25), everyone)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    delivery = Delivery.objects.get(run_id=run_id)
    # The push adapter's verdict on this delivery, written as a push message (what FCM says of an unknown token).
    Delivery.objects.filter(pk=delivery.pk).update(channel="push", address="dead-token")
    token = uuid.uuid4()
    Delivery.objects.filter(pk=delivery.pk).update(status="in_flight", claim_token=token)
    delivery.refresh_from_db()

    outcomes.record_outcomes(
        token=token,
        results=[SendResult(delivery.pk, Outcome.PERMANENT, reason="invalid_address", detail="UNREGISTERED")],
        by_id={delivery.pk: delivery},
    )

    assert profile.push_tokens.get().retired_at is not None
    assert not Suppression.objects.exists()
    assert statuses(campaign) == Counter({"failed": 1})


@pytest.mark.django_db(transaction=True)
def test_outcome_of_a_lost_claim_suppresses_nothing(redis, marketer, everyone):
    make_profiles(1)
    campaign = start(marketer, make_email_configuration(port=25), everyone)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    delivery = Delivery.objects.get(run_id=run_id)
    Delivery.objects.filter(pk=delivery.pk).update(status="in_flight", claim_token=uuid.uuid4())

    written = outcomes.record_outcomes(
        token=uuid.uuid4(),  # not the claim that holds the row
        results=[SendResult(delivery.pk, Outcome.PERMANENT, reason="smtp_5.1.1")],
        by_id={delivery.pk: delivery},
    )

    assert written == 0
    assert not Suppression.objects.exists()
    assert statuses(campaign) == Counter({"in_flight": 1})
