"""The delivery rule pages, through Django's test client: an administrator creates, edits and deletes frequency caps
and quiet hours, the rules refused with the field named, who may not see them, and the campaign pages' card saying
which rules apply to a campaign."""

from datetime import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from campaigns.models import FrequencyCap, QuietHours
from campaigns.services import delivery_rules
from permissions.models import AuditEvent
from tests.campaigns.test_execution import make_campaign
from tests.conftest import make_email_configuration

LIST = reverse("campaigns:delivery_rules")
NEW_CAP = reverse("campaigns:cap_create")
NEW_QUIET = reverse("campaigns:quiet_create")
WEEKLY = {"name": "Weekly", "limit": "3", "period": "week", "channel": "", "is_active": "on"}
EVENINGS = {"channel": "email", "start": "21:00", "end": "08:00", "action": "delay", "is_active": "on"}


@pytest.fixture
def ada(client, personas):
    client.force_login(personas["ada"])
    return client


def errors_of(response, field: str) -> list[str]:
    return response.context["form"].errors.get(field, [])


def make_cap(personas, **rules) -> FrequencyCap:
    values = {"name": "Weekly", "limit": 3, "period": "week"} | rules
    return delivery_rules.frequency_cap_create(actor=personas["ada"], rules=delivery_rules.CapRules(**values))


def make_window(personas, **rules) -> QuietHours:
    values = {"channel": "email", "start": time(21), "end": time(8)} | rules
    return delivery_rules.quiet_hours_create(actor=personas["ada"], rules=delivery_rules.QuietHoursRules(**values))


def audit_actions(model) -> list[str]:
    rows = AuditEvent.objects.filter(object_type=model._meta.label_lower).order_by("id")
    return list(rows.values_list("action", flat=True))


# Frequency caps


def test_an_administrator_creates_edits_and_deletes_a_cap(ada, personas):
    response = ada.post(NEW_CAP, WEEKLY)

    assert response.status_code == 302 and response["Location"] == LIST
    cap = FrequencyCap.objects.get()
    assert (cap.name, cap.limit, cap.period, cap.channel, cap.is_active) == ("Weekly", 3, "week", "", True)
    assert cap.created_by == personas["ada"]
    assert "At most 3 marketing messages a week per profile, across channels" in ada.get(LIST).content.decode()

    response = ada.post(reverse("campaigns:cap_edit", args=[cap.pk]), WEEKLY | {"limit": "5", "channel": "sms"})

    assert response.status_code == 302
    cap.refresh_from_db()
    assert (cap.limit, cap.channel) == (5, "sms")
    assert "At most 5 marketing messages a week per profile, by SMS" in ada.get(LIST).content.decode()

    delete = reverse("campaigns:cap_delete", args=[cap.pk])
    assert "Delete “Weekly”?" in ada.get(delete).content.decode()
    response = ada.post(delete)

    assert response.status_code == 302 and response["Location"] == LIST
    assert not FrequencyCap.objects.exists()
    assert audit_actions(FrequencyCap) == ["frequency_cap.created", "frequency_cap.changed", "frequency_cap.deleted"]
    changed = AuditEvent.objects.get(action="frequency_cap.changed")
    assert (changed.before["limit"], changed.after["limit"]) == (3, 5)
    assert changed.actor == personas["ada"]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "99999999999999999999"])
def test_a_limit_outside_1_to_1000_is_refused_on_its_field(ada, limit):
    response = ada.post(NEW_CAP, WEEKLY | {"limit": limit})

    assert response.status_code == 200
    assert errors_of(response, "limit")
    assert not FrequencyCap.objects.exists()


@pytest.mark.parametrize("limit", [0, 1001, True, "3"])
def test_the_service_refuses_a_limit_outside_1_to_1000_naming_the_field(personas, limit):
    with pytest.raises(ValidationError) as refused:
        make_cap(personas, limit=limit)

    assert set(refused.value.message_dict) == {"limit"}


