import pytest
from pydantic import ValidationError

from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    Consent,
    ConsentEvent,
    Identity,
    IdentityNamespace,
    Profile,
)
from audiences.schemas import ProfileInput, ProfileSchema, error_list, normalize_email, normalize_phone
from audiences.services.attributes import AttributeDeclarationError, attributes_declare
from audiences.services.profiles import UpsertOutcome, profiles_upsert

pytestmark = pytest.mark.django_db

CREATED, UPDATED, REJECTED = UpsertOutcome.CREATED, UpsertOutcome.UPDATED, UpsertOutcome.REJECTED


@pytest.fixture
def schema_attributes(db):
    AttributeDefinition.objects.create(name="city", type="string")
    AttributeDefinition.objects.create(name="points", type="number")
    AttributeDefinition.objects.create(name="vip", type="boolean")


def _validate(data, **schema):
    return ProfileInput.model_validate(data, context={"schema": ProfileSchema.load(**schema)})


def _errors(data, **schema) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        _validate(data, **schema)
    return dict(error_list(caught.value))


# Validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Zoë@Exämple.COM", "Zoë@exämple.com"),
        ("zoë@xn--exmple-cua.com", "zoë@exämple.com"),
        ("  first.last+tag@Example.org ", "first.last+tag@example.org"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("o'neil@sub.example.co.uk", "o'neil@sub.example.co.uk"),
    ],
)
def test_emails_keep_the_local_part_and_normalize_the_domain(raw, normalized):
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "a@b",
        "plainaddress",
        "@example.com",
        "a@",
        "a..b@example.com",
        ".a@example.com",
        "a b@example.com",
        "a@exa mple.com",
        "a@-example.com",
        "a@[127.0.0.1]",
        "a@example.123",
        'a"b@example.com',
        "a@@example.com",
        ("x" * 65) + "@example.com",
    ],
)
def test_invalid_emails_are_refused(raw):
    with pytest.raises(ValueError):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+44 20 7946 0958", None, "+442079460958"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("00 49 30 123456", "FR", "+4930123456"),
        ("(0)6-12-34-56-78", "fr", "+33612345678"),
        ("+1 (415) 555-2671", "FR", "+14155552671"),
    ],
)
def test_phones_are_normalized_to_e164(raw, region, e164):
    assert normalize_phone(raw, region) == e164


def test_a_national_phone_without_a_region_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="country code"):
        normalize_phone("06 12 34 56 78", None)


def test_the_row_country_reads_a_national_phone(db):
    assert _validate({"phone": "020 7946 0958", "country": "GB"}, default_region="FR").phone == "+442079460958"


def test_errors_name_the_field(schema_attributes):
    errors = _errors(
        {
            "email": "a@b",
            "phone": "12",
            "identities": {"crm_id": "", "shoe_size": "42"},
            "attributes": {"points": "many", "colour": "red"},
            "consent": {"email": "maybe", "fax": "opted_in"},
            "timezone": "Mars/Olympus",
            "locale": "not a locale",
        },
        default_region="FR",
    )
    assert set(errors) == {
        "email",
        "phone",
        "identities.crm_id",
        "identities.shoe_size",
        "attributes.points",
        "attributes.colour",
        "consent.email",
        "consent.fax",
        "timezone",
        "locale",
    }
    assert "colour" in errors["attributes.colour"]
    assert "shoe_size" in errors["identities.shoe_size"]
    assert "number" in errors["attributes.points"]


def test_an_input_needs_an_identity(db):
    assert _errors({"attributes": {}}) == {"": "no identity: give an email, a phone or an identity in a namespace"}


def test_a_declared_attribute_is_accepted_before_it_is_saved(db):
    item = _validate({"email": "a@example.com", "attributes": {"shoe_size": "42"}}, declared={"shoe_size": "number"})
    assert item.attributes == {"shoe_size": 42}


def test_custom_namespaces_of_kind_email_are_normalized(db):
    IdentityNamespace.objects.create(name="work_email", label="Work email", kind="email")
    assert _validate({"identities": {"work_email": "Ann@Example.COM"}}).identities == {"work_email": "Ann@example.com"}


