"""Proof sends from the campaign page (issue 14, item 4): a version's content, rendered as the preview renders it,
sent now through the campaign's configuration to a real SMTP server on loopback, with "[Proof] " before the subject,
counted nowhere, audited, refused without `send_proof`, for bad addresses or more than ten, and rate-limited; sent to
profiles (`#42`, for those who may read profiles), each rendered as itself at its own address."""

from datetime import timedelta
from email.utils import getaddresses

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from audiences.models import Audience, Profile
from audiences.services.privacy import profile_erase
from campaigns import selectors
from campaigns.models import Campaign, CampaignVersion, Delivery, Run
from campaigns.services import lifecycle, proofs
from permissions.models import AuditEvent
from tests.channels.conftest import make_configuration
from tests.conftest import make_email_configuration
from tests.smtp_servers import RecordingSMTPServer

HTMX = {"HTTP_HX_REQUEST": "true"}
HTML = '<p>Hi {{ profile.first_name }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'


@pytest.fixture
def relay(smtp_server):
    return make_email_configuration(port=smtp_server.port, name="Loopback relay")


@pytest.fixture
def campaign(personas, relay):
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    return lifecycle.campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=relay,
        audience=audience,
        content=lifecycle.Content("Sale for {{ profile.first_name }}", HTML, "Hi {{ profile.first_name }}, 20% off"),
    )


def _post(client, user, campaign, data, *, htmx=True):
    client.force_login(user)
    return client.post(reverse("campaigns:proof", args=[campaign.pk]), data, **(HTMX if htmx else {}))


def _recipients(smtp_server) -> list[str]:
    return sorted(rcpt for item in smtp_server.messages for rcpt in item["rcpt_tos"])


def test_a_proof_reaches_the_relay_with_the_prefix_and_counts_nowhere(client, personas, campaign, smtp_server):
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})
    before = selectors.delivery_counts(campaign_id=campaign.pk)

    response = _post(
        client,
        personas["manny"],
        campaign,
        {"addresses": "qa@example.com,\nBoss@Example.COM", "version": "1", "profile": ann.pk},
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Proof sent to <strong>qa@example.com</strong>" in page
    assert "Proof sent to <strong>Boss@example.com</strong>" in page  # the domain in lower case, as profiles keep it
    assert _recipients(smtp_server) == ["Boss@example.com", "qa@example.com"]
    message = smtp_server.messages[0]["message"]
    assert message["Subject"] == "[Proof] Sale for Ann"
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Hi Ann, 20% off")
    html = message.get_body(("html",)).get_content()
    assert "<p>Hi Ann</p>" in html
    # A reader of the proof unsubscribes nobody: the links go nowhere (a footer's too), and no header offers one.
    assert html.count('href="#unsubscribe-link"') == 2  # the content's and the footer's, which is added once
    assert "/u/" not in html and "/u/" not in text
    assert message["List-Unsubscribe"] is None
    assert message["From"] == "Shop <news@example.com>"
    # Two messages, two Message-IDs: a mailbox that drops repeats keeps both.
    assert len({item["message"]["Message-ID"] for item in smtp_server.messages}) == 2

    # Nothing in the ledger: no run, no delivery, the campaign's figures as they were.
    assert not Run.objects.exists() and not Delivery.objects.exists()
    assert selectors.delivery_counts(campaign_id=campaign.pk) == before
    event = AuditEvent.objects.get(action="campaign.proof_sent")
    assert (event.actor, event.object_id) == (personas["manny"], str(campaign.pk))
    assert event.after == {
        "version": 1,
        "addresses": ["qa@example.com", "Boss@example.com"],
        "profile": ann.pk,
        "profiles": [],
        "outcomes": {"qa@example.com": "sent", "Boss@example.com": "sent"},
    }


def test_a_proof_of_a_triggered_campaign_carries_the_contract_examples(client, personas, smtp_server):
    relay = make_email_configuration(port=smtp_server.port, purpose="transactional")
    reset = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Password reset",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=relay,
        audience=None,
        content=lifecycle.Content(
            "Reset for {{ profile.email }}", "<p>{{ context.reset_url }}</p>", "Within {{ context.hours }}h"
        ),
    )
    lifecycle.campaign_update_contract(
        campaign=reset,
        actor=personas["manny"],
        contract=[
            {"name": "reset_url", "type": "string", "example": "https://shop.example/r/abc"},
            {"name": "hours", "type": "integer", "example": 24},
        ],
    )

    # April, an approver, may send proofs but not read profiles: the sample profile, whatever is posted.
    ann = Profile.objects.create(email="ann@example.com")
    response = _post(
        client, personas["april"], reset, {"addresses": "qa@example.com", "version": "1", "profile": ann.pk}
    )

    assert "Proof sent to" in response.content.decode()
    message = smtp_server.messages[0]["message"]
    assert message["Subject"] == "[Proof] Reset for recipient@example.com"
    assert "<p>https://shop.example/r/abc</p>" in message.get_body(("html",)).get_content()
    assert message.get_body(("plain",)).get_content().strip() == "Within 24h"
    assert AuditEvent.objects.get(action="campaign.proof_sent").after["profile"] is None


