"""The unsubscribe link recipients can see: a marketing email campaign goes to review or live only when its content
shows `{{ unsubscribe_url }}` or its email configuration appends a footer that does; the footer, checked when the
configuration is saved, arrives at a real SMTP server in both parts of each marketing message, with that recipient's
own link."""

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from pydantic import ValidationError as SettingsError

from campaigns.engine import planning, scheduler, sending
from campaigns.models import Campaign, CampaignVersion, Delivery
from campaigns.services import approval
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from campaigns.unsubscribe import visible_unsubscribe_errors
from channels.adapters.email_footer import shows_unsubscribe_url
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from channels.unsubscribe import unsubscribe_url
from tests.campaigns.test_execution import make_profiles
from tests.channels.conftest import make_configuration
from tests.channels.test_configuration_pages import create_url, field_html, logged_in, post_data
from tests.conftest import make_email_configuration
from tests.smtp_servers import free_port

WITHOUT_LINK = Content("Spring sale", "<html><body><p>Our sale starts now.</p></body></html>", "Our sale starts now.")
WITH_LINK = Content(
    "Spring sale",
    '<p>Our sale starts now.</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
    "Our sale starts now. Unsubscribe: {{ unsubscribe_url }}",
)
NO_FOOTER = {"footer_html": "", "footer_text": ""}


def relay(port: int | None = None, **settings) -> ChannelConfiguration:
    """An email configuration; without a footer unless `settings` give one."""
    return make_email_configuration(port=port or free_port(), **{**NO_FOOTER, **settings})


def draft(personas, configuration, content=WITHOUT_LINK, audience=None, **fields) -> Campaign:
    from audiences.models import Audience

    return campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=configuration,
        audience=audience or Audience.objects.get_or_create(name="Everyone", kind=Audience.Kind.ALL)[0],
        content=content,
        **fields,
    )


# The rule ----------------------------------------------------------------------------------------------------


def test_submitting_marketing_email_without_a_visible_link_is_refused_saying_both_fixes(personas):
    campaign = draft(personas, relay(name="Newsletter relay"))

    with pytest.raises(ValidationError) as refused:
        approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])

    errors = refused.value.message_dict
    assert set(errors) == {"html_body", "text_body"}
    [html_error] = errors["html_body"]
    assert "{{ unsubscribe_url }}" in html_error and "HTML body" in html_error
    assert "“Newsletter relay”" in html_error and "footer_html" in html_error
    assert "footer_text" in errors["text_body"][0]
    assert campaign.latest_version().review_state == CampaignVersion.ReviewState.DRAFT


def test_activating_marketing_email_without_review_and_without_a_visible_link_is_refused(personas):
    campaign = draft(personas, relay())

    with pytest.raises(ValidationError) as refused:
        campaign_activate(campaign=campaign, actor=personas["ada"])

    assert "html_body" in refused.value.message_dict
    campaign.refresh_from_db()
    assert (campaign.status, campaign.live_version_id) == (Campaign.Status.DRAFT, None)


@pytest.mark.parametrize(
    "html_body",
    [
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        '<a href="{{unsubscribe_url}}">Unsubscribe</a>',
        '<a href="{{- unsubscribe_url | escape -}}">Unsubscribe</a>',
        "{% if profile.first_name %}Hi{% endif %} {% echo unsubscribe_url %}",
    ],
)
def test_content_showing_the_link_in_any_usual_spelling_is_accepted_at_submit_and_activation(personas, html_body):
    content = Content("Spring sale", html_body, "")
    submitted = draft(personas, relay(), content)
    activated = draft(personas, relay(name="Other relay"), content)

    approval.campaign_submit_for_review(campaign=submitted, actor=personas["manny"])
    campaign_activate(campaign=activated, actor=personas["ada"])

    assert submitted.latest_version().review_state == CampaignVersion.ReviewState.IN_REVIEW
    assert Campaign.objects.get(pk=activated.pk).status == Campaign.Status.ACTIVE


