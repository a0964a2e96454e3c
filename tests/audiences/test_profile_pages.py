"""Profile pages and the profile settings pages, per persona. (Who may open each URL at all is in the
authorization matrix; these tests check what the pages show and do.)"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    Consent,
    Identity,
    IdentityNamespace,
    Profile,
    unknown_consent_allows_marketing,
)
from audiences.services.consent import consent_set
from audiences.services.push_tokens import push_token_register
from campaigns.models import Delivery, Run
from campaigns.services import lifecycle
from permissions.models import AuditEvent
from tests.conftest import make_email_configuration


@pytest.fixture
def zoe(db):
    AttributeDefinition.objects.create(name="first_name", type="string", label="First name")
    AttributeDefinition.objects.create(name="vip", type="boolean")
    profile = Profile.objects.create(
        email="zoe@example.com",
        phone="+33612345678",
        attributes={"first_name": "Zoé", "vip": True, "legacy_code": "X1"},
    )
    Identity.objects.create(profile=profile, namespace="email", value="zoe@example.com")
    Identity.objects.create(profile=profile, namespace="crm_id", value="CRM-77")
    consent_set(profile=profile, channel="email", state="opted_in", source="signup form")
    consent_set(profile=profile, channel="email", state="opted_out", source="unsubscribe link")
    push_token_register(profile=profile, token="device-token-abcdefgh", platform="ios", app="com.shop")
    AudienceMember.objects.create(
        audience=Audience.objects.create(name="Fair visitors", kind="uploaded"), profile=profile
    )
    return profile


def _login(client, personas, name):
    client.force_login(personas[name])
    return client


# The list -----------------------------------------------------------------------------------------------


def test_the_list_searches_by_identity_and_name(client, personas, zoe):
    Profile.objects.create(email="bob@example.com", attributes={"first_name": "Bob"})
    _login(client, personas, "manny")

    by_identity = client.get("/audiences/profiles/", {"q": "CRM-77"}).content.decode()
    by_name = client.get("/audiences/profiles/", {"q": "bob"}).content.decode()

    assert "zoe@example.com" in by_identity and "bob@example.com" not in by_identity
    assert "bob@example.com" in by_name and "zoe@example.com" not in by_name


def test_a_search_holding_a_nul_character_answers_400_saying_so(client, personas, zoe):
    """PostgreSQL refused to compare text with a NUL character: a server error before."""
    _login(client, personas, "manny")

    response = client.get("/audiences/profiles/", {"q": "zoe\x00"})

    page = response.content.decode()
    assert response.status_code == 400
    assert "The search contains a NUL character (position 4)" in page and "zoe@example.com" not in page


def test_the_list_is_paginated(client, personas, db):
    Profile.objects.bulk_create(Profile(email=f"p{i}@example.com") for i in range(55))
    _login(client, personas, "ada")

    first = client.get("/audiences/profiles/").content.decode()
    fifth = Profile.objects.get(email="p5@example.com")
    second = client.get("/audiences/profiles/", {"before": fifth.pk}).content.decode()

    assert "p54@example.com" in first and "p5@example.com" in first and "p4@example.com" not in first
    assert f'href="?before={fifth.pk}">Older' in first
    assert "p4@example.com" in second and "p0@example.com" in second and "p5@example.com" not in second
    assert 'href="?">Newest' in second


def test_profiles_link_in_the_nav_for_holders_of_view_profile(client, personas, db):
    for name, shown in [("ada", True), ("manny", True), ("april", False), ("vera", False)]:
        page = _login(client, personas, name).get("/campaigns/").content.decode()
        assert ('href="/audiences/profiles/"' in page) is shown, name


@pytest.mark.parametrize("url", ["/audiences/profiles/", "/audiences/attributes/", "/audiences/consent-settings/"])
def test_the_profiles_link_is_current_on_profile_and_profile_settings_pages(client, personas, db, url):
    page = _login(client, personas, "ada").get(url).content.decode()

    assert 'href="/audiences/profiles/" aria-current="page"' in page


# The detail page ----------------------------------------------------------------------------------------


def test_the_profile_page_shows_everything_stored(client, personas, zoe):
    page = _login(client, personas, "manny").get(f"/audiences/profiles/{zoe.pk}/").content.decode()

    for expected in (
        "zoe@example.com",
        "+33612345678",
        "CRM-77",  # identities
        "First name",
        "Zoé",
        "Yes/no",
        "not declared",  # attributes with their declared types
        "Opted out",
        "unsubscribe link",
        "signup form",  # consent and its history
        "…abcdefgh",
        "com.shop",  # push token, never shown whole
        "Fair visitors",  # list memberships
    ):
        assert expected in page, expected
    assert "device-token-abcdefgh" not in page


def test_unknown_consent_shows_what_the_channel_setting_makes_of_it(client, personas, zoe):
    page = _login(client, personas, "ada").get(f"/audiences/profiles/{zoe.pk}/").content.decode()

    sms_row = page[page.index(">SMS<") :].split("</tr>")[0]
    assert "Unknown" in sms_row and "not allowed" in sms_row


def test_actions_follow_permissions(client, personas, zoe):
    admin_page = _login(client, personas, "ada").get(f"/audiences/profiles/{zoe.pk}/").content.decode()
    manager_page = _login(client, personas, "manny").get(f"/audiences/profiles/{zoe.pk}/").content.decode()

    assert "Export (JSON)" in admin_page and "Erase…" in admin_page
    assert "Export (JSON)" not in manager_page and "Erase…" not in manager_page
    # The messages panel is served by campaigns and needs campaigns.view_delivery.
    assert f"/campaigns/profiles/{zoe.pk}/messages/" in admin_page
    assert "/messages/" not in manager_page


@pytest.fixture
def delivered(personas, zoe):
    configuration = make_email_configuration(port=25)
    campaign = lifecycle.campaign_create(
        actor=personas["ada"],
        name="Spring sale",
        channel_configuration=configuration,
        audience=Audience.objects.create(name="All", kind="all"),
        content=lifecycle.Content("Hi", "<p>Hi</p>", "Hi"),
    )
    run = Run.objects.create(campaign=campaign, version=campaign.latest_version(), occurrence="once")
    return Delivery.objects.create(
        run=run,
        version=run.version,
        profile=zoe,
        channel="email",
        channel_configuration=configuration,
        address=zoe.email,
        due_at=timezone.now(),
        status=Delivery.Status.SENT,
        sent_at=timezone.now() - timedelta(hours=1),
    )


def test_the_messages_partial_lists_what_the_profile_received(client, personas, zoe, delivered):
    response = _login(client, personas, "ada").get(
        f"/campaigns/profiles/{zoe.pk}/messages/", headers={"HX-Request": "true"}
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "Spring sale" in page and "Sent" in page and "zoe@example.com" in page
    assert "<html" not in page  # a partial


def test_the_messages_partial_of_someone_without_messages(client, personas, zoe):
    page = _login(client, personas, "ada").get(f"/campaigns/profiles/{zoe.pk}/messages/").content.decode()

    assert "No message was sent to this profile yet." in page


# Export and erase ---------------------------------------------------------------------------------------


def test_export_downloads_json_and_is_audited(client, personas, zoe, delivered):
    response = _login(client, personas, "ada").get(f"/audiences/profiles/{zoe.pk}/export/")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="profile-{zoe.pk}.json"'
    assert "no-store" in response["Cache-Control"]
    export = json.loads(response.content)
    assert export["profile"]["email"] == "zoe@example.com"
    assert export["deliveries"][0]["campaign"] == "Spring sale"
    event = AuditEvent.objects.get(action="profile.exported")
    assert event.actor == personas["ada"] and event.object_repr == f"Profile {zoe.pk}"


def test_erase_asks_for_confirmation_first(client, personas, zoe):
    _login(client, personas, "ada")

    page = client.get(f"/audiences/profiles/{zoe.pk}/erase/").content.decode()
    unconfirmed = client.post(f"/audiences/profiles/{zoe.pk}/erase/")

    assert "cannot be undone" in page
    assert unconfirmed.status_code == 302
    assert Profile.objects.filter(pk=zoe.pk).exists()


def test_erase_removes_the_profile_and_is_audited(client, personas, zoe, delivered):
    _login(client, personas, "ada")

    response = client.post(f"/audiences/profiles/{zoe.pk}/erase/", {"confirm": "erase"}, follow=True)

    assert f"Profile {zoe.pk} is erased" in response.content.decode()
    assert not Profile.objects.filter(pk=zoe.pk).exists()
    delivered.refresh_from_db()
    assert (delivered.profile_id, delivered.address) == (None, "")
    event = AuditEvent.objects.get(action="profile.erased")
    assert event.actor == personas["ada"] and "zoe" not in json.dumps(event.after) + event.object_repr


def test_a_manager_cannot_erase_or_export(client, personas, zoe):
    _login(client, personas, "manny")

    assert client.post(f"/audiences/profiles/{zoe.pk}/erase/", {"confirm": "erase"}).status_code == 403
    assert client.get(f"/audiences/profiles/{zoe.pk}/export/").status_code == 403
    assert Profile.objects.filter(pk=zoe.pk).exists()


# The attribute schema -----------------------------------------------------------------------------------


def test_an_administrator_declares_an_attribute(client, personas, db):
    _login(client, personas, "ada")

    response = client.post(
        "/audiences/attributes/new/",
        {"name": "birthday", "type": "date", "label": "Birthday", "description": "", "indexed": "on"},
    )

    assert response.status_code == 302
    definition = AttributeDefinition.objects.get(name="birthday")
    assert (definition.type, definition.indexed, definition.created_by) == ("date", True, personas["ada"])
    assert "birthday" in client.get("/audiences/attributes/").content.decode()


def test_a_bad_or_taken_attribute_name_is_shown_on_its_field(client, personas, zoe):
    _login(client, personas, "ada")

    bad = client.post("/audiences/attributes/new/", {"name": "Birth Day", "type": "date"}).content.decode()
    taken = client.post("/audiences/attributes/new/", {"name": "vip", "type": "string"}).content.decode()

    assert "Use lower-case letters" in bad
    assert "already exists" in taken
    assert AttributeDefinition.objects.get(name="vip").type == "boolean"


def test_the_type_is_locked_once_values_exist(client, personas, zoe):
    vip = AttributeDefinition.objects.get(name="vip")
    _login(client, personas, "ada")

    page = client.get(f"/audiences/attributes/{vip.pk}/").content.decode()
    client.post(f"/audiences/attributes/{vip.pk}/", {"type": "string", "label": "VIP", "indexed": "on"})

    assert "its type can no longer change" in page
    vip.refresh_from_db()
    assert (vip.type, vip.label, vip.indexed) == ("boolean", "VIP", True)


def test_the_type_of_an_unused_attribute_can_change(client, personas, db):
    score = AttributeDefinition.objects.create(name="score", type="string")
    _login(client, personas, "ada")

    client.post(f"/audiences/attributes/{score.pk}/", {"type": "number", "label": ""})

    score.refresh_from_db()
    assert score.type == "number"


def test_a_manager_reads_the_schema_but_cannot_change_it(client, personas, zoe):
    vip = AttributeDefinition.objects.get(name="vip")
    _login(client, personas, "manny")

    page = client.get(f"/audiences/attributes/{vip.pk}/").content.decode()
    response = client.post(f"/audiences/attributes/{vip.pk}/", {"type": "boolean", "label": "Changed"})

    assert "<fieldset" in page and "disabled" in page and "Save" not in page
    assert response.status_code == 403
    assert AttributeDefinition.objects.get(name="vip").label == ""
    assert "Declare an attribute" not in client.get("/audiences/attributes/").content.decode()


# Identity namespaces ------------------------------------------------------------------------------------


def test_an_administrator_adds_and_deletes_a_custom_namespace(client, personas, db):
    _login(client, personas, "ada")

    client.post(
        "/audiences/identity-namespaces/new/", {"name": "loyalty_card", "label": "Loyalty card", "kind": "text"}
    )
    namespace = IdentityNamespace.objects.get(name="loyalty_card")
    listing = client.get("/audiences/identity-namespaces/").content.decode()
    client.post(f"/audiences/identity-namespaces/{namespace.pk}/delete/")

    assert "Loyalty card" in listing and "built in" in listing
    assert not IdentityNamespace.objects.filter(name="loyalty_card").exists()


def test_a_namespace_in_use_is_not_deleted(client, personas, zoe):
    namespace = IdentityNamespace.objects.create(name="loyalty", label="Loyalty")
    Identity.objects.create(profile=zoe, namespace="loyalty", value="L-1")
    _login(client, personas, "ada")

    response = client.post(f"/audiences/identity-namespaces/{namespace.pk}/delete/", follow=True)

    assert "1 profile has an identity in loyalty" in response.content.decode()
    assert IdentityNamespace.objects.filter(pk=namespace.pk).exists()


def test_the_namespaces_page_says_more_than_its_cap_and_keeps_a_used_namespace(client, personas, zoe, monkeypatch):
    monkeypatch.setattr("audiences.selectors.profiles.NAMESPACE_COUNT_CAP", 2)
    IdentityNamespace.objects.create(name="loyalty", label="Loyalty")
    IdentityNamespace.objects.create(name="badge", label="Badge")
    for number in range(3):
        Identity.objects.create(profile=Profile.objects.create(), namespace="loyalty", value=f"L-{number}")
    _login(client, personas, "ada")

    page = client.get("/audiences/identity-namespaces/").content.decode()

    loyalty = page[page.index("<code>loyalty</code>") :].split("</tr>")[0]
    badge = page[page.index("<code>badge</code>") :].split("</tr>")[0]
    assert "More than 2" in loyalty and "Delete" not in loyalty
    assert ">0<" in badge and "Delete" in badge


def test_a_builtin_namespace_is_not_deleted(client, personas, db):
    email = IdentityNamespace.objects.get(name="email")
    _login(client, personas, "ada")

    response = client.post(f"/audiences/identity-namespaces/{email.pk}/delete/", follow=True)

    assert "built in and cannot be deleted" in response.content.decode()


def test_a_bad_namespace_name_is_refused_on_its_field(client, personas, db):
    _login(client, personas, "ada")

    page = client.post("/audiences/identity-namespaces/new/", {"name": "Loyalty Card", "kind": "text"}).content.decode()

    assert "lower-case letters" in page
    assert not IdentityNamespace.objects.filter(builtin=False).exists()


# Consent settings ---------------------------------------------------------------------------------------


def test_an_administrator_sets_what_unknown_means_per_channel(client, personas, db):
    _login(client, personas, "ada")
    page = client.get("/audiences/consent-settings/").content.decode()
    assert "Unknown means no" in page

    choices = {"email": "no", "sms": "yes", "push": "yes", "webhook": "yes", "in_app": "yes"}
    response = client.post("/audiences/consent-settings/", choices)

    assert response.status_code == 302
    assert unknown_consent_allows_marketing("email") is False
    assert unknown_consent_allows_marketing("sms") is True
    assert AuditEvent.objects.filter(action="consent_setting.changed").count() == 2
    assert not Consent.objects.exists()
