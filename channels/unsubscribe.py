"""Unsubscribe links: a signed token naming the recipient, the channel and the delivery it came with.

A token reads `<profile id>.<channel letter>.<delivery id>:<signature>`, signed with django.core.signing's
Signer (HMAC-SHA256 keyed from SECRET_KEY with a salt of its own), so nobody can forge or alter one, and it
never expires: a link in a message read a year later must still work. Rotating SECRET_KEY breaks the links
already sent unless the old key stays in SECRET_KEY_FALLBACKS for as long as those messages may be read. The
token carries ids, not the address, and holds no secret: it only lets its bearer opt that one profile out of
that one channel, which is what the link is for. One is made per message sent, so making one costs a few
microseconds (no JSON, no URL resolving).
"""

import re
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.dispatch import Signal
from django.urls import reverse

from audiences.models import Channel

# Sent when a person confirms an unsubscribe link (`delivery_id`: the message it came with, or None; `at`: when), so
# the app that keeps the ledger counts it in that message's report (campaigns.services.tracking).
unsubscribed = Signal()

_SALT = "channels.unsubscribe"
# One letter per channel keeps the token short (SMS bodies count characters).
_CHANNEL_CODES = {
    Channel.EMAIL: "e",
    Channel.SMS: "s",
    Channel.PUSH: "p",
    Channel.WEBHOOK: "w",
    Channel.IN_APP: "i",
}
_CODE_CHANNELS = {code: channel for channel, code in _CHANNEL_CODES.items()}
# An id as we write one: ASCII digits ("²".isdigit() holds, but int() refuses it) that a database id can hold.
_ID = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    profile_id: int
    channel: str
    delivery_id: int | None = None


class BadToken(Exception):
    """The token was not made by this installation, or was altered."""


def unsubscribe_token(*, profile_id: int, channel: str, delivery_id: int | None = None) -> str:
    payload = f"{profile_id}.{_CHANNEL_CODES[channel]}"
    if delivery_id is not None:
        payload += f".{delivery_id}"
    return signing.Signer(salt=_SALT).sign(payload)


def unsubscribe_url(*, profile_id: int, channel: str, delivery_id: int | None = None) -> str:
    """The absolute URL of the unsubscribe page (and of the RFC 8058 one-click POST), on SITE_URL."""
    token = unsubscribe_token(profile_id=profile_id, channel=channel, delivery_id=delivery_id)
    return _url_prefix(settings.SITE_URL) + token + "/"


@lru_cache(maxsize=4)
def _url_prefix(site_url: str) -> str:
    return site_url + reverse("unsubscribe", args=["T"]).removesuffix("T/")


def read_unsubscribe_token(token: str) -> UnsubscribeToken:
    """What a token names; raises BadToken when its signature does not hold or its content is not ours."""
    try:
        payload = signing.Signer(salt=_SALT).unsign(token)
    except signing.BadSignature:
        raise BadToken from None
    match payload.split("."):
        case [profile_id, code] if _ID.fullmatch(profile_id) and code in _CODE_CHANNELS:
            return UnsubscribeToken(int(profile_id), _CODE_CHANNELS[code])
        case [profile_id, code, delivery_id] if (
            _ID.fullmatch(profile_id) and _ID.fullmatch(delivery_id) and code in _CODE_CHANNELS
        ):
            return UnsubscribeToken(int(profile_id), _CODE_CHANNELS[code], int(delivery_id))
    raise BadToken
