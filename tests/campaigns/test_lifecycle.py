from datetime import UTC, datetime, time, timedelta

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


def _scheduled(personas, **schedule):
    return campaign_create(
        actor=personas["manny"],
        name="Digest",
        channel_configuration=make_email_configuration(port=25),
        audience=Audience.objects.create(name="All", kind=Audience.Kind.ALL),
        content=Content(subject="Hi", html_body="<p>x</p>", text_body="x"),
        **schedule,
    )


NOW = datetime(2027, 1, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "field", "message"),
    [
        ({"schedule": "at", "start_at": NOW - timedelta(seconds=1)}, "start_at", "has passed: choose a later one"),
        ({"schedule": "daily", "send_time": time(9), "end_at": NOW}, "end_at", "has passed: choose a later one"),
        (
            {
                "schedule": "monthly",
                "send_time": time(9),
                "month_days": [31],
                "end_at": datetime(2027, 1, 30, tzinfo=UTC),
            },
            "end_at",
            "No occurrence falls before the end",
        ),
        ({"schedule": "weekly", "send_time": time(9), "weekdays": []}, "weekdays", "at least one day"),
        ({"schedule": "daily"}, "send_time", "time of day"),
        ({"schedule": "on_activation", "in_profile_timezone": True}, "in_profile_timezone", "local time"),
    ],
)
def test_a_schedule_with_nothing_left_to_send_is_refused_at_creation(personas, schedule, field, message):
    with pytest.raises(ValidationError) as raised:
        _scheduled(personas, now=NOW, **schedule)

    assert message in raised.value.message_dict[field][0]
    assert not Campaign.objects.exists()


def test_a_schedule_is_stored_and_activation_finds_its_first_occurrence(personas):
    campaign = _scheduled(
        personas,
        schedule="weekly",
        send_time=time(9),
        weekdays=[3],
        timezone_name="America/New_York",
        in_profile_timezone=False,
        now=NOW,
    )

    campaign_activate(campaign=campaign, actor=personas["manny"], now=NOW)

    campaign.refresh_from_db()
    assert (campaign.weekdays, campaign.send_time) == ([3], time(9))
    assert campaign.next_run_at == datetime(2027, 1, 7, 14, 0, tzinfo=UTC)  # Thursday, 09:00 EST
