"""The rule language: every operator on every type, nesting, missing attributes, consent, membership, and
invalid rules rejected with the path of the bad node. Each expectation is checked twice: against the compiled
query on the database the suite runs on, and against the pure-Python evaluator."""

from datetime import UTC, datetime

import pytest

from audiences.models import AttributeDefinition as Definition
from audiences.models import Audience, AudienceMember, Consent, Profile
from audiences.rules.evaluation import evaluate
from audiences.rules.sql import compile_rule
from audiences.rules.tree import RuleError, parse_rule
from audiences.selectors.audiences import audience_profiles

pytestmark = pytest.mark.both_databases

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SCHEMA = {
    "plan": "string",
    "country": "string",
    "contains": "string",  # named like a lookup: still read as a key
    "age": "number",
    "score": "number",
    "vip": "boolean",
    "signup": "date",
    "last_seen": "datetime",
    "tags": "string_list",
}
PEOPLE = {
    "ann": {
        "email": "ann@example.com",
        "locale": "fr-FR",
        "created_at": datetime(2026, 3, 10, 8, 0, 0, 250_000, tzinfo=UTC),
        "attributes": {
            "plan": "pro",
            "country": "FR",
            "age": 30,
            "score": 4.5,
            "vip": True,
            "signup": "2026-03-01",
            "last_seen": "2026-03-15T11:00:00Z",
            "tags": ["news", "vip"],
        },
        "consents": {"email": "opted_in"},
    },
    "bob": {
        "email": "bob@shop.example",
        "phone": "+33612345678",
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "attributes": {
            "plan": "pro",
            "country": "DE",
            "age": 45,
            "score": 3,
            "vip": False,
            "signup": "2025-12-31",
            "last_seen": "2026-01-01T00:00:00Z",
            "tags": ["sale"],
        },
        "consents": {"email": "opted_out"},
    },
    "cat": {
        "email": "",
        "locale": "de-DE",
        "created_at": datetime(2026, 3, 15, 11, 59, 59, 999_999, tzinfo=UTC),
        "attributes": {"plan": "free", "country": "FR", "age": 19, "signup": "2024-02-29", "tags": [], "contains": "x"},
        "consents": {"email": "unknown"},
    },
    "dan": {
        "email": "dan@example.com",
        "timezone": "America/New_York",
        "created_at": datetime(2026, 3, 15, 12, 30, tzinfo=UTC),
        "attributes": {},
    },
    "eve": {
        "email": "eve@example.com",
        "created_at": datetime(2020, 6, 1, tzinfo=UTC),
        # JSON nulls count as missing.
        "attributes": {"plan": "enterprise", "age": None, "vip": None, "tags": None, "contains": "y"},
        "consents": {"sms": "opted_in"},
    },
}
EVERYONE = set(PEOPLE)


@pytest.fixture
def people(db):
    for name, type_ in SCHEMA.items():
        Definition.objects.create(name=name, type=type_)
    profiles = {}
    for name, data in PEOPLE.items():
        profile = Profile.objects.create(
            email=data["email"],
            phone=data.get("phone", ""),
            locale=data.get("locale", ""),
            timezone=data.get("timezone", ""),
            attributes=data["attributes"],
        )
        Profile.objects.filter(pk=profile.pk).update(created_at=data["created_at"])
        for channel, state in data.get("consents", {}).items():
            Consent.objects.create(profile=profile, channel=channel, state=state)
        profile.refresh_from_db()
        profiles[name] = profile
    return profiles


@pytest.fixture
def audiences(people):
    uploaded = Audience.objects.create(name="List", kind=Audience.Kind.UPLOADED)
    AudienceMember.objects.bulk_create(
        AudienceMember(audience=uploaded, profile=people[name]) for name in ("ann", "cat")
    )
    pro = Audience.objects.create(name="Pro", rule={"attribute": "plan", "op": "equals", "value": "pro"})
    everyone = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    french_pro = Audience.objects.create(
        name="French pro",
        rule={"all": [{"member_of": pro.pk}, {"attribute": "country", "op": "equals", "value": "FR"}]},
    )
    return {"list": uploaded, "pro": pro, "all": everyone, "french_pro": french_pro}