def test_a_cap_name_already_taken_is_refused_on_its_field(ada, personas):
    make_cap(personas)

    response = ada.post(NEW_CAP, WEEKLY | {"limit": "9"})

    assert errors_of(response, "name") == ["A cap named “Weekly” already exists."]
    assert FrequencyCap.objects.get().limit == 3


def test_renaming_a_cap_to_a_name_taken_is_refused_and_keeping_its_own_name_is_not(ada, personas):
    make_cap(personas)
    daily = make_cap(personas, name="Daily", period="day", limit=1)
    edit = reverse("campaigns:cap_edit", args=[daily.pk])

    assert errors_of(ada.post(edit, WEEKLY | {"limit": "1", "period": "day"}), "name")
    assert ada.post(edit, WEEKLY | {"name": "Daily", "limit": "2", "period": "day"}).status_code == 302
    assert FrequencyCap.objects.get(pk=daily.pk).limit == 2


def test_unknown_period_and_channel_are_refused_on_their_fields(ada, personas):
    response = ada.post(NEW_CAP, WEEKLY | {"period": "fortnight", "channel": "fax"})

    assert errors_of(response, "period") and errors_of(response, "channel")
    with pytest.raises(ValidationError) as refused:
        make_cap(personas, period="fortnight", channel="fax", name=" ")
    assert set(refused.value.message_dict) == {"name", "period", "channel"}


def test_saving_a_cap_unchanged_records_no_audit_event(ada, personas):
    cap = make_cap(personas)

    ada.post(reverse("campaigns:cap_edit", args=[cap.pk]), WEEKLY)

    assert audit_actions(FrequencyCap) == ["frequency_cap.created"]


# Quiet hours


def test_an_administrator_creates_edits_and_deletes_quiet_hours(ada, personas):
    response = ada.post(NEW_QUIET, EVENINGS)

    assert response.status_code == 302 and response["Location"] == LIST
    window = QuietHours.objects.get()
    assert (window.channel, window.start, window.end, window.action) == ("email", time(21), time(8), "delay")
    page = ada.get(LIST).content.decode()
    assert "No marketing email between 21:00 and 08:00, profile&#x27;s local time: delayed to 08:00" in page

    response = ada.post(reverse("campaigns:quiet_edit", args=[window.pk]), EVENINGS | {"action": "discard"})

    assert response.status_code == 302
    window.refresh_from_db()
    assert window.action == "discard"
    assert "between 21:00 and 08:00, profile&#x27;s local time: discarded" in ada.get(LIST).content.decode()

    response = ada.post(reverse("campaigns:quiet_delete", args=[window.pk]))

    assert response.status_code == 302 and not QuietHours.objects.exists()
    assert audit_actions(QuietHours) == ["quiet_hours.created", "quiet_hours.changed", "quiet_hours.deleted"]
    created = AuditEvent.objects.get(action="quiet_hours.created")
    assert created.after == {"channel": "email", "is_active": True, "start": "21:00", "end": "08:00", "action": "delay"}


@pytest.mark.parametrize(("start", "end"), [("21:00", "21:00"), ("00:00", "00:00"), ("21:00", "21:00:30")])
def test_a_window_ending_when_it_starts_is_refused_on_its_end(ada, start, end):
    response = ada.post(NEW_QUIET, EVENINGS | {"start": start, "end": end})

    assert response.status_code == 200
    assert errors_of(response, "end") == ["The window must end at another time than it starts."]
    assert not QuietHours.objects.exists()


@pytest.mark.parametrize("bad", ["25:00", "9pm", "21:00\x00", ""])
def test_a_time_no_clock_shows_is_refused_on_its_field(ada, bad):
    response = ada.post(NEW_QUIET, EVENINGS | {"start": bad})

    assert response.status_code == 200 and errors_of(response, "start")
    assert not QuietHours.objects.exists()


