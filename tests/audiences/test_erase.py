"""Erasing a profile removes the person's personal data everywhere and keeps anonymous counts."""

import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import models
from django.utils import timezone

from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    Consent,
    ConsentEvent,
    Identity,
    Profile,
    PushToken,
)
from audiences.services import privacy
from audiences.services.consent import consent_set
from audiences.services.push_tokens import push_token_register
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery, Run, TriggerRequest
from campaigns.selectors import delivery_counts
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.models import Suppression
from permissions.models import AuditEvent
from tests.conftest import make_email_configuration

# Values only the erased person has: after the erase, no table may hold any of them.
ZOE = {
    "email": "zoe.erasable@example.com",
    "phone": "+33698765432",
    "first_name": "Zoéline",
    "crm_id": "CRM-ERASE-1",
    "token": "apns-token-erasable",
    "secret_note": "allergic-to-peanuts",
}


@pytest.fixture
def zoe(db):
    AttributeDefinition.objects.create(name="first_name", type="string")
    AttributeDefinition.objects.create(name="note", type="string")
    profile = Profile.objects.create(
        email=ZOE["email"],
        phone=ZOE["phone"],
        attributes={"first_name": ZOE["first_name"], "note": ZOE["secret_note"]},
    )
    Identity.objects.create(profile=profile, namespace="email", value=ZOE["email"])
    Identity.objects.create(profile=profile, namespace="phone", value=ZOE["phone"])
    Identity.objects.create(profile=profile, namespace="crm_id", value=ZOE["crm_id"])
    consent_set(profile=profile, channel="email", state="opted_in", source="signup")
    consent_set(profile=profile, channel="sms", state="opted_in", source="signup")
    push_token_register(profile=profile, token=ZOE["token"], platform="ios", app="com.shop")
    AudienceMember.objects.create(audience=Audience.objects.create(name="VIP", kind="uploaded"), profile=profile)
    return profile


@pytest.fixture
def others(db):
    return Profile.objects.bulk_create(
        Profile(email=f"other{i}@example.com", attributes={"first_name": f"Other{i}"}) for i in range(6)
    )


@pytest.fixture
def sent_campaign(personas, redis, smtp_server, zoe, others):
    """A marketing campaign to everyone, planned and sent through an SMTP server on loopback."""
    marketer = personas["april"]
    everyone = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    campaign = campaign_create(
        actor=marketer,
        name="Autumn sale",
        channel_configuration=make_email_configuration(port=smtp_server.port),
        audience=everyone,
        content=Content("Hello {{ profile.first_name }}", "<p>Hi {{ profile.first_name }}</p>", "Hi"),
    )
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)
    assert ZOE["email"] in smtp_server.by_recipient()
    return Run.objects.get(pk=run_id)


@pytest.fixture
def trigger_request(personas, sent_campaign, zoe):
    return TriggerRequest.objects.create(
        campaign=sent_campaign.campaign,
        profile=zoe,
        request_id="req-1",
        body_hash="0" * 64,
        context={"order": {"id": 991, "ship_to": ZOE["first_name"], "email": ZOE["email"]}},
        expires_at=timezone.now() + timedelta(days=1),
    )


