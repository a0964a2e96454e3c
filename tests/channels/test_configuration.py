import io

import pytest
from django.core.management import call_command
from pydantic import ValidationError

from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from tests.conftest import make_email_configuration


def test_secrets_are_encrypted_at_rest_and_read_back(db):
    configuration = make_email_configuration(port=25, username="relay-user", password="s3cret-relay-password")

    stored = ChannelConfiguration.objects.values("settings", "encrypted_secrets").get(pk=configuration.pk)
    assert "s3cret-relay-password" not in str(stored)
    assert "password" not in stored["settings"]
    assert configuration.get_settings().password.get_secret_value() == "s3cret-relay-password"


def test_invalid_settings_name_the_field_and_never_echo_the_secret():
    with pytest.raises(ValidationError) as raised:
        EmailSettings(from_email="not-an-address", host="smtp.example.com", port=70000, password="hunter2-secret")

    text = str(raised.value)
    assert "from_email" in text and "port" in text
    assert "hunter2-secret" not in text
    assert "hunter2-secret" not in repr(EmailSettings(from_email="a@b.co", host="h", password="hunter2-secret"))


def test_rotating_the_key_keeps_secrets_readable(db, settings):
    from cryptography.fernet import Fernet

    configuration = make_email_configuration(port=25, password="old-key-secret")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    call_command("rotate_field_key", stdout=io.StringIO())

    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS[:1]  # the old key is gone
    configuration.refresh_from_db()
    assert configuration.get_settings().password.get_secret_value() == "old-key-secret"
