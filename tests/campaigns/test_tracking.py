"""Open and click tracking of our own: messages sent through a configuration that tracks carry signed redirect links
and an open pixel; a click counts once a request in one row and lands on the link's URL; a forged or altered token,
or one naming a link the content does not have, is refused without a redirect; machines' requests are counted
apart from people's; without tracking, messages leave as written."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.utils import timezone

from audiences.models import Audience
from campaigns import tracking
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery, Engagement, Run
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.unsubscribe import unsubscribe_url
from tests.campaigns.test_execution import make_profiles
from tests.conftest import make_email_configuration

GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
PERSON = {"HTTP_USER_AGENT": BROWSER, "REMOTE_ADDR": "203.0.113.7"}
SALE = "https://shop.example.com/sale?x=1&y=2"
CONTENT = Content(
    "Spring sale",
    '<html><head><link href="https://cdn.example.com/style.css" rel="stylesheet"></head><body>'
    '<p><a class="button" href="https://shop.example.com/sale?x=1&amp;y=2">Sale</a></p>'
    '<p><a href="https://shop.example.com/p/{{ profile.first_name }}">Yours</a> <a href="mailto:help@example.com">'
    'Help</a> <a href="#top">Top</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    "<p>See https://shop.example.com/text-only</p>"
    '<p><a href="https://shop.example.com/new">New</a></p></body></html>',
    "Sale: https://shop.example.com/sale",
)
TRACKING = {"track_opens": True, "track_clicks": True}


def _activated(personas, configuration, content=CONTENT) -> int:
    """A campaign to everyone activated, its run started and planned: the run's id."""
    campaign = campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=configuration,
        audience=Audience.objects.get_or_create(name="Everyone", kind=Audience.Kind.ALL)[0],
        content=content,
    )
    campaign_activate(campaign=campaign, actor=personas["ada"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    return run_id


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path


def _sent_a_minute_ago(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.SENT, sent_at=timezone.now() - timedelta(minutes=1)
    )


@pytest.fixture
def delivery(redis, personas):
    """One delivery of a campaign tracked with UTM parameters, sent a minute ago (planned, never really sent)."""
    make_profiles(1)
    configuration = make_email_configuration(port=25, utm_parameters=True, **TRACKING)
    run_id = _activated(personas, configuration)
    delivery = Delivery.objects.get(run_id=run_id)
    _sent_a_minute_ago(delivery)
    return delivery


def tracked_delivery(*, actor, configuration, audience, profile) -> Delivery:
    """A delivery sent an hour ago, of a draft campaign whose HTML has one tracked link (written to the ledger
    directly: the authorization matrix and the hostile-input tests reach the tracking URLs with its tokens)."""
    campaign = campaign_create(
        actor=actor,
        name="Tracked",
        channel_configuration=configuration,
        audience=audience,
        content=Content("Tracked", '<a href="https://shop.example.com/">Shop</a>', ""),
    )
    version = campaign.latest_version()
    now = timezone.now()
    run = Run.objects.create(campaign=campaign, version=version, occurrence="tracked", state=Run.State.COMPLETE)
    return Delivery.objects.create(
        run=run,
        version=version,
        profile=profile,
        channel="email",
        channel_configuration=configuration,
        address=profile.email,
        due_at=now,
        status=Delivery.Status.SENT,
        sent_at=now - timedelta(hours=1),
    )


def open_path(delivery_id: int) -> str:
    return _path(re.search(r'src="([^"]*)"', tracking.with_open_pixel("", delivery_id))[1])


def click_path(delivery_id: int, position: int = 0) -> str:
    version_id = Delivery.objects.values_list("version_id", flat=True).get(pk=delivery_id)
    return _path(tracking.link_urls(delivery_id, version_id, position + 1)[position])


def _clicks(delivery: Delivery) -> list[tuple[int, bool, int]]:
    rows = Engagement.objects.filter(delivery=delivery, kind=Engagement.Kind.CLICK).order_by("link", "machine")
    return [(row.link, row.machine, row.count) for row in rows]


# Through a real send ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_tracked_message_arrives_with_signed_links_and_a_pixel_and_its_click_lands_on_the_link(
    redis, smtp_server, personas, client
):
    [person] = make_profiles(1)
    configuration = make_email_configuration(port=smtp_server.port, utm_parameters=True, **TRACKING)
    run_id = _activated(personas, configuration)

    sending.send_run(run_id=run_id)

    delivery = Delivery.objects.get(run_id=run_id)
    [message] = smtp_server.by_recipient()[person.email]
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    links = re.findall(r'href="([^"]*)"', html)
    clicks = [link for link in links if "/t/c/" in link]
    assert clicks == tracking.link_urls(delivery.pk, delivery.version_id, 2)
    unsubscribe = unsubscribe_url(profile_id=person.pk, channel="email", delivery_id=delivery.pk)
    # Everything else as written: the stylesheet, Liquid's link, mailto:, the anchor, both unsubscribe links.
    assert [link for link in links if link not in clicks] == [
        "https://cdn.example.com/style.css",
        f"https://shop.example.com/p/{person.attributes['first_name']}",
        "mailto:help@example.com",
        "#top",
        unsubscribe,
        unsubscribe,  # the configuration's footer
    ]
    assert "See https://shop.example.com/text-only" in html
    assert message.get_body(("plain",)).get_content().startswith("Sale: https://shop.example.com/sale\r\n")
    [pixel] = re.findall(r'<img src="([^"]*)" width="1" height="1"', html)
    assert html.index(pixel) < html.index("</body>")

    _sent_a_minute_ago(delivery)
    first = client.get(_path(clicks[0]), **PERSON)
    second = client.get(_path(clicks[0]), **PERSON)
    opened = client.get(_path(pixel), **PERSON)

    expected = f"{SALE}&utm_source=newsletter&utm_medium=email&utm_campaign=Spring+sale"
    assert (first.status_code, first["Location"]) == (302, expected)
    assert (second.status_code, second["Location"]) == (302, expected)
    assert _clicks(delivery) == [(0, False, 2)]
    assert (opened.status_code, opened["Content-Type"]) == (200, "image/gif")
    [open_row] = Engagement.objects.filter(delivery=delivery, kind=Engagement.Kind.OPEN)
    assert (open_row.link, open_row.machine, open_row.count) == (None, False, 1)


@pytest.mark.django_db(transaction=True)
def test_without_tracking_links_leave_as_written_and_no_pixel_is_added(redis, smtp_server, personas):
    [person] = make_profiles(1)
    run_id = _activated(personas, make_email_configuration(port=smtp_server.port))

    sending.send_run(run_id=run_id)

    [message] = smtp_server.by_recipient()[person.email]
    html = message.get_body(("html",)).get_content()
    assert '<a class="button" href="https://shop.example.com/sale?x=1&amp;y=2">' in html
    assert '<a href="https://shop.example.com/new">' in html
    assert "/t/" not in html and "<img" not in html


@pytest.mark.django_db(transaction=True)
def test_opens_alone_add_the_pixel_and_leave_links_as_written(redis, smtp_server, personas):
    [person] = make_profiles(1)
    run_id = _activated(personas, make_email_configuration(port=smtp_server.port, track_opens=True))

    sending.send_run(run_id=run_id)

    [message] = smtp_server.by_recipient()[person.email]
    html = message.get_body(("html",)).get_content()
    assert '<a href="https://shop.example.com/new">' in html and "/t/c/" not in html
    assert html.count("/t/o/") == 1


# The redirect ------------------------------------------------------------------------------------------------


def test_a_click_counts_once_a_request_in_one_row_and_lands_on_each_links_own_url(delivery, client):
    first, second = tracking.link_urls(delivery.pk, delivery.version_id, 2)

    responses = [client.get(_path(url), **PERSON) for url in (first, second, second)]

    utm = "utm_source=newsletter&utm_medium=email&utm_campaign=Spring+sale"
    assert [(r.status_code, r["Location"]) for r in responses] == [
        (302, f"{SALE}&{utm}"),
        (302, f"https://shop.example.com/new?{utm}"),
        (302, f"https://shop.example.com/new?{utm}"),
    ]
    assert _clicks(delivery) == [(0, False, 1), (1, False, 2)]
    row = Engagement.objects.get(delivery=delivery, link=1)
    assert row.first_at < row.last_at


def test_utm_parameters_are_added_only_when_asked_and_never_over_the_links_own(redis, personas, client):
    make_profiles(1)
    plain = make_email_configuration(port=25, name="Plain", **TRACKING)
    own = Content("Sale", '<a href="https://shop.example.com/?utm_source=partner#top">Go</a>', "")
    asked = make_email_configuration(port=25, name="Asked", utm_parameters=True, utm_medium="", **TRACKING)
    deliveries = []
    for configuration, content in ((plain, CONTENT), (asked, own)):
        delivery = Delivery.objects.get(run_id=_activated(personas, configuration, content))
        _sent_a_minute_ago(delivery)
        deliveries.append(delivery)

    [without, with_own] = [
        client.get(_path(tracking.link_urls(d.pk, d.version_id, 1)[0]), **PERSON) for d in deliveries
    ]

    assert without["Location"] == SALE
    assert with_own["Location"] == "https://shop.example.com/?utm_source=partner&utm_campaign=Spring+sale#top"


def test_a_forged_or_altered_token_is_refused_with_the_404_page_and_nothing_counted(delivery, client, settings):
    [valid] = tracking.link_urls(delivery.pk, delivery.version_id, 1)
    token = _path(valid).split("/")[-2]
    payload, signature = token.rsplit(":", 1)
    other_key = signing.Signer(key="another installation's key", salt="campaigns.tracking")
    open_token = signing.Signer(salt="campaigns.tracking").sign(f"o.{delivery.pk}")
    refused = [
        f"{payload}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # altered signature
        f"c.{delivery.pk + 1}.{delivery.version_id}.0:{signature}",  # another delivery under this one's signature
        f"c.{delivery.pk}.{delivery.version_id}.1:{signature}",  # another link under this one's signature
        f"c.{delivery.pk}.0:{signature}",  # a link of before versions were named, under this one's signature
        other_key.sign(f"c.{delivery.pk}.{delivery.version_id}.0"),  # forged with another key
        signing.Signer(salt="channels.unsubscribe").sign(f"c.{delivery.pk}.{delivery.version_id}.0"),  # another use
        open_token,  # an open's token is no click's
        payload,
    ]

    for bad in refused:
        response = client.get(f"/t/c/{bad}/", **PERSON)
        assert response.status_code == 404, bad
        assert "Location" not in response
        assert b"This link is not valid" in response.content
    assert client.get(f"/t/o/{token}/", **PERSON).status_code == 404
    assert client.get("/t/c//", **PERSON).status_code == 404
    assert not Engagement.objects.exists()


def test_no_token_leads_to_a_url_the_content_does_not_have_and_no_missing_message_is_counted(delivery, client):
    """A valid signature over a position past the version's links, or naming a version (or, for a link of before
    tokens named the version, a delivery) that does not exist, leads nowhere: the URL is read back from the
    content, never from the token. A message that does not exist (deleted with its campaign) is counted nothing;
    its pixel still answers, and a click on its version's link still lands there."""
    signer = signing.Signer(salt="campaigns.tracking")
    version = delivery.version_id

    refused = [
        f"c.{delivery.pk}.{version}.2",  # past the version's two links
        f"c.{delivery.pk}.2",  # the same, in a link of before tokens named the version
        f"c.{delivery.pk}.{version + 1000}.0",  # no such version
        f"c.{delivery.pk + 1000}.0",  # no such delivery, whose version was to be read from it
    ]
    answers = [client.get(f"/t/c/{signer.sign(payload)}/", **PERSON).status_code for payload in refused]
    gone_click = client.get(f"/t/c/{signer.sign(f'c.{delivery.pk + 1000}.{version}.0')}/", **PERSON)
    gone_open = client.get(f"/t/o/{signer.sign(f'o.{delivery.pk + 1000}')}/", **PERSON)

    assert answers == [404, 404, 404, 404]
    assert (gone_click.status_code, gone_click["Location"].split("&utm")[0]) == (302, SALE)
    assert gone_open.status_code == 200
    assert not Engagement.objects.exists()


def test_a_link_sent_before_tokens_named_the_version_still_counts_and_lands(delivery, client):
    old_token = signing.Signer(salt="campaigns.tracking").sign(f"c.{delivery.pk}.1")

    response = client.get(f"/t/c/{old_token}/", **PERSON)

    assert (response.status_code, response["Location"].split("?")[0]) == (302, "https://shop.example.com/new")
    assert _clicks(delivery) == [(1, False, 1)]


def test_the_open_pixel_is_a_transparent_gif_never_cached(delivery, client):
    response = client.get(_path(re.search(r'src="([^"]*)"', tracking.with_open_pixel("", delivery.pk))[1]), **PERSON)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif" and response.content.startswith(b"GIF89a")
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies


# Machines ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("head", PERSON),
        (
            "get",
            {**PERSON, "HTTP_USER_AGENT": GMAIL_PROXY},
        ),
        (
            "get",
            {**PERSON, "HTTP_USER_AGENT": "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"},
        ),
        ("get", {**PERSON, "REMOTE_ADDR": "17.58.100.12"}),  # Apple's network: Mail Privacy Protection
        ("get", {**PERSON, "HTTP_USER_AGENT": "Barracuda Sentinel (EE)"}),
        ("get", {**PERSON, "HTTP_USER_AGENT": "python-requests/2.32.3"}),
        ("get", {"REMOTE_ADDR": "203.0.113.7"}),  # no User-Agent at all
    ],
    ids=["head", "gmail-proxy", "yahoo-proxy", "apple-network", "scanner", "http-library", "no-user-agent"],
)
def test_proxies_scanners_and_head_requests_are_counted_as_machines(delivery, client, method, headers):
    click = _path(tracking.link_urls(delivery.pk, delivery.version_id, 1)[0])
    pixel = _path(re.search(r'src="([^"]*)"', tracking.with_open_pixel("", delivery.pk))[1])

    clicked = getattr(client, method)(click, **headers)
    opened = getattr(client, method)(pixel, **headers)

    assert clicked.status_code == 302 and clicked["Location"].startswith(SALE)
    assert opened.status_code == 200
    assert sorted(Engagement.objects.values_list("kind", "machine", "count")) == [("click", True, 1), ("open", True, 1)]


