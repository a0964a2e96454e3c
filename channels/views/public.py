"""The endpoints reached without logging in: recipients' unsubscribe links and providers' webhooks.

Each is public on purpose, and says what stands in for a login: the signed token in an unsubscribe link,
the provider's signature on an inbound SMS, the configuration's HMAC on feedback. None sets a cookie.
"""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import BadRequest
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from audiences.models import Channel, Consent, Profile
from audiences.services.consent import consent_set
from channels import feedback, inbound_sms
from channels.models import ChannelConfiguration
from channels.services.inbound_sms import first_time, sms_inbound_apply
from channels.unsubscribe import BadToken, read_unsubscribe_token, unsubscribed
from config import untrusted

log = logging.getLogger(__name__)

UNSUBSCRIBE_SOURCE = "unsubscribe link"


# Public: the recipient has no account. The signed token in the URL names the profile and channel and is the
# whole credential. CSRF-exempt because mail clients POST here on their own (RFC 8058 one-click) with no
# cookie and no form of ours; an opt-out is all a POST can do, and doing it twice changes nothing.
@login_not_required
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    try:
        named = read_unsubscribe_token(token)
    except BadToken:
        return render(request, "channels/unsubscribe_invalid.html", {"reason": "bad"}, status=400)
    profile = Profile.objects.filter(pk=named.profile_id).first()
    if profile is None:  # erased since the message was sent
        return render(request, "channels/unsubscribe_invalid.html", {"reason": "unknown"}, status=404)
    context = {
        "channel_label": Channel(named.channel).label,
        "address": masked_address(profile.address_for(named.channel)),
    }
    if request.method == "POST":
        # The GET page never changes anything: link scanners and previews fetch it without the person.
        consent_set(profile=profile, channel=named.channel, state=Consent.State.OPTED_OUT, source=UNSUBSCRIBE_SOURCE)
        log.info("profile %s unsubscribed from %s (delivery %s)", profile.pk, named.channel, named.delivery_id)
        unsubscribed.send(sender=unsubscribe, delivery_id=named.delivery_id, at=timezone.now())
        return render(request, "channels/unsubscribe_done.html", context)
    already = profile.consents.filter(channel=named.channel, state=Consent.State.OPTED_OUT).exists()
    return render(request, "channels/unsubscribe.html", {**context, "already": already})


def masked_address(address: str) -> str:
    """Enough of the address for its owner to recognize it, not enough for someone the link was forwarded to:
    `j•••@example.com`, `+44•••••••89`."""
    if not address:
        return ""
    local, at, domain = address.rpartition("@")
    if at:
        return f"{local[:1]}•••@{domain}"
    return f"{address[:3]}{'•' * max(len(address) - 5, 1)}{address[-2:]}"


# Provider webhooks ------------------------------------------------------------------------------------------


# Public: posted by the SMS provider, which has no account here. The X-Twilio-Signature over the URL and the
# parameters, keyed with the configuration's auth token, is the credential; without a valid one, 403.
@login_not_required
@csrf_exempt
@require_POST
@sensitive_variables("values")
def sms_inbound(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk, channel=Channel.SMS)
    try:
        params = dict(request.POST.lists())
    except BadRequest:  # Django reads forms in UTF-8 only: a provider's other charset is a client error
        return _plain_text("The body must be application/x-www-form-urlencoded in UTF-8.", status=400)
    values = configuration.get_settings()
    # The URL the provider was given: on SITE_URL, as a proxy in front of us may change host and scheme.
    url = settings.SITE_URL + request.get_full_path()
    signature = request.headers.get(inbound_sms.SIGNATURE_HEADER, "")
    if not inbound_sms.twilio_signature_valid(values.auth_token.get_secret_value(), url, params, signature):
        return _plain_text("Invalid or missing signature.", status=403)
    message_sid = request.POST.get("MessageSid", "")
    if not inbound_sms.MESSAGE_SID.fullmatch(message_sid):
        # Without the provider's id a replay of this signed request could not be told apart from a new text.
        return _plain_text("MessageSid is missing or malformed: each text must carry its provider id.", status=400)
    from_number, body = request.POST.get("From", ""), request.POST.get("Body", "")
    for name, value in (("From", from_number), ("Body", body)):
        if (problem := untrusted.text_problem(value)) is not None:
            return _plain_text(f"{name} {problem}.", status=400)
    # The id is recorded with what the text changes, or not at all: a failure lets the provider's retry act.
    with transaction.atomic():
        if not first_time(configuration=configuration, message_sid=message_sid):
            return HttpResponse(inbound_sms.twiml(""), content_type="text/xml; charset=utf-8")  # a replay: ignored
        answer = sms_inbound_apply(from_number=from_number, body=body, help_reply=values.help_reply)
    return HttpResponse(answer, content_type="text/xml; charset=utf-8")


# Public: posted by a provider or a bridge with no account here. The HMAC-SHA256 signature with the
# configuration's feedback secret (X-Campaign-Signature, over timestamp and body) is the credential.
@login_not_required
@csrf_exempt
@require_POST
def feedback_events(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk)
    if not _signed(request, configuration):
        return _unsigned()
    try:
        events = feedback.parse_webhook_events(request.body, configuration_id=configuration.pk)
    except feedback.FeedbackError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(feedback.feedback_deliver(events))


# Public for the same reason as feedback_events, with the same signature: a relay posting the delivery
# status notifications (RFC 3464) and complaint reports (RFC 5965) it received, one raw message per post.
@login_not_required
@csrf_exempt
@require_POST
def feedback_report(request, pk):
    configuration = get_object_or_404(ChannelConfiguration, pk=pk)
    if not _signed(request, configuration):
        return _unsigned()
    try:
        events = feedback.parse_report(request.body, configuration_id=configuration.pk)
    except feedback.FeedbackError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(feedback.feedback_deliver(events))


def _signed(request, configuration) -> bool:
    secret = getattr(configuration.get_settings(), "feedback_secret", None)
    header = request.headers.get(feedback.SIGNATURE_HEADER, "")
    return bool(secret) and feedback.signature_valid(secret.get_secret_value(), request.body, header)


def _plain_text(text: str, *, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _unsigned():
    return JsonResponse(
        {"error": f"Invalid or missing {feedback.SIGNATURE_HEADER} (or no feedback secret is configured)."},
        status=403,
    )
