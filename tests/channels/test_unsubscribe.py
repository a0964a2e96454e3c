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
        # Ids we never write: "²".isdigit() holds but int() refuses it; 19 digits pass what an id holds.
        lambda token: signing.Signer(salt="channels.unsubscribe").sign("²³.e"),
        lambda token: signing.Signer(salt="channels.unsubscribe").sign("99.e.１"),
        lambda token: signing.Signer(salt="channels.unsubscribe").sign("9" * 19 + ".e"),
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
    from campaigns.models import Delivery
    from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
    from config.scheduler import scheduler_tick
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
    scheduler_tick()
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


# A link opts out one profile of one channel, and nothing else


def _token_parts(token: str) -> tuple[str, str]:
    payload, _, signature = token.rpartition(":")
    return payload, signature


@pytest.mark.parametrize(
    "altered_payload",
    [
        "{profile}.e.2",  # another delivery under the first one's signature
        "{profile}.e",  # the delivery cut off
        "{profile}.e.1.1",
        "{profile}.E.1",
        "0{profile}.e.1",  # the same number written another way is another payload
        " {profile}.e.1",
    ],
)
def test_altering_any_part_of_a_link_under_its_signature_is_refused(browserless, zoe, altered_payload):
    _payload, signature = _token_parts(unsubscribe_token(profile_id=zoe.pk, channel="email", delivery_id=1))
    token = f"{altered_payload.format(profile=zoe.pk)}:{signature}"

    with pytest.raises(BadToken):
        read_unsubscribe_token(token)
    assert browserless.post(f"/u/{token}/", {"List-Unsubscribe": "One-Click"}).status_code == 400
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize(
    "strip", [lambda token: token.rpartition(":")[0], lambda token: token.rpartition(":")[0] + ":"]
)
def test_a_link_without_its_signature_is_refused(browserless, zoe, strip):
    token = strip(unsubscribe_token(profile_id=zoe.pk, channel="email", delivery_id=1))

    with pytest.raises(BadToken):
        read_unsubscribe_token(token)
    assert browserless.post(f"/u/{token}/", {"List-Unsubscribe": "One-Click"}).status_code == 400
    assert not ConsentEvent.objects.exists()


