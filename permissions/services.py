"""Writes of the permissions app: API keys, invitations, role assignment, and the audit log."""

import hmac
import logging
import secrets
from datetime import timedelta

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from permissions.models import ApiKey, AuditEvent, Invitation, sha256_hex

INVITATION_LIFETIME = timedelta(days=3)
_SECRET_NAMES = ("password", "secret", "token", "key_hash", "api_key", "credentials")
_KEY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alike characters
# Writes of last_used_at are coalesced: a busy key must not turn every API call into a row update.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _scrub(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {
        name: "[redacted]" if any(part in name.lower() for part in _SECRET_NAMES) else value
        for name, value in values.items()
    }


def audit_record(
    *, actor, action: str, obj=None, before: dict | None = None, after: dict | None = None, ip_address=None
) -> AuditEvent:
    """Record one audited action. Values under secret-looking names are replaced before storing."""
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if authenticated else None,
        actor_label=actor.get_username() if authenticated else "anonymous",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=_scrub(before),
        after=_scrub(after),
        ip_address=ip_address,
    )


def _random(length: int) -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(length))


@transaction.atomic
def api_key_create(
    *, actor, name: str, all_triggered_campaigns: bool = False, campaign_ids=(), profiles: bool = False
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is shown once and never stored."""
    prefix = _random(8)
    secret = f"cmk_{prefix}_{_random(40)}"
    key = ApiKey.objects.create(
        name=name,
        prefix=prefix,
        key_hash=sha256_hex(secret),
        all_triggered_campaigns=all_triggered_campaigns,
        campaign_ids=sorted(set(campaign_ids)),
        profiles=profiles,
        created_by=actor,
    )
    audit_record(actor=actor, action="api_key.created", obj=key, after=_key_scope(key))
    return key, secret


@transaction.atomic
def api_key_revoke(*, actor, key: ApiKey) -> ApiKey:
    """Revoke at once: the next request with this key is refused."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.revoked_by = actor
        key.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(actor=actor, action="api_key.revoked", obj=key, before=_key_scope(key))
    return key


def _key_scope(key: ApiKey) -> dict:
    return {
        "name": key.name,
        "prefix": key.prefix,
        "all_triggered_campaigns": key.all_triggered_campaigns,
        "campaign_ids": key.campaign_ids,
        "profiles": key.profiles,
    }


def api_key_authenticate(secret: str) -> ApiKey | None:
    """The active key whose secret this is, or None. Records the last use."""
    parts = secret.split("_")
    if len(parts) != 3 or parts[0] != "cmk":
        return None
    key = ApiKey.objects.filter(prefix=parts[1], revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.key_hash, sha256_hex(secret)):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


@transaction.atomic
def invitation_create(*, actor, user) -> str:
    """Invite `user` to set a password; returns the raw token for the link (only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    Invitation.objects.filter(user=user, used_at__isnull=True).update(expires_at=timezone.now())
    invitation = Invitation.objects.create(
        user=user, token_hash=sha256_hex(token), created_by=actor, expires_at=timezone.now() + INVITATION_LIFETIME
    )
    audit_record(actor=actor, action="user.invited", obj=user, after={"expires_at": invitation.expires_at.isoformat()})
    return token


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation this token opens, if it is unused and unexpired."""
    return (
        Invitation.objects.select_related("user")
        .filter(token_hash=sha256_hex(token), used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
def invitation_accept(*, token: str, password: str):
    """Set the invited user's password and spend the invitation. Returns the user, or None if the link is
    expired or used. The caller validates the password first."""
    invitation = invitation_for_token(token)
    if invitation is None:
        return None
    # Spend it with a conditional update, so two submissions of the same link cannot both succeed.
    if not Invitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(used_at=timezone.now()):
        return None
    user = invitation.user
    user.set_password(password)
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    audit_record(actor=user, action="user.invitation_accepted", obj=user)
    return user


@transaction.atomic
def user_set_roles(*, actor, user, role_names: list[str]) -> None:
    """Give `user` exactly these groups (built-in or custom roles)."""
    before = sorted(user.groups.values_list("name", flat=True))
    groups = list(Group.objects.filter(name__in=role_names))
    missing = set(role_names) - {group.name for group in groups}
    if missing:
        raise ValueError(f"Unknown roles: {', '.join(sorted(missing))}")
    user.groups.set(groups)
    after = sorted(group.name for group in groups)
    if before != after:
        audit_record(
            actor=actor, action="user.roles_changed", obj=user, before={"roles": before}, after={"roles": after}
        )


@transaction.atomic
def user_deactivate(*, actor, user) -> None:
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        audit_record(actor=actor, action="user.deactivated", obj=user, before={"is_active": True})


def notification_send(*, users, title: str, body: str = "", url: str = "", email: bool = True) -> int:
    """Notify each user in the app and, when `email` is set and they have an address, by email.

    Email is best-effort: a mail failure is logged and never undoes the action that caused it.
    """
    from django.core.mail import send_mail

    from permissions.models import Notification

    users = [user for user in users if user.is_active]
    Notification.objects.bulk_create(Notification(user=user, title=title, body=body, url=url) for user in users)
    if email:
        from django.conf import settings

        link = f"{settings.SITE_URL}{url}" if url else settings.SITE_URL
        for user in users:
            if user.email:
                try:
                    send_mail(title, f"{body}\n\n{link}".strip(), None, [user.email])
                except Exception:  # noqa: BLE001 - see docstring
                    logging.getLogger(__name__).exception("notification email to user %s failed", user.pk)
    return len(users)