def _approve_first_version(campaign):
    """An approved version is never changed: the next edit makes version 2."""
    CampaignVersion.objects.filter(campaign=campaign).update(review_state=CampaignVersion.ReviewState.APPROVED)


def test_the_version_chosen_is_the_one_sent(client, personas, campaign, smtp_server):
    _approve_first_version(campaign)
    lifecycle.campaign_update_content(
        campaign=campaign, actor=personas["manny"], content=lifecycle.Content("Second draft", "<p>Two</p>", "Two")
    )
    client.force_login(personas["manny"])
    detail = client.get(campaign.get_absolute_url()).content.decode()
    assert '<option value="2" selected>Version 2 (latest)</option>' in detail  # the latest by default

    _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "1"})
    _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "2"})

    subjects = [item["message"]["Subject"] for item in smtp_server.messages]
    assert subjects == ["[Proof] Sale for", "[Proof] Second draft"]  # the sample profile has no first name


def test_each_address_gets_its_own_result(client, personas, campaign, smtp_server):
    smtp_server.recorder.rejected_recipients["gone@example.com"] = "550 5.1.1 No such user"

    page = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com gone@example.com", "version": "1"})

    content = page.content.decode()
    assert "Proof sent to <strong>qa@example.com</strong>" in content
    assert "Proof to <strong>gone@example.com</strong> not sent (permanent" in content
    assert "No such user" in content
    assert _recipients(smtp_server) == ["qa@example.com"]
    outcomes = AuditEvent.objects.get(action="campaign.proof_sent").after["outcomes"]
    assert outcomes == {"qa@example.com": "sent", "gone@example.com": "permanent"}


def test_without_htmx_the_campaign_page_comes_back_with_the_results(client, personas, campaign, smtp_server):
    response = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "1"}, htmx=False)

    assert response.status_code == 302 and response["Location"] == f"{campaign.get_absolute_url()}#proof"
    page = client.get(response["Location"]).content.decode()
    assert "Proof sent to qa@example.com." in page
    assert len(smtp_server.messages) == 1


@pytest.mark.parametrize("persona", ["vera", "otto"])
def test_a_proof_is_refused_without_send_proof(client, personas, campaign, smtp_server, persona):
    response = _post(client, personas[persona], campaign, {"addresses": "qa@example.com", "version": "1"})

    assert response.status_code == 403
    assert not smtp_server.messages
    assert not AuditEvent.objects.filter(action="campaign.proof_sent").exists()
    if persona == "vera":  # she reads the campaign: no proof card is offered
        assert 'id="proof"' not in client.get(campaign.get_absolute_url()).content.decode()


def test_the_card_is_offered_to_holders_of_send_proof(client, personas, campaign):
    for persona in ("ada", "april", "manny"):
        client.force_login(personas[persona])
        page = client.get(campaign.get_absolute_url()).content.decode()
        assert 'id="proof"' in page and reverse("campaigns:proof", args=[campaign.pk]) in page, persona