def test_a_link_signed_by_another_installation_is_refused(browserless, zoe, settings):
    settings.SECRET_KEY = "another-installation-" + "x" * 40
    token = unsubscribe_token(profile_id=zoe.pk, channel="email", delivery_id=1)
    settings.SECRET_KEY = "this-installation-" + "y" * 40

    response = browserless.post(f"/u/{token}/", {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 400
    assert b"This unsubscribe link is not valid" in response.content and b"Nothing was changed" in response.content
    assert not ConsentEvent.objects.exists()


def test_links_sent_before_a_key_rotation_work_while_the_old_key_is_a_fallback(browserless, zoe, settings):
    old_key, new_key = "old-installation-key-" + "x" * 40, "new-installation-key-" + "y" * 40
    settings.SECRET_KEY = old_key
    path = _path(unsubscribe_url(profile_id=zoe.pk, channel="email", delivery_id=1))
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = new_key, [old_key]

    response = browserless.post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Consent.objects.get(profile=zoe, channel="email").state == Consent.State.OPTED_OUT


def test_a_link_read_a_year_later_still_works(browserless, zoe):
    import time_machine

    with time_machine.travel("2026-01-01 09:00Z"):
        path = _path(unsubscribe_url(profile_id=zoe.pk, channel="email", delivery_id=1))
    with time_machine.travel("2027-03-01 09:00Z"):
        response = browserless.post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Consent.objects.get(profile=zoe, channel="email").state == Consent.State.OPTED_OUT


@pytest.mark.parametrize(
    ("channel", "label"),
    [("email", "Email"), ("sms", "SMS"), ("push", "Push"), ("webhook", "Webhook"), ("in_app", "In-app")],
)
@pytest.mark.parametrize("delivery_id", [None, 7])
def test_a_link_of_each_channel_opts_out_of_that_channel_only(browserless, zoe, channel, label, delivery_id):
    token = unsubscribe_token(profile_id=zoe.pk, channel=channel, delivery_id=delivery_id)
    assert read_unsubscribe_token(token) == UnsubscribeToken(zoe.pk, channel, delivery_id)

    page = browserless.get(f"/u/{token}/")
    done = browserless.post(f"/u/{token}/", {"List-Unsubscribe": "One-Click"})

    assert f"Stop receiving marketing {label} messages" in page.content.decode()
    assert f"You will no longer receive marketing {label} messages" in done.content.decode()
    assert list(Consent.objects.filter(profile=zoe).values_list("channel", "state")) == [(channel, "opted_out")]


def test_the_page_says_already_unsubscribed_only_for_the_channel_opted_out(browserless, zoe):
    Consent.objects.create(profile=zoe, channel="sms", state=Consent.State.OPTED_OUT)

    email_page = browserless.get(_path(unsubscribe_url(profile_id=zoe.pk, channel="email")))
    sms_page = browserless.get(_path(unsubscribe_url(profile_id=zoe.pk, channel="sms")))

    assert b"already unsubscribed" not in email_page.content
    assert b"already unsubscribed" in sms_page.content


def test_an_opted_in_channel_is_not_shown_as_already_unsubscribed(browserless, zoe):
    Consent.objects.create(profile=zoe, channel="email", state=Consent.State.OPTED_IN)

    page = browserless.get(_path(unsubscribe_url(profile_id=zoe.pk, channel="email")))

    assert b"already unsubscribed" not in page.content


def test_opening_a_link_of_an_erased_profile_says_there_is_nothing_to_unsubscribe(browserless, zoe):
    path = _path(unsubscribe_url(profile_id=zoe.pk, channel="email"))
    zoe.delete()

    response = browserless.get(path)

    assert response.status_code == 404
    assert b"Nothing to unsubscribe" in response.content


@pytest.mark.parametrize(
    ("phone", "shown"),
    [("+447700900123", "+44••••••••23"), ("+1555012", "+15•••12"), ("+12345", "+12•45"), ("12345", "123•45")],
)
def test_the_page_shows_enough_of_a_number_for_its_owner_only(browserless, db, phone, shown):
    profile = Profile.objects.create(phone=phone)

    content = browserless.get(_path(unsubscribe_url(profile_id=profile.pk, channel="sms"))).content.decode()

    assert f"at <strong>{shown}</strong>" in content
    assert phone not in content


def test_the_page_of_a_profile_without_that_address_shows_none(browserless, db):
    profile = Profile.objects.create(phone="+447700900123")

    content = browserless.get(_path(unsubscribe_url(profile_id=profile.pk, channel="email"))).content.decode()

    assert "Stop receiving marketing Email messages?" in content
    assert "<strong>" not in content and "•" not in content


def test_the_link_follows_site_url_when_it_changes(settings):
    settings.SITE_URL = "https://one.example.org"
    first = unsubscribe_url(profile_id=1, channel="email")
    settings.SITE_URL = "https://two.example.org"
    second = unsubscribe_url(profile_id=1, channel="email")

    assert first.startswith("https://one.example.org/u/") and second.startswith("https://two.example.org/u/")
    assert first.removeprefix("https://one.example.org") == second.removeprefix("https://two.example.org")


def test_no_cache_keeps_or_shares_a_recipients_page(browserless, zoe):
    path = _path(unsubscribe_url(profile_id=zoe.pk, channel="email", delivery_id=5))

    for response in (browserless.get(path), browserless.post(path, {"List-Unsubscribe": "One-Click"})):
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


# Links already sent, as an earlier release wrote them for this SECRET_KEY: a change of the token's format, salt or
# channel letters would break every unsubscribe link in people's inboxes.
LINKS_ALREADY_SENT = [
    ("email", 42, "1234.e.42:QLQLU_Hc9O1fbI1wv2VJtzZI4w2CVBhAPKNeuznnaXw"),
    ("sms", None, "1234.s:BsyBm1M_UnxF35mWIf4OHjgBwdn95eXKFrjJkQ0D0Gg"),
    ("push", 7, "1234.p.7:UfU5RNRzcsypnj0mqbx3W7ETP7c7AoddHglRrHxOExI"),
    ("webhook", 8, "1234.w.8:JzsJs_24yBy2oQjS2Iorp6DZM0QlmQS4uhHg34Xym8s"),
    ("in_app", 9, "1234.i.9:Y30v3k8l83Jr-J708DPx6TNZrt8yH-NJNPvIM_RoIGA"),
]


@pytest.mark.parametrize(("channel", "delivery_id", "token"), LINKS_ALREADY_SENT)
def test_links_sent_by_an_earlier_release_still_work(settings, channel, delivery_id, token):
    settings.SECRET_KEY = "a-fixed-key-for-the-format-of-links-already-sent-0123456789"

    assert read_unsubscribe_token(token) == UnsubscribeToken(1234, channel, delivery_id)
    assert unsubscribe_token(profile_id=1234, channel=channel, delivery_id=delivery_id) == token
