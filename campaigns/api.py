"""REST endpoints of campaigns, for API keys: reading an API-triggered campaign, triggering it (for named
recipients, or for its audience), and the status of a call. Only API-triggered campaigns are visible through the
API. docs/api.md is the guide; the OpenAPI document at /api/docs lists every answer."""

import logging
import math
import uuid
from datetime import datetime
from typing import Annotated, Any

from django.conf import settings
from django.http import HttpResponse
from ninja import Header, Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import ConfigDict, Field, model_validator

from campaigns.models import Campaign, TriggerRequest
from campaigns.personalization import personalization_fields
from campaigns.services import triggers
from channels.ratelimit import RateLimiter
from config import queues
from permissions.api import ApiProblem, error_responses

log = logging.getLogger(__name__)

router = Router(tags=["Campaigns"])
triggers_router = Router(tags=["Trigger calls"])
_MAX_ID = 2**63 - 1
# requestId and Idempotency-Key: visible ASCII, so a key logged or shown is read the same everywhere.
_REQUEST_ID = r"^[!-~]{1,200}$"


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
    _check_scope(key, campaign_id)
    campaign = (
        Campaign.objects.select_related("channel_configuration", "live_version")
        .filter(pk=campaign_id, kind=Campaign.Kind.API_TRIGGERED)
        .first()
    )
    if campaign is None:
        raise _no_such_campaign(campaign_id)
    return campaign


def _check_scope(key, campaign_id: int) -> None:
    if not key.may_trigger(campaign_id):
        raise HttpError(403, f"this key may not trigger campaign {campaign_id}")


def _no_such_campaign(campaign_id: int) -> HttpError:
    return HttpError(404, f"there is no API-triggered campaign {campaign_id}")


def _call_target(campaign_id: int, request_id: str):
    """triggerable_campaign for a trigger call, with the earlier call of this requestId, in one statement. The
    endpoint has checked the key's scope first, before anything else about the call."""
    campaign, earlier = triggers.call_target(campaign_id, request_id)
    if campaign is None:
        raise _no_such_campaign(campaign_id)
    return campaign, earlier


# --- Triggering ----------------------------------------------------------------------------------------------


class IdentityIn(Schema):
    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(min_length=1, max_length=64, description="email, phone, crm_id, ... (see Profiles).")
    value: str = Field(min_length=1, max_length=320)


class RecipientIn(Schema):
    """One person: by `identity` or by `profileId` (exactly one of the two)."""

    model_config = ConfigDict(extra="forbid")

    identity: IdentityIn | None = None
    profileId: int | None = Field(default=None, ge=1, le=_MAX_ID)
    address: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Send to this address instead of the profile's (an email, a phone number, a push token).",
    )
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="Profile attributes to store before sending (declared attributes only)."
    )
    context: dict[str, Any] = Field(
        default_factory=dict, description="This recipient's context, over the call's shared context."
    )

    @model_validator(mode="after")
    def _one_identity(self):
        if (self.identity is None) == (self.profileId is None):
            raise ValueError("give either identity or profileId")
        return self


class TriggerIn(Schema):
    model_config = ConfigDict(extra="forbid")

    requestId: str | None = Field(
        default=None,
        pattern=_REQUEST_ID,
        description="Your id for this call (or send the Idempotency-Key header): a retry with the same id and body "
        "sends nothing again.",
    )
    context: dict[str, Any] = Field(default_factory=dict, description="Context shared by every recipient.")
    recipients: list[RecipientIn] = Field(min_length=1, max_length=triggers.MAX_RECIPIENTS)


class AudienceTriggerIn(Schema):
    model_config = ConfigDict(extra="forbid")

    requestId: str | None = Field(default=None, pattern=_REQUEST_ID)
    context: dict[str, Any] = Field(default_factory=dict, description="Context shared by every recipient.")
    sendAt: datetime | None = Field(
        default=None, description="When to plan and send (ISO 8601 with an offset); now when absent or past."
    )


class RecipientOutcomeOut(Schema):
    index: int
    status: str = Field(description="accepted, excluded or rejected")
    profileId: int | None
    reason: str = Field(
        description="Why excluded (no_consent, suppressed, no_address, frequency_cap, quiet_hours) or rejected "
        "(unknown_recipient, unknown_profile, duplicate_recipient, invalid_profile); empty when accepted."
    )
    detail: str | None = None
    sendAt: datetime | None = Field(
        default=None, description="Accepted, held by the quiet hours of the channel: when it will be sent."
    )


class TriggerOut(Schema):
    executionId: uuid.UUID
    requestId: str
    campaignId: int
    kind: str
    statusUrl: str
    counts: dict[str, int]
    recipients: list[RecipientOutcomeOut]


