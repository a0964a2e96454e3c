"""Texts people send to our SMS number: STOP, START and HELP keywords, through a Twilio-style webhook. This
module reads a request (its signature, its keyword); what a keyword changes is in channels.services.inbound_sms.

Twilio signs each webhook request: X-Twilio-Signature is the base64 HMAC-SHA1, keyed with the account's auth
token, of the full URL it requested followed by every POST parameter's name and value, sorted by name.
"""

import base64
import hashlib
import hmac
import re
from xml.sax.saxutils import escape

from django.views.decorators.debug import sensitive_variables

SIGNATURE_HEADER = "X-Twilio-Signature"
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


def keyword_of(body: str) -> str:
    """The keyword a text is, if the whole text is one: `Stop`, ` STOP. ` and `stop!` are STOP."""
    return body.strip().strip(".!").strip().upper()


def twiml(message: str) -> str:
    reply = f"<Message>{escape(message)}</Message>" if message else ""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{reply}</Response>'
