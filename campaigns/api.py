"""REST endpoints of campaigns, for API keys. Only API-triggered campaigns are visible through the API."""

from typing import Annotated

from ninja import Path, Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from campaigns.models import Campaign
from campaigns.personalization import personalization_fields
from permissions.api import error_responses

router = Router(tags=["Campaigns"])
_MAX_ID = 2**63 - 1


class CampaignOut(Schema):
    id: int
    name: str
    kind: str
    category: str
    status: str
    channel: str
    personalization_fields: list[str] = Field(
        description="Variables the content reads, e.g. profile.first_name or context.order.id."
    )


@router.get(
    "/{campaign_id}",
    response={200: CampaignOut, **error_responses(401, 403, 404, 422)},
    summary="An API-triggered campaign",
    description=(
        "The campaign's settings and the personalization fields its content uses. Required scope: campaign "
        "(all API-triggered campaigns, or this one). A key out of scope gets 403 whether or not the campaign "
        "exists; 404 is only for a key whose scope covers every API-triggered campaign; 422 for an id that is not "
        "a whole number from 1 to 2^63-1."
    ),
    openapi_extra={"x-required-scope": "campaign"},
)
def campaign_read(request, campaign_id: Annotated[int, Path(ge=1, le=_MAX_ID)]):
    campaign = triggerable_campaign(key=request.auth, campaign_id=campaign_id)
    version = campaign.live_version or campaign.latest_version()
    return CampaignOut(
        id=campaign.pk,
        name=campaign.name,
        kind=campaign.kind,
        category=campaign.category,
        status=campaign.status,
        channel=campaign.channel_configuration.channel,
        personalization_fields=personalization_fields(version) if version else [],
    )


def triggerable_campaign(*, key, campaign_id: int) -> Campaign:
    """The API-triggered campaign `key` may trigger, or HttpError 403/404.

    Scope is checked before the database is read, so an out-of-scope key learns nothing about which ids exist.
    """
    if not key.may_trigger(campaign_id):
        raise HttpError(403, f"this key may not trigger campaign {campaign_id}")
    campaign = (
        Campaign.objects.select_related("channel_configuration", "live_version")
        .filter(pk=campaign_id, kind=Campaign.Kind.API_TRIGGERED)
        .first()
    )
    if campaign is None:
        raise HttpError(404, f"there is no API-triggered campaign {campaign_id}")
    return campaign
