"""The REST API (django-ninja), OpenAPI at /api/docs. Each app adds its router here."""

from ninja import NinjaAPI

from permissions.api_auth import ApiKeyAuth

api = NinjaAPI(
    title="Campaign manager API",
    version="1",
    auth=ApiKeyAuth(),
    urls_namespace="api",
    docs_url="/docs",
)
