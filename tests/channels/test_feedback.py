"""Provider feedback: signed webhook events, DSNs and complaint reports, parsed by channels and applied to the
ledger by campaigns; and the inbound SMS webhook's STOP / START / HELP."""

import itertools
import json
import mailbox
import time

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from audiences.models import Audience, Consent, ConsentEvent, Identity, Profile
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery
from campaigns.services.feedback import feedback_apply
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.feedback import (
    EventType,
    FeedbackError,
    FeedbackEvent,
    feedback_signature,
    parse_report,
    parse_webhook_events,
    signature_valid,
)
from channels.inbound_sms import twilio_signature
from channels.models import ChannelConfiguration, Suppression
from channels.schemas import SETTINGS_MODELS
from tests.conftest import make_email_configuration

SECRET = "feedback-secret-of-the-relay"


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)  # providers post without cookies or CSRF tokens


@pytest.fixture
def sent(personas, smtp_server):
    """Three messages sent through a real relay on loopback, in the ledger as `sent` with their Message-IDs."""
    Profile.objects.bulk_create(Profile(email=f"person{i}@example.com") for i in range(3))
    configuration = make_email_configuration(
        port=smtp_server.port, bounce_domain="bounces.example.com", feedback_secret=SECRET
    )
    campaign = campaign_create(
        actor=personas["april"],
        name="Sale",
        channel_configuration=configuration,
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("Sale", "<p>Sale</p>", "Sale"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)
    deliveries = list(Delivery.objects.filter(run_id=run_id).order_by("id"))
    assert [d.status for d in deliveries] == ["sent"] * 3
    return deliveries


def signed_post(client, url: str, body: bytes, *, secret: str = SECRET, timestamp: int | None = None, **kwargs):
    header = feedback_signature(secret, body, timestamp or int(time.time()))
    return client.post(url, body, content_type="application/json", headers={"X-Campaign-Signature": header}, **kwargs)


def post_events(client, configuration_id: int, events: list[dict], **kwargs):
    return signed_post(client, f"/channels/{configuration_id}/feedback/", json.dumps(events).encode(), **kwargs)


def status_of(delivery) -> str:
    return Delivery.objects.values_list("status", flat=True).get(pk=delivery.pk)


# Signatures ------------------------------------------------------------------------------------------------


def test_signature_checks_secret_body_and_freshness():
    now = time.time()
    header = feedback_signature(SECRET, b"[]", int(now))

    assert signature_valid(SECRET, b"[]", header, now=now)
    assert not signature_valid(SECRET, b"[ ]", header, now=now)
    assert not signature_valid("another secret", b"[]", header, now=now)
    assert not signature_valid(SECRET, b"[]", header, now=now + 301)  # a captured post replayed later
    assert not signature_valid("", b"[]", feedback_signature("", b"[]", int(now)), now=now)
    assert not signature_valid(SECRET, b"[]", "t=abc,v1=00", now=now)
    assert not signature_valid(SECRET, b"[]", "", now=now)


@pytest.mark.parametrize(
    "sign",
    [
        lambda body: {},
        lambda body: {"X-Campaign-Signature": feedback_signature("wrong secret", body, int(time.time()))},
        lambda body: {"X-Campaign-Signature": feedback_signature(SECRET, body, int(time.time()) - 3600)},
        lambda body: {"X-Campaign-Signature": f"t={int(time.time())},v1=é"},  # not ASCII: 403, not a crash
    ],
)
def test_unsigned_or_badly_signed_feedback_is_refused_and_applies_nothing(client, sent, sign):
    body = json.dumps([{"type": "delivered", "delivery_id": sent[0].pk}]).encode()
    configuration_id = sent[0].channel_configuration_id

    response = client.post(
        f"/channels/{configuration_id}/feedback/", body, content_type="application/json", headers=sign(body)
    )
    report = client.post(f"/channels/{configuration_id}/feedback/dsn/", b"x", content_type="message/rfc822")

    assert response.status_code == report.status_code == 403
    assert status_of(sent[0]) == "sent"


def test_a_configuration_without_feedback_secret_refuses_every_post(client, db):
    configuration = make_email_configuration(port=25)

    response = post_events(client, configuration.pk, [], secret="")

    assert response.status_code == 403


# Webhook events applied to the ledger -----------------------------------------------------------------------


def test_events_move_deliveries_forward_and_replays_change_nothing(client, sent):
    configuration_id = sent[0].channel_configuration_id
    events = [
        {"type": "delivered", "provider_message_id": sent[0].provider_message_id},
        {"type": "opened", "delivery_id": sent[0].pk, "occurred_at": "2026-11-28T10:00:00Z"},
        {"type": "clicked", "delivery_id": sent[0].pk, "detail": "https://shop.example.com/sale"},
        {"type": "delivered", "delivery_id": sent[1].pk},
    ]

    first = post_events(client, configuration_id, events)
    replay = post_events(client, configuration_id, events)
    late = post_events(client, configuration_id, [{"type": "delivered", "delivery_id": sent[0].pk}])

    assert first.status_code == 200
    assert first.json() == {"applied": 4, "unchanged": 0, "unmatched": 0, "ignored": 0}
    assert replay.json() == {"applied": 0, "unchanged": 4, "unmatched": 0, "ignored": 0}
    assert late.json()["unchanged"] == 1  # a late "delivered" never takes a click back
    assert [status_of(d) for d in sent] == ["clicked", "delivered", "sent"]


def test_hard_bounce_and_complaint_end_the_delivery_and_suppress_the_address(client, sent):
    configuration_id = sent[0].channel_configuration_id
    events = [
        {"type": "bounced", "delivery_id": sent[0].pk, "status": "5.1.1", "detail": "550 5.1.1 user unknown"},
        {"type": "bounced", "delivery_id": sent[1].pk, "status": "5.7.1", "detail": "blocked by policy"},
        {"type": "complained", "provider_message_id": sent[2].provider_message_id},
    ]

    response = post_events(client, configuration_id, events)
    post_events(client, configuration_id, events)

    assert response.json()["applied"] == 3
    bounced, blocked, complained = (Delivery.objects.get(pk=d.pk) for d in sent)
    assert (bounced.status, bounced.reason, bounced.detail) == ("bounced", "smtp_5.1.1", "550 5.1.1 user unknown")
    assert (blocked.status, blocked.reason) == ("bounced", "smtp_5.7.1")
    assert (complained.status, complained.reason) == ("complained", "complaint")
    assert sorted(Suppression.objects.values_list("address", "reason")) == [
        ("person0@example.com", "hard_bounce"),
        ("person2@example.com", "complaint"),
    ]  # a policy block says nothing about the recipient


def test_soft_bounce_is_ignored_and_a_bounce_never_follows_an_open(client, sent):
    configuration_id = sent[0].channel_configuration_id
    post_events(client, configuration_id, [{"type": "opened", "delivery_id": sent[1].pk}])

    response = post_events(
        client,
        configuration_id,
        [
            {"type": "bounced", "delivery_id": sent[0].pk, "status": "4.2.2"},
            {"type": "bounced", "delivery_id": sent[1].pk, "status": "5.1.1"},
        ],
    )

    assert response.json() == {"applied": 0, "unchanged": 1, "unmatched": 0, "ignored": 1}
    assert [status_of(d) for d in sent[:2]] == ["sent", "opened"]


def test_an_endpoint_names_only_its_own_configurations_messages(client, sent):
    other = make_email_configuration(port=25, name="Other relay", feedback_secret="other-secret")

    response = post_events(
        client,
        other.pk,
        [
            {"type": "bounced", "delivery_id": sent[0].pk, "status": "5.1.1"},
            {"type": "complained", "provider_message_id": sent[1].provider_message_id},
            {"type": "delivered", "delivery_id": 987654321},
        ],
        secret="other-secret",
    )

    assert response.json()["unmatched"] == 3
    assert [status_of(d) for d in sent] == ["sent"] * 3
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"type": "delivered"}', "JSON list"),
        (b'[{"type": "exploded", "delivery_id": 1}]', "0.type"),
        (b'[{"type": "opened"}]', "delivery_id or provider_message_id"),
        (b'[{"type": "bounced", "delivery_id": 1, "status": "bad"}]', "0.status"),
    ],
)
def test_malformed_events_are_refused_with_what_is_wrong(client, sent, body, message):
    response = signed_post(client, f"/channels/{sent[0].channel_configuration_id}/feedback/", body)

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_parsed_events_are_neutral():
    [event] = parse_webhook_events(
        b'[{"type": "bounced", "provider_message_id": " <1.campaign@x> ", "occurred_at": "2026-11-28T10:00:00+01:00"}]',
        configuration_id=7,
    )

    assert (event.type, event.configuration_id, event.provider_message_id) == ("bounced", 7, "<1.campaign@x>")
    assert event.occurred_at.utcoffset().total_seconds() == 3600
    assert event.bounce.suppress  # a bounce without a status is a hard bounce


