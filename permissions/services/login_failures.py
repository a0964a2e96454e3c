"""Failed logins: bursts of them, per account and per address, are recorded in the audit log."""

import logging

import redis
from django.conf import settings
from django.contrib.auth import get_user_model

from permissions.models import AuditEvent, sha256_hex
from permissions.services.audit import audit_record

# A failure counter starts its window at the first failure; the burst is recorded when it reaches the limit.
_COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


_redis_clients: dict = {}


def _login_failure_redis():
    url = settings.REDIS_URL
    if url not in _redis_clients:
        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _redis_clients[url]


def login_failure_record(*, username: str, ip_address: str | None) -> list[AuditEvent]:
    """Count a failed login for its account and its address; record one audit event for each that reaches
    LOGIN_FAILURE_BURST failures within LOGIN_FAILURE_BURST_SECONDS (the burst, not every failure).

    Counters live in Redis, shared by every web process. Without Redis, logins go on and nothing is counted.
    """
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
