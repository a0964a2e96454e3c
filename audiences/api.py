"""REST endpoints for profiles: upsert one or many, export everything stored about one, erase one.

Every operation needs a key with the `profiles` scope. The scope is checked when the key is authenticated,
before the body is read or the database asked about the profile, so a key out of scope gets the same 403
for any request and learns nothing.
"""

from typing import Annotated, Any, Literal

from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from audiences import profiles, services
from audiences.models import Profile
from audiences.schemas import ProfileInput
from permissions.api import ErrorOut
from permissions.api_auth import ApiKeyAuth

MAX_PROFILES = 1000
_MAX_ID = 2**63 - 1
_bearer = ApiKeyAuth()
# The security scheme is the API's bearer scheme, named here because the callable below does not declare it.
SCOPE = {"x-required-scope": "profiles", "security": [{"ApiKeyAuth": []}]}


def profiles_key(request):
    """The calling key if it has the profiles scope; None (401) for no valid key; 403 for one out of scope."""
    key = _bearer(request)
    if key is None:
        return None
    if not key.profiles:
        raise HttpError(403, "this key may not read or change profiles: it needs the profiles scope")
    return key


router = Router(tags=["Profiles"], auth=profiles_key)


class ProfilesIn(Schema):
    profiles: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_PROFILES,
        description=f"1 to {MAX_PROFILES} profiles, each validated on its own: one that fails is rejected "
        "with its reasons and the others are stored.",
        json_schema_extra={"items": ProfileInput.model_json_schema()},
    )


class FieldError(Schema):
    field: str = Field(description='Where: "email", "attributes.city", "identities.crm_id"; "" for the whole input.')
    problem: str


class ProfileResult(Schema):
    index: int = Field(description="The input's position in `profiles`, from 0.")
    status: Literal["created", "updated", "rejected"]
    profile_id: int | None
    errors: list[FieldError]


class UpsertOut(Schema):
    created: int
    updated: int
    rejected: int
    results: list[ProfileResult]


@router.post(
    "",
    response={200: UpsertOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut},
    summary="Create or update profiles",
    description=(
        "Each input is matched to a profile by any of its identities (email, phone, or a value in another "
        "namespace) and creates it or updates it; absent fields are left as they are. An input whose "
        "identities point at two different profiles is rejected, naming both: profiles are never merged. "
        "Answers 200 with one result per input, in order; 422 only for a malformed body. Required scope: "
        "profiles."
    ),
    openapi_extra=SCOPE,
)
def profiles_upsert(request, body: ProfilesIn):
    outcomes = services.profiles_upsert(body.profiles, source=f"api key {request.auth.prefix}")
    results = [
        ProfileResult(
            index=index,
            status=outcome.status,
            profile_id=outcome.profile_id,
            errors=[FieldError(field=field, problem=problem) for field, problem in outcome.errors],
        )
        for index, outcome in enumerate(outcomes)
    ]
    counts = {status: sum(result.status == status for result in results) for status in ("created", "updated")}
    return UpsertOut(**counts, rejected=len(results) - sum(counts.values()), results=results)


@router.get(
    "/{profile_id}/export",
    response={200: dict[str, Any], 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Everything stored about a profile",
    description=(
        "The profile's fields, identities, attributes with their types, consent and its history, push tokens, "
        "list memberships, the messages sent to it and the trigger requests made for it. Audited. Required "
        "scope: profiles."
    ),
    openapi_extra=SCOPE,
)
def profile_export(request, profile_id: Annotated[int, Path(ge=1, le=_MAX_ID)]):
    return profiles.profile_export_recorded(profile=_profile(profile_id), actor=request.auth)


@router.delete(
    "/{profile_id}",
    response={204: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Erase a profile",
    description=(
        "Removes the person's personal data everywhere: the profile with its identities, attributes, consent, "
        "push tokens and memberships; the addresses in the delivery ledger and the contexts of their trigger "
        "requests. Counts of past sends stay the same. Cannot be undone. Audited. Required scope: profiles."
    ),
    openapi_extra=SCOPE,
)
def profile_erase(request, profile_id: Annotated[int, Path(ge=1, le=_MAX_ID)]):
    profiles.profile_erase(profile=_profile(profile_id), actor=request.auth)
    return Status(204, None)


def _profile(profile_id: int) -> Profile:
    profile = Profile.objects.filter(pk=profile_id).first()
    if profile is None:
        raise HttpError(404, f"there is no profile {profile_id}")
    return profile