class AudienceTriggerOut(Schema):
    executionId: uuid.UUID
    requestId: str
    campaignId: int
    kind: str
    statusUrl: str
    sendAt: datetime


class RecipientStatusOut(Schema):
    index: int
    profileId: int | None
    status: str = Field(description="accepted (queued), excluded, rejected, sent, failed, unknown or cancelled")
    reason: str | None = None
    deliveryId: int | None = None
    sentAt: datetime | None = None


class TriggerStatusOut(Schema):
    executionId: uuid.UUID
    requestId: str
    campaignId: int
    kind: str
    state: str = Field(
        description="unitary: sending, paused, stopped or complete; audience: scheduled, planning, sending, paused, "
        "complete, stopped or failed"
    )
    createdAt: datetime
    counts: dict[str, int]
    sendAt: datetime | None = None
    recipients: list[RecipientStatusOut] | None = None


_TRIGGER_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 429)


@router.post(
    "/{campaign_id}/trigger",
    response={202: TriggerOut, **_TRIGGER_ERRORS},
    summary="Trigger for named recipients",
    description=(
        "Send the campaign to 1 to 100 recipients, each named by an identity or a profile id, with the call's "
        "`context` (at most 200 KB in all) rendered as `{{ context.* }}`. Answers 202 with the execution id and "
        "each recipient's acceptance. The same requestId (or Idempotency-Key) with the same body returns the first "
        "answer and sends nothing again; with another body it is a 409. Required scope: campaign."
    ),
    openapi_extra={"x-required-scope": "campaign"},
)
def campaign_trigger(
    request,
    response: HttpResponse,
    campaign_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    payload: TriggerIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", pattern=_REQUEST_ID)] = None,
):
    key = request.auth
    _take_a_call(key)
    _check_scope(key, campaign_id)
    request_id = _request_id(payload.requestId, idempotency_key)
    campaign, earlier = _call_target(campaign_id, request_id)
    recipients = [
        triggers.RecipientIn(
            namespace=r.identity.namespace if r.identity else None,
            value=r.identity.value if r.identity else None,
            profile_id=r.profileId,
            address=r.address,
            attributes=r.attributes,
            context=r.context,
        )
        for r in payload.recipients
    ]
    return _answered(
        response,
        lambda: triggers.trigger_unitary(
            campaign=campaign,
            api_key_prefix=key.prefix,
            request_id=request_id,
            digest=triggers.body_hash(payload.model_dump(mode="json")),
            context=payload.context,
            recipients=triggers.normalized_recipients(recipients, channel=campaign.channel_configuration.channel),
            earlier=earlier,
        ),
    )


@router.post(
    "/{campaign_id}/trigger-audience",
    response={202: AudienceTriggerOut, **_TRIGGER_ERRORS},
    summary="Trigger for the campaign's audience",
    description=(
        "Plan a run of the campaign's audience (as it is when the run is planned: now, or at `sendAt`) through the "
        "same ledger and rules as a scheduled send, every recipient with the same `context`. Idempotent like the "
        "unitary trigger. Required scope: campaign."
    ),
    openapi_extra={"x-required-scope": "campaign"},
)
def campaign_trigger_audience(
    request,
    response: HttpResponse,
    campaign_id: Annotated[int, Path(ge=1, le=_MAX_ID)],
    payload: AudienceTriggerIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", pattern=_REQUEST_ID)] = None,
):
    key = request.auth
    _take_a_call(key)
    _check_scope(key, campaign_id)
    send_at = payload.sendAt
    if send_at is not None and (send_at.tzinfo is None or not 2000 <= send_at.year <= 2999):
        raise _invalid_field(
            "sendAt",
            "datetime",
            "must be a date and time with an offset (2026-12-24T09:00:00+01:00), between 2000 and 2999",
        )
    request_id = _request_id(payload.requestId, idempotency_key)
    campaign, earlier = _call_target(campaign_id, request_id)
    return _answered(
        response,
        lambda: triggers.trigger_audience(
            campaign=campaign,
            api_key_prefix=key.prefix,
            request_id=request_id,
            digest=triggers.body_hash(payload.model_dump(mode="json")),
            context=payload.context,
            send_at=send_at,
            earlier=earlier,
        ),
    )


def _request_id(in_body: str | None, header: str | None) -> str:
    if in_body and header and in_body != header:
        raise _invalid_field(
            "requestId", "request_id", "differs from the Idempotency-Key header: send one, or the same value in both"
        )
    if not (in_body or header):
        raise _invalid_field(
            "requestId", "missing", "required: give requestId in the body or an Idempotency-Key header"
        )
    return in_body or header


