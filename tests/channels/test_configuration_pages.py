"""The channel configuration pages through Django's test client: the settings form generated from each
channel's pydantic model, its errors, write-only secrets, switching on and off, deleting, sending a test message
to a real SMTP server on loopback, who may do what, and the audit log."""

import json
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.forms import CheckboxInput
from django.urls import reverse
from django.utils.html import escape

from audiences.models import Audience, Profile
from campaigns.models import Campaign
from campaigns.services import lifecycle
from channels.forms.configurations import CLEAR_SUFFIX, ConfigurationForm
from channels.models import ChannelConfiguration, InboxMessage
from channels.schemas import SECRET_FIELDS, SETTINGS_MODELS
from permissions.models import AuditEvent
from tests.channels.conftest import make_configuration
from tests.channels.http_servers import Reply
from tests.conftest import make_email_configuration
from tests.smtp_servers import free_port

SMTP_PASSWORD = "relay-pass-7f3a9c1e"


@pytest.fixture(scope="module")
def pem_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def valid_settings(channel: str, pem_key: str) -> dict:
    """Values (secrets included) that each channel's model accepts. A channel added to SETTINGS_MODELS needs its
    line here."""
    service_account = {"client_email": "sender@project.iam.gserviceaccount.com", "private_key": pem_key}
    return {
        "email": {"from_email": "news@example.com", "host": "smtp.example.com", "password": SMTP_PASSWORD},
        "sms": {"account_sid": "AC123", "auth_token": "sms-token-0a1b2c3d", "from_number": "+15551234567"},
        "push": {"project_id": "my-app", "service_account_json": json.dumps(service_account)},
        "webhook": {"url": "https://hooks.example.com/in", "signing_secret": "webhook-signing-secret-0123"},
        "in_app": {},
    }[channel]


def post_data(channel: str, configuration=None, **values) -> dict:
    """What a browser posts from the form as it is first shown, with `values` typed over it (a bool unticks or
    ticks a checkbox; None leaves an input empty)."""
    form = ConfigurationForm(channel=channel, configuration=configuration)
    data = {}
    for name, field in form.fields.items():
        value = values.pop(name) if name in values else form.initial.get(name, field.initial)
        if isinstance(field.widget, CheckboxInput):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else str(value)
    assert not values, f"not inputs of the form: {values}"
    return data


def logged_in(client, personas, username="ada"):
    client.force_login(personas[username])
    return client


def create_url(channel: str) -> str:
    return reverse("channels:configuration_create") + f"?channel={channel}"


def campaign_using(configuration, personas, *, name="Spring sale", status=Campaign.Status.DRAFT):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name=name,
        channel_configuration=configuration,
        audience=Audience.objects.get_or_create(name="Everyone", kind=Audience.Kind.ALL)[0],
        content=lifecycle.Content("Hi", "<p>Hi</p>", "Hi"),
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    return campaign


def field_html(response, name: str) -> str:
    """The HTML of one field's block: its input, errors and help."""
    match = re.search(rf'<div class="field field-{name}[ "].*?(?=<div class="field |</section>)', response, re.S)
    assert match, f"no field {name}"
    return match.group(0)


# The generated form --------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", sorted(SETTINGS_MODELS))
def test_form_has_one_input_per_setting_chosen_by_its_type(client, personas, channel):
    response = logged_in(client, personas).get(create_url(channel))

    assert response.status_code == 200
    html = response.content.decode()
    model = SETTINGS_MODELS[channel]
    for name, info in model.model_fields.items():
        block = field_html(html, name)
        if name in SECRET_FIELDS[channel]:
            tag = re.search(rf'<input type="password" name="{name}"[^>]*>|<textarea name="{name}"[^>]*>([^<]*)<', block)
            assert tag and "value=" not in tag.group(0) and not (tag.group(1) or "").strip(), block
        elif info.annotation is bool:
            assert f'type="checkbox" name="{name}"' in block
        elif "Literal" in str(info.annotation):
            assert f'<select name="{name}"' in block
            for choice in info.annotation.__args__:
                assert f'value="{choice}"' in block
        elif info.annotation in (int, float, int | None, float | None):
            assert f'type="number" name="{name}"' in block
            for bound in info.metadata:
                if hasattr(bound, "le"):
                    assert f'max="{bound.le}"' in block
                if hasattr(bound, "ge"):
                    assert f'min="{bound.ge}"' in block
        else:
            assert re.search(rf'<(input type="(text|url)"|textarea) name="{name}"', block), block
        if info.description:
            assert escape(info.description) in block


