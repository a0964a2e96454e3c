"""Writes to identity namespaces: adding a custom namespace, deleting one that no identity uses."""

import re

from django.core.exceptions import ValidationError
from django.db import transaction

from audiences.models import Identity, IdentityNamespace
from permissions.services.audit import audit_record

NAMESPACE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@transaction.atomic
def namespace_create(*, actor, name: str, label: str, kind: str = IdentityNamespace.Kind.TEXT) -> IdentityNamespace:
    """Add a custom namespace. Its name is permanent: identities refer to it by name."""
    name = name.strip()
    if not NAMESPACE_NAME.match(name) or "__" in name:
        raise ValidationError(
            {"name": "Use lower-case letters, digits and single underscores, starting with a letter."}
        )
    if kind not in IdentityNamespace.Kind.values:
        raise ValidationError({"kind": f"Unknown kind {kind!r}."})
    if IdentityNamespace.objects.filter(name=name).exists():
        raise ValidationError({"name": f"There is already a namespace named {name}."})
    namespace = IdentityNamespace.objects.create(name=name, label=label.strip() or name, kind=kind)
    audit_record(actor=actor, action="identity_namespace.created", obj=namespace, after={"name": name, "kind": kind})
    return namespace


@transaction.atomic
def namespace_delete(*, actor, namespace: IdentityNamespace) -> None:
    """Delete a custom namespace that no identity uses. Built-in namespaces are never deleted."""
    namespace = IdentityNamespace.objects.select_for_update().get(pk=namespace.pk)
    if namespace.builtin:
        raise ValidationError(f"{namespace.name} is built in and cannot be deleted.")
    used = Identity.objects.filter(namespace=namespace.name).count()
    if used:
        raise ValidationError(
            f"{used} profile{'s' if used != 1 else ''} {'have' if used != 1 else 'has'} an identity in "
            f"{namespace.name}: it can only be deleted when none does."
        )
    audit_record(actor=actor, action="identity_namespace.deleted", obj=namespace, before={"name": namespace.name})
    namespace.delete()
