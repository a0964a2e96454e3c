"""Writes of the permissions app: API keys, invitations, role assignment, and the audit log."""

import hmac
import logging
import secrets
from datetime import timedelta

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

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
@sensitive_variables("secret")
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


@sensitive_variables("secret")
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
    """Notify each active user in the app and, when `email` is set and they have an address, by email.

    The in-app notifications are written in the caller's transaction. Email leaves the request path: one job
    on the maintenance queue, enqueued once that transaction commits, sends the batch. It is best-effort: a
    failure to enqueue or to send is logged and never undoes the action that caused it.
    """

    from config.queues import MAINTENANCE, enqueue_on_commit
    from permissions.models import Notification

    users = [user for user in users if user.is_active]
    notifications = Notification.objects.bulk_create(
        Notification(user=user, title=title, body=body, url=url) for user in users
    )
    email_ids = [notification.pk for notification in notifications if notification.user.email]
    if email and email_ids:
        # An unreachable Redis is logged, and the caller's response goes out all the same.
        enqueue_on_commit(MAINTENANCE, "permissions.jobs.send_notification_emails", email_ids)
    return len(users)


def notification_email_send(*, notification) -> bool:
    """Email one notification to its user, at most once however often the job runs. Best-effort: a failure
    is logged, never raised, and leaves the notification unsent so that running the job again retries it.
    Returns whether the email was handed to the mailer."""
    from django.conf import settings
    from django.core.mail import send_mail

    from permissions.models import Notification

    user = notification.user
    if not (user.is_active and user.email):
        return False
    # Claim it before sending: a second run of the same job finds it claimed and sends nothing.
    if not Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(emailed_at=timezone.now()):
        return False
    link = f"{settings.SITE_URL}{notification.url}" if notification.url else settings.SITE_URL
    try:
        send_mail(notification.title, f"{notification.body}\n\n{link}".strip(), None, [user.email])
    except Exception:  # noqa: BLE001 - see docstring
        Notification.objects.filter(pk=notification.pk).update(emailed_at=None)
        logging.getLogger(__name__).exception("notification %s: email to user %s failed", notification.pk, user.pk)
        return False
    return True


# Custom roles, user administration, invitation mail, notifications and login failures. Imports are local so
# that this section stands apart from the API key and audit services above.


def _check_role_composition(*, actor, permission_names) -> list:
    """The Permission rows for `permission_names`, refusing any outside the composable set or not held by the
    actor (nobody composes a role stronger than their own)."""
    from django.contrib.auth.models import Permission
    from django.core.exceptions import ValidationError

    from permissions.roles import composable_permissions

    names = set(permission_names)
    unknown = names - set(composable_permissions())
    if unknown:
        raise ValidationError(f"These permissions cannot be given to a role: {', '.join(sorted(unknown))}.")
    if not actor.has_perms(names):
        raise ValidationError("A role can only be composed of permissions you hold yourself.")
    rows = [
        permission
        for permission in Permission.objects.select_related("content_type")
        if f"{permission.content_type.app_label}.{permission.codename}" in names
    ]
    if len(rows) != len(names):
        raise ValidationError("Some of these permissions do not exist yet: run the migrations.")
    return rows


def _check_role_name(name: str, *, exclude_pk=None) -> str:
    from django.core.exceptions import ValidationError

    from permissions.roles import Role

    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the role a name."})
    if name.lower() in {builtin.lower() for builtin in Role.values}:
        raise ValidationError({"name": "That is the name of a built-in role."})
    if Group.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        raise ValidationError({"name": "A role with this name exists already."})
    return name


def _check_custom(group) -> None:
    from django.core.exceptions import ValidationError

    from permissions.roles import is_builtin_role

    if is_builtin_role(group.name):
        raise ValidationError(f"“{group.name}” is a built-in role: it cannot be changed or deleted.")


@transaction.atomic
def role_create(*, actor, name: str, permission_names: list[str]) -> Group:
    """Create a custom role from the administrator's permissions that the actor holds. Audited."""
    name = _check_role_name(name)
    permissions = _check_role_composition(actor=actor, permission_names=permission_names)
    group = Group.objects.create(name=name)
    group.permissions.set(permissions)
    audit_record(
        actor=actor, action="role.created", obj=group, after={"name": name, "permissions": sorted(permission_names)}
    )
    return group


@transaction.atomic
def role_update(*, actor, group: Group, name: str, permission_names: list[str]) -> Group:
    """Rename a custom role and set its permissions; built-in roles are refused. Audited with before and after."""
    from permissions.roles import group_permission_names

    _check_custom(group)
    name = _check_role_name(name, exclude_pk=group.pk)
    permissions = _check_role_composition(actor=actor, permission_names=permission_names)
    before = {"name": group.name, "permissions": group_permission_names(group)}
    group.name = name
    group.save(update_fields=["name"])
    group.permissions.set(permissions)
    after = {"name": name, "permissions": sorted(permission_names)}
    if before != after:
        audit_record(actor=actor, action="role.changed", obj=group, before=before, after=after)
    return group