@pytest.mark.parametrize(
    "source",
    [
        "{% comment %}{{ unsubscribe_url }}{% endcomment %}",
        "{% raw %}{{ unsubscribe_url }}{% endraw %}",
        "{{ 'unsubscribe_url' }}",
        "{% if unsubscribe_url %}Unsubscribe{% endif %}",
        "unsubscribe_url",
        "{{ unsubscribe_url",
    ],
)
def test_content_that_does_not_output_the_link_does_not_count(source):
    assert not shows_unsubscribe_url(source)


def test_a_text_part_without_the_link_is_refused_and_an_empty_one_needs_none(personas):
    html_only = Content("Spring sale", '<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "")
    text_without = Content("Spring sale", '<a href="{{ unsubscribe_url }}">Unsubscribe</a>', "Our sale starts now.")

    with pytest.raises(ValidationError) as refused:
        campaign_activate(campaign=draft(personas, relay(), text_without), actor=personas["ada"])
    campaign_activate(campaign=draft(personas, relay(name="Other relay"), html_only), actor=personas["ada"])

    assert set(refused.value.message_dict) == {"text_body"}


def test_a_configuration_footer_for_each_part_lets_content_without_the_link_through(personas):
    footed = relay(
        footer_html='<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>', footer_text="{{unsubscribe_url}}"
    )
    html_footer_only = relay(name="Half relay", footer_html='<a href="{{ unsubscribe_url }}">Unsubscribe</a>')

    campaign = draft(personas, footed)
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
    half = draft(personas, html_footer_only)

    assert campaign.latest_version().review_state == CampaignVersion.ReviewState.IN_REVIEW
    assert set(visible_unsubscribe_errors(campaign=half, version=half.latest_version())) == {"text_body"}


def test_transactional_campaigns_and_other_channels_need_no_visible_link(personas):
    reset = draft(personas, relay(), category=Campaign.Category.TRANSACTIONAL)
    texts = draft(
        personas,
        make_configuration("sms", account_sid="AC1", auth_token="sms-token-0a1b2c3d", from_number="+15551234567"),
    )
    hook = draft(personas, make_configuration("webhook", url="https://hooks.example.com/in", signing_secret="s" * 16))

    campaign_activate(campaign=reset, actor=personas["ada"])
    approval.campaign_submit_for_review(campaign=texts, actor=personas["manny"])
    campaign_activate(campaign=hook, actor=personas["ada"])

    assert Campaign.objects.get(pk=reset.pk).status == Campaign.Status.ACTIVE
    assert texts.latest_version().review_state == CampaignVersion.ReviewState.IN_REVIEW
    assert Campaign.objects.get(pk=hook.pk).status == Campaign.Status.ACTIVE


# The footer setting --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "footer", "said"),
    [
        ("footer_html", "<p>Manage your preferences on our site.</p>", "must contain {{ unsubscribe_url }}"),
        ("footer_text", "Unsubscribe: {{ unsubscribe_url", "is not valid Liquid"),
        ("footer_html", "{% comment %}{{ unsubscribe_url }}{% endcomment %}", "must contain {{ unsubscribe_url }}"),
    ],
)
def test_a_footer_without_the_link_is_refused_naming_its_field(field, footer, said):
    with pytest.raises(SettingsError) as refused:
        EmailSettings(from_email="news@example.com", host="smtp.example.com", **{field: footer})

    [error] = refused.value.errors()
    assert error["loc"] == (field,) and said in error["msg"]


# Footers that parse and show the link but fail when rendered: each would fail every marketing message.
FOOTERS_THAT_DO_NOT_RENDER = [
    pytest.param(
        "{{ unsubscribe_url }} {{ 1 | divided_by: 0 }}", "does not render: divided_by: can't divide by 0", id="filter"
    ),
    pytest.param(
        '{{ unsubscribe_url }}{% include "x" %}',
        "does not render: it includes the template “x”, and a footer can include no other template",
        id="include",
    ),
    pytest.param(
        "{{ unsubscribe_url }}{% for i in (1..100000000) %}{{ i }}{% endfor %}",
        "does not render: loop iteration limit reached",
        id="huge-loop",
    ),
]