def members(people, audiences, rule) -> set[str]:
    """Who matches `rule` in the database, after checking that the Python evaluator says the same."""
    parsed = parse_rule(rule)
    names = {profile.pk: name for name, profile in people.items()}
    selected = {names[pk] for pk in Profile.objects.filter(compile_rule(parsed, now=NOW)).values_list("pk", flat=True)}
    memberships = {
        name: {audience.pk for audience in audiences.values() if people[name] in audience_profiles(audience, now=NOW)}
        for name in people
    }
    evaluated = {
        name
        for name, profile in people.items()
        if evaluate(
            parsed,
            profile,
            consents=PEOPLE[name].get("consents", {}),
            memberships=memberships[name],
            now=NOW,
        )
    }
    assert selected == evaluated, "the compiled query and the evaluator disagree"
    return selected


def attr(name, op, value=None):
    return {"attribute": name, "op": op} | ({} if value is None else {"value": value})


OPERATOR_CASES = [
    # string
    (attr("plan", "equals", "pro"), {"ann", "bob"}),
    (attr("plan", "not_equals", "pro"), {"cat", "eve"}),
    (attr("plan", "in", ["free", "enterprise"]), {"cat", "eve"}),
    (attr("plan", "not_in", ["pro"]), {"cat", "eve"}),
    (attr("plan", "contains", "ter"), {"eve"}),
    (attr("plan", "contains", "PRO"), set()),  # case-sensitive on both databases
    (attr("plan", "contains", "%"), set()),  # no LIKE wildcards
    (attr("plan", "starts_with", "p"), {"ann", "bob"}),
    (attr("plan", "starts_with", "_"), set()),
    (attr("plan", "exists"), {"ann", "bob", "cat", "eve"}),
    (attr("country", "equals", "FR"), {"ann", "cat"}),
    (attr("contains", "equals", "x"), {"cat"}),
    (attr("plan", "equals", "x'); DROP TABLE audiences_profile; --"), set()),
    # number
    (attr("age", "equals", 30), {"ann"}),
    (attr("age", "equals", 30.0), {"ann"}),
    (attr("age", "not_equals", 30), {"bob", "cat"}),
    (attr("age", "in", [19, 45]), {"bob", "cat"}),
    (attr("age", "not_in", [19]), {"ann", "bob"}),
    (attr("age", "gt", 30), {"bob"}),
    (attr("age", "gte", 30), {"ann", "bob"}),
    (attr("age", "lt", 30), {"cat"}),
    (attr("age", "lte", 30), {"ann", "cat"}),
    (attr("age", "between", [19, 30]), {"ann", "cat"}),
    (attr("age", "exists"), {"ann", "bob", "cat"}),
    (attr("score", "gt", 3.5), {"ann"}),
    (attr("score", "equals", 3), {"bob"}),
    (attr("score", "between", [2.5, 3.25]), {"bob"}),
    # boolean
    (attr("vip", "equals", True), {"ann"}),
    (attr("vip", "equals", False), {"bob"}),
    (attr("vip", "not_equals", True), {"bob"}),
    (attr("vip", "not_equals", False), {"ann"}),
    (attr("vip", "exists"), {"ann", "bob"}),
    # date (now: 2026-03-15)
    (attr("signup", "equals", "2026-03-01"), {"ann"}),
    (attr("signup", "before", "2026-01-01"), {"bob", "cat"}),
    (attr("signup", "after", "2025-12-31"), {"ann"}),
    (attr("signup", "between", ["2025-12-31", "2026-03-01"]), {"ann", "bob"}),
    (attr("signup", "in_last", {"amount": 30, "unit": "days"}), {"ann"}),
    (attr("signup", "in_last", {"amount": 3, "unit": "months"}), {"ann", "bob"}),
    (attr("signup", "in_last", {"amount": 2, "unit": "weeks"}), {"ann"}),
    (attr("signup", "more_than_ago", {"amount": 1, "unit": "weeks"}), {"ann", "bob", "cat"}),
    (attr("signup", "more_than_ago", {"amount": 12, "unit": "months"}), {"cat"}),
    (attr("signup", "exists"), {"ann", "bob", "cat"}),
    # datetime (now: 2026-03-15T12:00:00Z)
    (attr("last_seen", "equals", "2026-01-01T00:00:00Z"), {"bob"}),
    (attr("last_seen", "equals", "2026-01-01T01:00:00+01:00"), {"bob"}),
    (attr("last_seen", "before", "2026-01-01"), set()),
    (attr("last_seen", "before", "2026-01-02"), {"bob"}),
    (attr("last_seen", "after", "2026-01-01"), {"ann"}),
    (attr("last_seen", "between", ["2026-01-01", "2026-03-15T11:00:00Z"]), {"ann", "bob"}),
    (attr("last_seen", "in_last", {"amount": 2, "unit": "hours"}), {"ann"}),
    (attr("last_seen", "more_than_ago", {"amount": 2, "unit": "hours"}), {"bob"}),
    (attr("last_seen", "exists"), {"ann", "bob"}),
    # string_list
    (attr("tags", "contains", "news"), {"ann"}),
    (attr("tags", "contains_any", ["sale", "vip"]), {"ann", "bob"}),
    (attr("tags", "contains_any", ["nothing"]), set()),
    (attr("tags", "exists"), {"ann", "bob", "cat"}),  # an empty list is a value
    # built-in text fields: "" is missing
    (attr("email", "equals", "ann@example.com"), {"ann"}),
    (attr("email", "not_equals", "ann@example.com"), {"bob", "dan", "eve"}),
    (attr("email", "contains", "@example.com"), {"ann", "dan", "eve"}),
    (attr("email", "starts_with", "bob"), {"bob"}),
    (attr("email", "in", ["ann@example.com", "bob@shop.example"]), {"ann", "bob"}),
    (attr("email", "not_in", ["ann@example.com"]), {"bob", "dan", "eve"}),
    (attr("email", "exists"), {"ann", "bob", "dan", "eve"}),
    (attr("locale", "in", ["fr-FR", "de-DE"]), {"ann", "cat"}),
    (attr("locale", "not_in", ["fr-FR"]), {"cat"}),
    (attr("phone", "exists"), {"bob"}),
    (attr("timezone", "equals", "America/New_York"), {"dan"}),
    (attr("timezone", "exists"), {"dan"}),  # a profile whose zone is unknown has none
    # created_at, compared at the second
    (attr("created_at", "equals", "2026-03-10T08:00:00Z"), {"ann"}),
    (attr("created_at", "before", "2025-01-01T00:00:00Z"), {"eve"}),
    (attr("created_at", "after", "2026-03-10T08:00:00Z"), {"cat", "dan"}),
    (attr("created_at", "between", ["2025-01-01", "2026-03-10T08:00:00Z"]), {"ann", "bob"}),
    (attr("created_at", "in_last", {"amount": 1, "unit": "days"}), {"cat"}),
    (attr("created_at", "more_than_ago", {"amount": 1, "unit": "weeks"}), {"bob", "eve"}),
    (attr("created_at", "exists"), EVERYONE),
]


