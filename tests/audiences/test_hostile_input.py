"""Audiences and profiles under hostile input: rules with numbers no database compares, nesting that exhausts a
parser, text that is not valid Unicode. Each is refused with the field and the problem, nothing is stored, and
the pages that show what is stored keep working."""

import json

import pytest
from django.urls import reverse

from audiences.models import AttributeDefinition, Audience, Profile
from permissions.models import AuditEvent
from permissions.services.api_keys import api_key_create
from tests.audiences.test_audience_pages import inputs, logged_in

pytestmark = pytest.mark.both_databases  # the rule's SQL, and so what overflows, differs per database


@pytest.fixture
def schema(db):
    for name, type_ in [("plan", "string"), ("age", "number"), ("tags", "string_list")]:
        AttributeDefinition.objects.create(name=name, type=type_)
    Profile.objects.create(email="ann@example.com", attributes={"plan": "pro", "age": 31})


def estimate(client, rule_json: str):
    state = {"kind": "rule", "rule_mode": "json", "rule_json": rule_json}
    return client.post(reverse("audiences:rule_estimate"), state, headers={"HX-Request": "true"})


def create(client, rule_json: str):
    state = {"name": "Hostile", "kind": "rule", "rule_mode": "json", "rule_json": rule_json}
    return client.post(reverse("audiences:audience_create"), state)


@pytest.mark.parametrize(
    ("rule_json", "problem"),
    [
        ('{"attribute": "age", "op": "gt", "value": 1e308}', "expected a number between"),
        ('{"attribute": "age", "op": "gt", "value": -1e308}', "expected a number between"),
        ('{"attribute": "age", "op": "gt", "value": 1e999}', "rule.value: is a number out of range"),
        ('{"attribute": "age", "op": "between", "value": [0, 1e300]}', "expected a number between"),
        ('{"attribute": "age", "op": "equals", "value": 1' + "0" * 300 + "}", "whole number too large"),
        ('{"attribute": "plan", "op": "equals", "value": "pro\\ud800"}', "is not valid Unicode"),
        ('{"attribute": "plan", "op": "equals", "value": "pro\\u0000"}', "contains a NUL character"),
        ('{"attribute": "pl\\udfffan", "op": "exists"}', "is not valid Unicode"),
        ("[" * 40_000 + "]" * 40_000, "nests deeper than 32 levels"),
        ('{"all": ' * 1000 + "[]" + "}" * 1000, "nests deeper than 32 levels"),
    ],
)
def test_a_rule_no_database_can_run_is_refused_by_the_estimate_and_the_create_page(
    client, personas, schema, rule_json, problem
):
    client = logged_in(client, personas)

    estimated = estimate(client, rule_json)
    created = create(client, rule_json)

    # The estimate says the rule needs fixing; the editor on the page names the problem.
    assert estimated.status_code == 200 and "1 problem to fix" in estimated.content.decode()
    assert created.status_code == 200 and problem in created.content.decode()
    assert not Audience.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="audience").exists()
    # What the administrator reads afterwards still renders.
    assert logged_in(client, personas, "ada").get(reverse("permissions:audit")).status_code == 200


def test_a_huge_number_typed_in_the_builder_is_refused_with_its_field(client, personas, schema):
    client = logged_in(client, personas)
    state = {
        "name": "Huge",
        "kind": "rule",
        "rule_mode": "builder",
        "rule[r][kind]": "group",
        "rule[r][combinator]": "all",
        "rule[r.0][kind]": "condition",
        "rule[r.0][subject]": "attribute:age",
        "rule[r.0][op]": "gt",
        "rule[r.0][value]": "1e308",
    }

    response = client.post(reverse("audiences:audience_create"), state)

    assert response.status_code == 200
    assert "expected a number between" in response.content.decode()
    assert not Audience.objects.exists()


def test_a_saved_rule_with_a_large_number_still_shows_its_size_and_preview(client, personas, schema):
    """Numbers up to the bound compare on both databases (the pages of a saved audience run its SQL)."""
    audience = Audience.objects.create(
        name="Big", kind=Audience.Kind.RULE, rule={"attribute": "age", "op": "lt", "value": 2**53}
    )
    client = logged_in(client, personas)

    size = client.get(reverse("audiences:audience_size", args=[audience.pk]))
    preview = client.get(reverse("audiences:audience_preview", args=[audience.pk]))

    assert size.status_code == 200 and "1" in size.content.decode()
    assert preview.status_code == 200 and "ann@example.com" in preview.content.decode()