def test_applying_events_directly_is_idempotent(sent):
    events = [FeedbackEvent(EventType.COMPLAINED, sent[0].channel_configuration_id, delivery_id=sent[0].pk)]

    assert feedback_apply(events=events)["applied"] == 1
    assert feedback_apply(events=events)["unchanged"] == 1
    assert Suppression.objects.get().reason == "complaint"


# Reports by mail: DSNs and complaints -----------------------------------------------------------------------


def dsn(
    *,
    to: str = "",
    message_id: str = "",
    action: str = "failed",
    status: str = "5.1.1",
    recipient: str = "person0@example.com",
) -> bytes:
    """A delivery status notification as Postfix sends it (RFC 3464)."""
    return f"""Return-Path: <>
Delivered-To: {to or "bounces@example.com"}
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {to or "bounces@example.com"}
Subject: Undelivered Mail Returned to Sender
Date: Sat, 28 Nov 2026 10:00:06 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B0UNDARY"

--B0UNDARY
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B0UNDARY
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 4F1A2B3C
Arrival-Date: Sat, 28 Nov 2026 10:00:00 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mail.example.com
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address
    rejected: User unknown in virtual mailbox table
Last-Attempt-Date: Sat, 28 Nov 2026 10:00:05 +0000

--B0UNDARY
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Shop <news@example.com>
To: {recipient}
Subject: Sale
{"Message-ID: " + message_id if message_id else "X-No-Id: 1"}

--B0UNDARY--
""".replace("\n", "\r\n").encode()