def _invalid_field(name: str, kind: str, problem: str) -> ApiProblem:
    """A 422 about one field of the body, shaped as ninja's own 422s are."""
    return ApiProblem(
        422,
        f"invalid request: {name}: {problem}",
        errors=[{"type": kind, "loc": ["body", "payload", name], "msg": problem, "pointer": f"/{name}"}],
    )


def _answered(response: HttpResponse, call) -> Status:
    """The answer of a trigger service `call`: its stored answer (a replay says so), or its refusal as a problem."""
    try:
        answer = call()
    except triggers.TriggerRefused as refused:
        raise _problem(refused) from None
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"  # the first answer again, and nothing sent
    return Status(answer.status, answer.body)


def _problem(refused: triggers.TriggerRefused) -> ApiProblem:
    errors = [
        {"type": refused.problem, "loc": ["body", "payload", *_steps(pointer)], "msg": problem, "pointer": pointer}
        for pointer, problem in refused.errors
    ]
    return ApiProblem(refused.status, refused.detail, slug=refused.problem, errors=errors, headers=refused.headers)


def _steps(pointer: str) -> list[str | int]:
    """A JSON pointer as `loc` steps, the way ninja's own 422s give them: "/recipients/0" -> ["recipients", 0]."""
    return [int(step) if step.isdigit() else step for step in pointer.strip("/").split("/")]


def _take_a_call(key) -> None:
    """The key's rate, shared by every web process through Redis; 429 with Retry-After past it."""
    rate = key.rate_per_second or settings.API_KEY_DEFAULT_RATE
    try:
        granted, wait = RateLimiter(queues.connection(queues.TRANSACTIONAL)).take(
            f"api-key:{key.pk}", rate=rate, requested=1
        )
    except Exception:  # noqa: BLE001 - Redis down: the call goes on (the ledger keeps it; the scheduler dispatches)
        log.exception("api key %s: the rate limit could not be checked", key.prefix)
        return
    if not granted:
        seconds = max(1, math.ceil(wait))
        raise ApiProblem(
            429,
            f"this key is limited to {rate} trigger calls a second: retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


# --- Status of a call ----------------------------------------------------------------------------------------


def _visible_requests(key):
    requests = TriggerRequest.objects.select_related("run").filter(campaign__kind=Campaign.Kind.API_TRIGGERED)
    if not key.all_triggered_campaigns:
        requests = requests.filter(campaign_id__in=key.campaign_ids)
    return requests


@triggers_router.get(
    "/executions/{execution_id}",
    response={200: TriggerStatusOut, **error_responses(401, 404, 422)},
    summary="Status of a call, by execution id",
    description=(
        "State, counts by outcome and, for a unitary call, each recipient's outcome (accepted, excluded with the "
        "reason, sent, failed, unknown). Calls are kept; their context is emptied after 48 hours. Required scope: "
        "the campaign."
    ),
    openapi_extra={"x-required-scope": "campaign"},
)
def execution_status(request, execution_id: uuid.UUID):
    found = _visible_requests(request.auth).filter(execution_id=execution_id).first()
    if found is None:
        raise HttpError(404, f"no call {execution_id} that this key may read")
    return triggers.trigger_status(found)


@triggers_router.get(
    # `path:` as a requestId may hold a "/" (sent as %2F, which Django decodes before routing).
    "/trigger-requests/{path:request_id}",
    response={200: TriggerStatusOut, **error_responses(401, 404, 409, 422)},
    summary="Status of a call, by requestId",
    description=(
        "As the execution status. requestIds are unique per campaign: when this one was used in several campaigns "
        "the key may read, name the campaign with `?campaignId=` (else 409). Required scope: the campaign."
    ),
    openapi_extra={"x-required-scope": "campaign"},
)
def trigger_request_status(
    request,
    request_id: Annotated[str, Path(pattern=_REQUEST_ID)],
    campaignId: Annotated[int | None, Query(ge=1, le=_MAX_ID)] = None,
):
    found = _visible_requests(request.auth).filter(request_id=request_id)
    if campaignId is not None:
        found = found.filter(campaign_id=campaignId)
    matches = list(found.order_by("campaign_id")[:5])
    if not matches:
        raise HttpError(404, "no call with this requestId that this key may read")
    if len(matches) > 1:
        campaigns = ", ".join(str(match.campaign_id) for match in matches)
        raise ApiProblem(
            409,
            f"this requestId was used in campaigns {campaigns}: add ?campaignId=",
            slug="ambiguous-request-id",
        )
    return triggers.trigger_status(matches[0])
