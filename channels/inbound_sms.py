"""Texts people send to our SMS number: STOP, START and HELP keywords, through a Twilio-style webhook.

Twilio signs each webhook request: X-Twilio-Signature is the base64 HMAC-SHA1, keyed with the account's auth
token, of the full URL it requested followed by every POST parameter's name and value, sorted by name.
"""

import base64
import hashlib
import hmac
import re
from xml.sax.saxutils import escape

from django.views.decorators.debug import sensitive_variables

from audiences.models import Channel, Consent, Identity, Profile
from audiences.profiles import consent_set

SIGNATURE_HEADER = "X-Twilio-Signature"
CONSENT_SOURCE = "sms keyword"
# The carriers' standard opt-out and opt-in keywords (CTIA), which Twilio also recognizes.
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}
# Twilio's message ids: two letters and 32 hex digits; other providers' ids are of the same kind of length.
MESSAGE_SID = re.compile(r"[A-Za-z0-9_-]{2,64}")


@sensitive_variables("auth_token")
def twilio_signature(auth_token: str, url: str, params: dict[str, list[str]]) -> str:
    data = url + "".join(name + value for name in sorted(params) for value in sorted(params[name]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@sensitive_variables("auth_token")
def twilio_signature_valid(auth_token: str, url: str, params: dict[str, list[str]], signature: str) -> bool:
    if not auth_token or not signature:
        return False
    # As bytes: compare_digest refuses non-ASCII text, and a header is whatever an anonymous caller sent.
    return hmac.compare_digest(twilio_signature(auth_token, url, params).encode(), signature.encode())


def first_time(*, configuration, message_sid: str) -> bool:
    """Record the provider's message id; False when it was seen before (a replayed request)."""
    from django.db import IntegrityError, transaction

    from channels.models import InboundSms

    try:
        with transaction.atomic():
            InboundSms.objects.create(configuration=configuration, message_sid=message_sid)
    except IntegrityError:
        return False
    return True


def keyword_of(body: str) -> str:
    """The keyword a text is, if the whole text is one: `Stop`, ` STOP. ` and `stop!` are STOP."""
    return body.strip().strip(".!").strip().upper()


def sms_inbound_apply(*, from_number: str, body: str, help_reply: str) -> str:
    """Act on a text from `from_number` and return the TwiML answer.

    STOP and its synonyms opt every profile with that number out of SMS marketing, START and its synonyms
    opt them back in (through consent_set, so a repeat changes nothing), HELP is answered with `help_reply`.
    Any other text gets no answer. The provider itself confirms STOP and START to the sender.
    """
    keyword = keyword_of(body)
    if keyword in HELP_WORDS:
        return twiml(help_reply)
    if keyword in STOP_WORDS or keyword in START_WORDS:
        state = Consent.State.OPTED_OUT if keyword in STOP_WORDS else Consent.State.OPTED_IN
        for profile in profiles_with_number(from_number):
            consent_set(profile=profile, channel=Channel.SMS, state=state, source=CONSENT_SOURCE)
    return twiml("")


def profiles_with_number(number: str):
    """Profiles whose primary phone, or an identity in the phone namespace, is `number` (E.164)."""
    number = number.strip()
    if not number:
        return Profile.objects.none()
    by_identity = Identity.objects.filter(namespace="phone", value=number).values("profile_id")
    return Profile.objects.filter(phone=number) | Profile.objects.filter(pk__in=by_identity)


def twiml(message: str) -> str:
    reply = f"<Message>{escape(message)}</Message>" if message else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{reply}</Response>'
