"""The audit log: every audited action of every app is recorded here."""

from permissions.middleware import client_address
from permissions.models import AuditEvent

_SECRET_NAMES = ("password", "secret", "token", "key_hash", "api_key", "credentials")


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
    """Record one audited action. Values under secret-looking names are replaced before storing. The client
    address is `ip_address`, else that of the web or API request being served (`permissions.middleware`)."""
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
        ip_address=ip_address if ip_address is not None else client_address.get(),
    )
