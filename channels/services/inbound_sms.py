"""Acting on texts people send to our SMS number: each provider message once, and the consent a keyword
changes. Signatures and keywords themselves are read in channels.inbound_sms.
"""

from django.db import IntegrityError, transaction

from audiences.models import Channel, Consent
from audiences.services.consent import consent_set
from channels.inbound_sms import HELP_WORDS, START_WORDS, STOP_WORDS, keyword_of, twiml
from channels.models import InboundSms
from channels.selectors import profiles_with_number

CONSENT_SOURCE = "sms keyword"


def first_time(*, configuration, message_sid: str) -> bool:
    """Record the provider's message id; False when it was seen before (a replayed request)."""
    try:
        with transaction.atomic():
            InboundSms.objects.create(configuration=configuration, message_sid=message_sid)
    except IntegrityError:
        return False
    return True


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
