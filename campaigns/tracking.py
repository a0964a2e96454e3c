"""Open and click tracking of our own, for the email configurations that turn it on (`track_opens`,
`track_clicks`, channels.schemas).

Clicks: each absolute http(s) link written as it is in a version's HTML (the `href` of an `<a>` or `<area>`, with
no Liquid in it) has a position, found once per version (`version_links`). The send path renders each message with
those links pointing at our redirect, whose signed token names the delivery and the position; the redirect reads
the URL back from the version's content. A token therefore leads only to a URL present in the content (no open
redirect), and altering it breaks its signature. Left as written: `{{ unsubscribe_url }}` and every link Liquid
builds, the configuration's footer (the adapter appends it after rendering), mailto:, tel:, anchors, and the text
part.

Opens: a 1x1 GIF before `</body>`, its token naming the delivery.

Tokens are signed as channels.unsubscribe signs its own (django.core.signing's Signer, HMAC-SHA256 keyed from
SECRET_KEY, a salt of their own) and never expire; rotating SECRET_KEY breaks the links already sent unless the old
key stays in SECRET_KEY_FALLBACKS. A token reads `o.<delivery id>` or `c.<delivery id>.<version id>.<position>`,
then the signature: an open's token cannot stand for a click's. A click's token names the message's version, so the
redirect finds the URL without reading the message; links sent before it did (`c.<delivery id>.<position>`) are
still followed, the version read from the message.

Machine requests (`request_machine_reason`, and those within seconds of sending) are counted apart from people's:
mail privacy proxies load images as a message arrives, and mail security scanners follow its links.
"""

import html
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

from campaigns.personalization import CompiledContent, ContentError, compiled_content

log = logging.getLogger(__name__)

_SALT = "campaigns.tracking"
# The Liquid variable the send path renders the tracked links' URLs from, by position.
LINKS_VARIABLE = "_tracked_links"
# A version with more links tracks its first ones only (a link's position is a small integer in the ledger).
MAX_LINKS = 1000
# Requests this soon after a message was sent come from machines: proxies and scanners fetch as mail arrives.
MACHINE_SECONDS = 10
_ID = re.compile(r"[0-9]{1,18}")
_POSITION = re.compile(r"[0-9]{1,4}")

# Liquid markup, whose text is never rewritten: raw and comment blocks whole, then outputs and tags.
_LIQUID = re.compile(
    r"{%-?\s*raw\s*-?%}.*?{%-?\s*endraw\s*-?%}"
    r"|{%-?\s*comment\s*-?%}.*?{%-?\s*endcomment\s*-?%}"
    r"|{{.*?}}|{%.*?%}",
    re.DOTALL,
)
_HREF = re.compile(r"""\shref\s*=\s*(["'])(https?://[^"'\s<>{}]+)\1""", re.IGNORECASE)
_LINK_TAG = re.compile(r"<(?:a|area)\s", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)

# Mail providers' image proxies, by the User-Agent they send: Gmail's ("... via ggpht.com GoogleImageProxy") and
# Yahoo's. Any request from one of them is a machine's, whoever reads the message behind it.
_PROXY_AGENTS = re.compile(r"GoogleImageProxy|YahooMailProxy", re.IGNORECASE)
# Link scanners and HTTP libraries: mail security gateways that follow links before the person does, and crawlers
# that say they are one. A browser always sends a User-Agent; none at all is a machine too.
_SCANNER_AGENTS = re.compile(
    r"bot\b|crawler|spider|scanner|barracuda|mimecast|proofpoint|bingpreview|headlesschrome|python-requests"
    r"|python-urllib|curl/|wget/|go-http-client|java/|okhttp|libwww-perl|apache-httpclient",
    re.IGNORECASE,
)
# Apple's own network (17.0.0.0/8, registered to Apple): Mail Privacy Protection loads images through Apple's relays.
# Its relays that egress through partners' networks (iCloud Private Relay's published list, thousands of ranges)
# are not listed: those loads come as the message arrives, and MACHINE_SECONDS counts them as machines'.
_PROXY_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)
_PROXY_IPV4 = tuple((int(net.network_address), int(net.netmask)) for net in _PROXY_NETWORKS if net.version == 4)