def arf(message_id: str) -> bytes:
    """A complaint from a mailbox provider's feedback loop (RFC 5965)."""
    return f"""From: fbl@mailbox.example.net
To: fbl-reports@example.com
Subject: Complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain

This is an email abuse report.

--ARF
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1

--ARF
Content-Type: message/rfc822

From: Shop <news@example.com>
To: redacted@example.com
Message-ID: {message_id}
Subject: Sale

Sale
--ARF--
""".replace("\n", "\r\n").encode()


def test_dsn_names_the_delivery_by_its_verp_address():
    [event] = parse_report(dsn(to="bounce+12345@bounces.example.com"), configuration_id=3)

    assert (event.type, event.delivery_id, event.status) == (EventType.BOUNCED, 12345, "5.1.1")
    assert event.detail.startswith("smtp; 550 5.1.1 <person0@example.com>: Recipient address rejected")
    assert event.occurred_at.isoformat() == "2026-11-28T10:00:05+00:00"
    assert event.bounce.suppress


def test_dsn_without_verp_names_the_message_by_its_original_message_id():
    [event] = parse_report(dsn(message_id="<77.campaign@example.com>", status="5.7.1"), configuration_id=3)

    assert (event.delivery_id, event.provider_message_id) == (None, "<77.campaign@example.com>")
    assert not event.bounce.suppress


def test_delayed_dsn_gives_no_event_and_a_delivered_one_a_delivery():
    assert parse_report(dsn(to="bounce+1@b.example.com", action="delayed", status="4.4.1")) == []
    [event] = parse_report(dsn(to="bounce+1@b.example.com", action="delivered", status="2.0.0"))
    assert event.type == EventType.DELIVERED