def _tables_holding(value: str) -> list[str]:
    """Every model field, in every app, whose stored text contains `value`."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.CharField | models.TextField | models.JSONField):
                continue
            # JSON may be stored with non-ASCII characters escaped ("Zo\\u00e9line" on SQLite).
            forms = {value, json.dumps(value)[1:-1]} if isinstance(field, models.JSONField) else {value}
            manager = model._default_manager
            if any(manager.filter(**{f"{field.name}__icontains": form}).exists() for form in forms):
                found.append(f"{model._meta.label}.{field.name}")
    return found


def test_the_search_sees_the_values_before_the_erase(zoe, sent_campaign, trigger_request):
    assert "campaigns.Delivery.address" in _tables_holding(ZOE["email"])
    assert "campaigns.TriggerRequest.context" in _tables_holding(ZOE["first_name"])
    assert "audiences.PushToken.token" in _tables_holding(ZOE["token"])


def test_erase_leaves_no_personal_data_behind(personas, zoe, sent_campaign, trigger_request):
    delivery = Delivery.objects.get(profile=zoe)
    Delivery.objects.filter(pk=delivery.pk).update(detail=f"550 {ZOE['email']}: mailbox full")

    privacy.profile_erase(profile=zoe, actor=personas["ada"])

    for value in ZOE.values():
        assert _tables_holding(value) == [], value
    assert not Profile.objects.filter(pk=zoe.pk).exists()
    for model in (Identity, Consent, ConsentEvent, PushToken, AudienceMember):
        assert not model.objects.filter(profile_id=zoe.pk).exists(), model


def test_erase_keeps_the_counts_of_runs_and_campaigns(personas, zoe, others, sent_campaign, trigger_request):
    run = sent_campaign
    before = (delivery_counts(run_id=run.pk), delivery_counts(campaign_id=run.campaign_id))
    assert before[0].sent == 1 + len(others)

    privacy.profile_erase(profile=zoe, actor=personas["ada"])

    assert (delivery_counts(run_id=run.pk), delivery_counts(campaign_id=run.campaign_id)) == before
    anonymous = Delivery.objects.get(run=run, profile__isnull=True)
    assert (anonymous.address, anonymous.detail, anonymous.status) == ("", "", Delivery.Status.SENT)


def test_erase_scrubs_the_trigger_context_but_keeps_the_request_for_replays(personas, zoe, trigger_request):
    privacy.profile_erase(profile=zoe, actor=personas["ada"])

    trigger_request.refresh_from_db()
    assert trigger_request.context == {} and trigger_request.profile is None
    assert trigger_request.request_id == "req-1"


def test_erase_touches_nobody_else(personas, zoe, others, sent_campaign):
    other_export = privacy.profile_export(others[0])

    privacy.profile_erase(profile=zoe, actor=personas["ada"])

    assert Profile.objects.count() == len(others)
    other_after = privacy.profile_export(others[0])
    assert {k: v for k, v in other_after.items() if k != "exported_at"} == {
        k: v for k, v in other_export.items() if k != "exported_at"
    }
    assert Delivery.objects.filter(address__startswith="other").count() == len(others)


def test_erase_is_audited_by_id_with_a_receipt_and_no_address(personas, zoe, sent_campaign, trigger_request):
    receipt = privacy.profile_erase(profile=zoe, actor=personas["ada"])

    event = AuditEvent.objects.get(action="profile.erased")
    assert (event.object_id, event.object_repr, event.actor) == (str(zoe.pk), f"Profile {zoe.pk}", personas["ada"])
    assert receipt == event.after
    assert receipt["identities"] == 3 and receipt["push_registrations"] == 1 and receipt["consent_events"] == 2
    assert receipt["deliveries_anonymised"] == 1 and receipt["trigger_requests_scrubbed"] == 1


def test_erase_of_a_pending_recipient_excludes_the_message(personas, zoe, others, smtp_server, redis):
    everyone = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    campaign = campaign_create(
        actor=personas["april"],
        name="Later",
        channel_configuration=make_email_configuration(port=smtp_server.port),
        audience=everyone,
        content=Content("Hi", "<p>Hi</p>", "Hi"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)

    privacy.profile_erase(profile=zoe, actor=personas["ada"])
    sending.send_run(run_id=run_id)

    assert ZOE["email"] not in smtp_server.by_recipient()
    assert Delivery.objects.get(run_id=run_id, profile__isnull=True).status == Delivery.Status.EXCLUDED
    assert set(smtp_server.by_recipient()) == {other.email for other in others}


def test_a_failing_part_of_the_erase_undoes_all_of_it(personas, zoe, monkeypatch):
    def refuse(sender, profile, **kwargs):
        raise RuntimeError("ledger unavailable")

    privacy.profile_erasing.connect(refuse, dispatch_uid="test-refuse")
    try:
        with pytest.raises(RuntimeError):
            privacy.profile_erase(profile=zoe, actor=personas["ada"])
    finally:
        privacy.profile_erasing.disconnect(dispatch_uid="test-refuse")

    assert Profile.objects.filter(pk=zoe.pk).exists()
    assert Identity.objects.filter(profile=zoe).count() == 3


def test_a_suppressed_address_stays_suppressed_after_erase(personas, zoe):
    # Deliberate: the suppression list is how an erased person is never mailed again (docs/audiences.md).
    Suppression.objects.create(channel="email", address=ZOE["email"], reason=Suppression.Reason.MANUAL)

    privacy.profile_erase(profile=zoe, actor=personas["ada"])

    assert _tables_holding(ZOE["email"]) == ["channels.Suppression.address"]


def test_export_includes_the_messages_and_trigger_requests(zoe, sent_campaign, trigger_request):
    export = privacy.profile_export(zoe)

    [delivery] = export["deliveries"]
    assert (delivery["campaign"], delivery["address"], delivery["status"]) == ("Autumn sale", ZOE["email"], "sent")
    assert delivery["sent_at"]
    [request] = export["trigger_requests"]
    assert request["context"]["order"]["id"] == 991
