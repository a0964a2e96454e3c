"""Unsubscribe links: a signed token naming the recipient, the channel and the delivery it came with.

The token is made with django.core.signing (HMAC-SHA256 keyed from SECRET_KEY with a salt of its own), so
nobody can forge or alter one, and it never expires: a link in a message read a year later must still work.
Rotating SECRET_KEY breaks the links already sent unless the old key stays in SECRET_KEY_FALLBACKS for as
long as those messages may be read. The token carries ids, not the address, and holds no secret: it only
lets its bearer opt that one profile out of that one channel, which is what the link is for.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from audiences.models import Channel

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


@dataclass(frozen=True, slots=True)
class UnsubscribeToken:
    profile_id: int
    channel: str
    delivery_id: int | None = None


class BadToken(Exception):
    """The token was not made by this installation, or was altered."""


def unsubscribe_token(*, profile_id: int, channel: str, delivery_id: int | None = None) -> str:
    payload = [profile_id, _CHANNEL_CODES[channel]]
    if delivery_id is not None:
        payload.append(delivery_id)
    return signing.dumps(payload, salt=_SALT)


def unsubscribe_url(*, profile_id: int, channel: str, delivery_id: int | None = None) -> str:
    """The absolute URL of the unsubscribe page (and of the RFC 8058 one-click POST), on SITE_URL."""
    token = unsubscribe_token(profile_id=profile_id, channel=channel, delivery_id=delivery_id)
    return settings.SITE_URL + reverse("unsubscribe", args=[token])


def read_unsubscribe_token(token: str) -> UnsubscribeToken:
    """What a token names; raises BadToken when its signature does not hold or its content is not ours."""
    try:
        payload = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise BadToken from None
    match payload:
        case [int(profile_id), str(code)] if code in _CODE_CHANNELS:
            return UnsubscribeToken(profile_id, _CODE_CHANNELS[code])
        case [int(profile_id), str(code), int(delivery_id)] if code in _CODE_CHANNELS:
            return UnsubscribeToken(profile_id, _CODE_CHANNELS[code], delivery_id)
    raise BadToken