def _case_id(case) -> str:
    # A set's order follows the process's hash seed: sorted, so every xdist worker names the cases alike.
    return str(sorted(case) if isinstance(case, set) else case)[:60]


@pytest.mark.parametrize(("rule", "expected"), OPERATOR_CASES, ids=_case_id)
def test_every_operator_on_every_type(people, audiences, rule, expected):
    assert members(people, audiences, rule) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (attr("plan", "equals", "pro"), {"cat", "dan", "eve"}),
        (attr("age", "lt", 30), {"ann", "bob", "dan", "eve"}),
        (attr("age", "not_equals", 30), {"ann", "dan", "eve"}),
        (attr("vip", "equals", True), {"bob", "cat", "dan", "eve"}),
        (attr("tags", "contains", "news"), {"bob", "cat", "dan", "eve"}),
        (attr("signup", "in_last", {"amount": 30, "unit": "days"}), {"bob", "cat", "dan", "eve"}),
        (attr("email", "exists"), {"cat"}),
        (attr("locale", "not_in", ["fr-FR"]), {"ann", "bob", "dan", "eve"}),
        (attr("plan", "exists"), {"dan"}),
    ],
    ids=_case_id,
)
def test_a_missing_attribute_matches_no_comparison_and_not_matches_it(people, audiences, rule, expected):
    assert members(people, audiences, {"not": rule}) == expected
    assert _missing(rule) <= expected
    assert members(people, audiences, rule) == EVERYONE - expected


