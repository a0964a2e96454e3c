"""Time zone fields offer the canonical IANA zones, searchable, and keep a zone stored before."""

import pytest
from django.urls import reverse

from campaigns.forms.campaigns import ScheduleForm
from config.forms import canonical_timezones


def test_the_zones_are_canonical_without_deprecated_aliases_or_fixed_offsets():
    zones = canonical_timezones()

    assert {"UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Europe/Oslo", "Pacific/Kiritimati"} <= set(
        zones
    )
    for alias in ("US/Pacific", "Etc/GMT+5", "GB", "Asia/Calcutta", "America/Buenos_Aires", "Universal", "EST5EDT"):
        assert alias not in zones
    assert 350 < len(zones) < 500  # not the ~600 names of zoneinfo.available_timezones()
    assert list(zones) == sorted(zones)


def test_the_campaign_form_searches_the_zones_in_a_datalist(client, personas):
    client.force_login(personas["manny"])

    page = client.get(reverse("campaigns:create")).content.decode()

    assert '<input type="text" name="timezone" value="UTC"' in page
    assert 'list="id_timezone_zones"' in page
    datalist = page[page.index('<datalist id="id_timezone_zones">') :]
    datalist = datalist[: datalist.index("</datalist>")]
    assert datalist.count("<option ") == len(canonical_timezones())
    assert '<option value="Europe/Paris"></option>' in datalist
    assert "US/Pacific" not in datalist


def _preview(client, personas, zone):
    client.force_login(personas["manny"])
    query = {"schedule": "daily", "send_time": "09:00", "timezone": zone}
    return client.get(reverse("campaigns:schedule_preview"), query).content.decode()


@pytest.mark.parametrize("zone", ["US/Pacific", "Etc/GMT+5", "Mars/Olympus", "Europe"])
def test_a_zone_off_the_list_is_refused_naming_the_field(client, personas, zone):
    assert "Time zone: Select a valid choice: a time zone of the list" in _preview(client, personas, zone)


@pytest.mark.parametrize("typed", ["europe/paris", " Europe/Paris ", "EUROPE/PARIS"])
def test_case_and_spaces_are_forgiven(typed):
    form = ScheduleForm({"schedule": "daily", "send_time": "09:00", "timezone": typed})

    assert form.is_valid(), form.errors
    assert form.cleaned_data["timezone"] == "Europe/Paris"


def test_a_space_for_an_underscore_is_forgiven():
    form = ScheduleForm({"schedule": "daily", "send_time": "09:00", "timezone": "america/new york"})

    assert form.is_valid(), form.errors
    assert form.cleaned_data["timezone"] == "America/New_York"


def test_a_stored_deprecated_zone_stays_selectable():
    data = {"schedule": "daily", "send_time": "09:00", "timezone": "US/Pacific"}

    kept = ScheduleForm(data, initial={"timezone": "US/Pacific"})
    assert kept.is_valid(), kept.errors
    assert kept.cleaned_data["timezone"] == "US/Pacific"
    assert '<option value="US/Pacific"></option>' in str(kept["timezone"])
    # Another form, which did not start from it, refuses it.
    assert not ScheduleForm(data).is_valid()


def test_a_stored_value_that_is_no_zone_is_not_offered():
    form = ScheduleForm(
        {"schedule": "daily", "send_time": "09:00", "timezone": "Mars/Olympus"}, initial={"timezone": "Mars/Olympus"}
    )

    assert not form.is_valid()
    assert "Mars/Olympus" not in str(form["timezone"]).split("<datalist", 1)[1]
