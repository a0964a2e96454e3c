"""The providers' public endpoints (feedback, DSN, inbound SMS) under hostile requests: every one answers a
clear 4xx, none reaches a server error, and no error page can show a secret."""

import time

import pytest
from django.test import Client

from audiences.models import Consent, Profile
from channels import feedback
from channels.feedback import feedback_signature
from channels.inbound_sms import twilio_signature
from channels.models import ChannelConfiguration
from channels.schemas import SETTINGS_MODELS
from tests.conftest import make_email_configuration

SECRET = "feedback-secret-never-to-be-shown"
AUTH_TOKEN = "twilio-auth-token-never-to-be-shown"
# Built, not written out: the debug page quotes the test's own source lines around the failing call.
DB_PASSWORD = "-".join(["db", "password", "never", "shown"])
REDIS_PASSWORD = "-".join(["redis", "password", "never", "shown"])


@pytest.fixture
def client():
    # Errors come back as responses (as a browser or a provider would see them), not raised into the test.
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


@pytest.fixture
def email_configuration(db):
    return make_email_configuration(port=2525, feedback_secret=SECRET)


@pytest.fixture
def sms_configuration(db, settings):
    settings.SITE_URL = "https://campaigns.example.org"
    configuration = ChannelConfiguration(name="Texts", channel="sms")
    configuration.set_settings(
        SETTINGS_MODELS["sms"](account_sid="AC1", auth_token=AUTH_TOKEN, from_number="+15559990000")
    )
    configuration.save()
    return configuration


def signed(body: bytes, *, timestamp: int | None = None) -> dict:
    return {"X-Campaign-Signature": feedback_signature(SECRET, body, timestamp or int(time.time()))}


# Signature headers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["feedback", "feedback/dsn"])
@pytest.mark.parametrize(
    "header",
    [
        "t=" + "9" * 400 + ",v1=00",  # overflowed the clock arithmetic before the fix
        "t=-5,v1=" + "0" * 64,
        "t=1e9,v1=" + "0" * 64,
        "t=１２３,v1=" + "0" * 64,  # non-ASCII digits int() would accept
        "t=,v1=",
        "v1=" + "0" * 64,
        "t=1700000000",
        "t=1700000000,v1=" + "z" * 64,
        "t=1700000000,v1=" + "0" * 64 + ",t=1",
        "=" * 5000,
        ",,,,",
    ],
)
def test_a_malformed_signature_header_is_refused_with_403(client, email_configuration, endpoint, header):
    response = client.post(
        f"/channels/{email_configuration.pk}/{endpoint}/",
        b"[]",
        content_type="application/json",
        headers={"X-Campaign-Signature": header},
    )

    assert response.status_code == 403
    assert SECRET not in response.content.decode()


def test_a_well_formed_signature_still_passes(client, email_configuration):
    response = client.post(
        f"/channels/{email_configuration.pk}/feedback/", b"[]", content_type="application/json", headers=signed(b"[]")
    )

    assert response.status_code == 200


def test_the_debug_error_page_never_shows_the_feedback_secret(client, email_configuration, settings, monkeypatch):
    """Whatever fails while a secret is in hand, Django's error page (DEBUG) and error reports show it masked."""
    settings.DEBUG = True

    def clock_fails():
        raise RuntimeError("the clock failed")

    monkeypatch.setattr(feedback.time, "time", clock_fails)
    body = b"[]"
    header = "t=1700000000,v1=" + "0" * 64

    response = client.post(
        f"/channels/{email_configuration.pk}/feedback/",
        body,
        content_type="application/json",
        headers={"X-Campaign-Signature": header},
    )

    page = response.content.decode()
    assert response.status_code == 500
    assert "the clock failed" in page  # it is the debug page, with the frames' variables
    assert "signature_valid" in page
    assert SECRET not in page


def test_the_debug_error_page_masks_passwords_in_url_settings(client, email_configuration, settings, monkeypatch):
    settings.DEBUG = True
    settings.DATABASE_URL = f"postgres://app:{DB_PASSWORD}@db.internal:5432/campaigns"
    settings.RQ_QUEUES = {"campaigns": {"URL": f"redis://:{REDIS_PASSWORD}@cache.internal:6379/0"}}

    def clock_fails():
        raise RuntimeError("the clock failed")

    monkeypatch.setattr(feedback.time, "time", clock_fails)
    response = client.post(
        f"/channels/{email_configuration.pk}/feedback/",
        b"[]",
        content_type="application/json",
        headers={"X-Campaign-Signature": "t=1700000000,v1=" + "0" * 64},
    )

    page = response.content.decode()
    assert response.status_code == 500 and "DATABASE_URL" in page
    assert DB_PASSWORD not in page and REDIS_PASSWORD not in page
    assert "db.internal" in page  # the rest of the URL still helps whoever debugs


# Bodies that exhaust a parser ---------------------------------------------------------------------------------


