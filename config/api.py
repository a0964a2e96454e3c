"""The REST API (django-ninja), OpenAPI at /api/docs. Each app adds its router here.

Every error is JSON `{"detail": "..."}` naming the problem (a 422 adds `errors`, see permissions.api), never
echoing a key, nor more than a short excerpt of any other input: a name or value sent can be a megabyte long.
"""

import math

from django.core.exceptions import RequestDataTooBig
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
# How much of one input an error may repeat (a field name, a key in `loc`, a value in `ctx`).
MAX_ECHO = 64
# A 422's detail lists this many problems; `errors` has them all.
MAX_PROBLEMS_IN_DETAIL = 5


class UntrustedJsonParser(Parser):
    """JSON bodies through config.untrusted: bounded size and depth, no lone surrogates, NULs or unstorable
    numbers. ninja turns the error into a 400, which `http_error` below words."""

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
    detail = untrusted.excerpt(str(exc), 200)  # our messages are shorter: the last guard should one ever carry an input
    if exc.status_code == 400 and isinstance(exc.__cause__, untrusted.UntrustedInputError):
        refusal = exc.__cause__
        # Names the JSON path (each key already cut short, the path itself could nest 32 of them) and the problem.
        where = f"{untrusted.excerpt(refusal.where, MAX_ECHO)}: " if refusal.where else ""
        detail = f"invalid request: {where}{refusal.problem}"
    return api.create_response(request, {"detail": detail}, status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def body_too_large(request, exc):
    # Django refuses to read a body past DATA_UPLOAD_MAX_MEMORY_SIZE; answered like the parser's own limit.
    detail = f"invalid request: body: is larger than {MAX_BODY_BYTES:,} bytes"
    return api.create_response(request, {"detail": detail}, status=400)


@api.exception_handler(ValidationError)
def invalid_request(request, exc):
    errors = [_without_input(error) for error in exc.errors]
    problems = [_describe(error) for error in errors[:MAX_PROBLEMS_IN_DETAIL]]
    if len(errors) > MAX_PROBLEMS_IN_DETAIL:
        problems.append(f"and {len(errors) - MAX_PROBLEMS_IN_DETAIL} more (see errors)")
    return api.create_response(
        request, {"detail": f"invalid request: {'; '.join(problems)}", "errors": errors}, status=422
    )


def _without_input(error: dict) -> dict:
    """pydantic's error as the InvalidField schema has it: no `input`, names and rule values cut short."""
    bounded = {
        "type": untrusted.excerpt(str(error.get("type", "invalid")), MAX_ECHO),
        "loc": [
            part if isinstance(part, int) else untrusted.excerpt(str(part), MAX_ECHO) for part in error.get("loc", ())
        ],
        "msg": untrusted.excerpt(str(error.get("msg", "invalid")), 160),
    }
    if error.get("ctx"):
        bounded["ctx"] = {
            untrusted.excerpt(str(name), MAX_ECHO): _rule_value(value) for name, value in error["ctx"].items()
        }
    return bounded


def _rule_value(value):
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return untrusted.excerpt(str(value), MAX_ECHO)


def _describe(error: dict) -> str:
    # loc is e.g. ("path", "campaign_id"): name the field, not where ninja found it.
    location = ".".join(str(part) for part in error["loc"][1:]) or "body"
    return f"{location}: {error['msg']}"
