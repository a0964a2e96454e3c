"""Profiles outside imports: namespaces, consent per channel, push tokens, the attribute schema, search and
export (audiences.services and audiences.selectors.profiles)."""

import json

import pytest
from django.core.exceptions import ValidationError

from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    ChannelConsentSetting,
    Consent,
    ConsentEvent,
    Identity,
    IdentityNamespace,
    Profile,
    PushToken,
)
from audiences.selectors.profiles import consent_allows_marketing, consent_overview, namespace_usage, profiles_search
from audiences.services.attributes import attribute_change, attribute_declare
from audiences.services.consent import channel_consent_setting_set, consent_set
from audiences.services.namespaces import namespace_create, namespace_delete
from audiences.services.privacy import profile_export, profile_export_recorded
from audiences.services.push_tokens import push_token_hash, push_token_register, push_token_retire
from campaigns.models import Campaign
from campaigns.rules.consent import exclusion_reason
from permissions.models import AuditEvent


@pytest.fixture
def ada(personas):
    return personas["ada"]


@pytest.fixture
def person(db):
    return Profile.objects.create(email="zoe@example.com", phone="+33612345678")


# Identity namespaces ------------------------------------------------------------------------------------


def test_builtin_namespaces_exist_and_cannot_be_deleted(ada):
    builtin = IdentityNamespace.objects.filter(builtin=True)
    assert set(builtin.values_list("name", flat=True)) == {"email", "phone", "crm_id"}

    with pytest.raises(ValidationError, match="built in"):
        namespace_delete(actor=ada, namespace=builtin.get(name="crm_id"))

    assert IdentityNamespace.objects.filter(name="crm_id").exists()


def test_custom_namespace_is_added_and_audited(ada):
    namespace = namespace_create(actor=ada, name="shop_id", label="Shop customer id", kind="text")

    assert not namespace.builtin
    assert AuditEvent.objects.filter(action="identity_namespace.created", object_id=str(namespace.pk)).exists()


@pytest.mark.parametrize("name", ["Shop", "1shop", "shop-id", "shop__id", "", "a" * 65])
def test_namespace_names_are_lower_case_slugs(ada, name):
    with pytest.raises(ValidationError) as error:
        namespace_create(actor=ada, name=name, label="x")
    assert "name" in error.value.message_dict


def test_namespace_names_are_unique(ada):
    with pytest.raises(ValidationError, match="already a namespace named email"):
        namespace_create(actor=ada, name="email", label="Again")


def test_a_custom_namespace_in_use_cannot_be_deleted_until_unused(ada, person):
    namespace = namespace_create(actor=ada, name="loyalty", label="Loyalty card")
    identity = Identity.objects.create(profile=person, namespace="loyalty", value="L-1")

    with pytest.raises(ValidationError, match="1 profile has an identity in loyalty"):
        namespace_delete(actor=ada, namespace=namespace)
    identity.delete()
    namespace_delete(actor=ada, namespace=namespace)

    assert not IdentityNamespace.objects.filter(name="loyalty").exists()
    assert AuditEvent.objects.filter(action="identity_namespace.deleted").exists()


def test_namespace_usage_counts_identities(person):
    Identity.objects.create(profile=person, namespace="email", value=person.email)
    Identity.objects.create(profile=person, namespace="crm_id", value="C-9")

    assert namespace_usage() == {"email": 1, "crm_id": 1}


def test_namespace_usage_stops_counting_past_its_cap(person):
    """Counting every identity grew with them (140 ms at a million profiles): each namespace is counted up to the
    cap and one more."""
    IdentityNamespace.objects.create(name="loyalty", label="Loyalty card")
    for number in range(4):
        Identity.objects.create(profile=Profile.objects.create(), namespace="loyalty", value=f"L-{number}")
    Identity.objects.create(profile=person, namespace="crm_id", value="C-9")

    assert namespace_usage(cap=2) == {"loyalty": 3, "crm_id": 1}
    assert namespace_usage(cap=4) == {"loyalty": 4, "crm_id": 1}


def test_identities_are_unique_per_namespace_not_across_namespaces(person):
    other = Profile.objects.create()
    Identity.objects.create(profile=person, namespace="crm_id", value="42")
    Identity.objects.create(profile=other, namespace="loyalty", value="42")

    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Identity.objects.create(profile=other, namespace="crm_id", value="42")


# Consent ------------------------------------------------------------------------------------------------


def test_consent_change_is_recorded_with_its_source_and_history_is_kept(person):
    consent_set(profile=person, channel="email", state="opted_in", source="signup form")
    consent_set(profile=person, channel="email", state="opted_out", source="unsubscribe link")

    consent = Consent.objects.get(profile=person, channel="email")
    assert (consent.state, consent.source) == ("opted_out", "unsubscribe link")
    history = list(ConsentEvent.objects.filter(profile=person).values_list("state", "source"))
    assert history == [("opted_out", "unsubscribe link"), ("opted_in", "signup form")]


def test_setting_the_same_consent_again_records_nothing(person):
    consent_set(profile=person, channel="sms", state="opted_in", source="api")
    consent_set(profile=person, channel="sms", state="opted_in", source="import")

    assert ConsentEvent.objects.filter(profile=person).count() == 1
    assert Consent.objects.get(profile=person, channel="sms").source == "api"


