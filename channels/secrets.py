"""Encryption of secrets at rest, with keys of their own (FIELD_ENCRYPTION_KEYS), never SECRET_KEY."""

import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from None


def _current() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


@sensitive_variables("values")
def encrypt_secrets(values: dict[str, str]) -> str:
    return _current().encrypt(json.dumps(values).encode()).decode()


@sensitive_variables()
def decrypt_secrets(token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_current().decrypt(token.encode()))
    except InvalidToken:
        raise ImproperlyConfigured(
            "Stored channel secrets cannot be decrypted with FIELD_ENCRYPTION_KEYS: "
            "was a key removed before `manage.py rotate_field_key` re-encrypted them?"
        ) from None


def rotate_secrets(token: str) -> str:
    """Re-encrypt `token` with the first key."""
    return _current().rotate(token.encode()).decode() if token else token