@pytest.mark.parametrize(
    ("addresses", "says"),
    [
        ("qa@example.com, not-an-address", "'not-an-address' is not an email address"),
        ("qa@example.com\nbad@@example.com", "'bad@@example.com' is not an email address"),
        ("someone@[127.0.0.1]", "IP addresses are not accepted as a domain"),
        (", ".join(f"p{n}@example.com" for n in range(11)), "Enter at most 10 recipients: 11 were given."),
        (" ,\n ", "Enter at least one email address."),
        ("", "This field is required."),
        ("qa@example.com\x00", "Null characters are not allowed."),
    ],
)
def test_bad_addresses_are_named_and_nothing_is_sent(client, personas, campaign, smtp_server, addresses, says):
    response = _post(client, personas["manny"], campaign, {"addresses": addresses, "version": "1"})

    assert response.status_code == 200
    errors = response.context["proof_form"].errors["addresses"]
    assert any(says in error for error in errors), errors
    assert "field-addresses has-error" in response.content.decode()
    assert not smtp_server.messages
    assert not AuditEvent.objects.filter(action="campaign.proof_sent").exists()


def test_ten_addresses_are_accepted_and_a_repeat_counts_once(client, personas, campaign, smtp_server):
    addresses = [f"p{n}@example.com" for n in range(10)]

    _post(client, personas["manny"], campaign, {"addresses": "\n".join([*addresses, "p0@EXAMPLE.com"]), "version": "1"})

    assert _recipients(smtp_server) == sorted(addresses)


def test_the_error_names_a_version_or_profile_that_does_not_exist(client, personas, campaign, smtp_server):
    response = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "7"})
    assert "Select a valid choice" in response.context["proof_form"].errors["version"][0]

    response = _post(
        client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "1", "profile": "999999"}
    )
    assert "There is no profile #999999" in response.context["proof_form"].errors["profile"][0]
    assert "There is no profile #999999" in response.content.decode()
    assert not smtp_server.messages


def test_content_that_does_not_render_is_refused_with_its_line(client, personas, campaign, smtp_server):
    _approve_first_version(campaign)
    lifecycle.campaign_update_content(
        campaign=campaign,
        actor=personas["manny"],
        content=lifecycle.Content("Hi", "<p>One</p>\n<p>{{ 1 | divided_by: 0 }}</p>", "Hi"),
    )

    response = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "2"})

    error = response.context["proof_form"].errors["version"][0]
    assert "HTML body does not render: divided_by: can't divide by 0, at line 2" in error
    assert not smtp_server.messages
    assert not AuditEvent.objects.filter(action="campaign.proof_sent").exists()


def test_proofs_are_rate_limited_per_user(client, personas, campaign, smtp_server):
    data = {"addresses": "qa@example.com", "version": "1"}
    for _ in range(proofs.PROOF_SENDS_PER_WINDOW):
        assert "Proof sent to" in _post(client, personas["manny"], campaign, data).content.decode()

    refused = _post(client, personas["manny"], campaign, data)

    page = refused.content.decode()
    assert "You have sent 10 proofs in the last 10 minutes, the most allowed: try again in 10 minutes." in page
    assert "0 left now" in page
    assert len(smtp_server.messages) == 10
    assert AuditEvent.objects.filter(action="campaign.proof_sent").count() == 10

    # Another user has proofs of their own.
    assert "Proof sent to" in _post(client, personas["april"], campaign, data).content.decode()

    # The oldest send leaves the window: one more may go.
    oldest = AuditEvent.objects.filter(action="campaign.proof_sent", actor=personas["manny"]).order_by("pk").first()
    AuditEvent.objects.filter(pk=oldest.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    assert "Proof sent to" in _post(client, personas["manny"], campaign, data).content.decode()
    assert "You have sent 10 proofs" in _post(client, personas["manny"], campaign, data).content.decode()
    assert len(smtp_server.messages) == 12


def test_a_relay_that_is_down_is_each_address_result(client, personas, campaign):
    nowhere = make_email_configuration(port=9, name="Nowhere")  # the discard port
    campaign.channel_configuration = nowhere
    campaign.save()
    campaign.versions.update(channel_configuration=nowhere)

    page = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "1"})

    assert "Proof to <strong>qa@example.com</strong> not sent (transient" in page.content.decode()
    assert AuditEvent.objects.get(action="campaign.proof_sent").after["outcomes"] == {"qa@example.com": "transient"}