@pytest.mark.parametrize("channel", sorted(SETTINGS_MODELS))
def test_valid_settings_of_each_channel_create_a_configuration(client, personas, pem_key, channel):
    values = valid_settings(channel, pem_key)
    data = post_data(channel, name=f"My {channel}", **values)

    response = logged_in(client, personas).post(create_url(channel), data)

    configuration = ChannelConfiguration.objects.get(name=f"My {channel}")
    assert response.status_code == 302 and response["Location"] == f"/channels/{configuration.pk}/"
    assert configuration.channel == channel and configuration.is_active
    stored = configuration.get_settings()
    for name, value in values.items():
        read = getattr(stored, name)
        assert (read.get_secret_value() if name in SECRET_FIELDS[channel] else read) == value
    for name in SECRET_FIELDS[channel]:
        assert name not in configuration.settings


def test_each_settings_error_is_shown_next_to_its_field(client, personas):
    data = post_data("email", name="Relay", from_email="not-an-address", host="", port="70000", connections="0")
    data["security"] = "carrier-pigeon"
    data["timeout_seconds"] = "soon"

    response = logged_in(client, personas).post(create_url("email"), data)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"from_email", "host", "port", "connections", "security", "timeout_seconds"}
    html = response.content.decode()
    assert "Is not an email address." in field_html(html, "from_email")
    assert "less than or equal to 65535" in field_html(html, "port")
    assert "greater than or equal to 1" in field_html(html, "connections")
    assert "valid number" in field_html(html, "timeout_seconds")
    for name in errors:
        assert f'class="field field-{name} has-error' in html or f'class="field field-{name} required has-error' in html
    assert not ChannelConfiguration.objects.exists()


def test_an_error_of_the_whole_model_is_shown_above_the_form(client, personas):
    data = post_data("email", name="Relay", from_email="news@example.com", host="smtp.example.com")
    data["dkim_domain"] = "example.com"  # without a selector and a key

    response = logged_in(client, personas).post(create_url("email"), data)

    assert response.status_code == 200
    assert "DKIM needs all of" in response.context["form"].non_field_errors()[0]
    assert 'class="form-errors"' in response.content.decode()


def test_a_required_secret_left_empty_is_an_error_next_to_it(client, personas, pem_key):
    values = {**valid_settings("sms", pem_key), "auth_token": ""}

    response = logged_in(client, personas).post(create_url("sms"), post_data("sms", name="Texts", **values))

    assert response.context["form"].errors == {"auth_token": ["This field is required."]}


def test_names_are_unique_whatever_the_case(client, personas):
    make_email_configuration(port=25, name="Newsletter relay")
    data = post_data("email", name="newsletter RELAY", from_email="a@example.com", host="smtp.example.com")

    response = logged_in(client, personas).post(create_url("email"), data)

    assert "Another configuration has this name" in response.context["form"].errors["name"][0]
    assert ChannelConfiguration.objects.count() == 1


def test_new_without_a_channel_offers_the_channels(client, personas):
    response = logged_in(client, personas).get(reverse("channels:configuration_create"))

    html = response.content.decode()
    for channel in SETTINGS_MODELS:
        assert f"?channel={channel}" in html
    assert logged_in(client, personas).get(create_url("fax")).status_code == 404


# Secrets are write-only ----------------------------------------------------------------------------------


@pytest.fixture
def relay(db, pem_key):
    """An email configuration with both of its secrets stored."""
    return make_email_configuration(
        port=25,
        username="relay-user",
        password=SMTP_PASSWORD,
        dkim_domain="example.com",
        dkim_selector="s1",
        dkim_private_key=pem_key,
    )


