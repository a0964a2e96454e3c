"""The tracking links in messages (campaigns.tracking): the open pixel and the click redirect.

Public on purpose: the recipient has no account, and the signed token in the URL is the whole credential. Each
answers GET and HEAD (scanners ask with HEAD), sets no cookie, and is never cached, so every load or click reaches
us. A token that does not verify, or names a delivery or a link that does not exist, gets the 404 page: never a
redirect, and nothing is counted.
"""

import base64
from functools import lru_cache

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from campaigns import tracking
from campaigns.models import CampaignVersion, Delivery
from campaigns.services.tracking import engagement_record
from permissions.middleware import request_client_address

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@login_not_required
@never_cache
@require_http_methods(["GET", "HEAD"])
def track_open(request, token):
    try:
        named = tracking.read_open_token(token)
    except tracking.BadToken:
        return _not_found(request)
    now = timezone.now()
    # One statement: the message's sending time, which may make the request a machine's, is read by the upsert.
    machine = tracking.request_machine_reason(
        method=request.method,
        user_agent=request.headers.get("User-Agent", ""),
        address=request_client_address(request),
    )
    counted = engagement_record(
        delivery_id=named.delivery_id,
        link=None,
        machine=machine is not None,
        now=now,
        machine_after=tracking.machine_after(now),
    )
    if not counted:
        return _not_found(request)
    return HttpResponse(PIXEL, content_type="image/gif")


@login_not_required
@never_cache
@require_http_methods(["GET", "HEAD"])
def track_click(request, token):
    try:
        named = tracking.read_click_token(token)
    except tracking.BadToken:
        return _not_found(request)
    delivery = (
        Delivery.objects.filter(pk=named.delivery_id)
        .values("sent_at", "first_attempt_at", "version_id", "version__name", "channel_configuration__settings")
        .first()
    )
    if delivery is None:
        return _not_found(request)
    urls = _version_urls(delivery["version_id"])
    if named.link >= len(urls):
        return _not_found(request)
    utm = tracking.utm_parameters(delivery["channel_configuration__settings"] or {}, delivery["version__name"])
    engagement_record(
        delivery_id=named.delivery_id,
        link=named.link,
        machine=_machine(request, delivery),
        now=timezone.now(),
    )
    return HttpResponseRedirect(tracking.destination(urls[named.link], utm))


@lru_cache(maxsize=256)
def _version_urls(version_id: int) -> tuple[str, ...]:
    # A version that was sent is never changed (campaigns.services.lifecycle): its links are the same for good.
    html_body = CampaignVersion.objects.filter(pk=version_id).values_list("html_body", flat=True).first() or ""
    return tracking.version_links(html_body).urls


def _machine(request, delivery: dict) -> bool:
    # An `unknown` delivery (the relay never confirmed) has no sent_at: its first attempt is when it went out.
    # Neither yet: its outcome is not recorded, so it went out a moment ago.
    sent_at = delivery["sent_at"] or delivery["first_attempt_at"]
    user_agent = request.headers.get("User-Agent", "")
    reason = tracking.machine_reason(
        method=request.method,
        user_agent=user_agent,
        address=request_client_address(request),
        sent_at=sent_at,
        now=timezone.now(),
    )
    return reason is not None


def _not_found(request):
    return render(request, "campaigns/link_invalid.html", status=404)
