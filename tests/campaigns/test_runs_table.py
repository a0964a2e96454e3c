"""The runs table of the status panel: each occurrence with its zone, as the other columns show theirs."""

import pytest
from django.urls import reverse

from audiences.models import Audience
from campaigns.models import Run
from campaigns.services import lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings


@pytest.fixture
def campaign(personas):
    configuration = ChannelConfiguration(name="Relay", channel="email")
    configuration.set_settings(EmailSettings(from_email="news@example.com", host="127.0.0.1", port=1025))
    configuration.save()
    return lifecycle.campaign_create(
        actor=personas["manny"],
        name="Digest",
        channel_configuration=configuration,
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=lifecycle.Content("Hello", "<p>Hi</p>", "Hi"),
        timezone_name="Europe/Paris",
    )


def _runs_table(client, personas, campaign) -> str:
    client.force_login(personas["vera"])
    page = client.get(reverse("campaigns:status", args=[campaign.pk])).content.decode()
    return page[page.index("<h3>Runs</h3>") :]


def _run(campaign, occurrence, kind=Run.Kind.SCHEDULED):
    return Run.objects.create(
        campaign=campaign, version=campaign.latest_version(), kind=kind, occurrence=occurrence, state=Run.State.COMPLETE
    )


def test_a_scheduled_occurrence_shows_its_zone_next_to_times_in_utc(client, personas, campaign):
    _run(campaign, "2026-11-02T09:00:00")

    table = _runs_table(client, personas, campaign)

    assert "2026-11-02 09:00:00 Europe/Paris" in table
    assert "2026-11-02T09:00:00" not in table
    assert " UTC</td>" in table  # the created column, in the server's zone, named


def test_the_second_of_a_repeated_hour_shows_its_offset(client, personas, campaign):
    _run(campaign, "2026-10-25T02:00:00")
    _run(campaign, "2026-10-25T02:00:00+01:00")

    table = _runs_table(client, personas, campaign)

    assert "2026-10-25 02:00:00 Europe/Paris" in table
    assert "2026-10-25 02:00:00 (UTC+01:00) Europe/Paris" in table


def test_an_occurrence_in_each_profiles_zone_says_so(client, personas, campaign):
    version = campaign.latest_version()
    version.in_profile_timezone = True
    version.save(update_fields=["in_profile_timezone"])
    _run(campaign, "2026-11-02T09:00:00")

    table = _runs_table(client, personas, campaign)

    assert "2026-11-02 09:00:00 <span" in table and "in each profile's zone" in table
    assert "Europe/Paris" not in table


def test_a_trigger_run_shows_what_started_it_not_a_key(client, personas, campaign):
    _run(campaign, "trigger:0d7c5a4e", kind=Run.Kind.AUDIENCE_TRIGGER)
    _run(campaign, "unitary:v1", kind=Run.Kind.UNITARY)

    table = _runs_table(client, personas, campaign)

    assert '<td title="trigger:0d7c5a4e">Audience trigger</td>' in table
    assert '<td title="unitary:v1">Unitary triggers</td>' in table