def test_complaint_report_is_a_complaint():
    [event] = parse_report(arf("<5.campaign@example.com>"), configuration_id=3)

    assert (event.type, event.provider_message_id) == (EventType.COMPLAINED, "<5.campaign@example.com>")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"From: someone@example.com\r\nSubject: out of office\r\n\r\nI am away.", "Not a report"),
        (dsn(), "names no message"),
    ],
)
def test_what_is_not_a_usable_report_is_refused(raw, message):
    with pytest.raises(FeedbackError, match=message):
        parse_report(raw, configuration_id=3)


def test_dsn_posted_by_the_relay_bounces_the_delivery(client, sent):
    configuration_id = sent[0].channel_configuration_id
    raw = dsn(to=f"bounce+{sent[0].pk}@bounces.example.com")

    response = signed_post(client, f"/channels/{configuration_id}/feedback/dsn/", raw)
    replay = signed_post(client, f"/channels/{configuration_id}/feedback/dsn/", raw)
    junk = signed_post(client, f"/channels/{configuration_id}/feedback/dsn/", b"Subject: hi\r\n\r\nhello")

    assert response.json()["applied"] == 1 and replay.json()["unchanged"] == 1
    assert junk.status_code == 400 and "Not a report" in junk.json()["error"]
    assert status_of(sent[0]) == "bounced"
    assert Suppression.objects.get().address == sent[0].address


@pytest.mark.parametrize("diagnostic", ["Empfänger unbekannt".encode("latin-1"), b"Benutzer unbekannt", b"a\x00b"])
def test_a_dsn_whose_diagnostic_has_8bit_bytes_or_nul_bounces_the_delivery(client, sent, diagnostic):
    """Non-English relays write their own language in Diagnostic-Code: Python's parser then gives a Header
    object (undecodable bytes as lone surrogates), and the ledger must store it cleaned, not fail."""
    configuration_id = sent[0].channel_configuration_id
    raw = dsn(to=f"bounce+{sent[0].pk}@bounces.example.com").replace(
        b"rejected: User unknown", b"rejected: " + diagnostic
    )

    response = signed_post(client, f"/channels/{configuration_id}/feedback/dsn/", raw)

    assert response.status_code == 200 and response.json()["applied"] == 1
    assert status_of(sent[0]) == "bounced"
    detail = Delivery.objects.get(pk=sent[0].pk).detail
    assert "\x00" not in detail and all(not 0xD800 <= ord(c) <= 0xDFFF for c in detail)


def test_ingest_bounces_reads_an_mbox_and_a_maildir(sent, tmp_path, capsys):
    configuration_id = sent[0].channel_configuration_id
    box = mailbox.mbox(tmp_path / "bounces.mbox")
    box.add(dsn(to=f"bounce+{sent[0].pk}@bounces.example.com"))
    box.add(b"From: friend@example.com\r\nSubject: hello\r\n\r\nnot a bounce")
    box.add(arf(sent[1].provider_message_id))
    box.close()

    call_command("ingest_bounces", "--mbox", str(tmp_path / "bounces.mbox"), "--configuration", str(configuration_id))
    call_command("ingest_bounces", "--mbox", str(tmp_path / "bounces.mbox"), "--configuration", str(configuration_id))

    output = capsys.readouterr()
    assert "reports: 2, not reports: 1, applied: 2" in output.out
    assert "reports: 2, not reports: 1, applied: 0, unchanged: 2" in output.out
    assert [status_of(d) for d in sent] == ["bounced", "complained", "sent"]

    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(dsn(to=f"bounce+{sent[2].pk}@bounces.example.com", status="5.1.2"))
    maildir.close()
    call_command("ingest_bounces", "--maildir", str(tmp_path / "Maildir"), "--delete")  # VERP: no configuration

    assert status_of(sent[2]) == "bounced"
    assert len(mailbox.Maildir(tmp_path / "Maildir", create=False)) == 0
    with pytest.raises(CommandError, match="No such mailbox"):
        call_command("ingest_bounces", "--mbox", str(tmp_path / "missing.mbox"))


# Inbound SMS ------------------------------------------------------------------------------------------------

AUTH_TOKEN = "twilio-auth-token-0123"


