"""Settings of every channel: validated, secrets encrypted at rest and never echoed, an adapter for each."""

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.utils.module_loading import import_string
from pydantic import ValidationError

from audiences.models import Channel
from channels.adapters.registry import ADAPTERS
from channels.models import ChannelConfiguration
from channels.schemas import SECRET_FIELDS, SETTINGS_MODELS, EmailSettings, PushSettings, SmsSettings, WebhookSettings
from tests.channels.conftest import make_configuration


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def rsa_pem():
    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def valid_settings(channel: str, rsa_pem: str) -> dict:
    return {
        "email": {
            "from_email": "news@example.com",
            "host": "smtp.example.com",
            "password": "relay-secret-1",
            "dkim_domain": "example.com",
            "dkim_selector": "s1",
            "dkim_private_key": rsa_pem,
            "feedback_secret": "email-feedback-secret-1",
        },
        "sms": {
            "account_sid": "AC1",
            "auth_token": "sms-secret-token-1",
            "from_number": "+15559990000",
            "feedback_secret": "sms-feedback-secret-1",
        },
        "push": {
            "project_id": "demo-shop",
            "service_account_json": json.dumps({"client_email": "a@b.iam", "private_key": rsa_pem}),
            "feedback_secret": "push-feedback-secret-1",
        },
        "webhook": {
            "url": "https://hooks.example.com/in",
            "signing_secret": "webhook-signing-secret-1",
            "feedback_secret": "webhook-feedback-secret-1",
        },
        "in_app": {},
    }[channel]


def test_every_channel_has_settings_secrets_and_an_adapter():
    channels = set(Channel.values)
    assert set(SETTINGS_MODELS) == set(SECRET_FIELDS) == set(ADAPTERS) == channels
    for channel in channels:
        assert import_string(ADAPTERS[channel]).channel == channel


@pytest.mark.parametrize("channel", Channel.values)
def test_secrets_are_encrypted_at_rest_and_read_back(db, channel, rsa_pem):
    values = valid_settings(channel, rsa_pem)
    configuration = make_configuration(channel, **values)

    stored = ChannelConfiguration.objects.values("settings", "encrypted_secrets").get(pk=configuration.pk)
    read_back = ChannelConfiguration.objects.get(pk=configuration.pk).get_settings()
    for name in SECRET_FIELDS[channel]:
        assert name not in stored["settings"]
        assert values[name] not in json.dumps(stored)
        assert getattr(read_back, name).get_secret_value() == values[name].strip()


def test_defaults_of_the_new_email_settings():
    settings = EmailSettings(from_email="news@example.com", host="smtp.example.com")

    assert settings.list_unsubscribe is True
    assert (settings.track_opens, settings.track_clicks) == (False, False)
    assert settings.bounce_domain == "" and not settings.dkim_enabled
    assert settings.retry_window_seconds == 24 * 3600


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (EmailSettings, {"bounce_domain": "not a domain"}, "bounce_domain"),
        (EmailSettings, {"dkim_domain": "example.com", "dkim_selector": "s1"}, "DKIM needs all"),
        (
            EmailSettings,
            {"dkim_domain": "example.com", "dkim_selector": "s1", "dkim_private_key": "SECRET-PEM"},
            "dkim_private_key",
        ),
        (SmsSettings, {"from_number": "0612345678"}, "from_number"),
        (SmsSettings, {"base_url": "ftp://api.example.com"}, "base_url"),
        (WebhookSettings, {"signing_secret": "short-SECRET"}, "signing_secret"),
        (
            PushSettings,
            {"service_account_json": '{"client_email": "x", "private_key": "SECRET-PEM"}'},
            "service_account_json",
        ),
        (PushSettings, {"service_account_json": "SECRET not json"}, "service_account_json"),
    ],
)
def test_invalid_settings_name_the_problem_and_never_echo_a_secret(model, values, field, rsa_pem):
    channel = {EmailSettings: "email", SmsSettings: "sms", WebhookSettings: "webhook", PushSettings: "push"}[model]
    base = valid_settings(channel, rsa_pem)
    if "dkim_domain" in values or "dkim_private_key" in values:
        base = {k: v for k, v in base.items() if not k.startswith("dkim")}

    with pytest.raises(ValidationError) as raised:
        model(**{**base, **values})

    assert field in str(raised.value)
    assert "SECRET" not in str(raised.value) and "SECRET" not in str(raised.value.errors(include_input=False))


def test_keys_of_the_wrong_kind_are_refused(rsa_pem):
    ec_pem = pem(ec.generate_private_key(ec.SECP256R1()))

    with pytest.raises(ValidationError, match="RSA"):
        EmailSettings(
            from_email="a@example.com", host="h", dkim_domain="example.com", dkim_selector="s", dkim_private_key=ec_pem
        )
    with pytest.raises(ValidationError, match="RSA"):
        PushSettings(project_id="p", service_account_json=json.dumps({"client_email": "a", "private_key": ec_pem}))


@pytest.mark.parametrize("channel", ["email", "sms", "push", "webhook", "in_app"])
@pytest.mark.parametrize("rate", [float("inf"), float("nan"), 1e999, 10**7])
def test_a_rate_that_no_json_or_bucket_can_hold_is_refused(channel, rate, rsa_pem):
    model = SETTINGS_MODELS[channel]
    values = valid_settings(channel, rsa_pem)
    model.model_validate({**values, "rate_per_second": 50})  # a sane rate is fine

    with pytest.raises(ValidationError, match="rate_per_second"):
        model.model_validate({**values, "rate_per_second": rate})