class BadToken(Exception):
    """The token was not made by this installation, or was altered."""


@dataclass(frozen=True, slots=True)
class VersionLinks:
    """The tracked links of a version's HTML: their URLs by position, and the HTML with each one replaced by the
    Liquid output of its tracked URL."""

    urls: tuple[str, ...]
    source: str


@lru_cache(maxsize=256)
def version_links(html_body: str) -> VersionLinks:
    """The links of this HTML that clicks are tracked on, with their positions; the same for the same HTML, so the
    send path and the redirect agree on what each position names."""
    urls, parts, done = [], [], 0
    literal_start = 0
    for markup in [*_LIQUID.finditer(html_body), None]:
        literal_end = markup.start() if markup else len(html_body)
        for href in _HREF.finditer(html_body, literal_start, literal_end):
            url = _trackable(html_body, href)
            if url is None or len(urls) >= MAX_LINKS:
                continue
            parts += [html_body[done : href.start(2)], "{{ %s[%d] }}" % (LINKS_VARIABLE, len(urls))]  # noqa: UP031
            done = href.end(2)
            urls.append(url)
        if markup:
            literal_start = markup.end()
    parts.append(html_body[done:])
    return VersionLinks(tuple(urls), "".join(parts))


def _trackable(source: str, href: re.Match) -> str | None:
    """The URL an href found in literal text leads to, when it is a link's (an <a> or <area> tag's) to an absolute
    http(s) URL that a Location header can carry and that is not one of our own links; else None."""
    tag_start = source.rfind("<", 0, href.start())
    if tag_start < 0 or not _LINK_TAG.match(source, tag_start) or ">" in source[tag_start : href.start()]:
        return None
    url = html.unescape(href.group(2))  # `&amp;` in the HTML is `&` in the URL the browser follows
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if url.startswith(_own_prefixes(settings.SITE_URL)):
        return None  # an unsubscribe or tracking link written out: never rewritten
    return url


def _own_prefixes(site_url: str) -> tuple[str, ...]:
    return tuple(_url_prefix(site_url, name) for name in ("unsubscribe", "track_click", "track_open"))


@lru_cache(maxsize=256)
def _tracked(key: tuple) -> CompiledContent:
    return CompiledContent(*key[1:])


def message_content(version, *, track_clicks: bool) -> tuple[CompiledContent, int]:
    """The compiled content the send path renders, and how many tracked links its HTML has (their URLs go in the
    context as LINKS_VARIABLE: `link_urls`). Cached for the life of the worker, as `compiled_content` is."""
    if not track_clicks:
        return compiled_content(version), 0
    links = version_links(version.html_body)
    if not links.urls:
        return compiled_content(version), 0
    try:
        return _tracked((version.pk, version.subject, links.source, version.text_body)), len(links.urls)
    except ContentError as exc:  # markup our scan did not see as such: send the links as written
        log.warning("version %s: links left untracked, its HTML with tracked links does not parse: %s", version.pk, exc)
        return compiled_content(version), 0


def link_urls(delivery_id: int, version_id: int, count: int) -> list[str]:
    """The tracked URL of each of the `count` links of a message of the version `version_id`, by position."""
    prefix = _url_prefix(settings.SITE_URL, "track_click")
    signer = signing.Signer(salt=_SALT)
    return [f"{prefix}{signer.sign(f'c.{delivery_id}.{version_id}.{position}')}/" for position in range(count)]


def with_open_pixel(html_part: str, delivery_id: int) -> str:
    """The HTML with the open-tracking image before its last </body> (at its end without one)."""
    token = signing.Signer(salt=_SALT).sign(f"o.{delivery_id}")
    url = f"{_url_prefix(settings.SITE_URL, 'track_open')}{token}/"
    pixel = f'<img src="{url}" width="1" height="1" alt="" style="border:0;width:1px;height:1px">'
    ends = list(_BODY_END.finditer(html_part))
    if not ends:
        return html_part + pixel
    at = ends[-1].start()
    return html_part[:at] + pixel + html_part[at:]


