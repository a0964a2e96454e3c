"""REST endpoints for profiles: upsert one or many, export everything stored about one, erase one.

Every operation needs a key with the `profiles` scope. The scope is checked when the key is authenticated,
before the body is read or the database asked about the profile, so a key out of scope gets the same 403
for any request and learns nothing.
"""

from typing import Annotated, Any, Literal

from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from audiences.models import Profile
from audiences.schemas import ProfileInput
from audiences.services import privacy, profiles
from permissions.api import error_responses
from permissions.api_auth import ApiKeyAuth

MAX_PROFILES = 1000
# The longest name an identity namespace or an attribute can have: a longer one is no row problem but a
# malformed request, refused (422) before anything could repeat it.
MAX_NAME = 64
_NAMED_FIELDS = ("identities", "attributes", "consent")
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


def _names_fit(item: dict[str, Any]) -> dict[str, Any]:
    """The input unchanged, or an error (that does not repeat the name) if a key of the input, or of its
    identities, attributes or consent, is longer than MAX_NAME."""
    named = [("the input", item)] + [
        (field, item[field]) for field in _NAMED_FIELDS if isinstance(item.get(field), dict)
    ]
    for where, names in named:
        longest = max(map(len, names), default=0)
        if longest > MAX_NAME:
            raise PydanticCustomError(
                "name_too_long",
                "a key of {where} has {length} characters; keys have at most {max_length}",
                {"where": where, "length": longest, "max_length": MAX_NAME},
            )
    return item


def _profile_input_schema() -> dict:
    schema = ProfileInput.model_json_schema()
    for field in _NAMED_FIELDS:
        schema["properties"][field]["propertyNames"] = {"maxLength": MAX_NAME}
    return schema


class ProfilesIn(Schema):
    profiles: list[Annotated[dict[str, Any], AfterValidator(_names_fit)]] = Field(
        min_length=1,
        max_length=MAX_PROFILES,
        description=f"1 to {MAX_PROFILES} profiles, each validated on its own: one that fails is rejected "
        f"with its reasons and the others are stored. Names (of fields, identities, attributes and consent "
        f"channels) longer than {MAX_NAME} characters make the whole request invalid (422).",
        json_schema_extra={"items": _profile_input_schema()},
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
    response={200: UpsertOut, **error_responses(400, 401, 403, 422)},
    summary="Create or update profiles",
    description=(
        "Each input is matched to a profile by any of its identities (email, phone, or a value in another "
        "namespace) and creates it or updates it; absent fields are left as they are. An input whose "
        "identities point at two different profiles is rejected, naming both: profiles are never merged. "
        "Answers 200 with one result per input, in order; 400 for a body that is not JSON (or too large, too "
        "deep); 422 only for a malformed body. Required scope: profiles."
    ),
    openapi_extra=SCOPE,
)
def profiles_upsert(request, body: ProfilesIn):
    outcomes = profiles.profiles_upsert(body.profiles, source=f"api key {request.auth.prefix}")
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
    response={200: dict[str, Any], **error_responses(401, 403, 404, 422)},
    summary="Everything stored about a profile",
    description=(
        "The profile's fields, identities, attributes with their types, consent and its history, push tokens, "
        "list memberships, the messages sent to it and the trigger requests made for it. Audited. Required "
        "scope: profiles."
    ),
    openapi_extra=SCOPE,
)
def profile_export(request, profile_id: Annotated[int, Path(ge=1, le=_MAX_ID)]):
    return privacy.profile_export_recorded(profile=_profile(profile_id), actor=request.auth)


@router.delete(
    "/{profile_id}",
    response={204: None, **error_responses(401, 403, 404, 422)},
    summary="Erase a profile",
    description=(
        "Removes the person's personal data everywhere: the profile with its identities, attributes, consent, "
        "push tokens and memberships; the addresses in the delivery ledger and the contexts of their trigger "
        "requests. Counts of past sends stay the same. Cannot be undone. Audited. Required scope: profiles."
    ),
    openapi_extra=SCOPE,
)
def profile_erase(request, profile_id: Annotated[int, Path(ge=1, le=_MAX_ID)]):
    privacy.profile_erase(profile=_profile(profile_id), actor=request.auth)
    return Status(204, None)


def _profile(profile_id: int) -> Profile:
    profile = Profile.objects.filter(pk=profile_id).first()
    if profile is None:
        raise HttpError(404, f"there is no profile {profile_id}")
    return profile
