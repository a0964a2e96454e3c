"""REST endpoints about the calling API key itself. Shared error schema of the API."""

from ninja import Router, Schema

router = Router(tags=["API keys"])


class ErrorOut(Schema):
    detail: str


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
    response={200: MeOut, 401: ErrorOut},
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