@pytest.mark.parametrize("field", ["footer_html", "footer_text"])
@pytest.mark.parametrize(("footer", "said"), FOOTERS_THAT_DO_NOT_RENDER)
def test_a_footer_that_does_not_render_is_refused_naming_its_field(field, footer, said):
    with pytest.raises(SettingsError) as refused:
        EmailSettings(from_email="news@example.com", host="smtp.example.com", **{field: footer})

    [error] = refused.value.errors()
    assert error["loc"] == (field,) and said in error["msg"], error["msg"]


@pytest.mark.parametrize(("footer", "said"), FOOTERS_THAT_DO_NOT_RENDER)
def test_the_configuration_page_refuses_a_footer_that_does_not_render(client, personas, footer, said):
    data = post_data("email", name="Relay", from_email="news@example.com", host="smtp.example.com", footer_html=footer)

    response = logged_in(client, personas).post(create_url("email"), data)

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"footer_html"}
    # Next to the field, as the form words it: "Does not render: divided_by: can't divide by 0."
    assert escape(said.capitalize()) in field_html(response.content.decode(), "footer_html")
    assert not ChannelConfiguration.objects.exists()


def _stored(configuration: ChannelConfiguration, **footers) -> None:
    """Footers written as a configuration stored before they were rendered when saved: no check."""
    ChannelConfiguration.objects.filter(pk=configuration.pk).update(settings={**configuration.settings, **footers})


@pytest.mark.parametrize(("footer", "said"), FOOTERS_THAT_DO_NOT_RENDER)
def test_a_stored_footer_that_does_not_render_is_the_previews_error_not_a_500(client, personas, footer, said):
    configuration = relay(name="Old relay", footer_text="Unsubscribe: {{ unsubscribe_url }}")
    campaign = draft(personas, configuration)
    _stored(configuration, footer_html=footer)
    client.force_login(personas["manny"])

    page = client.get(campaign.get_absolute_url())
    frame = client.get(reverse("campaigns:preview", args=[campaign.pk, 1]))

    assert page.status_code == 200
    preview = page.context["preview"]
    assert preview.error.field == "footer_html"
    assert preview.error_text.startswith(f"HTML footer {said}")
    assert "(set in the channel configuration “Old relay”: an administrator can fix it)" in preview.error_text
    assert escape(preview.error_text) in page.content.decode()
    assert frame.status_code == 200 and escape(preview.error_text) in frame.content.decode()
    # The footer counts for the visible-link rule (it shows the link): submitting is not refused for it.
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])


def test_a_stored_text_footer_that_does_not_parse_is_the_previews_error(client, personas):
    configuration = relay(footer_html='<a href="{{ unsubscribe_url }}">Unsubscribe</a>')
    campaign = draft(personas, configuration)
    _stored(configuration, footer_text="Unsubscribe: {{ unsubscribe_url")
    client.force_login(personas["manny"])

    page = client.get(campaign.get_absolute_url())

    assert page.status_code == 200
    assert page.context["preview"].error_text.startswith("Text footer does not render: ")


def test_the_campaign_page_reads_no_secret_so_a_removed_key_does_not_break_it(client, personas, settings):
    from cryptography.fernet import Fernet

    configuration = relay(password="relay-password-0a1b", footer_html='<a href="{{ unsubscribe_url }}">Bye</a>')
    campaign = draft(personas, configuration)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key the secret was stored with is gone
    configuration.refresh_from_db()
    with pytest.raises(ImproperlyConfigured):
        configuration.get_settings()
    client.force_login(personas["manny"])

    page = client.get(campaign.get_absolute_url())

    assert page.status_code == 200
    # The rule still reads the footer: only the text body lacks a link.
    assert set(visible_unsubscribe_errors(campaign=campaign, version=campaign.latest_version())) == {"text_body"}
    assert '<p>Our sale starts now.</p><a href="#unsubscribe-link">Bye</a>' in page.context["preview"].rendered.html


