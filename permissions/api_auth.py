"""Bearer API keys for the REST API."""

from ninja.security import HttpBearer

from permissions.services import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`. A revoked or unknown key is refused (401) on its next request."""

    def authenticate(self, request, token):
        key = api_key_authenticate(token)
        if key is not None:
            request.api_key = key
        return key
