"""REST endpoints about the calling API key itself. The error schemas every router shares."""

from typing import Any

from ninja import Router, Schema
from pydantic import Field

router = Router(tags=["API keys"])


# Problem types (RFC 9457 `type`) and their titles; docs/api.md says what each means and what to do.
PROBLEM_TITLES = {
    "bad-request": "The request could not be read",
    "unauthenticated": "Authentication required",
    "forbidden": "Not allowed for this key",
    "not-found": "No such resource",
    "campaign-not-live": "The campaign does not accept calls now",
    "outside-campaign-dates": "Outside the campaign's dates",
    "request-id-conflict": "requestId already used with another body",
    "ambiguous-request-id": "requestId used in several campaigns",
    "campaign-has-no-audience": "The campaign has no audience",
    "context-too-large": "The context is too large",
    "invalid-request": "The request does not fit the operation",
    "context-contract-violated": "The context breaks the campaign's contract",
    "rate-limited": "Too many calls",
    "unavailable": "A service the API needs is down",
}
_PROBLEM_BY_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    409: "request-id-conflict",
    413: "context-too-large",
    422: "invalid-request",
    429: "rate-limited",
    503: "unavailable",
}
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_type(slug: str) -> str:
    return f"urn:campaigns:problem:{slug}"


class ApiProblem(Exception):
    """An error answer: `status`, a problem type `slug`, a `detail` sentence, for a 422 `errors` (each a dict
    of InvalidField), and headers (Retry-After, ...). config.api renders it as application/problem+json."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None, errors=(), headers=None):
        super().__init__(detail)
        self.status = status
        self.slug = slug or _PROBLEM_BY_STATUS.get(status, "bad-request")
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers or {}


def problem_body(status: int, detail: str, *, slug: str | None = None, instance: str = "", errors=None) -> dict:
    slug = slug or _PROBLEM_BY_STATUS.get(status, "bad-request")
    body = {
        "type": problem_type(slug),
        "title": PROBLEM_TITLES[slug],
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def json_pointer(parts) -> str:
    """RFC 6901: ("recipients", 0, "identity") -> "/recipients/0/identity"."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


class ErrorOut(Schema):
    """Every error answer, as `application/problem+json` (RFC 9457): `type` names the kind of problem (listed in
    docs/api.md), `detail` says what was wrong with this request. It never repeats the key sent, nor more than a
    short excerpt of any other input."""

    type: str = Field(description="The problem type, e.g. urn:campaigns:problem:request-id-conflict.")
    title: str = Field(description="The problem type in words.")
    status: int
    detail: str
    instance: str = Field(description="The path of the request that failed.")


class InvalidField(Schema):
    type: str = Field(description="What kind of problem: missing, int_parsing, greater_than_equal, ...")
    loc: list[str | int] = Field(description='Where: ["path", "campaign_id"], ["query", "limit"], ["body", ...].')
    msg: str
    pointer: str | None = Field(
        default=None,
        description='For a problem in the body, a JSON pointer (RFC 6901) to it: "/recipients/0/identity".',
    )
    ctx: dict[str, Any] | None = Field(default=None, description='The rule broken, e.g. {"ge": 1}.')


class InvalidRequestOut(ErrorOut):
    """A 422: the request's path, query or body does not fit the operation, or its context breaks the campaign's
    contract; `errors` says where, with a JSON pointer for each problem in the body."""

    errors: list[InvalidField]


class RetryOut(ErrorOut):
    """A 429: the key made more calls than its rate; the `Retry-After` header says how many seconds to wait."""


def error_responses(*statuses: int) -> dict[int, type[Schema]]:
    """The `response=` entries of the error statuses an operation can answer, each with its body's schema."""
    schemas = {422: InvalidRequestOut, 429: RetryOut}
    return {status: schemas.get(status, ErrorOut) for status in statuses}


class ScopesOut(Schema):
    all_triggered_campaigns: bool
    campaign_ids: list[int]
    profiles: bool


class MeOut(Schema):
    name: str
    prefix: str
    scopes: ScopesOut


@router.get(
    "/me",
    response={200: MeOut, **error_responses(401)},
    summary="The calling key",
    description="The name, prefix and scopes of the key that authenticates this request. Required scope: any.",
    openapi_extra={"x-required-scope": "any"},
)
def me(request):
    key = request.auth
    return MeOut(
        name=key.name,
        prefix=key.prefix,
        scopes=ScopesOut(
            all_triggered_campaigns=key.all_triggered_campaigns,
            campaign_ids=key.campaign_ids,
            profiles=key.profiles,
        ),
    )