def secret_fragments(pem_key: str) -> list[str]:
    return [SMTP_PASSWORD, *[line for line in pem_key.splitlines() if "PRIVATE KEY" not in line][:3]]


def test_no_page_ever_shows_a_stored_secret(client, personas, relay, pem_key):
    client = logged_in(client, personas)
    pages = [
        reverse("channels:configuration_list"),
        reverse("channels:configuration_detail", args=[relay.pk]),
        reverse("channels:configuration_edit", args=[relay.pk]),
        reverse("channels:configuration_delete", args=[relay.pk]),
    ]
    responses = [client.get(url) for url in pages]
    # An edit with an error comes back with the secret typed into it: still not shown.
    typed = post_data("email", relay, port="0", password="typed-new-secret-99", dkim_private_key=pem_key)
    responses.append(client.post(reverse("channels:configuration_edit", args=[relay.pk]), typed))
    responses.append(client.post(reverse("channels:configuration_send_test", args=[relay.pk]), {"to": "a@b.example"}))

    for response in responses:
        html = response.content.decode()
        assert response.status_code == 200, response.request
        for secret in [*secret_fragments(pem_key), "typed-new-secret-99"]:
            assert secret not in html, f"{secret[:10]}… shown at {response.request['PATH_INFO']}"
    edit = responses[2].content.decode()
    assert "set — leave blank to keep" in field_html(edit, "password")
    assert "set — leave blank to keep" in field_html(edit, "dkim_private_key")


def test_a_blank_secret_keeps_the_stored_one(client, personas, relay, pem_key):
    data = post_data("email", relay, from_name="Renamed shop")
    assert data["password"] == "" and data["dkim_private_key"] == ""

    response = logged_in(client, personas).post(reverse("channels:configuration_edit", args=[relay.pk]), data)

    assert response.status_code == 302
    relay.refresh_from_db()
    settings = relay.get_settings()
    assert settings.from_name == "Renamed shop"
    assert settings.password.get_secret_value() == SMTP_PASSWORD
    assert settings.dkim_private_key.get_secret_value() == pem_key.strip()


def test_a_typed_secret_replaces_the_stored_one(client, personas, relay):
    data = post_data("email", relay, password="brand-new-relay-pass")

    logged_in(client, personas).post(reverse("channels:configuration_edit", args=[relay.pk]), data)

    relay.refresh_from_db()
    assert relay.get_settings().password.get_secret_value() == "brand-new-relay-pass"
    assert "brand-new-relay-pass" not in relay.encrypted_secrets


def test_clear_removes_a_stored_secret(client, personas, relay):
    data = post_data("email", relay, **{"password" + CLEAR_SUFFIX: True, "password": "ignored-when-clearing"})

    response = logged_in(client, personas).post(reverse("channels:configuration_edit", args=[relay.pk]), data)

    assert response.status_code == 302
    relay.refresh_from_db()
    assert relay.get_settings().password.get_secret_value() == ""
    assert relay.get_settings().dkim_private_key.get_secret_value() != ""
    edit = logged_in(client, personas).get(reverse("channels:configuration_edit", args=[relay.pk])).content.decode()
    assert "not set" in field_html(edit, "password")
    assert "password" + CLEAR_SUFFIX not in edit


def test_clearing_a_required_secret_is_refused_next_to_it(client, personas, pem_key):
    data = post_data("webhook", name="Hook", **valid_settings("webhook", pem_key))
    logged_in(client, personas).post(create_url("webhook"), data)
    hook = ChannelConfiguration.objects.get(name="Hook")

    data = post_data("webhook", hook, **{"signing_secret" + CLEAR_SUFFIX: True})
    response = logged_in(client, personas).post(reverse("channels:configuration_edit", args=[hook.pk]), data)

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["signing_secret"]
    hook.refresh_from_db()
    assert hook.get_settings().signing_secret.get_secret_value() == "webhook-signing-secret-0123"


