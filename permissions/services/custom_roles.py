"""Custom roles: create, change and delete the roles an administrator composes. The built-in roles are code
(permissions.roles, kept in sync after every migrate): every function here refuses to change them."""

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction

from permissions.roles import Role, composable_permissions, group_permission_names, is_builtin_role
from permissions.services.audit import audit_record


def _check_role_composition(*, actor, permission_names) -> list:
    """The Permission rows for `permission_names`, refusing any outside the composable set or not held by the
    actor (nobody composes a role stronger than their own)."""
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
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the role a name."})
    if name.lower() in {builtin.lower() for builtin in Role.values}:
        raise ValidationError({"name": "That is the name of a built-in role."})
    if Group.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        raise ValidationError({"name": "A role with this name exists already."})
    return name


def _check_custom(group) -> None:
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
    _check_custom(group)
    before = {
        "name": group.name,
        "permissions": group_permission_names(group),
        "users": sorted(group.user_set.values_list("username", flat=True)),
    }
    audit_record(actor=actor, action="role.deleted", obj=group, before=before)
    group.delete()