def _missing(rule) -> set[str]:
    """The people without a value for the rule's attribute."""
    name = rule["attribute"]
    return {
        person
        for person, data in PEOPLE.items()
        if (data.get(name) if name in ("email", "locale") else data["attributes"].get(name)) in (None, "")
    }


def test_nesting(people, audiences):
    french_or_young = {
        "any": [attr("country", "equals", "FR"), attr("age", "lt", 20)],
    }
    assert members(people, audiences, {"all": [attr("plan", "exists"), french_or_young]}) == {"ann", "cat"}
    assert members(people, audiences, {"not": {"all": [attr("plan", "exists"), french_or_young]}}) == {
        "bob",
        "dan",
        "eve",
    }
    assert members(people, audiences, {"not": {"any": [attr("plan", "equals", "pro"), attr("age", "lt", 20)]}}) == {
        "dan",
        "eve",
    }
    assert members(people, audiences, {"not": {"not": attr("plan", "equals", "pro")}}) == {"ann", "bob"}
    deep = attr("vip", "equals", True)
    for _ in range(6):
        deep = {"all": [{"any": [deep]}]}
    assert members(people, audiences, deep) == {"ann"}


def test_an_empty_all_matches_everyone_and_its_negation_no_one(people, audiences):
    assert members(people, audiences, {"all": []}) == EVERYONE
    assert members(people, audiences, {"not": {"all": []}}) == set()
    assert members(people, audiences, {"any": [{"all": []}, attr("age", "gt", 100)]}) == EVERYONE


@pytest.mark.parametrize(
    ("channel", "state", "expected"),
    [
        ("email", "opted_in", {"ann"}),
        ("email", "opted_out", {"bob"}),
        # unknown: a row that says so, or no row at all
        ("email", "unknown", {"cat", "dan", "eve"}),
        ("sms", "opted_in", {"eve"}),
        ("sms", "unknown", {"ann", "bob", "cat", "dan"}),
        ("push", "opted_out", set()),
    ],
)
def test_consent_states_including_unknown(people, audiences, channel, state, expected):
    rule = {"consent": {"channel": channel, "state": state}}
    assert members(people, audiences, rule) == expected
    assert members(people, audiences, {"not": rule}) == EVERYONE - expected


def test_membership_of_uploaded_rule_and_all_audiences(people, audiences):
    assert members(people, audiences, {"member_of": audiences["list"].pk}) == {"ann", "cat"}
    assert members(people, audiences, {"not": {"member_of": audiences["list"].pk}}) == {"bob", "dan", "eve"}
    assert members(people, audiences, {"member_of": audiences["pro"].pk}) == {"ann", "bob"}
    assert members(people, audiences, {"not": {"member_of": audiences["pro"].pk}}) == {"cat", "dan", "eve"}
    assert members(people, audiences, {"member_of": audiences["french_pro"].pk}) == {"ann"}
    assert members(people, audiences, {"member_of": audiences["all"].pk}) == EVERYONE
    assert members(people, audiences, {"not": {"member_of": audiences["all"].pk}}) == set()
    combined = {"all": [{"consent": {"channel": "email", "state": "opted_in"}}, {"member_of": audiences["list"].pk}]}
    assert members(people, audiences, combined) == {"ann"}