def test_the_configuration_page_shows_a_footer_error_next_to_the_footer(client, personas):
    data = post_data(
        "email", name="Relay", from_email="news@example.com", host="smtp.example.com", footer_html="<p>Bye</p>"
    )

    response = logged_in(client, personas).post(create_url("email"), data)

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"footer_html"}
    assert "{{ unsubscribe_url }}" in field_html(response.content.decode(), "footer_html")
    assert not ChannelConfiguration.objects.exists()


# At send time ----------------------------------------------------------------------------------------------------


def _sent(personas, configuration, content, **fields) -> int:
    """Activate a campaign to everyone, plan its run and send it: the run's id."""
    campaign = draft(personas, configuration, content, **fields)
    campaign_activate(campaign=campaign, actor=personas["ada"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)
    return run_id


@pytest.mark.django_db(transaction=True)
def test_the_footer_arrives_in_both_parts_of_each_marketing_message_with_its_recipients_own_link(
    redis, smtp_server, personas
):
    people = make_profiles(2)
    configuration = relay(
        smtp_server.port,
        footer_html='<p class="footer"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        footer_text="Unsubscribe: {{ unsubscribe_url }}",
    )

    run_id = _sent(personas, configuration, WITHOUT_LINK)

    received = smtp_server.by_recipient()
    assert sorted(received) == sorted(person.email for person in people)
    for person in people:
        [message] = received[person.email]
        delivery = Delivery.objects.get(run_id=run_id, profile=person)
        link = unsubscribe_url(profile_id=person.pk, channel="email", delivery_id=delivery.pk)
        html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
        text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
        # Before </body>, where a reader finds it under the content.
        assert f'<p>Our sale starts now.</p><p class="footer"><a href="{link}">Unsubscribe</a></p>\n</body>' in html
        assert text.strip() == f"Our sale starts now.\n\nUnsubscribe: {link}"
        assert message["List-Unsubscribe"] == f"<{link}>"


@pytest.mark.django_db(transaction=True)
def test_transactional_mail_gets_no_footer(redis, smtp_server, personas):
    make_profiles(1)
    configuration = relay(
        smtp_server.port,
        footer_html='<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        footer_text="{{ unsubscribe_url }}",
    )

    _sent(personas, configuration, WITHOUT_LINK, category=Campaign.Category.TRANSACTIONAL)

    [message] = smtp_server.messages
    assert "Unsubscribe" not in message["message"].get_body(("html",)).get_content()
    assert message["message"].get_body(("plain",)).get_content().strip() == "Our sale starts now."


@pytest.mark.django_db(transaction=True)
def test_a_footer_that_fails_only_with_a_real_link_fails_each_message_naming_the_footer(
    redis, smtp_server, personas, caplog
):
    """Rendered with the sample link when saved, this footer passes; with a recipient's link it divides by zero:
    each marketing message fails, its detail and the log naming the footer, and nothing goes out without it."""
    make_profiles(2)
    configuration = relay(
        smtp_server.port,
        footer_html='{% unless unsubscribe_url contains "example.com" %}{{ 1 | divided_by: 0 }}{% endunless %}'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        footer_text="Unsubscribe: {{ unsubscribe_url }}",
    )

    run_id = _sent(personas, configuration, WITHOUT_LINK)

    assert not smtp_server.messages
    details = set(Delivery.objects.filter(run_id=run_id).values_list("status", "detail"))
    assert details == {
        (
            Delivery.Status.FAILED,
            "FooterError: The channel configuration's footer_html does not render: divided_by: can't divide by 0: "
            "edit the configuration's footer.",
        )
    }
    logged = [r.getMessage() for r in caplog.records if "footer_html does not render" in r.getMessage()]
    assert len(logged) == 1 and f"configuration {configuration.pk}" in logged[0]
