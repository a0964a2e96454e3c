"""Sending a slice and recording its outcomes (send_slice, record_outcomes): who is mailed at send time,
with what headers, and what each reply does to the ledger, the suppression list and consent."""

from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from audiences.models import Consent
from audiences.services.consent import consent_set
from campaigns.engine import claiming, outcomes, planning, recovery, scheduler, sending
from campaigns.models import Campaign, Delivery, Run
from campaigns.services.lifecycle import campaign_activate
from channels.adapters.base import Outcome, SendResult
from channels.models import Suppression
from channels.services.suppression import suppress_addresses
from channels.unsubscribe import unsubscribe_url
from config.scheduler import scheduler_tick
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.campaigns.test_failures import make_profiles as make_profiles_with_phones
from tests.campaigns.test_failures import sms_configuration
from tests.channels.http_servers import ProviderServer, Reply
from tests.conftest import make_email_configuration, run_burst_worker
from tests.smtp_servers import RecordingSMTPServer


def planned(marketer, audience, configuration, *, category="marketing") -> int:
    campaign = make_campaign(marketer, configuration, audience, category=category)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    return run_id


def statuses(run_id) -> dict[str, tuple[str, str]]:
    return {d.address: (d.status, d.reason) for d in Delivery.objects.filter(run_id=run_id)}