def test_a_rule_that_would_include_its_own_audience_is_rejected(audiences):
    pro, french_pro = audiences["pro"], audiences["french_pro"]
    with pytest.raises(RuleError) as raised:
        parse_rule({"all": [attr("plan", "exists"), {"member_of": french_pro.pk}]}, audience_id=pro.pk)
    assert raised.value.errors == [f"all[1].member_of: audience {french_pro.pk} includes this audience"]
    with pytest.raises(RuleError) as raised:
        parse_rule({"not": {"member_of": pro.pk}}, audience_id=pro.pk)
    assert raised.value.errors == ["not.member_of: an audience cannot include itself"]
    # Without the audience's id (a new audience), the same rule is fine.
    parse_rule({"member_of": french_pro.pk})


def test_a_stored_cycle_is_refused_when_compiled(audiences):
    pro, french_pro = audiences["pro"], audiences["french_pro"]
    Audience.objects.filter(pk=pro.pk).update(rule={"member_of": french_pro.pk})  # bypassing validation
    with pytest.raises(RuleError) as raised:
        audience_profiles(Audience.objects.get(pk=french_pro.pk))
    assert "cycle" in str(raised.value) or "includes this audience" in str(raised.value)


def test_a_deleted_audience_or_undeclared_attribute_fails_loudly_instead_of_selecting_others(audiences):
    rule = {"not": {"member_of": audiences["list"].pk}}
    excluding = Audience.objects.create(name="Not on the list", rule=rule)
    audiences["list"].delete()
    with pytest.raises(RuleError, match="no audience"):
        audience_profiles(excluding)
    Definition.objects.filter(name="plan").delete()
    with pytest.raises(RuleError, match="member_of: audience .*unknown attribute 'plan'"):
        Profile.objects.filter(compile_rule(parse_rule({"member_of": audiences["pro"].pk})))


def test_values_are_kept_in_their_stored_form(people):
    rule = parse_rule(
        {
            "all": [
                attr("last_seen", "after", "2026-01-01T10:00:00+02:00"),
                attr("created_at", "before", "2026-01-01"),
                attr("age", "in", [1, 1.0, 2.5]),
                attr("signup", "in_last", {"amount": 3, "unit": "months"}),
            ]
        }
    )
    assert rule.model_dump(by_alias=True) == {
        "all": [
            attr("last_seen", "after", "2026-01-01T08:00:00Z"),
            attr("created_at", "before", "2026-01-01T00:00:00Z"),
            attr("age", "in", [1, 2.5]),
            attr("signup", "in_last", {"amount": 3, "unit": "months"}),
        ]
    }


GOOD = attr("plan", "equals", "pro")


