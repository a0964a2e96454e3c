"""Audience reads: members of each kind of audience, size, sample, live estimates of unsaved rules, and the
keyset pages the campaign planner streams."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audiences.models import AttributeDefinition, Audience, AudienceMember, Profile
from audiences.rules.tree import RuleError
from audiences.selectors.audiences import (
    audience_member_ids,
    audience_profiles,
    audience_sample,
    audience_size,
    rule_profiles,
)

pytestmark = pytest.mark.both_databases

PRO = {"attribute": "plan", "op": "equals", "value": "pro"}


@pytest.fixture
def profiles(db):
    AttributeDefinition.objects.create(name="plan", type="string")
    return Profile.objects.bulk_create(
        Profile(email=f"p{n}@example.com", attributes={"plan": "pro" if n % 3 else "free"}) for n in range(10)
    )


@pytest.fixture
def pro(profiles):
    return Audience.objects.create(name="Pro", rule=PRO)


@pytest.fixture
def uploaded(profiles):
    audience = Audience.objects.create(name="List", kind=Audience.Kind.UPLOADED)
    AudienceMember.objects.bulk_create(AudienceMember(audience=audience, profile=profiles[n]) for n in (0, 4, 5, 9))
    return audience


def ids(profiles, *numbers) -> list[int]:
    return [profiles[n].pk for n in numbers]


def test_each_kind_of_audience_selects_its_members(profiles, pro, uploaded):
    everyone = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    assert set(audience_profiles(everyone)) == set(profiles)
    assert sorted(audience_profiles(pro).values_list("pk", flat=True)) == ids(profiles, 1, 2, 4, 5, 7, 8)
    assert sorted(audience_profiles(uploaded).values_list("pk", flat=True)) == ids(profiles, 0, 4, 5, 9)
    assert [audience_size(audience) for audience in (everyone, pro, uploaded)] == [10, 6, 4]


def test_an_unsaved_rule_is_estimated_live(profiles, pro):
    assert rule_profiles({"all": [PRO, {"member_of": pro.pk}]}).count() == 6
    assert rule_profiles({"not": {"member_of": pro.pk}}).count() == 4
    with pytest.raises(RuleError, match="an audience cannot include itself"):
        rule_profiles({"member_of": pro.pk}, audience_id=pro.pk)
    with pytest.raises(RuleError, match=r"value: expected a text"):
        rule_profiles({"attribute": "plan", "op": "equals", "value": 1})


def test_the_sample_shows_the_newest_members_first(profiles, pro):
    assert audience_sample(pro, limit=3) == [profiles[8], profiles[7], profiles[5]]
    assert len(audience_sample(pro)) == 6


@pytest.mark.parametrize("kind", ["rule", "uploaded"])
def test_member_ids_stream_in_keyset_pages_of_bounded_size(profiles, pro, uploaded, kind):
    audience = pro if kind == "rule" else uploaded
    expected = sorted(audience_profiles(audience).values_list("pk", flat=True))
    pages, after = [], 0
    with CaptureQueriesContext(connection) as queries:
        while page := audience_member_ids(audience, after_id=after, limit=4):
            pages.append(page)
            after = page[-1]
    assert [pk for page in pages for pk in page] == expected
    assert all(len(page) <= 4 for page in pages) and len(pages) == -(-len(expected) // 4)
    member_queries = [
        query["sql"] for query in queries.captured_queries if '_id" > ' in query["sql"] or '"id" > ' in query["sql"]
    ]
    assert member_queries and all("LIMIT 4" in sql for sql in member_queries)


def test_a_planner_resumes_after_any_id(profiles, pro):
    # The cursor is the last id stored, which may since have left the audience or been erased.
    erased = profiles[4].pk
    profiles[4].delete()
    assert audience_member_ids(pro, after_id=erased, limit=10) == ids(profiles, 5, 7, 8)
    assert audience_member_ids(pro, after_id=profiles[-1].pk, limit=10) == []


def test_an_audience_query_works_as_a_subquery(profiles, pro, uploaded):
    # The compiled conditions keep their table alias when Django nests the query.
    assert set(Profile.objects.filter(pk__in=audience_profiles(pro).values("pk"))) == {
        profiles[n] for n in (1, 2, 4, 5, 7, 8)
    }
    assert set(Profile.objects.exclude(pk__in=audience_profiles(pro).values("pk"))) == {
        profiles[n] for n in (0, 3, 6, 9)
    }
    both = audience_profiles(pro).filter(pk__in=audience_profiles(uploaded).values("pk"))
    assert set(both) == {profiles[4], profiles[5]}


def test_a_stored_rule_that_no_longer_validates_raises_instead_of_selecting_others(profiles, pro):
    AttributeDefinition.objects.filter(name="plan").delete()
    with pytest.raises(RuleError, match="attribute: unknown attribute 'plan'"):
        audience_size(pro)
    with pytest.raises(RuleError):
        audience_member_ids(pro, after_id=0, limit=10)
