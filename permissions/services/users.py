"""User administration: invite a user, give them roles, deactivate them. Never leaves the installation without an
active campaign administrator."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from permissions.models import Invitation
from permissions.roles import Role, group_permission_names
from permissions.services.audit import audit_record
from permissions.services.invitations import invitation_create, invitation_email_send
from permissions.services.notifications import notification_send


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


def _lock_administrators() -> None:
    """Serialize the changes that could leave no active administrator (two administrators demoting each other
    at once). SQLite's IMMEDIATE transactions serialize writers already; PostgreSQL waits on this row lock."""
    list(Group.objects.select_for_update().filter(name=Role.ADMINISTRATOR).values_list("pk", flat=True))


def _is_last_active_administrator(user) -> bool:
    administrators = get_user_model().objects.filter(groups__name=Role.ADMINISTRATOR, is_active=True)
    return administrators.filter(pk=user.pk).exists() and not administrators.exclude(pk=user.pk).exists()


def _last_administrator_message(*, actor, user) -> str:
    who = "You are" if actor.pk == user.pk else f"{user.get_username()} is"
    return f"{who} the last active campaign administrator: make someone else an administrator first."


@transaction.atomic
def user_change_roles(*, actor, user, role_names: list[str]) -> None:
    """Give `user` exactly these roles, as an administrator acting in the browser.

    Refuses to grant or remove a role carrying permissions the actor lacks, and to take the administrator role
    from the last active administrator. Audited with before and after (by `user_set_roles`). An active user given
    a role by someone else is told in the app and by email, sent once the change commits (an invited user's
    invitation tells them instead).
    """
    _lock_administrators()
    current = set(user.groups.values_list("name", flat=True))
    wanted = set(role_names)
    for group in Group.objects.filter(name__in=current ^ wanted):
        if not actor.has_perms(group_permission_names(group)):
            raise ValidationError(f"You cannot grant or remove “{group.name}”: it carries permissions you lack.")
    if Role.ADMINISTRATOR in current - wanted and _is_last_active_administrator(user):
        raise ValidationError(_last_administrator_message(actor=actor, user=user))
    try:
        user_set_roles(actor=actor, user=user, role_names=sorted(wanted))
    except ValueError as error:
        raise ValidationError(str(error)) from None
    if (granted := sorted(wanted - current)) and user.pk != actor.pk:
        _notify_granted(actor=actor, user=user, role_names=granted)


def _notify_granted(*, actor, user, role_names: list[str]) -> None:
    names = " and ".join(f"“{name}”" for name in role_names)
    noun = "role" if len(role_names) == 1 else "roles"
    title = f"You were given the {noun} {names}"
    notification_send(
        users=[user],
        title=title if len(title) <= 200 else f"{title[:199]}…",  # Notification.title's length
        body=f"{actor.get_username()} gave you the {noun} {names} in the campaign manager. Sign in at:",
        url="/",
    )


@transaction.atomic
def account_deactivate(*, actor, user) -> None:
    """Deactivate `user` and withdraw their pending invitations, so an old link cannot reactivate them.

    Never the actor's own account, never the last active administrator.
    """
    if user.pk == actor.pk:
        raise ValidationError("You cannot deactivate your own account.")
    _lock_administrators()
    if _is_last_active_administrator(user):
        raise ValidationError(_last_administrator_message(actor=actor, user=user))
    now = timezone.now()
    withdrawn = Invitation.objects.filter(user=user, used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
    if withdrawn and not user.is_active:
        audit_record(actor=actor, action="user.invitation_withdrawn", obj=user)
    user_deactivate(actor=actor, user=user)


def user_invite(*, actor, email: str, full_name: str = "", username: str = "", role_names=()) -> tuple:
    """Create an inactive user without a usable password, give them roles, and email them an invitation.

    Returns (user, sent): the user and invitation exist even when the email could not be sent, so it can be
    sent again from the user's page.
    """
    with transaction.atomic():
        first_name, _, last_name = full_name.strip().partition(" ")
        user = get_user_model()(
            username=username or email,
            email=email,
            first_name=first_name[:150],
            last_name=last_name.strip()[:150],
            is_active=False,
        )
        user.set_unusable_password()
        user.save()
        audit_record(
            actor=actor,
            action="user.created",
            obj=user,
            after={"username": user.username, "email": email, "name": user.get_full_name()},
        )
        if role_names:
            user_change_roles(actor=actor, user=user, role_names=list(role_names))
        token = invitation_create(actor=actor, user=user)
    return user, invitation_email_send(actor=actor, user=user, token=token)
