import pytest

from audiences.models import Audience, Profile
from audiences.rules import RuleError, parse_rule
from audiences.selectors import audience_member_ids, audience_profiles


@pytest.fixture
def people(db):
    rows = [
        {"plan": "pro", "country": "FR", "age": 30, "vip": True},
        {"plan": "pro", "country": "DE", "age": 45},
        {"plan": "free", "country": "FR", "age": 19, "vip": False},
        {"country": "FR"},
        {"plan": "enterprise", "contains": "x"},
    ]
    return [Profile.objects.create(email=f"p{i}@example.com", attributes=attrs) for i, attrs in enumerate(rows)]


def members(rule) -> set[int]:
    audience = Audience(name="t", kind=Audience.Kind.RULE, rule=rule)
    return set(audience_profiles(audience).values_list("pk", flat=True))


def test_comparisons_and_nesting(people):
    p = [profile.pk for profile in people]
    assert members({"attribute": "plan", "op": "equals", "value": "pro"}) == {p[0], p[1]}
    assert members({"attribute": "age", "op": "gt", "value": 20}) == {p[0], p[1]}
    assert members({"attribute": "plan", "op": "in", "value": ["free", "enterprise"]}) == {p[2], p[4]}
    assert members({"attribute": "plan", "op": "starts_with", "value": "ent"}) == {p[4]}
    assert members({"attribute": "vip", "op": "exists"}) == {p[0], p[2]}
    assert members(
        {
            "all": [
                {"attribute": "country", "op": "equals", "value": "FR"},
                {
                    "any": [
                        {"attribute": "plan", "op": "equals", "value": "pro"},
                        {"attribute": "age", "op": "lt", "value": 20},
                    ]
                },
            ]
        }
    ) == {p[0], p[2]}
    # An attribute named like a lookup is still read as a key.
    assert members({"attribute": "contains", "op": "equals", "value": "x"}) == {p[4]}


def test_missing_attribute_matches_no_comparison_and_not_matches_it(people):
    p = [profile.pk for profile in people]
    assert members({"attribute": "plan", "op": "not_equals", "value": "pro"}) == {p[2], p[4]}
    assert members({"not": {"attribute": "plan", "op": "equals", "value": "pro"}}) == {p[2], p[3], p[4]}


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"all": [{"attribute": "age", "op": "gt"}]}, "all[0]"),
        ({"attribute": "a__b", "op": "equals", "value": 1}, "attribute"),
        ({"attribute": "plan", "op": "in", "value": []}, "'in' needs a non-empty list"),
        ({"attribute": "plan", "op": "like", "value": "x"}, "op"),
    ],
)
def test_invalid_rules_are_rejected_with_the_path_of_the_bad_node(rule, error):
    with pytest.raises(RuleError) as raised:
        parse_rule(rule)
    assert error in str(raised.value)


def test_member_ids_stream_in_keyset_pages(people):
    audience = Audience(name="all", kind=Audience.Kind.ALL)
    pages, after = [], 0
    while page := audience_member_ids(audience, after_id=after, limit=2):
        pages.append(page)
        after = page[-1]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [pk for page in pages for pk in page] == sorted(profile.pk for profile in people)