# Upsert -------------------------------------------------------------------------------------------------


def test_new_profiles_are_created_with_their_identities(schema_attributes):
    outcomes = profiles_upsert(
        [
            {"email": "ann@example.com", "phone": "+33 6 12 34 56 78", "attributes": {"city": "Lyon"}},
            {"identities": {"crm_id": "C-2"}, "timezone": "Europe/Paris", "locale": "fr_FR"},
        ],
        source="test",
    )

    assert [outcome.status for outcome in outcomes] == [CREATED, CREATED]
    ann = Profile.objects.get(pk=outcomes[0].profile_id)
    assert (ann.email, ann.phone, ann.attributes) == ("ann@example.com", "+33612345678", {"city": "Lyon"})
    assert set(ann.identities.values_list("namespace", "value")) == {
        ("email", "ann@example.com"),
        ("phone", "+33612345678"),
    }
    crm = Profile.objects.get(pk=outcomes[1].profile_id)
    assert (crm.timezone, crm.locale) == ("Europe/Paris", "fr-FR")


def test_upsert_finds_a_profile_by_any_identity_and_merges_attributes(schema_attributes):
    (first,) = profiles_upsert(
        [{"email": "ann@example.com", "identities": {"crm_id": "C-1"}, "attributes": {"city": "Lyon", "points": 3}}],
        source="test",
    )

    (second,) = profiles_upsert(
        [{"identities": {"crm_id": "C-1"}, "phone": "+33612345678", "attributes": {"points": "4", "vip": "yes"}}],
        source="test",
    )

    assert (second.status, second.profile_id) == (UPDATED, first.profile_id)
    profile = Profile.objects.get()
    assert profile.attributes == {"city": "Lyon", "points": 4, "vip": True}
    assert profile.phone == "+33612345678"
    assert Identity.objects.filter(profile=profile).count() == 3


def test_a_null_attribute_clears_it(schema_attributes):
    profiles_upsert([{"email": "ann@example.com", "attributes": {"city": "Lyon", "points": 3}}], source="test")

    profiles_upsert([{"email": "ann@example.com", "attributes": {"city": None}}], source="test")

    assert Profile.objects.get().attributes == {"points": 3}


def test_identities_of_two_profiles_are_a_conflict_and_nothing_is_merged(db):
    one, two = profiles_upsert(
        [{"email": "ann@example.com"}, {"identities": {"crm_id": "C-9"}}],
        source="test",
    )

    (outcome,) = profiles_upsert(
        [{"email": "ann@example.com", "identities": {"crm_id": "C-9"}, "locale": "fr"}], source="test"
    )

    assert outcome.status == REJECTED
    [(field, problem)] = outcome.errors
    assert field == "identities"
    assert f"email -> profile {one.profile_id}" in problem
    assert f"crm_id -> profile {two.profile_id}" in problem
    assert Identity.objects.count() == 2
    assert not Profile.objects.filter(locale="fr").exists()


def test_a_later_input_of_the_batch_updates_what_an_earlier_one_created(schema_attributes):
    outcomes = profiles_upsert(
        [
            {"email": "ann@example.com", "attributes": {"city": "Lyon"}},
            {"email": "ANN@EXAMPLE.COM".lower(), "identities": {"crm_id": "C-1"}, "attributes": {"points": 1}},
            {"identities": {"crm_id": "C-1"}, "attributes": {"city": "Paris"}},
        ],
        source="test",
    )

    assert [outcome.status for outcome in outcomes] == [CREATED, UPDATED, UPDATED]
    assert len({outcome.profile_id for outcome in outcomes}) == 1
    profile = Profile.objects.get()
    assert profile.attributes == {"city": "Paris", "points": 1}
    assert set(profile.identities.values_list("namespace", "value")) == {
        ("email", "ann@example.com"),
        ("crm_id", "C-1"),
    }


