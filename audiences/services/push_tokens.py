"""Writes to push tokens: a device's token attached to a profile, and retired when the provider reports it
invalid."""

import hashlib

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audiences.models import Profile, PushToken


def push_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def push_token_register(*, profile: Profile, token: str, platform: str, app: str) -> PushToken:
    """Attach a device's push token to `profile`, active. A token already known moves to this profile (the
    device changed hands or its app was reinstalled) and is no longer retired. Idempotent."""
    token = token.strip()
    if not token or len(token) > 4096:
        raise ValidationError({"token": "A push token is 1 to 4096 characters."})
    if platform not in PushToken.Platform.values:
        raise ValidationError({"platform": f"Unknown platform {platform!r}: use ios, android or web."})
    if not app.strip():
        raise ValidationError({"app": "Name the app the token belongs to."})
    push_token, _ = PushToken.objects.update_or_create(
        token_hash=push_token_hash(token),
        defaults={"profile": profile, "token": token, "platform": platform, "app": app.strip(), "retired_at": None},
    )
    return push_token


def push_token_retire(*, token: str) -> bool:
    """Retire a token the provider reported invalid; it is kept, never used again. False if unknown or
    already retired."""
    retired = PushToken.objects.filter(token_hash=push_token_hash(token.strip()), retired_at__isnull=True)
    return bool(retired.update(retired_at=timezone.now()))