def test_campaigns_on_other_channels_are_told_proofs_are_for_email(client, personas):
    sms = make_configuration(
        "sms",
        name="Texts",
        base_url="http://127.0.0.1:9",
        account_sid="AC1",
        auth_token="t",
        from_number="+15559990000",
    )
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    texts = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Texts",
        channel_configuration=sms,
        audience=audience,
        content=lifecycle.Content("", "", "Hi"),
    )
    client.force_login(personas["manny"])

    page = client.get(texts.get_absolute_url()).content.decode()
    assert "Proofs are for email campaigns only: this campaign sends by SMS." in page
    assert reverse("campaigns:proof", args=[texts.pk]) not in page

    refused = _post(client, personas["manny"], texts, {"addresses": "qa@example.com", "version": "1"})
    assert "Proofs are for email campaigns only" in refused.content.decode()
    assert not AuditEvent.objects.filter(action="campaign.proof_sent").exists()


def test_the_envelope_sender_names_no_delivery(client, personas, smtp_server):
    from channels.adapters.email import delivery_id_from_verp

    relay = make_email_configuration(port=smtp_server.port, bounce_domain="bounces.example.com")
    audience = Audience.objects.create(name="All", kind=Audience.Kind.ALL)
    news = lifecycle.campaign_create(
        actor=personas["manny"],
        name="News",
        channel_configuration=relay,
        audience=audience,
        content=lifecycle.Content("News", "<p>News</p>", "News"),
    )

    _post(client, personas["manny"], news, {"addresses": "qa@example.com", "version": "1"})

    mail_from = smtp_server.messages[0]["mail_from"]
    assert mail_from.endswith("@bounces.example.com")
    assert delivery_id_from_verp(mail_from) is None  # a bounce of a proof changes no delivery
    assert getaddresses([smtp_server.messages[0]["message"]["To"]]) == [("", "qa@example.com")]


@pytest.fixture
def second_relay():
    server = RecordingSMTPServer().start()
    yield server
    server.stop()


def test_a_proof_leaves_through_the_configuration_of_the_version_proofed(
    client, personas, campaign, smtp_server, second_relay
):
    """A live campaign's version 2 moves to another relay: its proof goes there before it is approved or live,
    while a proof of version 1 still goes through version 1's relay; the card names the one the proof takes."""
    lifecycle.campaign_activate(campaign=campaign, actor=personas["ada"])
    relay_2 = make_email_configuration(port=second_relay.port, name="Second relay", from_email="v2@example.com")
    version_2 = lifecycle.campaign_update(
        campaign=campaign,
        actor=personas["manny"],
        content=lifecycle.Content("Version two", HTML, "Two {{ unsubscribe_url }}"),
        # Version 2's settings: version 1's, through the second relay.
        settings={**campaign.latest_version().settings_values(), "channel_configuration": relay_2},
    )
    campaign.refresh_from_db()
    assert version_2.number == 2 and campaign.live_version.number == 1
    assert campaign.channel_configuration.name == "Loopback relay"  # the live one, still

    client.force_login(personas["manny"])
    page = client.get(campaign.get_absolute_url()).content.decode()
    # The latest version is chosen by default: the card names its configuration, each choice its own.
    assert "the chosen version's channel configuration (“Second relay” for version 2)" in page
    assert '<option value="2" selected>Version 2 (latest), through “Second relay”</option>' in page
    assert '<option value="1">Version 1 (live), through “Loopback relay”</option>' in page

    answer = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "2"})
    assert "Proof sent to <strong>qa@example.com</strong>" in answer.content.decode()
    assert "(“Second relay” for version 2)" in answer.content.decode()
    [at_relay_2] = second_relay.messages
    assert at_relay_2["message"]["Subject"] == "[Proof] Version two"
    assert at_relay_2["message"]["From"] == "Shop <v2@example.com>"
    assert not smtp_server.messages

    answer = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "1"})
    assert "(“Loopback relay” for version 1)" in answer.content.decode()
    [at_relay_1] = smtp_server.messages
    assert at_relay_1["message"]["Subject"] == "[Proof] Sale for"
    assert at_relay_1["message"]["From"] == "Shop <news@example.com>"
    assert len(second_relay.messages) == 1


