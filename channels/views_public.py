"""The endpoints reached without logging in: recipients' unsubscribe links and providers' webhooks.

Each is public on purpose, and says what stands in for a login: the signed token in an unsubscribe link,
the provider's signature on an inbound SMS, the configuration's HMAC on feedback. None sets a cookie.
"""

import logging

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audiences.models import Channel, Consent, Profile
from audiences.profiles import consent_set
from channels.unsubscribe import BadToken, read_unsubscribe_token

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
