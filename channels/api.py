"""REST endpoints for apps to show a profile's in-app inbox: list its messages, mark one read, delete one.

Keys need the `profiles` scope, checked as for the profile API (before anything is read). Such a key reads
any profile's inbox, so it belongs on the app's server, never inside an app on a device.
"""

from datetime import datetime
from typing import Annotated

from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone
from ninja import Path, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from audiences.api import SCOPE, profiles_key
from audiences.models import Profile
from channels.models import InboxMessage
from permissions.api import error_responses

_MAX_ID = 2**63 - 1
ProfileId = Annotated[int, Path(ge=1, le=_MAX_ID)]
MessageId = Annotated[int, Path(ge=1, le=_MAX_ID)]

router = Router(tags=["In-app inbox"], auth=profiles_key)


class InboxMessageOut(Schema):
    id: int
    configuration_id: int = Field(description="The in-app channel configuration that sent it.")
    title: str
    body_html: str = Field(description="Marketer-authored HTML: show it sandboxed, with scripts off.")
    body_text: str
    created_at: datetime
    read_at: datetime | None


class InboxPage(Schema):
    count: int = Field(description="Messages in the inbox (not deleted), with the filters given.")
    unread: int
    messages: list[InboxMessageOut]


class InboxFilters(Schema):
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=100_000)
    configuration: int | None = Field(default=None, ge=1, le=_MAX_ID, description="Only this configuration's.")


@router.get(
    "/{profile_id}/messages",
    response={200: InboxPage, **error_responses(401, 403, 404, 422)},
    summary="A profile's inbox",
    description=(
        "The profile's in-app messages, unread ones first, then newest first; `limit` and `offset` page "
        "through them. Deleted messages are left out. Required scope: profiles."
    ),
    openapi_extra=SCOPE,
)
def inbox_list(request, profile_id: ProfileId, filters: Query[InboxFilters]):
    messages = _inbox(profile_id)
    if filters.configuration:
        messages = messages.filter(configuration_id=filters.configuration)
    unread_first = ExpressionWrapper(Q(read_at__isnull=True), output_field=BooleanField())
    page = messages.annotate(unread=unread_first).order_by("-unread", "-created_at", "-id")
    return InboxPage(
        count=messages.count(),
        unread=messages.filter(read_at__isnull=True).count(),
        messages=list(page[filters.offset : filters.offset + filters.limit]),
    )


@router.post(
    "/{profile_id}/messages/{message_id}/read",
    response={200: InboxMessageOut, **error_responses(401, 403, 404, 422)},
    summary="Mark a message read",
    description="Records when it was first read; marking it again changes nothing. Required scope: profiles.",
    openapi_extra=SCOPE,
)
def inbox_message_read(request, profile_id: ProfileId, message_id: MessageId):
    message = _message(profile_id, message_id)
    if message.read_at is None:
        # Conditional, so two apps marking it at once keep the first time.
        InboxMessage.objects.filter(pk=message.pk, read_at=None).update(read_at=timezone.now())
        message.refresh_from_db(fields=["read_at"])
    return message


@router.delete(
    "/{profile_id}/messages/{message_id}",
    response={204: None, **error_responses(401, 403, 404, 422)},
    summary="Delete a message",
    description=(
        "Removes it from the inbox for good: the same campaign delivery sent again does not bring it back. "
        "Required scope: profiles."
    ),
    openapi_extra=SCOPE,
)
def inbox_message_delete(request, profile_id: ProfileId, message_id: MessageId):
    message = _message(profile_id, message_id)
    InboxMessage.objects.filter(pk=message.pk, deleted_at=None).update(deleted_at=timezone.now())
    return Status(204, None)


def _inbox(profile_id: int):
    if not Profile.objects.filter(pk=profile_id).exists():
        raise HttpError(404, f"there is no profile {profile_id}")
    return InboxMessage.objects.filter(profile_id=profile_id, deleted_at=None)


def _message(profile_id: int, message_id: int) -> InboxMessage:
    message = _inbox(profile_id).filter(pk=message_id).first()
    if message is None:
        raise HttpError(404, f"profile {profile_id} has no message {message_id} in its inbox")
    return message
