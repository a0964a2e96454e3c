"""The REST API (django-ninja), OpenAPI at /api/docs. Each app adds its router here.

Every error is `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail` naming the problem,
`instance`; a 422 adds `errors` with a JSON pointer for each problem in the body (see permissions.api). No error
echoes a key, nor more than a short excerpt of any other input: a name or value sent can be a megabyte long.
"""

import logging
import math

import django_rq
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from audiences.api import router as profiles_router
from campaigns.api import router as campaigns_router
from campaigns.api import triggers_router
from channels.api import router as inbox_router
from config import queues, untrusted
from permissions.api import (
    PROBLEM_CONTENT_TYPE,
    ApiProblem,
    ErrorOut,
    InvalidRequestOut,
    RetryOut,
    json_pointer,
    problem_body,
)
from permissions.api import router as permissions_router
from permissions.api_auth import ApiKeyAuth

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2_000_000
# How much of one input an error may repeat (a field name, a key in `loc`, a value in `ctx`).
MAX_ECHO = 64
# A 422's detail lists this many problems; `errors` has them all.
MAX_PROBLEMS_IN_DETAIL = 5
# The bodies answered as application/problem+json; an error status with another body (the health check's 503,
# a HealthOut) stays application/json, as it is answered.
PROBLEM_SCHEMAS = {f"#/components/schemas/{schema.__name__}" for schema in (ErrorOut, InvalidRequestOut, RetryOut)}


class UntrustedJsonParser(Parser):
    """JSON bodies through config.untrusted: bounded size and depth, no lone surrogates, NULs or unstorable
    numbers. ninja turns the error into a 400, which `http_error` below words."""

    def parse_body(self, request):
        return untrusted.loads(request.body, where="body", max_bytes=MAX_BODY_BYTES)


class CampaignsApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """Error answers are application/problem+json: said so in the document, where ninja writes
        application/json for every response."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    body = content.get("application/json", {}).get("schema", {}).get("$ref")
                    if int(status) >= 400 and body in PROBLEM_SCHEMAS:
                        content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
                    if int(status) == 429:
                        response["headers"] = {
                            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
                        }
                    if int(status) == 401:
                        response["headers"] = {
                            "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
                        }
        return schema


def problem(request, status: int, detail: str, *, slug=None, errors=None, headers=None):
    body = problem_body(status, detail, slug=slug, instance=untrusted.excerpt(request.path, 200), errors=errors)
    response = api.create_response(request, body, status=status)
    response["Content-Type"] = PROBLEM_CONTENT_TYPE
    for name, value in (headers or {}).items():
        response[name] = value
    return response


api = CampaignsApi(
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
api.add_router("/v1", triggers_router)


class HealthOut(Schema):
    status: str
    database: str
    redis: str


@api.get(
    "/v1/health",
    auth=None,
    response={200: HealthOut, 503: HealthOut},
    summary="Health",
    description="No key needed. 200 when the database and Redis answer; 503 naming the one that does not.",
    tags=["Health"],
)
def health(request):
    checks = {"database": "ok", "redis": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - down is an answer here, not an error
        log.exception("health: the database does not answer")
        checks["database"] = "down"
    try:
        django_rq.get_connection(queues.TRANSACTIONAL).ping()
    except Exception:  # noqa: BLE001
        log.exception("health: Redis does not answer")
        checks["redis"] = "down"
    healthy = all(state == "ok" for state in checks.values())
    return Status(200 if healthy else 503, HealthOut(status="ok" if healthy else "down", **checks))


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
    return problem(request, 401, detail, headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(ApiProblem)
def api_problem(request, exc):
    return problem(request, exc.status, exc.detail, slug=exc.slug, errors=exc.errors or None, headers=exc.headers)


@api.exception_handler(HttpError)
def http_error(request, exc):
    detail = untrusted.excerpt(str(exc), 200)  # our messages are shorter: the last guard should one ever carry an input
    if exc.status_code == 400 and isinstance(exc.__cause__, untrusted.UntrustedInputError):
        refusal = exc.__cause__
        # Names the JSON path (each key already cut short, the path itself could nest 32 of them) and the problem.
        where = f"{untrusted.excerpt(refusal.where, MAX_ECHO)}: " if refusal.where else ""
        detail = f"invalid request: {where}{refusal.problem}"
    return problem(request, exc.status_code, detail)


@api.exception_handler(RequestDataTooBig)
def body_too_large(request, exc):
    # Django refuses to read a body past DATA_UPLOAD_MAX_MEMORY_SIZE; answered like the parser's own limit.
    detail = f"invalid request: body: is larger than {MAX_BODY_BYTES:,} bytes"
    return problem(request, 400, detail)


@api.exception_handler(ValidationError)
def invalid_request(request, exc):
    errors = [_without_input(error) for error in exc.errors]
    problems = [_describe(error) for error in errors[:MAX_PROBLEMS_IN_DETAIL]]
    if len(errors) > MAX_PROBLEMS_IN_DETAIL:
        problems.append(f"and {len(errors) - MAX_PROBLEMS_IN_DETAIL} more (see errors)")
    return problem(request, 422, f"invalid request: {'; '.join(problems)}", errors=errors)


def _without_input(error: dict) -> dict:
    """pydantic's error as the InvalidField schema has it: no `input`, names and rule values cut short."""
    loc = [part if isinstance(part, int) else untrusted.excerpt(str(part), MAX_ECHO) for part in error.get("loc", ())]
    bounded = {
        "type": untrusted.excerpt(str(error.get("type", "invalid")), MAX_ECHO),
        "loc": loc,
        "msg": untrusted.excerpt(str(error.get("msg", "invalid")), 160),
        # Where in the body, as RFC 9457's examples have it; ninja names the body's parameter second ("payload").
        "pointer": json_pointer(loc[2:]) if loc[:1] == ["body"] else None,
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
