"""The client address of the request being served, which `permissions.services.audit.audit_record` records with
every event a web or API request causes."""

import ipaddress
from contextvars import ContextVar

# None outside a request (jobs, the scheduler, manage.py) and when the server gave no usable address.
client_address: ContextVar[str | None] = ContextVar("client_address", default=None)


def request_client_address(request) -> str | None:
    """REMOTE_ADDR, the peer the server accepted the connection from, as a normalized IP address; None when it is
    missing or is not one. Forwarded headers are never read: no setting says which proxy to trust, and a client
    can write them."""
    value = request.META.get("REMOTE_ADDR")
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        # A link-local IPv6 address may carry its interface ("fe80::1%eth0"), which no database column keeps.
        return str(ipaddress.ip_address(value.strip().split("%", 1)[0]))
    except ValueError:
        return None


class ClientAddressMiddleware:
    """Sets `client_address` for the time of one request, so services audit it without being handed the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = client_address.set(request_client_address(request))
        try:
            return self.get_response(request)
        finally:
            client_address.reset(token)