def test_unknown_where_nothing_was_recorded_records_nothing(person):
    consent_set(profile=person, channel="push", state="unknown", source="api")

    assert not Consent.objects.filter(profile=person).exists()
    assert not ConsentEvent.objects.filter(profile=person).exists()


def test_consent_is_kept_per_channel(person):
    consent_set(profile=person, channel="email", state="opted_out", source="api")

    overview = {row["channel"]: row for row in consent_overview(person)}
    assert overview["email"]["state"] == "opted_out"
    assert overview["sms"]["state"] == "unknown"
    assert not overview["email"]["allows_marketing"]


def test_unknown_consent_means_yes_for_email_and_no_for_sms_by_default(person):
    overview = {row["channel"]: row["allows_marketing"] for row in consent_overview(person)}

    assert overview["email"] is True
    assert overview["sms"] is False


def test_what_unknown_means_is_a_setting_per_channel(ada, person):
    channel_consent_setting_set(actor=ada, channel="email", unknown_allows_marketing=False)
    channel_consent_setting_set(actor=ada, channel="sms", unknown_allows_marketing=True)

    assert not consent_allows_marketing(channel="email", state=None)
    assert consent_allows_marketing(channel="sms", state="unknown")
    # An explicit answer always wins over the setting.
    assert consent_allows_marketing(channel="sms", state="opted_out") is False
    assert consent_allows_marketing(channel="email", state="opted_in") is True
    assert AuditEvent.objects.filter(action="consent_setting.changed").count() == 2


def test_the_send_path_honours_the_unknown_setting(ada):
    def reason(channel, consent):
        return exclusion_reason(
            category=Campaign.Category.MARKETING,
            channel=channel,
            address="x@example.com",
            consent=consent,
            suppressed=set(),
            unknown_allows=consent_allows_marketing(channel=channel, state=None),
        )

    assert reason("email", None) == ""
    assert reason("sms", None) == "no_consent"
    channel_consent_setting_set(actor=ada, channel="sms", unknown_allows_marketing=True)
    assert reason("sms", None) == ""
    assert reason("sms", "opted_out") == "no_consent"


def test_unchanged_consent_setting_is_not_audited(ada):
    channel_consent_setting_set(actor=ada, channel="email", unknown_allows_marketing=True)

    assert ChannelConsentSetting.objects.get(channel="email").unknown_allows_marketing
    assert not AuditEvent.objects.filter(action="consent_setting.changed").exists()


@pytest.mark.parametrize(("channel", "state"), [("fax", "opted_in"), ("email", "maybe")])
def test_unknown_channels_and_states_are_refused(person, channel, state):
    with pytest.raises(ValidationError):
        consent_set(profile=person, channel=channel, state=state, source="api")


# Push tokens --------------------------------------------------------------------------------------------


def test_push_token_is_stored_with_its_hash_and_registering_again_changes_nothing(person):
    first = push_token_register(profile=person, token="tok-1", platform="ios", app="com.shop")
    again = push_token_register(profile=person, token="tok-1", platform="ios", app="com.shop")

    assert first.pk == again.pk
    assert first.token_hash == push_token_hash("tok-1")
    assert PushToken.objects.count() == 1


def test_a_token_seen_on_another_profile_moves_to_it_and_is_active_again(person):
    push_token_register(profile=person, token="tok-1", platform="android", app="com.shop")
    assert push_token_retire(token="tok-1")
    other = Profile.objects.create(email="new-owner@example.com")

    token = push_token_register(profile=other, token="tok-1", platform="android", app="com.shop")

    assert token.profile == other and token.retired_at is None
    assert PushToken.objects.count() == 1


def test_retiring_keeps_the_token_and_is_idempotent(person):
    push_token_register(profile=person, token="tok-1", platform="web", app="shop.example.com")

    assert push_token_retire(token="tok-1")
    assert not push_token_retire(token="tok-1")
    assert not push_token_retire(token="never-seen")
    assert PushToken.objects.get().retired_at is not None


def test_push_token_platform_is_checked(person):
    with pytest.raises(ValidationError, match="platform"):
        push_token_register(profile=person, token="t", platform="symbian", app="x")


# The attribute schema -----------------------------------------------------------------------------------


def test_attribute_is_declared_with_its_type_and_audited(ada):
    definition = attribute_declare(actor=ada, name="birthday", type="date", label="Birthday", indexed=True)

    assert (definition.type, definition.indexed, definition.created_by) == ("date", True, ada)
    assert AuditEvent.objects.filter(action="attribute.declared", object_id=str(definition.pk)).exists()


@pytest.mark.parametrize(("name", "type_"), [("Birthday", "date"), ("a__b", "string"), ("ok", "colour")])
def test_bad_attribute_names_and_types_are_refused(ada, name, type_):
    with pytest.raises(ValidationError):
        attribute_declare(actor=ada, name=name, type=type_)


def test_an_attribute_is_declared_once(ada):
    attribute_declare(actor=ada, name="city", type="string")

    with pytest.raises(ValidationError):
        attribute_declare(actor=ada, name="city", type="number")


