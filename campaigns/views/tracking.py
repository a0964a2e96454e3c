"""The tracking links in messages (campaigns.tracking): the open pixel and the click redirect.

Public on purpose: the recipient has no account, and the signed token in the URL is the whole credential. Each
answers GET and HEAD (scanners ask with HEAD), sets no cookie, and is never cached, so every load or click reaches
us. A token that does not verify, or names a version or a link that does not exist, gets the 404 page: never a
redirect, and nothing is counted.

Neither reads the message: the request is counted with the others of the moment (campaigns.services.tracking), a
hit on a message that no longer exists left out there (its pixel still answers), and a click's URL is read back
from the version its token names, kept by each web process (read at its first click there; its configuration's
settings every SETTINGS_SECONDS). A click on a link sent before tokens named the version reads the message's.
"""

import base64
import time
from dataclasses import dataclass
from functools import lru_cache, wraps

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from campaigns import tracking
from campaigns.models import CampaignVersion, Delivery
from campaigns.services.tracking import Hit, hit_count
from channels.models import ChannelConfiguration
from config import rawsql

# What a web process keeps of the versions clicked and of their configurations' settings.
VERSIONS_KEPT = 256
SETTINGS_SECONDS = 10

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _never_cached(view):
    """As django.views.decorators.cache.never_cache, with headers written once: never_cache works them out on each
    response (Expires from the clock, Cache-Control parsed and merged), which cost half as much as the pixel's view."""

    @wraps(view)
    def never_cached(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        for name, value in _NEVER_CACHED:
            response.headers[name] = value
        return response

    return never_cached


_NEVER_CACHED = (
    ("Cache-Control", "max-age=0, no-cache, no-store, must-revalidate, private"),
    ("Expires", "Thu, 01 Jan 1970 00:00:00 GMT"),
)


@login_not_required
@_never_cached
@require_http_methods(["GET", "HEAD"])
def track_open(request, token):
    try:
        named = tracking.read_open_token(token)
    except tracking.BadToken:
        return _not_found(request)
    _count(request, named.delivery_id, link=None)
    return HttpResponse(PIXEL, content_type="image/gif")


@login_not_required
@_never_cached
@require_http_methods(["GET", "HEAD"])
def track_click(request, token):
    try:
        named = tracking.read_click_token(token)
    except tracking.BadToken:
        return _not_found(request)
    version_id = named.version_id
    if version_id is None:  # a link sent before tokens named the version
        row = rawsql.fetchone_unchecked(_VERSION_OF_DELIVERY, [named.delivery_id])
        version_id = row[0] if row else None
    version = _version(version_id) if version_id is not None else None
    if version is None or named.link >= len(version.urls):
        return _not_found(request)
    utm = tracking.utm_parameters(_configuration_settings(version.configuration_id), version.name)
    _count(request, named.delivery_id, link=named.link)
    return HttpResponseRedirect(tracking.destination(version.urls[named.link], utm))


_VERSION_OF_DELIVERY = f"SELECT version_id FROM {Delivery._meta.db_table} WHERE id = %s"  # noqa: S608


def _count(request, delivery_id: int, *, link: int | None) -> None:
    """Count the request: a machine's by what it is (campaigns.tracking.request_machine_reason) or, decided when
    it is written, by coming within seconds of the message's sending."""
    machine = tracking.request_machine_reason(
        method=request.method,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),  # request.headers would copy every header first
        address=request.META.get("REMOTE_ADDR"),
    )
    hit_count(Hit(delivery_id, link, machine is not None, timezone.now()))


@dataclass(frozen=True, slots=True)
class _Version:
    urls: tuple[str, ...]  # its tracked links' URLs, by position
    name: str
    configuration_id: int


def _version(version_id: int) -> _Version | None:
    """What a click needs of a version, kept by the process (the last VERSIONS_KEPT read): a version that was sent
    is never changed (campaigns.services.lifecycle), its links are the same for good."""
    try:
        return _version_read(version_id)
    except LookupError:
        return None  # not kept: asked again at the next click


@lru_cache(maxsize=VERSIONS_KEPT)
def _version_read(version_id: int) -> _Version:
    row = CampaignVersion.objects.filter(pk=version_id).values_list("html_body", "name", "channel_configuration_id")
    found = row.first()
    if found is None:
        raise LookupError(version_id)
    html_body, name, configuration_id = found
    return _Version(tracking.version_links(html_body).urls, name, configuration_id)


_settings: dict[int, tuple[float, dict]] = {}


def _configuration_settings(configuration_id: int) -> dict:
    """The configuration's settings (its UTM parameters), read again when older than SETTINGS_SECONDS: a change
    reaches the clicks of messages already sent within that time."""
    kept = _settings.get(configuration_id)  # one lookup: another thread may replace it meanwhile
    if kept is None or time.monotonic() - kept[0] > SETTINGS_SECONDS:
        found = ChannelConfiguration.objects.filter(pk=configuration_id).values_list("settings", flat=True).first()
        kept = _settings[configuration_id] = (time.monotonic(), found or {})
    return kept[1]


def _not_found(request):
    return render(request, "campaigns/link_invalid.html", status=404)
