import pytest
from django.core.exceptions import ValidationError

from audiences.models import Audience
from campaigns.lifecycle import Content, campaign_create
from campaigns.models import Campaign, CampaignVersion
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