@pytest.mark.django_db(transaction=True)
def test_who_opted_out_or_was_suppressed_after_planning_is_not_mailed(redis, smtp_server, marketer, everyone):
    stays, leaves, bounced = make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    # Between planning and sending: one person unsubscribes, another's mailbox is found dead elsewhere.
    consent_set(profile=leaves, channel="email", state=Consent.State.OPTED_OUT, source="unsubscribe link")
    suppress_addresses(channel="email", addresses=[bounced.email], reason=Suppression.Reason.HARD_BOUNCE)

    sending.send_run(run_id=run_id)

    assert sorted(smtp_server.by_recipient()) == [stays.email]
    assert statuses(run_id) == {
        stays.email: ("sent", ""),
        leaves.email: ("excluded", "no_consent"),
        bounced.email: ("excluded", "suppressed"),
    }
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_marketing_mail_carries_one_click_unsubscribe_transactional_mail_does_not(
    redis, smtp_server, marketer, everyone
):
    [person] = make_profiles(1)
    configuration = make_email_configuration(port=smtp_server.port)
    runs = {category: planned(marketer, everyone, configuration, category=category) for category in ("marketing",)}
    sending.send_run(run_id=runs["marketing"])
    runs["transactional"] = planned(marketer, everyone, configuration, category="transactional")
    sending.send_run(run_id=runs["transactional"])

    marketing, transactional = (item["message"] for item in smtp_server.messages)
    delivery = Delivery.objects.get(run_id=runs["marketing"])
    expected = unsubscribe_url(profile_id=person.pk, channel="email", delivery_id=delivery.pk)
    assert marketing["List-Unsubscribe"] == f"<{expected}>"
    assert marketing["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert transactional["List-Unsubscribe"] is None


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_outlived_its_claim_sends_nothing_of_it(redis, smtp_server, marketer, everyone):
    make_profiles(5)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    start = timezone.now()
    slow_token, slow_rows = claiming.claim_slice(run_id=run_id, limit=5, now=start)
    recovery.release_stale_claims(now=start + timedelta(hours=1))
    new_token, new_rows = claiming.claim_slice(run_id=run_id, limit=5, now=timezone.now())

    run = Run.objects.get(pk=run_id)
    assert sending.send_slice(run=run, token=slow_token, deliveries=slow_rows) is None
    assert smtp_server.messages == []
    sending.send_slice(run=run, token=new_token, deliveries=new_rows)

    assert Counter(r for m in smtp_server.messages for r in m["rcpt_tos"]) == Counter(
        {row.address: 1 for row in new_rows}
    )
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db(transaction=True)
def test_the_classification_overrides_what_the_relay_replied(redis, marketer, everyone):
    dead, full, busy, fine = make_profiles(4)
    server = RecordingSMTPServer().start()
    server.recorder.rejected_recipients = {
        dead.email: "450 5.1.1 <dead> no such user",  # a 4xx reply whose enhanced code says the mailbox is gone
        full.email: "552 5.2.2 Mailbox full",  # a 5xx reply for what clears when the owner tidies up
        busy.email: "552 Requested mail action aborted: exceeded storage allocation",
    }
    try:
        run_id = planned(marketer, everyone, make_email_configuration(port=server.port, connections=1))
        sending.send_run(run_id=run_id)
    finally:
        server.stop()

    assert statuses(run_id) == {
        dead.email: ("failed", "smtp_5.1.1"),
        full.email: ("pending", "smtp_5.2.2"),
        busy.email: ("pending", "smtp_552"),
        fine.email: ("sent", ""),
    }
    assert list(Suppression.objects.values_list("address", flat=True)) == [dead.email]
    # A dead mailbox is suppressed, not an opt-out: only the provider's own opt-out becomes consent.
    assert not Consent.objects.filter(state=Consent.State.OPTED_OUT).exists()


@pytest.mark.django_db(transaction=True)
def test_a_provider_opt_out_becomes_consent_without_another_failure_in_the_slice(redis, marketer, everyone):
    stopped, fine = make_profiles_with_phones(2)
    for profile in (stopped, fine):
        Consent.objects.create(profile=profile, channel="sms", state=Consent.State.OPTED_IN)
    provider = ProviderServer().start()
    provider.script = lambda request: (
        Reply(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"})
        if request.form["To"] == stopped.phone
        else Reply(201, {"sid": "SM1"})
    )
    try:
        run_id = planned(marketer, everyone, sms_configuration(provider.url))
        sending.send_run(run_id=run_id)
    finally:
        provider.stop()

    consent = Consent.objects.get(profile=stopped, channel="sms")
    assert (consent.state, consent.source) == ("opted_out", "provider opt-out")
    assert Consent.objects.get(profile=fine, channel="sms").state == "opted_in"
    assert not Suppression.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_outcomes_reported_twice_are_recorded_once(redis, smtp_server, marketer, everyone):
    make_profiles(3)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    token, rows = claiming.claim_slice(run_id=run_id, limit=3, now=timezone.now())
    Delivery.objects.filter(claim_token=token).update(status=Delivery.Status.IN_FLIGHT)
    results = [SendResult(row.pk, Outcome.SENT, provider_message_id=f"id-{row.pk}") for row in rows]

    assert outcomes.record_outcomes(token=token, results=results, by_id={r.pk: r for r in rows}) == 3
    again = [SendResult(row.pk, Outcome.PERMANENT, reason="smtp_5.1.1") for row in rows]
    assert outcomes.record_outcomes(token=token, results=again, by_id={r.pk: r for r in rows}) == 0

    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert not Suppression.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_unsubscribe_link_in_a_sent_message_opts_its_recipient_out(redis, smtp_server, marketer, everyone, client):
    [person] = make_profiles(1)
    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))
    scheduler_tick()
    run_burst_worker()
    [message] = (item["message"] for item in smtp_server.messages)

    link = message["List-Unsubscribe"].strip("<>")
    response = client.post(urlsplit(link).path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code in (200, 204)
    assert Consent.objects.get(profile=person, channel="email").state == Consent.State.OPTED_OUT
    assert Delivery.objects.get(run_id=run_id).status == "sent"
    assert Campaign.objects.get().status == Campaign.Status.COMPLETED


def _in_flight(marketer, everyone, port, *, attempts: int = 0):
    make_profiles(1)
    run_id = planned(marketer, everyone, make_email_configuration(port=port))
    token, [row] = claiming.claim_slice(run_id=run_id, limit=1, now=timezone.now())
    Delivery.objects.filter(pk=row.pk).update(status=Delivery.Status.IN_FLIGHT, attempts=attempts)
    row.attempts = attempts
    return token, row


@pytest.mark.django_db(transaction=True)
def test_the_hundredth_failed_attempt_is_the_last(redis, smtp_server, marketer, everyone):
    token, row = _in_flight(marketer, everyone, smtp_server.port, attempts=outcomes.MAX_ATTEMPTS - 1)
    busy = [SendResult(row.pk, Outcome.TRANSIENT, reason="smtp_4.2.2", detail="452 4.2.2 mailbox full")]

    outcomes.record_outcomes(token=token, results=busy, by_id={row.pk: row})

    row.refresh_from_db()
    assert (row.status, row.reason, row.attempts) == ("failed", "retries_exhausted", outcomes.MAX_ATTEMPTS)
    assert row.detail == "452 4.2.2 mailbox full"  # what kept failing


@pytest.mark.django_db(transaction=True)
def test_an_outcome_nobody_knows_is_not_retried_unless_asked(redis, smtp_server, marketer, everyone):
    token, row = _in_flight(marketer, everyone, smtp_server.port)
    lost = [SendResult(row.pk, Outcome.INDETERMINATE, reason="connection_lost")]

    outcomes.record_outcomes(token=token, results=lost, by_id={row.pk: row})

    row.refresh_from_db()
    assert row.status == "unknown"  # marketing by default: what may have been delivered is never sent again
