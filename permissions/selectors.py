"""Reads of the settings pages: user search with their state, roles with their holders, the audit log."""

from datetime import datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.utils import timezone

from permissions.models import AuditEvent, Invitation
from permissions.roles import Role


def users_search(query: str = ""):
    """Users matching every word of `query` in username, name or email, with their roles prefetched and
    `invited` (an unused, unexpired invitation is waiting) annotated."""
    pending = Invitation.objects.filter(user=OuterRef("pk"), used_at__isnull=True, expires_at__gt=timezone.now())
    users = (
        get_user_model()
        .objects.annotate(invited=Exists(pending))
        .prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("username")
    )
    for word in query.split():
        users = users.filter(
            Q(username__icontains=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
        )
    return users


def user_state(user) -> str:
    """ "active", "invited" (waiting for them to set a password) or "deactivated". Needs `invited` annotated."""
    if user.is_active:
        return "active"
    return "invited" if getattr(user, "invited", False) else "deactivated"


def roles_with_users() -> list[Group]:
    """Every role, built-in ones first in their order, then custom ones by name; holders prefetched as
    `members`, permission rows with their content types."""
    User = get_user_model()
    groups = Group.objects.prefetch_related(
        Prefetch("user_set", queryset=User.objects.order_by("username"), to_attr="members"),
        Prefetch("permissions", queryset=Permission.objects.select_related("content_type")),
    )
    order = {name: index for index, name in enumerate(Role.values)}
    return sorted(groups, key=lambda group: (order.get(group.name, len(order)), group.name.lower()))


def audit_events(*, actor: str = "", action: str = "", object_type: str = "", since=None, until=None):
    """Audit events, newest first, filtered; dates are whole days in the current time zone, both included."""
    events = AuditEvent.objects.all()
    if actor:
        events = events.filter(actor_label__iexact=actor)
    if action:
        events = events.filter(action=action)
    if object_type:
        events = events.filter(object_type=object_type)
    zone = timezone.get_current_timezone()
    if since:
        events = events.filter(created_at__gte=datetime.combine(since, time.min, tzinfo=zone))
    if until:
        events = events.filter(created_at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone))
    return events


def audit_filter_choices() -> tuple[list[str], list[str]]:
    """The actions and object types present in the log, for the filter menus."""
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    types = AuditEvent.objects.exclude(object_type="").order_by("object_type").values_list("object_type", flat=True)
    return list(actions), list(types.distinct())