@pytest.mark.parametrize(
    ("rule", "errors"),
    [
        ({"all": [GOOD, GOOD, attr("age", "gt", "42")]}, ["all[2].value: expected a number"]),
        (attr("age", "gt", True), ["value: expected a number"]),
        (attr("nope", "equals", 1), ["attribute: unknown attribute 'nope'"]),
        (
            attr("a__b", "equals", 1),
            ["attribute: expected an attribute name (lower-case letters, digits and single underscores)"],
        ),
        (
            attr("plan", "gt", "a"),
            [
                "op: 'gt' does not apply to a text attribute; "
                "use one of equals, not_equals, in, not_in, contains, starts_with, exists"
            ],
        ),
        (attr("nope", "like", "a"), ["attribute: unknown attribute 'nope'", "op: unknown operator 'like'"]),
        (attr("plan", "in", []), ["value: expected a non-empty list of texts"]),
        (attr("plan", "in", "pro"), ["value: expected a non-empty list of texts"]),
        (attr("plan", "equals"), ["value: required"]),
        (attr("plan", "equals", ["pro"]), ["value: expected a text"]),
        (attr("age", "between", [1, "2"]), ["value[1]: expected a number"]),
        (attr("age", "between", [5, 1]), ["value: the low bound is above the high bound"]),
        (attr("age", "between", [1]), ["value: expected [low, high]: two numbers"]),
        (attr("age", "equals", 2**60), [f"value: expected a number between -{2**53:,} and {2**53:,}"]),
        (attr("age", "gt", 1e308), [f"value: expected a number between -{2**53:,} and {2**53:,}"]),
        (attr("age", "between", [0, float("inf")]), [f"value[1]: expected a number between -{2**53:,} and {2**53:,}"]),
        (attr("age", "exists", True), ["value: 'exists' takes no value"]),
        (attr("vip", "equals", "true"), ["value: expected true or false"]),
        (attr("signup", "equals", "2026/01/01"), ["value: expected a date as YYYY-MM-DD, got '2026/01/01'"]),
        (attr("signup", "equals", "2026-02-30"), ["value: expected a date as YYYY-MM-DD, got '2026-02-30'"]),
        (attr("signup", "in_last", {"amount": 3}), ["value.unit: expected one of days, weeks, months"]),
        (
            attr("signup", "in_last", {"amount": 3, "unit": "hours"}),
            ["value.unit: expected one of days, weeks, months"],
        ),
        (
            attr("signup", "in_last", {"amount": 0, "unit": "days"}),
            ["value.amount: expected a whole number from 1 to 10000"],
        ),
        (attr("signup", "in_last", {"amount": 1, "unit": "days", "x": 1}), ["value.x: unknown key"]),
        (
            attr("last_seen", "equals", "2026-01-01T10:00:00"),
            ["value: expected a date and time with a UTC offset (e.g. 2026-01-31T09:00:00Z)"],
        ),
        (attr("tags", "contains", 5), ["value: expected a text"]),
        (attr("tags", "contains_any", ["a", 5]), ["value[1]: expected a text"]),
        ({"any": []}, ["any: needs at least one rule"]),
        ({"all": GOOD}, ["all: expected a list"]),
        ({"not": 5}, ["not: expected a rule: an object with all, any, not, attribute, consent or member_of"]),
        ({"all": [GOOD], "extra": 1}, ["extra: unknown key"]),
        ({"all": [{"not": {"any": [GOOD, {"attribute": "plan"}]}}]}, ["all[0].not.any[1].op: required"]),
        ({"consent": {"channel": "fax", "state": "opted_in"}}, ["consent.channel"]),
        ({"consent": {"channel": "email", "state": "maybe"}}, ["consent.state"]),
        ({"all": [GOOD, {"member_of": 999_999}]}, ["all[1].member_of: no audience 999999"]),
        ({"member_of": "7"}, ["member_of: expected a whole number"]),
        ({}, ['rule: empty; {"all": []} matches every profile']),
        ([GOOD], ["rule: expected a rule: an object with all, any, not, attribute, consent or member_of"]),
    ],
    ids=lambda case: str(case)[:70],
)
def test_invalid_rules_are_rejected_with_the_path_of_the_bad_node(people, rule, errors):
    with pytest.raises(RuleError) as raised:
        parse_rule(rule)
    if len(errors) == 1 and ":" not in errors[0]:
        assert len(raised.value.errors) == 1 and raised.value.errors[0].startswith(errors[0] + ": ")
    else:
        assert raised.value.errors == errors


def test_huge_or_deep_rules_are_refused_before_validation(people):
    deep = GOOD
    for _ in range(30):
        deep = {"not": deep}
    with pytest.raises(RuleError, match="nested deeper than"):
        parse_rule(deep)
    with pytest.raises(RuleError, match="more than 500"):
        parse_rule({"any": [GOOD] * 600})