def test_a_version_on_another_channel_is_refused_naming_the_version(client, personas, campaign, smtp_server):
    """Version 1 sends email, version 2 moves to SMS: version 1 may still be proofed, version 2 is refused."""
    _approve_first_version(campaign)
    sms = make_configuration(
        "sms",
        name="Texts",
        base_url="http://127.0.0.1:9",
        account_sid="AC1",
        auth_token="t",
        from_number="+15559990000",
    )
    lifecycle.campaign_update(
        campaign=campaign,
        actor=personas["manny"],
        content=lifecycle.Content("", "", "Hi"),
        settings={**campaign.latest_version().settings_values(), "channel_configuration": sms},
    )

    refused = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "2"})
    assert refused.context["proof_form"].errors["version"] == [
        "Proofs are for email campaigns only: version 2 sends by SMS."
    ]
    sent = _post(client, personas["manny"], campaign, {"addresses": "qa@example.com", "version": "1"})
    assert "Proof sent to <strong>qa@example.com</strong>" in sent.content.decode()
    assert len(smtp_server.messages) == 1


# Proofs to profiles: `#42` in "Send to" ----------------------------------------------------------------------------


def _by_recipient(smtp_server) -> dict[str, object]:
    return {item["rcpt_tos"][0]: item["message"] for item in smtp_server.messages}


def test_each_profile_named_gets_its_own_rendering_and_an_address_the_sample(client, personas, campaign, smtp_server):
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})
    bob = Profile.objects.create(email="bob@example.com", attributes={"first_name": "Bob"})

    response = _post(
        client, personas["manny"], campaign, {"addresses": f"qa@example.com\n#{ann.pk}, #{bob.pk}", "version": "1"}
    )

    page = response.content.decode()
    assert "Proof sent to <strong>qa@example.com</strong>" in page
    assert f"Proof sent to <strong>#{ann.pk} ann@example.com</strong>" in page
    assert f"Proof sent to <strong>#{bob.pk} bob@example.com</strong>" in page
    sent = _by_recipient(smtp_server)
    assert sorted(sent) == ["ann@example.com", "bob@example.com", "qa@example.com"]
    assert sent["ann@example.com"]["Subject"] == "[Proof] Sale for Ann"
    assert "<p>Hi Ann</p>" in sent["ann@example.com"].get_body(("html",)).get_content()
    assert sent["ann@example.com"].get_body(("plain",)).get_content().startswith("Hi Ann, 20% off")
    assert sent["bob@example.com"]["Subject"] == "[Proof] Sale for Bob"
    assert "<p>Hi Bob</p>" in sent["bob@example.com"].get_body(("html",)).get_content()
    assert sent["qa@example.com"]["Subject"] == "[Proof] Sale for"  # the sample profile has no first name
    assert "<p>Hi </p>" in sent["qa@example.com"].get_body(("html",)).get_content()
    for message in sent.values():  # a profile's proof unsubscribes nobody either
        assert message["List-Unsubscribe"] is None
        assert "/u/" not in message.get_body(("html",)).get_content()

    assert not Run.objects.exists() and not Delivery.objects.exists()
    event = AuditEvent.objects.get(action="campaign.proof_sent")  # one record for the send
    assert event.after == {
        "version": 1,
        "addresses": ["qa@example.com"],
        "profile": None,
        "profiles": [ann.pk, bob.pk],
        "outcomes": {"qa@example.com": "sent", f"#{ann.pk}": "sent", f"#{bob.pk}": "sent"},
    }
    assert proofs.proofs_left(actor=personas["manny"]) == proofs.PROOF_SENDS_PER_WINDOW - 1  # one send, one count