def test_a_second_window_on_the_same_channel_is_refused_on_the_channel(ada, personas):
    make_window(personas)

    response = ada.post(NEW_QUIET, EVENINGS | {"start": "22:00", "end": "07:00"})

    assert errors_of(response, "channel") == ["Email already has quiet hours: one window per channel, edit that one."]
    assert QuietHours.objects.get().start == time(21)
    assert ada.post(NEW_QUIET, EVENINGS | {"channel": "sms"}).status_code == 302


def test_moving_a_window_to_a_channel_that_has_one_is_refused(ada, personas):
    make_window(personas)
    texts = make_window(personas, channel="sms")

    response = ada.post(reverse("campaigns:quiet_edit", args=[texts.pk]), EVENINGS)

    assert errors_of(response, "channel")
    assert QuietHours.objects.get(pk=texts.pk).channel == "sms"


# Who may


@pytest.mark.parametrize("persona", ["april", "manny", "vera", "otto"])
def test_only_administrators_see_and_change_delivery_rules(client, personas, persona):
    cap, window = make_cap(personas), make_window(personas)
    client.force_login(personas[persona])

    for url in (LIST, NEW_CAP, NEW_QUIET, cap.get_absolute_url(), window.get_absolute_url()):
        assert client.get(url).status_code == 403, url
    assert client.post(NEW_CAP, WEEKLY | {"name": "Sneaky"}).status_code == 403
    assert client.post(reverse("campaigns:cap_delete", args=[cap.pk])).status_code == 403
    assert client.post(reverse("campaigns:quiet_delete", args=[window.pk])).status_code == 403
    assert FrequencyCap.objects.count() == QuietHours.objects.count() == 1
    assert "Delivery rules" not in client.get(reverse("campaigns:list")).content.decode()


def test_the_nav_marks_delivery_rules_current_and_not_campaigns(ada, personas):
    cap = make_cap(personas)

    for url in (LIST, NEW_CAP, cap.get_absolute_url(), NEW_QUIET):
        page = ada.get(url).content.decode()
        assert ">Delivery rules</a>" in page
        assert 'aria-current="page">Delivery rules</a>' in page, url
        assert 'aria-current="page">Campaigns</a>' not in page, url


# The campaign pages' card


@pytest.fixture
def configuration(db):
    return make_email_configuration(port=1)


def test_the_review_page_shows_the_caps_and_quiet_hours_applying_to_a_marketing_campaign(
    ada, personas, configuration, everyone
):
    campaign = make_campaign(personas["manny"], configuration, everyone)
    make_cap(personas)
    make_cap(personas, name="Texts", channel="sms", limit=1, period="day")  # another channel
    make_cap(personas, name="Paused", limit=9, is_active=False)
    make_window(personas)
    make_window(personas, channel="sms", start=time(20), action="discard")

    for url in (reverse("campaigns:review", args=[campaign.pk]), campaign.get_absolute_url()):
        page = ada.get(url).content.decode()
        card = page[page.index('id="delivery-rules"') :]
        card = card[: card.index("</section>")]
        assert "At most 3 marketing messages a week per profile, across channels" in card
        assert "No marketing email between 21:00 and 08:00, profile&#x27;s local time: delayed to 08:00" in card
        assert "Texts" not in card and "Paused" not in card and "SMS" not in card
        assert "do not apply" not in card


def test_the_review_page_says_a_transactional_campaign_is_exempt(ada, personas, configuration, everyone):
    campaign = make_campaign(personas["manny"], configuration, everyone, category="transactional")
    make_cap(personas)
    make_window(personas)

    page = ada.get(reverse("campaigns:review", args=[campaign.pk])).content.decode()

    assert "Transactional: frequency caps and quiet hours do not apply; suppression does." in page
    assert "At most 3" not in page


def test_a_campaign_without_rules_says_none_apply(ada, personas, configuration, everyone):
    campaign = make_campaign(personas["manny"], configuration, everyone)
    make_cap(personas, channel="sms")

    page = ada.get(reverse("campaigns:review", args=[campaign.pk])).content.decode()
    card = page[page.index('id="delivery-rules"') :]

    assert "None on Email" in card[: card.index("</section>")]