@lru_cache(maxsize=8)
def _url_prefix(site_url: str, name: str) -> str:
    return site_url + reverse(name, args=["T"]).removesuffix("T/")


@dataclass(frozen=True, slots=True)
class TrackingToken:
    delivery_id: int
    link: int | None = None  # None: an open's
    version_id: int | None = None  # a click's, but for links sent before tokens named it


def read_open_token(token: str) -> TrackingToken:
    match _unsigned(token).split("."):
        case ["o", delivery_id] if _ID.fullmatch(delivery_id):
            return TrackingToken(int(delivery_id))
    raise BadToken


def read_click_token(token: str) -> TrackingToken:
    match _unsigned(token).split("."):
        case ["c", delivery_id, version_id, position] if (
            _ID.fullmatch(delivery_id) and _ID.fullmatch(version_id) and _POSITION.fullmatch(position)
        ):
            return TrackingToken(int(delivery_id), int(position), int(version_id))
        case ["c", delivery_id, position] if _ID.fullmatch(delivery_id) and _POSITION.fullmatch(position):
            return TrackingToken(int(delivery_id), int(position))
    raise BadToken


def _unsigned(token: str) -> str:
    try:
        return _signer(settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS)).unsign(token)
    except signing.BadSignature:
        raise BadToken from None


@lru_cache(maxsize=4)
def _signer(key: str, fallbacks: tuple[str, ...]) -> signing.Signer:
    return signing.Signer(key=key, fallback_keys=list(fallbacks), salt=_SALT)


@lru_cache(maxsize=4096)
def destination(url: str, utm: tuple[tuple[str, str], ...]) -> str:
    """Where a tracked link leads: its URL, with each UTM parameter of `utm` (name, value) that has a value and that
    the URL does not set itself. The same for the same link: kept for the next clicks."""
    parts = urlsplit(url)
    present = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    added = {name: value for name, value in utm if value and name not in present}
    if not added:
        return url
    query = f"{parts.query}&{urlencode(added)}" if parts.query else urlencode(added)
    return urlunsplit(parts._replace(query=query))


def utm_parameters(configuration_settings: dict, campaign_name: str) -> tuple[tuple[str, str], ...]:
    """The UTM parameters (name, value) a configuration's stored settings add to its tracked links (none unless it
    asks)."""
    if not configuration_settings.get("utm_parameters"):
        return ()
    return (
        ("utm_source", str(configuration_settings.get("utm_source") or "")),
        ("utm_medium", str(configuration_settings.get("utm_medium") or "")),
        ("utm_campaign", campaign_name),
    )


def machine_interval() -> timedelta:
    """A request this soon after its message was sent is a machine's: proxies and scanners fetch as mail arrives."""
    return timedelta(seconds=_machine_seconds())


def request_machine_reason(*, method: str, user_agent: str, address: str | None) -> str | None:
    """Why a request is a machine's by what it is alone (not by when it comes), or None."""
    if method == "HEAD":
        return "a HEAD request"  # a browser following a link or loading an image asks with GET
    if not user_agent:
        return "no user agent"
    if _PROXY_AGENTS.search(user_agent):
        return "a mail privacy proxy"
    if _SCANNER_AGENTS.search(user_agent):
        return "a link scanner"
    if address and _in_proxy_network(address):
        return "a mail privacy proxy's network"
    return None


def _machine_seconds() -> float:
    return getattr(settings, "CAMPAIGNS_TRACKING_MACHINE_SECONDS", MACHINE_SECONDS)


def _in_proxy_network(address: str) -> bool:
    try:
        # A dotted IPv4 address, the usual case, read without ipaddress's parsing (a tenth of the pixel's time).
        value = int.from_bytes(socket.inet_pton(socket.AF_INET, address))
    except (OSError, ValueError):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in _PROXY_NETWORKS)
    return any(value & mask == start for start, mask in _PROXY_IPV4)