def test_typed_addresses_keep_the_profile_they_are_rendered_as(client, personas, campaign, smtp_server):
    carol = Profile.objects.create(email="carol@example.com", attributes={"first_name": "Carol"})
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})

    _post(
        client,
        personas["manny"],
        campaign,
        {"addresses": f"qa@example.com #{ann.pk}", "version": "1", "profile": carol.pk},
    )

    sent = _by_recipient(smtp_server)
    assert sent["qa@example.com"]["Subject"] == "[Proof] Sale for Carol"
    assert sent["ann@example.com"]["Subject"] == "[Proof] Sale for Ann"
    assert "carol@example.com" not in sent  # rendered as Carol, not sent to her


def test_a_profile_of_a_triggered_campaign_gets_the_contract_examples(client, personas, smtp_server):
    relay = make_email_configuration(port=smtp_server.port, purpose="transactional")
    reset = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Password reset",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=relay,
        audience=None,
        content=lifecycle.Content("Reset for {{ profile.first_name }}", "<p>{{ context.reset_url }}</p>", "Reset"),
    )
    lifecycle.campaign_update_contract(
        campaign=reset,
        actor=personas["manny"],
        contract=[{"name": "reset_url", "type": "string", "example": "https://shop.example/r/abc"}],
    )
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})

    _post(client, personas["manny"], reset, {"addresses": f"#{ann.pk}", "version": "1"})

    [item] = smtp_server.messages
    assert item["rcpt_tos"] == ["ann@example.com"]
    assert item["message"]["Subject"] == "[Proof] Reset for Ann"
    assert "<p>https://shop.example/r/abc</p>" in item["message"].get_body(("html",)).get_content()


@pytest.fixture
def proofreader(django_user_model):
    """A custom role: reads campaigns and sends proofs, but may not read profiles."""
    role = Group.objects.create(name="Proofreader")
    role.permissions.set(
        Permission.objects.filter(content_type__app_label="campaigns", codename__in=["view_campaign", "send_proof"])
    )
    user = django_user_model.objects.create_user("petra", "petra@example.com", "x")
    user.groups.add(role)
    return user


@pytest.mark.parametrize("who", ["april", "proofreader"])
def test_naming_profiles_is_refused_without_view_profile_and_reveals_no_id(
    client, personas, proofreader, campaign, smtp_server, who
):
    user = proofreader if who == "proofreader" else personas[who]
    assert not user.has_perm("audiences.view_profile") and user.has_perm("campaigns.send_proof")
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})

    answers = {}
    for entry in (f"#{ann.pk}", "#999999"):  # one that exists, one that does not: the same words
        response = _post(client, user, campaign, {"addresses": f"qa@example.com, {entry}", "version": "1"})
        assert response.status_code == 200
        [error] = response.context["proof_form"].errors["addresses"]
        answers[entry] = error.replace(entry, "#N")
        assert "field-addresses has-error" in response.content.decode()
    assert answers[f"#{ann.pk}"] == answers["#999999"]
    assert answers["#999999"] == (
        "Only users who may read profiles can send a proof to a profile ('#N'): enter email addresses."
    )
    assert not smtp_server.messages
    assert not AuditEvent.objects.filter(action="campaign.proof_sent").exists()
    # Their card does not offer profiles; the service refuses them too.
    client.force_login(user)
    card = client.get(campaign.get_absolute_url()).content.decode()
    assert "by id (#42)" not in card and "Rendered as, for the email addresses typed" not in card
    assert "Rendered as the sample profile." in card
    with pytest.raises(ValidationError, match="Only users who may read profiles"):
        proofs.campaign_send_proof(
            campaign=campaign, actor=user, version=campaign.latest_version(), addresses=[], profiles=[ann]
        )


