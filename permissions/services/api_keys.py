"""API keys: create (the secret is returned once, only its SHA-256 hash is kept), revoke, authenticate."""

import hmac
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from config import rawsql
from permissions.models import ApiKey, sha256_hex
from permissions.services.audit import audit_record

_KEY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alike characters
# Writes of last_used_at are coalesced: a busy key must not turn every API call into a row update.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _random(length: int) -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(length))


@transaction.atomic
@sensitive_variables("secret")
def api_key_create(
    *,
    actor,
    name: str,
    all_triggered_campaigns: bool = False,
    campaign_ids=(),
    profiles: bool = False,
    rate_per_second: int | None = None,
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
        rate_per_second=rate_per_second,
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
        "rate_per_second": key.rate_per_second,
    }


@sensitive_variables("secret")
def api_key_authenticate(secret: str) -> ApiKey | None:
    """The active key whose secret this is, or None. Records the last use."""
    parts = secret.split("_")
    if len(parts) != 3 or parts[0] != "cmk":
        return None
    key = _active_key(parts[1])
    if key is None or not hmac.compare_digest(key.key_hash, sha256_hex(secret)):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


_KEY_FIELDS = [field.attname for field in ApiKey._meta.concrete_fields]


def _active_key(prefix: str) -> ApiKey | None:
    """The unrevoked key with this prefix: every API call reads it, so through a cursor (config.rawsql), and as a
    call's first statement without the health check's round trip before it (a read, sent again on a new connection
    if the server dropped the kept one)."""
    sql = (
        f"SELECT {rawsql.columns(ApiKey, _KEY_FIELDS, 'k')} FROM {ApiKey._meta.db_table} k "  # noqa: S608
        "WHERE k.prefix = %s AND k.revoked_at IS NULL"
    )
    row = rawsql.fetchone_unchecked(sql, [prefix])
    return rawsql.instance(ApiKey, _KEY_FIELDS, row) if row else None