@pytest.fixture
def sms_configuration(db, settings):
    settings.SITE_URL = "https://campaigns.example.org"
    configuration = ChannelConfiguration(name="Texts", channel="sms")
    configuration.set_settings(
        SETTINGS_MODELS["sms"](
            account_sid="AC1",
            auth_token=AUTH_TOKEN,
            from_number="+15559990000",
            help_reply="Shop texts: reply STOP to stop. Help: shop.example.com/help <3",
        )
    )
    configuration.save()
    return configuration


_MESSAGE_SIDS = itertools.count(1)


def text(client, configuration, body: str, *, sender: str = "+447700900123", token: str = AUTH_TOKEN, sid: str = ""):
    path = f"/channels/{configuration.pk}/sms/inbound/"
    sid = sid or f"SM{next(_MESSAGE_SIDS)}"
    params = {"From": sender, "To": "+15559990000", "Body": body, "MessageSid": sid, "AccountSid": "AC1"}
    signature = twilio_signature(token, f"https://campaigns.example.org{path}", {k: [v] for k, v in params.items()})
    return client.post(path, params, headers={"X-Twilio-Signature": signature})


def test_stop_and_start_set_sms_consent_of_every_profile_with_the_number(client, sms_configuration):
    by_phone = Profile.objects.create(phone="+447700900123")
    by_identity = Profile.objects.create(email="twin@example.com")
    Identity.objects.create(profile=by_identity, namespace="phone", value="+447700900123")
    stranger = Profile.objects.create(phone="+447700900999")

    stop = text(client, sms_configuration, " Stop. ")
    again = text(client, sms_configuration, "STOP")

    assert stop.status_code == again.status_code == 200
    assert stop["Content-Type"].startswith("text/xml")
    assert stop.content.decode().endswith("<Response></Response>")
    states = dict(Consent.objects.filter(channel="sms").values_list("profile_id", "state"))
    assert states == {by_phone.pk: "opted_out", by_identity.pk: "opted_out"}
    assert ConsentEvent.objects.filter(profile=by_phone).count() == 1  # the repeat changed nothing
    assert ConsentEvent.objects.filter(profile=by_phone).get().source == "sms keyword"

    text(client, sms_configuration, "unstop")

    assert Consent.objects.get(profile=by_phone, channel="sms").state == "opted_in"
    assert not Consent.objects.filter(profile=stranger).exists()


def test_a_replayed_signed_text_changes_nothing(client, sms_configuration):
    person = Profile.objects.create(phone="+447700900123")
    text(client, sms_configuration, "START", sid="SM-start")
    text(client, sms_configuration, "STOP", sid="SM-stop")

    replay = text(client, sms_configuration, "START", sid="SM-start")  # captured and sent again

    assert replay.status_code == 200
    assert Consent.objects.get(profile=person, channel="sms").state == "opted_out"


def test_help_is_answered_with_the_configured_text(client, sms_configuration):
    response = text(client, sms_configuration, "help")

    assert response.content.decode().endswith(
        "<Response><Message>Shop texts: reply STOP to stop. Help: shop.example.com/help &lt;3</Message></Response>"
    )
    assert not ConsentEvent.objects.exists()


def test_other_texts_change_nothing(client, sms_configuration):
    Profile.objects.create(phone="+447700900123")

    response = text(client, sms_configuration, "please stop sending me these")

    assert response.status_code == 200 and b"<Message>" not in response.content
    assert not ConsentEvent.objects.exists()


def test_unsigned_or_forged_texts_are_refused(client, sms_configuration):
    Profile.objects.create(phone="+447700900123")

    forged = text(client, sms_configuration, "STOP", token="guessed-token")
    unsigned = client.post(f"/channels/{sms_configuration.pk}/sms/inbound/", {"From": "+447700900123", "Body": "STOP"})

    assert forged.status_code == unsigned.status_code == 403
    assert not ConsentEvent.objects.exists()


def test_inbound_sms_needs_an_sms_configuration(client, db):
    email = make_email_configuration(port=25)

    assert client.post(f"/channels/{email.pk}/sms/inbound/", {"Body": "STOP"}).status_code == 404