def test_a_profile_without_an_email_address_an_erased_or_unknown_one_and_huge_ids_are_named(
    client, personas, campaign, smtp_server
):
    phone_only = Profile.objects.create(phone="+15550001111")
    erased = Profile.objects.create(email="gone@example.com")
    erased_pk = erased.pk
    profile_erase(profile=erased, actor=personas["ada"])
    huge = "#" + "9" * 25
    past_64_bits = f"#{2**63}"
    entries = [
        f"#{phone_only.pk}",
        f"#{erased_pk}",
        "#999999",
        huge,
        past_64_bits,
        "#0",
        "#ann",
        "#٣",
        "qa@example.com",
    ]

    response = _post(client, personas["manny"], campaign, {"addresses": "\n".join(entries), "version": "1"})

    errors = response.context["proof_form"].errors["addresses"]
    # The shape of each entry first: the ids no profile can have, and what is no id at all.
    assert errors == [
        f"There is no profile '{huge}': no profile has an id that large or small.",
        f"There is no profile '{past_64_bits}': no profile has an id that large or small.",
        "There is no profile '#0': no profile has an id that large or small.",
        "'#ann' is not a profile: write # and the profile's id, as #42.",
        "'#٣' is not a profile: write # and the profile's id, as #42.",
    ]
    assert not smtp_server.messages

    # Then the profiles themselves.
    entries = [f"#{phone_only.pk}", f"#{erased_pk}", "#999999", "qa@example.com"]
    response = _post(client, personas["manny"], campaign, {"addresses": " ".join(entries), "version": "1"})
    assert response.context["proof_form"].errors["addresses"] == [
        f"Profile #{phone_only.pk} has no email address: a proof cannot reach it.",
        f"There is no profile #{erased_pk}: it was never created, or it was erased.",
        "There is no profile #999999: it was never created, or it was erased.",
    ]
    assert not smtp_server.messages
    assert not AuditEvent.objects.filter(action="campaign.proof_sent").exists()


def test_a_repeated_profile_counts_once_and_ten_recipients_in_all_is_the_most(client, personas, campaign, smtp_server):
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})
    addresses = [f"p{n}@example.com" for n in range(9)]

    # Nine addresses and one profile named three ways: ten recipients.
    _post(
        client,
        personas["manny"],
        campaign,
        {"addresses": "\n".join([*addresses, f"#{ann.pk}", f"#{ann.pk}", f"#00{ann.pk}"]), "version": "1"},
    )
    assert _recipients(smtp_server) == sorted([*addresses, "ann@example.com"])
    assert AuditEvent.objects.get(action="campaign.proof_sent").after["profiles"] == [ann.pk]

    bob = Profile.objects.create(email="bob@example.com")
    refused = _post(
        client,
        personas["manny"],
        campaign,
        {"addresses": "\n".join([*addresses, f"#{ann.pk}", f"#{bob.pk}"]), "version": "1"},
    )
    assert refused.context["proof_form"].errors["addresses"] == ["Enter at most 10 recipients: 11 were given."]
    assert len(smtp_server.messages) == 10


def test_content_that_does_not_render_as_a_profile_names_it(client, personas, campaign, smtp_server):
    _approve_first_version(campaign)
    lifecycle.campaign_update_content(
        campaign=campaign,
        actor=personas["manny"],
        content=lifecycle.Content(
            "Hi", "<p>{% if profile.parts %}{{ 10 | divided_by: profile.parts }}{% endif %}</p>", "Hi"
        ),
    )
    zero = Profile.objects.create(email="zero@example.com", attributes={"parts": 0})

    response = _post(client, personas["manny"], campaign, {"addresses": f"#{zero.pk}", "version": "2"})

    [error] = response.context["proof_form"].errors["addresses"]
    assert error.startswith(f"The proof does not render as profile #{zero.pk}: HTML body does not render: divided_by")
    assert not smtp_server.messages


def test_without_htmx_a_profile_result_names_the_profile(client, personas, campaign, smtp_server):
    ann = Profile.objects.create(email="ann@example.com", attributes={"first_name": "Ann"})

    response = _post(client, personas["manny"], campaign, {"addresses": f"#{ann.pk}", "version": "1"}, htmx=False)

    page = client.get(response["Location"]).content.decode()
    assert f"Proof sent to #{ann.pk} ann@example.com." in page