def test_requests_within_seconds_of_sending_are_machines_and_later_ones_the_persons(delivery, client):
    click = _path(tracking.link_urls(delivery.pk, delivery.version_id, 1)[0])
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now() - timedelta(seconds=2))
    client.get(click, **PERSON)  # a scanner following the link as the message arrives
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now() - timedelta(seconds=30))

    client.get(click, **PERSON)
    client.get(click, **PERSON)

    assert _clicks(delivery) == [(0, False, 2), (0, True, 1)]


# Which links are tracked -------------------------------------------------------------------------------------


def test_only_absolute_links_written_in_the_content_are_tracked():
    source = (
        '<a href="https://a.example.com/1">1</a>'
        "<A HREF='http://b.example.com/2?q=1&amp;r=2'>2</A>"
        '<area shape="rect" href="https://c.example.com/3">'
        '<a href="{{ unsubscribe_url }}">u</a>'
        '<a href="https://d.example.com/{{ profile.id }}">liquid</a>'
        '<a href="mailto:x@example.com">m</a><a href="tel:+331">t</a><a href="#top">#</a><a href="/relative">r</a>'
        '<link href="https://cdn.example.com/s.css"><img src="https://cdn.example.com/i.png">'
        '{% raw %}<a href="https://raw.example.com/">raw</a>{% endraw %}'
        '{% comment %}<a href="https://comment.example.com/">c</a>{% endcomment %}'
        "{{ '<a href=\"https://string.example.com/\">s</a>' }}"
        '<a href="https://e.example.com/&#10;x">newline</a>'
        '<a href="http://127.0.0.1:8000/u/1.e:sig/">our unsubscribe</a>'
        '<p> href="https://f.example.com/">not a tag</p>'
    )

    links = tracking.version_links(source)

    assert links.urls == ("https://a.example.com/1", "http://b.example.com/2?q=1&r=2", "https://c.example.com/3")
    assert links.source.count(tracking.LINKS_VARIABLE) == 3
    for kept in ("{{ unsubscribe_url }}", "raw.example.com", "comment.example.com", "string.example.com", "/u/1.e"):
        assert kept in links.source


def test_the_redirect_never_answers_a_post(delivery, client):
    response = client.post(_path(tracking.link_urls(delivery.pk, delivery.version_id, 1)[0]))

    assert response.status_code == 405
    assert not Engagement.objects.exists()


def test_an_open_of_a_message_the_relay_never_confirmed_counts_as_the_persons_once_time_has_passed(delivery, client):
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.UNKNOWN, sent_at=None, first_attempt_at=an_hour_ago
    )

    response = client.get(_path(re.search(r'src="([^"]*)"', tracking.with_open_pixel("", delivery.pk))[1]), **PERSON)

    assert response.status_code == 200
    assert list(Engagement.objects.values_list("kind", "machine")) == [("open", False)]