# The profiles API --------------------------------------------------------------------------------------------


@pytest.fixture
def profiles_key(personas):
    _key, secret = api_key_create(actor=personas["ada"], name="CRM", profiles=True)
    return secret


def upsert(client, secret: str, raw: str):
    return client.post(
        "/api/v1/profiles", raw, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
    )


@pytest.mark.parametrize(
    ("profile", "where"),
    [
        ('{"email": "zoe@example.com", "attributes": {"plan": "pro\\ud800"}}', "body.profiles[0].attributes.plan"),
        ('{"email": "zo\\udc00e@example.com"}', "body.profiles[0].email"),
        ('{"email": "zoe@example.com", "attributes": {"plan": "a\\u0000b"}}', "body.profiles[0].attributes.plan"),
        ('{"email": "zoe@example.com", "identities": {"crm_id": "\\ud83d"}}', "body.profiles[0].identities.crm_id"),
        ('{"email": "zoe@example.com", "attributes": {"age": 1e999}}', "body.profiles[0].attributes.age"),
    ],
)
def test_the_profiles_api_refuses_text_no_page_could_show(client, profiles_key, schema, profile, where):
    response = upsert(client, profiles_key, '{"profiles": [' + profile + "]}")

    assert response.status_code == 400
    assert where in response.json()["detail"]
    assert not Profile.objects.filter(email__startswith="zo").exists()


def test_the_profiles_api_refuses_numbers_past_the_bound_per_profile(client, profiles_key, schema):
    response = upsert(
        client,
        profiles_key,
        json.dumps({"profiles": [{"email": "zoe@example.com", "attributes": {"age": 1e308}}, {"email": "y@ex.com"}]}),
    )

    assert response.status_code == 200
    [refused, stored] = response.json()["results"]
    assert refused["status"] == "rejected" and "attributes.age" in json.dumps(refused)
    assert stored["status"] == "created"


def test_profile_pages_render_what_the_api_stored(client, profiles_key, personas, schema):
    response = upsert(
        client, profiles_key, json.dumps({"profiles": [{"email": "zoe@example.com", "attributes": {"plan": "☃ é 𝄞"}}]})
    )
    profile = Profile.objects.get(email="zoe@example.com")
    client = logged_in(client, personas)

    page = client.get(reverse("audiences:profile_detail", args=[profile.pk]))

    assert response.status_code == 200
    assert page.status_code == 200 and "☃ é 𝄞" in page.content.decode()
    assert inputs(page) is not None


@pytest.mark.parametrize(
    "bound",
    ["abc", "-5", "1e3", "12.0", "1" * 19, "9" * 400, "١٢", "12\x00", "\x00", "0x1f", "+7", "1 2"],
)
@pytest.mark.parametrize("name", ["before", "after"])
def test_a_profiles_page_link_that_is_not_a_profile_number_answers_400_naming_it(client, personas, schema, name, bound):
    client = logged_in(client, personas)

    response = client.get(reverse("audiences:profile_list"), {"q": "ann", name: bound})

    page = response.content.decode()
    assert response.status_code == 400
    assert f"{name} must be a profile number, at most 18 digits" in page and "ann@example.com" not in page
    assert inputs(response)["q"] == "ann"  # the search stays in its field


@pytest.mark.parametrize(
    "parameters",
    [
        {"before": "999999999999999999"},
        {"after": "999999999999999999"},
        {"before": "0"},
        {"after": "0", "before": "1"},
        {"before": " 12 "},
        {"before": ""},
        {"page": "abc"},
        {"page": "99999999999999999999"},
    ],
)
def test_profiles_page_bounds_past_every_profile_give_a_clean_page(client, personas, schema, parameters):
    client = logged_in(client, personas)

    response = client.get(reverse("audiences:profile_list"), {"q": "ann", **parameters})

    assert response.status_code == 200 and "ann@example.com" in response.content.decode()
