"""The REST API (django-ninja), OpenAPI at /api/docs. Each app adds its router here.

Every error is JSON `{"detail": "..."}` naming the problem, never echoing a key.
"""

from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from audiences.api import router as profiles_router
from campaigns.api import router as campaigns_router
from channels.api import router as inbox_router
from config import untrusted
from permissions.api import router as permissions_router
from permissions.api_auth import ApiKeyAuth

MAX_BODY_BYTES = 2_000_000


class UntrustedJsonParser(Parser):
    """JSON bodies through config.untrusted: bounded size and depth, no lone surrogates, NULs or unstorable
    numbers. ninja turns the error into a 400, which `bad_request` below words."""

    def parse_body(self, request):
        return untrusted.loads(request.body, where="body", max_bytes=MAX_BODY_BYTES)


api = NinjaAPI(
    title="Campaign manager API",
    version="1",
    description="Authenticate with `Authorization: Bearer <key>`; keys are created under Settings → API keys.",
    auth=ApiKeyAuth(),
    urls_namespace="api",
    docs_url="/docs",
    parser=UntrustedJsonParser(),
)
api.add_router("/v1", permissions_router)
api.add_router("/v1/campaigns", campaigns_router)
api.add_router("/v1/profiles", profiles_router)
api.add_router("/v1/inbox", inbox_router)


@api.exception_handler(AuthenticationError)
def unauthenticated(request, exc):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        detail = "authentication required: send Authorization: Bearer <key>"
    elif scheme.lower() != "bearer" or not token.strip():
        detail = "malformed Authorization header: expected Bearer <key>"
    else:
        detail = "unknown or revoked API key"
    response = api.create_response(request, {"detail": detail}, status=401)
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(HttpError)
def http_error(request, exc):
    detail = str(exc)
    if exc.status_code == 400 and isinstance(exc.__cause__, untrusted.UntrustedInputError):
        detail = f"invalid request: {exc.__cause__}"  # names the JSON path; echoes no more than a short key
    return api.create_response(request, {"detail": detail}, status=exc.status_code)


@api.exception_handler(ValidationError)
def invalid_request(request, exc):
    problems = "; ".join(_describe(error) for error in exc.errors)
    return api.create_response(request, {"detail": f"invalid request: {problems}", "errors": exc.errors}, status=422)


def _describe(error: dict) -> str:
    # loc is e.g. ("path", "campaign_id"): name the field, not where ninja found it.
    location = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
    return f"{location}: {error.get('msg', 'invalid')}"