def test_the_channel_is_fixed_once_created(client, personas, relay):
    data = {**post_data("email", relay), "channel": "sms"}

    response = logged_in(client, personas).post(reverse("channels:configuration_edit", args=[relay.pk]), data)

    assert response.status_code == 302
    relay.refresh_from_db()
    assert relay.channel == "email"


# Active, inactive, delete --------------------------------------------------------------------------------


def test_an_inactive_configuration_is_not_offered_to_new_campaigns(client, personas, relay):
    client = logged_in(client, personas)

    response = client.post(reverse("channels:configuration_set_active", args=[relay.pk]), {"active": "0"})

    assert response.status_code == 302
    relay.refresh_from_db()
    assert not relay.is_active
    form = client.get(reverse("campaigns:create")).context["form"]
    assert relay not in form.fields["channel_configuration"].queryset
    client.post(reverse("channels:configuration_set_active", args=[relay.pk]), {"active": "1", "next": "list"})
    relay.refresh_from_db()
    assert relay.is_active


def test_campaign_form_offers_active_configurations_of_every_channel_labelled_with_it(client, personas, relay, pem_key):
    client = logged_in(client, personas)
    client.post(create_url("sms"), post_data("sms", name="Texts", **valid_settings("sms", pem_key)))

    response = client.get(reverse("campaigns:create"))

    html = response.content.decode()
    assert f">Email · {relay.name}</option>" in html
    assert ">SMS · Texts</option>" in html


def test_delete_is_refused_naming_the_live_campaigns_that_use_it(client, personas, relay):
    campaign_using(relay, personas, name="Weekly news", status=Campaign.Status.ACTIVE)
    campaign_using(relay, personas, name="Paused promo", status=Campaign.Status.PAUSED)

    response = logged_in(client, personas).post(reverse("channels:configuration_delete", args=[relay.pk]))

    assert response.status_code == 409
    html = response.content.decode()
    assert "live campaigns send through it" in html
    assert "“Weekly news” (active)" in html and "“Paused promo” (paused)" in html
    assert ChannelConfiguration.objects.filter(pk=relay.pk).exists()
    assert not AuditEvent.objects.filter(action="channel_configuration.deleted").exists()


def test_delete_is_refused_naming_the_drafts_that_use_it(client, personas, relay):
    campaign_using(relay, personas, name="Draft idea")

    response = logged_in(client, personas).post(reverse("channels:configuration_delete", args=[relay.pk]))

    assert response.status_code == 409
    assert "campaigns use it: “Draft idea” (draft)" in response.content.decode()
    assert ChannelConfiguration.objects.filter(pk=relay.pk).exists()


