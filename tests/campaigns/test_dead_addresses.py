"""What a permanent failure does to the address (the suppression list) and the person (their consent): only
for the rows the reporting worker still holds. A person erased while the relay answers for them leaves no
address behind, and the other dead mailboxes of the slice are suppressed all the same; a worker presumed dead
whose report comes in late changes neither suppressions nor consent."""

from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from audiences.models import Consent, Profile
from audiences.services.privacy import profile_erase
from campaigns.engine import claiming, outcomes, recovery, sending
from campaigns.models import Delivery
from channels.adapters.base import Outcome, Reason, SendResult
from channels.models import Suppression
from tests.campaigns.test_execution import make_profiles
from tests.campaigns.test_failures import make_profiles as make_profiles_with_phones
from tests.campaigns.test_failures import sms_configuration
from tests.campaigns.test_handover import in_another_thread
from tests.campaigns.test_outcomes import planned
from tests.channels.http_servers import ProviderServer, Reply
from tests.conftest import make_email_configuration
from tests.smtp_servers import RecordingSMTPServer

TIMEOUT = timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)


def erase_elsewhere(profile: Profile, actor) -> None:
    """The person's erasure, handled by another process (its own database connection) while we wait."""
    in_another_thread(lambda: profile_erase(profile=profile, actor=actor))


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_a_person_erased_while_the_relay_rejects_them_is_not_suppressed_the_other_dead_mailboxes_are(
    redis, marketer, everyone
):
    erased, dead, fine = make_profiles(3)
    relay = RecordingSMTPServer()
    reject = relay.recorder.handle_RCPT

    async def handle_RCPT(server, session, envelope, address, rcpt_options):
        if address == erased.email:
            erase_elsewhere(erased, marketer)  # the erasure lands while the relay is answering for them
            return "550 5.1.1 <person0@example.com>: no such user"
        if address == dead.email:
            return "550 5.1.1 <person1@example.com>: no such user"
        return await reject(server, session, envelope, address, rcpt_options)

    relay.recorder.handle_RCPT = handle_RCPT
    relay.start()
    try:
        run_id = planned(marketer, everyone, make_email_configuration(port=relay.port, connections=1))
        sending.send_run(run_id=run_id)
    finally:
        relay.stop()

    assert list(Suppression.objects.values_list("address", flat=True)) == [dead.email]
    assert not Profile.objects.filter(pk=erased.pk).exists()
    rows = Delivery.objects.filter(run_id=run_id)
    assert (rows.get(profile=dead).status, rows.get(profile=dead).reason) == ("failed", "smtp_5.1.1")
    assert rows.get(profile=fine).status == "sent"
    assert not rows.filter(address=erased.email).exists()  # the erased person's row kept no address


@pytest.mark.django_db(transaction=True)
def test_a_late_report_from_a_worker_presumed_dead_changes_no_suppression_and_no_consent(redis, marketer, everyone):
    number_gone, opted_out = make_profiles_with_phones(2)
    provider = ProviderServer().start()
    try:
        run_id = planned(marketer, everyone, sms_configuration(provider.url), category="transactional")
        redis.flushdb()
        # Worker A hands its slice to the provider, then nothing is heard of it for longer than the claim timeout.
        start = timezone.now()
        token, rows = claiming.claim_slice(run_id=run_id, limit=5, now=start)
        Delivery.objects.filter(claim_token=token).update(status=Delivery.Status.IN_FLIGHT, claimed_at=start)
        assert recovery.release_stale_claims(now=start + TIMEOUT + timedelta(seconds=1)) == 2
        # Worker B sends the transactional messages again: the carrier filters the first, the second is sent.
        provider.script = lambda request: (
            Reply(400, {"code": 30007, "message": "Carrier violation"})
            if request.form["To"] == number_gone.phone
            else Reply(201, {"sid": "SM2"})
        )
        sending.send_run(run_id=run_id)
    finally:
        provider.stop()

    # A's report comes in at last: the number does not exist, the person opted out with the provider.
    by_profile = {row.profile_id: row for row in rows}
    late = [
        SendResult(by_profile[number_gone.pk].pk, Outcome.PERMANENT, reason=Reason.INVALID_ADDRESS),
        SendResult(by_profile[opted_out.pk].pk, Outcome.PERMANENT, reason=Reason.RECIPIENT_OPTED_OUT),
    ]
    assert outcomes.record_outcomes(token=token, results=late, by_id={row.pk: row for row in rows}) == 0

    assert not Suppression.objects.exists()
    assert not Consent.objects.filter(state=Consent.State.OPTED_OUT).exists()
    ledger = {d.profile_id: (d.status, d.reason) for d in Delivery.objects.filter(run_id=run_id)}
    assert ledger == {number_gone.pk: ("failed", "twilio_30007"), opted_out.pk: ("sent", "")}
    assert Counter(request.form["To"] for request in provider.requests) == Counter(
        {number_gone.phone: 1, opted_out.phone: 1}
    )