@transaction.atomic
def role_delete(*, actor, group: Group) -> None:
    """Delete a custom role; its holders lose it. Built-in roles are refused. Audited with who held it."""
    from permissions.roles import group_permission_names

    _check_custom(group)
    before = {
        "name": group.name,
        "permissions": group_permission_names(group),
        "users": sorted(group.user_set.values_list("username", flat=True)),
    }
    audit_record(actor=actor, action="role.deleted", obj=group, before=before)
    group.delete()


def _lock_administrators() -> None:
    """Serialize the changes that could leave no active administrator (two administrators demoting each other
    at once). SQLite's IMMEDIATE transactions serialize writers already; PostgreSQL waits on this row lock."""
    from permissions.roles import Role

    list(Group.objects.select_for_update().filter(name=Role.ADMINISTRATOR).values_list("pk", flat=True))


def _is_last_active_administrator(user) -> bool:
    from django.contrib.auth import get_user_model

    from permissions.roles import Role

    administrators = get_user_model().objects.filter(groups__name=Role.ADMINISTRATOR, is_active=True)
    return administrators.filter(pk=user.pk).exists() and not administrators.exclude(pk=user.pk).exists()


def _last_administrator_message(*, actor, user) -> str:
    who = "You are" if actor.pk == user.pk else f"{user.get_username()} is"
    return f"{who} the last active campaign administrator: make someone else an administrator first."


@transaction.atomic
def user_change_roles(*, actor, user, role_names: list[str]) -> None:
    """Give `user` exactly these roles, as an administrator acting in the browser.

    Refuses to grant or remove a role carrying permissions the actor lacks, and to take the administrator role
    from the last active administrator. Audited with before and after (by `user_set_roles`).
    """
    from django.core.exceptions import ValidationError

    from permissions.roles import Role, group_permission_names

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


@transaction.atomic
def account_deactivate(*, actor, user) -> None:
    """Deactivate `user` and withdraw their pending invitations, so an old link cannot reactivate them.

    Never the actor's own account, never the last active administrator.
    """
    from django.core.exceptions import ValidationError

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
    from django.contrib.auth import get_user_model

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


def invitation_resend(*, actor, user) -> bool:
    """Send `user` a new invitation (the previous link stops working). Returns whether the email went out.

    Only for a user who has not set a password yet or who is deactivated: accepting it reactivates them.
    """
    from django.core.exceptions import ValidationError

    if user.is_active and user.has_usable_password():
        raise ValidationError(f"{user.get_username()} has set a password already and is active.")
    if not user.email:
        raise ValidationError(f"{user.get_username()} has no email address to send an invitation to.")
    token = invitation_create(actor=actor, user=user)
    return invitation_email_send(actor=actor, user=user, token=token)


def invitation_email_send(*, actor, user, token: str) -> bool:
    """Email the invitation link. Best-effort: returns False (and logs, without the link) when mail fails."""
    from django.conf import settings
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse

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


def notifications_mark_read(*, user, notification_ids=None) -> int:
    """Mark the user's unread notifications read: those listed, or all. Another user's ids change nothing."""
    from permissions.models import Notification

    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


# A failure counter starts its window at the first failure; the burst is recorded when it reaches the limit.
_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


_redis_clients: dict = {}


def _login_failure_redis():
    import redis
    from django.conf import settings

    url = settings.REDIS_URL
    if url not in _redis_clients:
        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _redis_clients[url]


def login_failure_record(*, username: str, ip_address: str | None) -> list[AuditEvent]:
    """Count a failed login for its account and its address; record one audit event for each that reaches
    LOGIN_FAILURE_BURST failures within LOGIN_FAILURE_BURST_SECONDS (the burst, not every failure).

    Counters live in Redis, shared by every web process. Without Redis, logins go on and nothing is counted.
    """
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model

    limit, window = settings.LOGIN_FAILURE_BURST, settings.LOGIN_FAILURE_BURST_SECONDS
    scopes = []
    if username:
        scopes.append(("account", f"login-failures:account:{sha256_hex(username.lower())}"))
    if ip_address:
        scopes.append(("address", f"login-failures:address:{ip_address}"))
    try:
        client = _login_failure_redis()
        count = client.register_script(_COUNT_FAILURE)
        reached = [scope for scope, key in scopes if count(keys=[key], args=[window]) == limit]
    except redis.RedisError as error:
        logging.getLogger(__name__).warning("login failures not counted: Redis did not answer (%s)", error)
        return []
    events = []
    for scope in reached:
        user = get_user_model().objects.filter(username=username).first() if scope == "account" else None
        after = {"scope": scope, "failures": limit, "window_seconds": window, "ip_address": ip_address}
        if scope == "account":
            after["username"] = username
        events.append(
            audit_record(actor=None, action="login.failure_burst", obj=user, after=after, ip_address=ip_address)
        )
    return events