def test_an_unused_configuration_is_deleted(client, personas, relay):
    client = logged_in(client, personas)
    assert (
        "No campaign sends through it"
        in client.get(reverse("channels:configuration_delete", args=[relay.pk])).content.decode()
    )

    response = client.post(reverse("channels:configuration_delete", args=[relay.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("channels:configuration_list")
    assert not ChannelConfiguration.objects.exists()


def test_list_shows_channel_state_campaigns_and_last_change(client, personas, relay):
    campaign_using(relay, personas, name="Weekly news", status=Campaign.Status.ACTIVE)
    ChannelConfiguration.objects.create(name="Old texts", channel="sms", is_active=False)

    html = logged_in(client, personas, "april").get(reverse("channels:configuration_list")).content.decode()

    row = re.search(rf"<tr>\s*<td><a class=\"strong\" href=\"/channels/{relay.pk}/\">.*?</tr>", html, re.S).group(0)
    assert "Email" in row and "badge-active" in row and "Weekly news" in row
    assert relay.updated_at.strftime("%Y-%m-%d") in row
    old = re.search(r"Old texts.*?</tr>", html, re.S).group(0)
    assert "SMS" in old and "Inactive" in old


# Send test -----------------------------------------------------------------------------------------------


def test_send_test_arrives_at_the_relay_and_shows_the_provider_id(client, personas, smtp_server):
    configuration = make_email_configuration(port=smtp_server.port, name="Loopback")
    url = reverse("channels:configuration_send_test", args=[configuration.pk])

    response = logged_in(client, personas).post(url, {"to": "tester@example.com"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    [received] = smtp_server.messages
    assert received["rcpt_tos"] == ["tester@example.com"]
    assert "Test message" in received["message"]["Subject"]
    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card send-test"')  # the card alone, for htmx to swap
    assert "<strong>Sent.</strong>" in html
    assert received["message"]["Message-ID"] in html.replace("&lt;", "<").replace("&gt;", ">")
    event = AuditEvent.objects.get(action="channel_configuration.test_sent")
    assert event.after == {"to": "tester@example.com", "outcome": "sent", "reason": ""}


def test_send_test_to_a_closed_port_shows_why_it_failed(client, personas):
    configuration = make_email_configuration(port=free_port(), name="Nobody listens", password=SMTP_PASSWORD)
    url = reverse("channels:configuration_send_test", args=[configuration.pk])

    response = logged_in(client, personas).post(url, {"to": "tester@example.com"})

    html = response.content.decode()
    assert response.status_code == 200 and "<h1>Nobody listens" in html  # the whole page without htmx
    assert "<strong>Not sent</strong> (transient: <code>connect_failed</code>)" in html
    assert f"cannot connect to 127.0.0.1:{configuration.settings['port']}" in html
    assert SMTP_PASSWORD not in html


def test_send_test_through_the_sms_provider_shows_its_message_id(client, personas, provider):
    provider.queue(Reply(201, {"sid": "SM777", "status": "queued"}))
    texts = make_configuration(
        "sms", base_url=provider.url, account_sid="AC1", auth_token="sms-token-0a1b2c3d", from_number="+15559990000"
    )
    url = reverse("channels:configuration_send_test", args=[texts.pk])

    response = logged_in(client, personas).post(url, {"to": "+33 6 12 34 56 78"}, headers={"HX-Request": "true"})

    [request] = provider.requests
    assert request.form["To"] == "+33612345678" and "Test message" in request.form["Body"]
    assert "as <code>SM777</code>" in response.content.decode()


def test_send_test_of_a_webhook_posts_to_its_url_without_an_address(client, personas, provider):
    hook = make_configuration("webhook", url=f"{provider.url}/hooks", signing_secret="webhook-signing-secret-0123")
    detail = logged_in(client, personas).get(reverse("channels:configuration_detail", args=[hook.pk]))
    assert 'name="to"' not in detail.content.decode()

    response = client.post(reverse("channels:configuration_send_test", args=[hook.pk]), headers={"HX-Request": "true"})

    [request] = provider.requests
    assert request.path == "/hooks" and "x-campaign-signature" in request.headers
    assert "<strong>Sent.</strong>" in response.content.decode()
    assert "webhook-signing-secret-0123" not in response.content.decode()


def test_send_test_of_in_app_puts_the_message_in_the_chosen_inbox(client, personas):
    inbox = make_configuration("in_app")
    profile = Profile.objects.create(email="me@example.com")
    url = reverse("channels:configuration_send_test", args=[inbox.pk])
    client = logged_in(client, personas)

    refused = client.post(url, {"to": "999999"})
    not_digits = [client.post(url, {"to": to}) for to in ("²", "９", "9" * 40)]  # isdigit() but not int()-able
    response = client.post(url, {"to": str(profile.pk)}, headers={"HX-Request": "true"})

    assert "Enter the ID of a profile" in refused.context["test_form"].errors["to"][0]
    assert all("Enter the ID of a profile" in r.context["test_form"].errors["to"][0] for r in not_digits)
    [message] = InboxMessage.objects.filter(profile=profile)
    assert message.title.startswith("Test message") and message.delivery_id < 0
    assert f"as <code>inbox:{message.pk}</code>" in response.content.decode()


def test_send_test_needs_an_address_of_the_channel(client, personas, relay):
    url = reverse("channels:configuration_send_test", args=[relay.pk])

    response = logged_in(client, personas).post(url, {"to": "not an address"})

    assert "Enter an email address" in response.context["test_form"].errors["to"][0]
    assert not AuditEvent.objects.filter(action="channel_configuration.test_sent").exists()


# Who may do what -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["april", "manny"])
def test_approvers_and_managers_see_configurations_but_change_nothing(client, personas, relay, username):
    client = logged_in(client, personas, username)

    detail = client.get(reverse("channels:configuration_detail", args=[relay.pk])).content.decode()

    assert "relay-user" in detail  # the settings, read-only
    for action in ("configuration_edit", "configuration_delete", "configuration_send_test", "configuration_set_active"):
        assert reverse(f"channels:{action}", args=[relay.pk]) not in detail
    assert (
        reverse("channels:configuration_create")
        not in client.get(reverse("channels:configuration_list")).content.decode()
    )
    assert client.get(reverse("channels:configuration_edit", args=[relay.pk])).status_code == 403
    assert (
        client.post(reverse("channels:configuration_send_test", args=[relay.pk]), {"to": "a@b.co"}).status_code == 403
    )


def test_the_nav_links_to_channels_for_those_who_may_see_them(client, personas):
    assert ">Channels</a>" in logged_in(client, personas, "manny").get("/campaigns/").content.decode()
    assert ">Channels</a>" not in logged_in(client, personas, "vera").get("/campaigns/").content.decode()


# The audit log -------------------------------------------------------------------------------------------


def test_every_change_is_audited_without_secrets(client, personas, pem_key):
    client = logged_in(client, personas)
    values = {"from_email": "news@example.com", "host": "smtp.example.com", "password": SMTP_PASSWORD}
    client.post(create_url("email"), post_data("email", name="Relay", **values))
    relay = ChannelConfiguration.objects.get(name="Relay")
    edit = reverse("channels:configuration_edit", args=[relay.pk])
    client.post(edit, post_data("email", relay, port="2525"))
    relay.refresh_from_db()
    client.post(edit, post_data("email", relay, password="second-relay-pass"))
    client.post(reverse("channels:configuration_set_active", args=[relay.pk]), {"active": "0"})
    client.post(reverse("channels:configuration_delete", args=[relay.pk]))

    events = list(AuditEvent.objects.filter(object_type="channels.channelconfiguration").order_by("pk"))

    assert [event.action for event in events] == [
        "channel_configuration.created",
        "channel_configuration.changed",
        "channel_configuration.changed",
        "channel_configuration.deactivated",
        "channel_configuration.deleted",
    ]
    created, port_change, secret_change, _, deleted = events
    assert created.after["settings.host"] == "smtp.example.com" and created.after["write-only settings set"] == "yes"
    assert port_change.before == {"settings.port": 587}
    assert port_change.after == {"settings.port": 2525, "write-only settings changed": "no"}
    assert secret_change.before == {} and secret_change.after == {"write-only settings changed": "yes"}
    assert deleted.before["name"] == "Relay" and deleted.before["settings.port"] == 2525
    for event in events:
        text = json.dumps([event.before, event.after])
        assert SMTP_PASSWORD not in text and "second-relay-pass" not in text and '"settings.password"' not in text


def test_saving_unchanged_settings_records_nothing(client, personas, relay):
    logged_in(client, personas).post(reverse("channels:configuration_edit", args=[relay.pk]), post_data("email", relay))

    assert not AuditEvent.objects.filter(action="channel_configuration.changed").exists()


def test_deleting_an_in_app_configuration_says_its_inbox_messages_go_too(client, personas):
    inbox = make_configuration("in_app")
    profile = Profile.objects.create(email="me@example.com")
    InboxMessage.objects.create(profile=profile, configuration=inbox, delivery_id=-1, title="Test")

    response = logged_in(client, personas).get(reverse("channels:configuration_delete", args=[inbox.pk]))

    assert "The 1 message it put in people's in-app inboxes is deleted too." in response.content.decode()
