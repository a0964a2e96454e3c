"""Invitations: a single-use, time-limited link by which a new (or deactivated) user sets a password."""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from permissions.models import Invitation, sha256_hex
from permissions.services.audit import audit_record

INVITATION_LIFETIME = timedelta(days=3)


@transaction.atomic
@sensitive_variables("token")
def invitation_create(*, actor, user) -> str:
    """Invite `user` to set a password; returns the raw token for the link (only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    Invitation.objects.filter(user=user, used_at__isnull=True).update(expires_at=timezone.now())
    invitation = Invitation.objects.create(
        user=user, token_hash=sha256_hex(token), created_by=actor, expires_at=timezone.now() + INVITATION_LIFETIME
    )
    audit_record(actor=actor, action="user.invited", obj=user, after={"expires_at": invitation.expires_at.isoformat()})
    return token


@sensitive_variables("token")
def invitation_for_token(token: str) -> Invitation | None:
    """The invitation this token opens, if it is unused and unexpired."""
    return (
        Invitation.objects.select_related("user")
        .filter(token_hash=sha256_hex(token), used_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
@sensitive_variables("token", "password")
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


def invitation_resend(*, actor, user) -> bool:
    """Send `user` a new invitation (the previous link stops working). Returns whether the email went out.

    Only for a user who has not set a password yet or who is deactivated: accepting it reactivates them.
    """
    if user.is_active and user.has_usable_password():
        raise ValidationError(f"{user.get_username()} has set a password already and is active.")
    if not user.email:
        raise ValidationError(f"{user.get_username()} has no email address to send an invitation to.")
    token = invitation_create(actor=actor, user=user)
    return invitation_email_send(actor=actor, user=user, token=token)


def invitation_email_send(*, actor, user, token: str) -> bool:
    """Email the invitation link. Best-effort: returns False (and logs, without the link) when mail fails."""
    context = {
        "user": user,
        "inviter": actor,
        "link": settings.SITE_URL + reverse("permissions:invitation_accept", kwargs={"token": token}),
        "lifetime_days": INVITATION_LIFETIME.days,
        "site_url": settings.SITE_URL,
    }
    try:
        send_mail(
            "You are invited to the campaign manager",
            render_to_string("permissions/email/invitation.txt", context),
            None,
            [user.email],
        )
    except Exception:  # noqa: BLE001 - see docstring
        logging.getLogger(__name__).exception("invitation email to user %s failed", user.pk)
        return False
    return True
