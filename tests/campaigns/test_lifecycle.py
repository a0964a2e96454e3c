import pytest
from django.core.exceptions import ValidationError

from audiences.models import Audience
from campaigns.models import Campaign, CampaignVersion
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from tests.conftest import make_email_configuration


def test_every_bad_field_is_reported_at_once_and_nothing_is_stored(personas):
    with pytest.raises(ValidationError) as raised:
        campaign_create(
            actor=personas["manny"],
            name="Broken",
            channel_configuration=make_email_configuration(port=25),
            audience=Audience.objects.create(name="All", kind=Audience.Kind.ALL),
            content=Content(subject="Hi {% if %}", html_body="<p>x</p>", text_body="x"),
            schedule=Campaign.Schedule.RECURRING,
            cron="every monday",
            timezone_name="Mars/Olympus",
        )

    errors = raised.value.message_dict
    assert set(errors) == {"subject", "cron", "timezone"}
    assert "missing expression" in errors["subject"][0]
    assert "not a cron expression" in errors["cron"][0]
    assert not Campaign.objects.exists() and not CampaignVersion.objects.exists()


def test_a_relay_kept_for_transactional_mail_refuses_marketing_campaigns(personas):
    from channels.schemas import EmailSettings

    relay = make_email_configuration(port=25, name="Transactional relay", purpose="transactional")
    audience = Audience.objects.create(name="All", kind=Audience.Kind.ALL)
    content = Content(subject="Hi", html_body="<p>x</p>", text_body="x")

    with pytest.raises(ValidationError) as raised:
        campaign_create(
            actor=personas["manny"], name="Sale", channel_configuration=relay, audience=audience, content=content
        )
    assert "transactional messages only" in raised.value.message_dict["channel_configuration"][0]

    receipts = campaign_create(
        actor=personas["manny"],
        name="Receipts",
        channel_configuration=relay,
        audience=audience,
        content=content,
        category=Campaign.Category.TRANSACTIONAL,
    )
    assert receipts.pk
    # A purpose changed later is checked again on activation.
    relay.set_settings(EmailSettings(**{**relay.get_settings().model_dump(), "purpose": "marketing"}))
    relay.save()
    with pytest.raises(ValidationError, match="marketing messages only"):
        campaign_activate(campaign=receipts, actor=personas["april"])