def test_a_conflict_with_a_profile_created_earlier_in_the_batch_is_rejected(db):
    profiles_upsert([{"email": "old@example.com"}], source="test")

    outcomes = profiles_upsert(
        [{"identities": {"crm_id": "C-1"}}, {"email": "old@example.com", "identities": {"crm_id": "C-1"}}],
        source="test",
    )

    assert [outcome.status for outcome in outcomes] == [CREATED, REJECTED]
    assert "created by input 1 of this batch" in outcomes[1].errors[0][1]
    assert Profile.objects.count() == 2


def test_a_rejected_input_stores_nothing_and_the_others_are_stored(schema_attributes):
    outcomes = profiles_upsert(
        [
            {"email": "ann@example.com"},
            {"email": "bob@example.com", "attributes": {"points": "lots"}},
            {"email": "cy@example.com"},
        ],
        source="test",
    )

    assert [outcome.status for outcome in outcomes] == [CREATED, REJECTED, CREATED]
    assert outcomes[1].errors == [("attributes.points", "expected a number, got 'lots'")]
    assert not Identity.objects.filter(value="bob@example.com").exists()
    assert Profile.objects.count() == 2


def test_consent_changes_are_recorded_once_each(db):
    profiles_upsert([{"email": "ann@example.com", "consent": {"email": "opted_in", "sms": "unknown"}}], source="a")
    profiles_upsert([{"email": "ann@example.com", "consent": {"email": "opted_in"}}], source="b")
    profiles_upsert([{"email": "ann@example.com", "consent": {"email": "opted_out", "sms": "opted_in"}}], source="c")

    current = dict(Consent.objects.values_list("channel", "state"))
    assert current == {"email": "opted_out", "sms": "opted_in"}
    history = list(ConsentEvent.objects.order_by("id").values_list("channel", "state", "source"))
    assert history == [("email", "opted_in", "a"), ("email", "opted_out", "c"), ("sms", "opted_in", "c")]


def test_stored_profiles_join_the_uploaded_audience(db):
    audience = Audience.objects.create(name="Fair visitors", kind=Audience.Kind.UPLOADED)
    profiles_upsert([{"email": "ann@example.com"}], source="test")

    outcomes = profiles_upsert(
        [{"email": "ann@example.com"}, {"email": "bob@example.com"}, {"email": "a@b"}], source="test", audience=audience
    )

    members = set(AudienceMember.objects.filter(audience=audience).values_list("profile_id", flat=True))
    assert members == {outcomes[0].profile_id, outcomes[1].profile_id}


def test_a_rule_audience_takes_no_members(db):
    audience = Audience.objects.create(name="Rule", kind=Audience.Kind.RULE)
    with pytest.raises(ValueError, match="not an uploaded list"):
        profiles_upsert([{"email": "ann@example.com"}], source="test", audience=audience)


def test_declared_attributes_are_created_and_usable(db):
    (outcome,) = profiles_upsert(
        [{"email": "ann@example.com", "attributes": {"shoe_size": "42"}}],
        source="test",
        declared={"shoe_size": "number"},
    )

    assert outcome.status == CREATED
    assert AttributeDefinition.objects.get(name="shoe_size").type == "number"
    assert Profile.objects.get().attributes == {"shoe_size": 42}


def test_declaring_an_attribute_with_another_type_is_refused(schema_attributes):
    with pytest.raises(AttributeDeclarationError, match="already declared as number"):
        attributes_declare({"points": "string"})
    with pytest.raises(AttributeDeclarationError, match="Bad-Name"):
        attributes_declare({"Bad-Name": "string"})


def test_a_batch_runs_a_bounded_number_of_queries(db, django_assert_max_num_queries):
    profiles_upsert([{"email": f"p{n}@example.com"} for n in range(50)], source="test")
    batch = [{"email": f"p{n}@example.com", "consent": {"email": "opted_in"}} for n in range(100)]
    schema = ProfileSchema.load()

    with django_assert_max_num_queries(16):
        outcomes = profiles_upsert(batch, source="test", schema=schema)

    assert [outcome.status for outcome in outcomes].count(CREATED) == 50
    assert Identity.objects.count() == 100