def test_a_deeply_nested_signed_feedback_body_is_400(client, email_configuration):
    body = b"[" * 50_000 + b"]" * 50_000

    response = client.post(
        f"/channels/{email_configuration.pk}/feedback/", body, content_type="application/json", headers=signed(body)
    )

    assert response.status_code == 400
    assert "nests deeper than" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[{"type": "bounced", "provider_message_id": "abc\\ud800"}]', "[0].provider_message_id: is not valid Unicode"),
        ('[{"type": "bounced", "delivery_id": 1, "detail": "a\\u0000b"}]', "[0].detail: contains a NUL character"),
        ('[{"type": "bounced", "delivery_id": 1%s}]' % ("0" * 400), "[0].delivery_id: is a whole number too large"),
        ('[{"type": "bounced", "delivery_id": 1e999}]', "[0].delivery_id: is a number out of range"),
        ('[{"type": "bounced", "delivery_id": NaN}]', "NaN is not a JSON number"),
        ('[{"type": "bounced", "\\udfff": 1}]', "[0] key '\ufffd': is not valid Unicode"),
    ],
)
def test_signed_feedback_with_unstorable_values_is_400_naming_the_field(client, email_configuration, body, problem):
    body = body.encode()

    response = client.post(
        f"/channels/{email_configuration.pk}/feedback/", body, content_type="application/json", headers=signed(body)
    )

    assert response.status_code == 400
    assert problem in response.json()["error"]


def nested_multipart(levels: int) -> bytes:
    head = b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b0\r\n\r\n"
    parts = [head]
    for level in range(1, levels + 1):
        parts.append(f"--b{level - 1}\r\nContent-Type: multipart/mixed; boundary=b{level}\r\n\r\n".encode())
    return b"".join(parts) + b"text\r\n"


def test_a_dsn_with_thousands_of_nested_multipart_levels_is_400(client, email_configuration):
    body = nested_multipart(3000)

    response = client.post(
        f"/channels/{email_configuration.pk}/feedback/dsn/", body, content_type="message/rfc822", headers=signed(body)
    )

    assert response.status_code == 400
    assert "nested" in response.json()["error"]


def test_a_dsn_of_ordinary_depth_still_parses(client, email_configuration):
    body = nested_multipart(3)

    response = client.post(
        f"/channels/{email_configuration.pk}/feedback/dsn/", body, content_type="message/rfc822", headers=signed(body)
    )

    # Well formed as MIME but naming no message: refused for that reason, not for its depth.
    assert response.status_code == 400
    assert "names no message" in response.json()["error"] or "delivery-status part" in response.json()["error"]


# Inbound SMS ----------------------------------------------------------------------------------------------------


def sms_post(client, configuration, params: dict, **kwargs):
    path = f"/channels/{configuration.pk}/sms/inbound/"
    signature = twilio_signature(
        AUTH_TOKEN, f"https://campaigns.example.org{path}", {k: [v] for k, v in params.items()}
    )
    return client.post(path, params, headers={"X-Twilio-Signature": signature}, **kwargs)


def test_a_signed_stop_without_message_sid_is_refused_and_changes_nothing(client, sms_configuration):
    profile = Profile.objects.create(phone="+447700900123")
    params = {"From": "+447700900123", "To": "+15559990000", "Body": "STOP", "AccountSid": "AC1"}

    responses = [sms_post(client, sms_configuration, params) for _ in range(2)]

    assert [r.status_code for r in responses] == [400, 400]
    assert "MessageSid" in responses[0].content.decode()
    assert not profile.consents.filter(state=Consent.State.OPTED_OUT).exists()


@pytest.mark.parametrize("debug", [False, True])
def test_an_inbound_sms_in_an_undecodable_charset_is_400(client, sms_configuration, settings, debug):
    settings.DEBUG = debug
    path = f"/channels/{sms_configuration.pk}/sms/inbound/"

    response = client.generic(
        "POST",
        path,
        "From=%2B447700900123&Body=STOP&MessageSid=SM1".encode("utf-16"),
        content_type="application/x-www-form-urlencoded; charset=utf-16",
        headers={"X-Twilio-Signature": "x"},
    )

    assert response.status_code in (400, 403)
    assert AUTH_TOKEN not in response.content.decode(errors="replace")


# (A NUL in a header never arrives: gunicorn refuses control characters in header values before Django.)
@pytest.mark.parametrize("charset", ["utf-16", "no-such-charset", "iso-2022-jp", "utf-8; charset=latin-1"])
def test_an_inbound_sms_in_any_charset_never_reaches_a_server_error(client, sms_configuration, settings, charset):
    settings.DEBUG = True
    path = f"/channels/{sms_configuration.pk}/sms/inbound/"

    response = client.generic(
        "POST",
        path,
        b"From=%2B447700900123&Body=STOP",
        content_type=f"application/x-www-form-urlencoded; charset={charset}",
        headers={"X-Twilio-Signature": "x"},
    )

    assert 400 <= response.status_code < 500


def test_a_signed_text_with_a_nul_in_its_sender_is_400_and_its_retry_still_acts(client, sms_configuration):
    profile = Profile.objects.create(phone="+447700900123")
    bad = {"From": "+44\x00", "To": "+15559990000", "Body": "STOP", "MessageSid": "SM900", "AccountSid": "AC1"}
    good = {**bad, "From": "+447700900123"}

    refused = sms_post(client, sms_configuration, bad)
    retried = sms_post(client, sms_configuration, good)  # the provider retries with the same MessageSid

    assert refused.status_code == 400 and "From contains a NUL character" in refused.content.decode()
    assert retried.status_code == 200
    assert profile.consents.get(channel="sms").state == Consent.State.OPTED_OUT
