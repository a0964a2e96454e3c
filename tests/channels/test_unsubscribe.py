"""Unsubscribe links: signed tokens, the confirmation page and the RFC 8058 one-click POST."""

import pytest
from django.core import signing
from django.test import Client

from audiences.models import Consent, ConsentEvent, Profile
from channels.unsubscribe import (
    BadToken,
    UnsubscribeToken,
    read_unsubscribe_token,
    unsubscribe_token,
    unsubscribe_url,
)


@pytest.fixture
def zoe(db):
    return Profile.objects.create(email="zoe@example.com", phone="+447700900123")


@pytest.fixture
def browserless():
    """A mail client posting the one-click form: no cookies, no CSRF token, CSRF checks on."""
    return Client(enforce_csrf_checks=True)


def _path(url: str) -> str:
    return url.removeprefix("http://testserver")


def test_token_names_profile_channel_and_delivery():
    token = unsubscribe_token(profile_id=12, channel="sms", delivery_id=9_000_000_000)

    named = read_unsubscribe_token(token)

    assert (named.profile_id, named.channel, named.delivery_id) == (12, "sms", 9_000_000_000)
    assert "/" not in token


def test_url_is_absolute_on_site_url(settings):
    settings.SITE_URL = "https://mail.example.org"

    url = unsubscribe_url(profile_id=1, channel="email", delivery_id=2)

    assert url.startswith("https://mail.example.org/u/") and url.endswith("/")


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature altered
        lambda token: "99" + token[token.index(".") :],  # another profile under this signature
        lambda token: token.replace(".e.", ".s."),  # another channel
        lambda token: signing.Signer().sign("99.e.1"),  # signed with the key but for another purpose
        lambda token: signing.Signer(salt="channels.unsubscribe").sign("99.x.1"),  # not a payload of ours
        lambda token: signing.Signer(salt="channels.unsubscribe").sign("99.e.1.2"),
        lambda token: "not-a-token",
    ],
)
def test_tampered_token_is_refused_and_records_nothing(browserless, zoe, forge):
    token = forge(unsubscribe_token(profile_id=zoe.pk, channel="email", delivery_id=1))
    with pytest.raises(BadToken):
        read_unsubscribe_token(token)

    for method in (browserless.get, browserless.post):
        response = method(f"/u/{token}/", {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400
        assert b"not valid" in response.content

    assert not Consent.objects.exists() and not ConsentEvent.objects.exists()


def test_link_of_an_erased_profile_is_not_found(browserless, zoe):
    url = unsubscribe_url(profile_id=zoe.pk, channel="email")
    zoe.delete()

    response = browserless.post(_path(url), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 404
    assert not ConsentEvent.objects.exists()


def test_opening_the_link_asks_for_confirmation_and_changes_nothing(browserless, zoe):
    url = unsubscribe_url(profile_id=zoe.pk, channel="email", delivery_id=5)

    response = browserless.get(_path(url))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Unsubscribe" in content and "z•••@example.com" in content
    assert "zoe@example.com" not in content  # a forwarded message does not show the address whole
    assert 'method="post"' in content and "csrfmiddlewaretoken" not in content
    assert not response.cookies
    assert not ConsentEvent.objects.exists()


def test_one_click_post_opts_out_without_cookies_or_redirect(browserless, zoe):
    url = unsubscribe_url(profile_id=zoe.pk, channel="email", delivery_id=5)

    response = browserless.post(
        _path(url), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    assert not response.cookies
    assert b"You are unsubscribed" in response.content
    consent = Consent.objects.get(profile=zoe, channel="email")
    assert (consent.state, consent.source) == (Consent.State.OPTED_OUT, "unsubscribe link")


def test_second_click_is_harmless(browserless, zoe):
    path = _path(unsubscribe_url(profile_id=zoe.pk, channel="sms", delivery_id=5))

    first = browserless.post(path, {"List-Unsubscribe": "One-Click"})
    second = browserless.post(path, {"List-Unsubscribe": "One-Click"})
    page = browserless.get(path)

    assert first.status_code == second.status_code == 200
    assert list(ConsentEvent.objects.values_list("channel", "state")) == [("sms", "opted_out")]
    assert b"already unsubscribed" in page.content


def test_opt_out_covers_only_the_channel_of_the_link(browserless, zoe):
    Consent.objects.create(profile=zoe, channel="sms", state=Consent.State.OPTED_IN)

    browserless.post(_path(unsubscribe_url(profile_id=zoe.pk, channel="email")), {"List-Unsubscribe": "One-Click"})

    assert dict(Consent.objects.filter(profile=zoe).values_list("channel", "state")) == {
        "email": "opted_out",
        "sms": "opted_in",
    }


def test_other_methods_are_refused(browserless, zoe):
    path = _path(unsubscribe_url(profile_id=zoe.pk, channel="email"))

    assert browserless.put(path).status_code == 405
    assert not ConsentEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_sent_mail_carries_a_working_link_in_content_and_list_unsubscribe(redis, smtp_server, personas, settings):
    from audiences.models import Audience
    from campaigns import execution
    from campaigns.lifecycle import Content, campaign_activate, campaign_create
    from campaigns.models import Delivery
    from tests.conftest import make_email_configuration, run_burst_worker

    settings.SITE_URL = "http://testserver"
    zoe = Profile.objects.create(email="zoe@example.com")
    campaign = campaign_create(
        actor=personas["april"],
        name="News",
        channel_configuration=make_email_configuration(port=smtp_server.port),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("News", '<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "Stop: {{ unsubscribe_url }}"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    execution.scheduler_tick()
    run_burst_worker()

    [message] = smtp_server.by_recipient()["zoe@example.com"]
    header_url = message["List-Unsubscribe"].strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"Stop: {header_url}" in message.get_body(("plain",)).get_content()
    assert f'href="{header_url}"' in message.get_body(("html",)).get_content()
    delivery = Delivery.objects.get(profile=zoe)
    assert read_unsubscribe_token(header_url.split("/")[-2]) == UnsubscribeToken(zoe.pk, "email", delivery.pk)

    response = Client(enforce_csrf_checks=True).post(_path(header_url), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Consent.objects.get(profile=zoe, channel="email").state == Consent.State.OPTED_OUT