def test_type_changes_only_while_no_profile_holds_a_value(ada):
    definition = attribute_declare(actor=ada, name="score", type="string")
    definition = attribute_change(
        actor=ada, definition=definition, type="number", label="Score", description="", indexed=False
    )
    assert definition.type == "number"
    Profile.objects.create(attributes={"score": 3})

    with pytest.raises(ValidationError, match="can no longer change"):
        attribute_change(actor=ada, definition=definition, type="string", label="Score", description="", indexed=False)
    changed = attribute_change(
        actor=ada, definition=definition, type="number", label="Loyalty score", description="", indexed=True
    )
    assert (changed.type, changed.label, changed.indexed) == ("number", "Loyalty score", True)


# Search -------------------------------------------------------------------------------------------------


@pytest.fixture
def people(db):
    AttributeDefinition.objects.create(name="first_name", type="string")
    AttributeDefinition.objects.create(name="last_name", type="string")
    zoe = Profile.objects.create(
        email="Zoe.Martin@example.com", attributes={"first_name": "Zoé", "last_name": "Martin"}
    )
    Identity.objects.create(profile=zoe, namespace="email", value="Zoe.Martin@example.com")
    Identity.objects.create(profile=zoe, namespace="crm_id", value="CRM-77")
    bob = Profile.objects.create(phone="+33612345678", attributes={"first_name": "Bob", "last_name": "Marley"})
    Identity.objects.create(profile=bob, namespace="phone", value="+33612345678")
    return {"zoe": zoe, "bob": bob}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("CRM-77", {"zoe"}),
        ("zoe.martin@EXAMPLE.com", {"zoe"}),
        ("zoe.mar", {"zoe"}),
        ("+33 6 12 34 56 78", {"bob"}),
        ("0033612345678", {"bob"}),
        ("Mar", {"zoe", "bob"}),
        ("zoé mar", {"zoe"}),
        ("bob", {"bob"}),
        ("nobody", set()),
        ("", {"zoe", "bob"}),
    ],
)
def test_search_finds_profiles_by_identity_email_or_name(people, query, expected):
    found = set(profiles_search(query))

    assert found == {people[name] for name in expected}


def test_search_by_id(people):
    assert list(profiles_search(f"#{people['bob'].pk}")) == [people["bob"]]


# Export -------------------------------------------------------------------------------------------------


def test_export_holds_everything_stored_about_the_person_and_nothing_of_anyone_else(ada, person):
    AttributeDefinition.objects.create(name="first_name", type="string")
    person.attributes = {"first_name": "Zoé"}
    person.save()
    Identity.objects.create(profile=person, namespace="email", value=person.email)
    Identity.objects.create(profile=person, namespace="crm_id", value="CRM-1")
    consent_set(profile=person, channel="email", state="opted_in", source="signup")
    consent_set(profile=person, channel="email", state="opted_out", source="unsubscribe link")
    push_token_register(profile=person, token="device-token-1", platform="ios", app="com.shop")
    listed = Audience.objects.create(name="VIP list", kind=Audience.Kind.UPLOADED)
    AudienceMember.objects.create(audience=listed, profile=person)
    stranger = Profile.objects.create(email="stranger@example.com", attributes={"first_name": "Stranger"})
    Identity.objects.create(profile=stranger, namespace="crm_id", value="CRM-2")
    consent_set(profile=stranger, channel="sms", state="opted_in", source="stranger-source")
    push_token_register(profile=stranger, token="stranger-token", platform="android", app="com.shop")
    AudienceMember.objects.create(
        audience=Audience.objects.create(name="Other list", kind="uploaded"), profile=stranger
    )

    export = profile_export(person)

    assert export["profile"]["email"] == "zoe@example.com"
    assert export["profile"]["phone"] == "+33612345678"
    assert {(i["namespace"], i["value"]) for i in export["identities"]} == {
        ("email", "zoe@example.com"),
        ("crm_id", "CRM-1"),
    }
    assert export["attributes"] == [{"name": "first_name", "type": "string", "value": "Zoé"}]
    assert [c["state"] for c in export["consent"]] == ["opted_out"]
    assert [(e["state"], e["source"]) for e in export["consent_history"]] == [
        ("opted_in", "signup"),
        ("opted_out", "unsubscribe link"),
    ]
    assert [t["token"] for t in export["push_tokens"]] == ["device-token-1"]
    assert export["audience_memberships"] == [{"audience_id": listed.pk, "audience": "VIP list"}]
    assert export["deliveries"] == [] and export["trigger_requests"] == []
    text = json.dumps(export)
    for foreign in ("stranger", "Stranger", "CRM-2", "Other list", str(stranger.pk) + ","):
        assert foreign not in text


def test_export_from_the_recorded_path_is_audited_by_id_only(ada, person):
    profile_export_recorded(profile=person, actor=ada)

    event = AuditEvent.objects.get(action="profile.exported")
    assert (event.object_type, event.object_id, event.object_repr) == (
        "audiences.profile",
        str(person.pk),
        f"Profile {person.pk}",
    )
