"""REST endpoints about the calling API key itself. The error schemas every router shares."""

from typing import Any

from ninja import Router, Schema
from pydantic import Field

router = Router(tags=["API keys"])


class ErrorOut(Schema):
    """Every error answer (400, 401, 403, 404): `detail` names the problem. It never repeats the key sent, nor
    more than a short excerpt of any other input."""

    detail: str


class InvalidField(Schema):
    type: str = Field(description="What kind of problem: missing, int_parsing, greater_than_equal, ...")
    loc: list[str | int] = Field(description='Where: ["path", "campaign_id"], ["query", "limit"], ["body", ...].')
    msg: str
    ctx: dict[str, Any] | None = Field(default=None, description='The rule broken, e.g. {"ge": 1}.')


class InvalidRequestOut(ErrorOut):
    """A 422: the request's path, query or body does not fit the operation; `errors` says where."""

    errors: list[InvalidField]


def error_responses(*statuses: int) -> dict[int, type[Schema]]:
    """The `response=` entries of the error statuses an operation can answer, each with its body's schema."""
    return {status: InvalidRequestOut if status == 422 else ErrorOut for status in statuses}


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
