"""Bearer API keys for the REST API."""

from django.views.decorators.debug import sensitive_variables
from ninja.security import HttpBearer

from permissions.services.api_keys import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`. A revoked or unknown key is refused (401) on its next request."""

    @sensitive_variables("scheme", "token")
    def __call__(self, request):
        # Unlike ninja's own, never log the header: a key sent with the wrong scheme is still a secret.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not token:
            return None
        return self.authenticate(request, token.strip())

    @sensitive_variables("token")
    def authenticate(self, request, token):
        key = api_key_authenticate(token)
        if key is not None:
            request.api_key = key
        return key
