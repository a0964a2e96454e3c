"""The profiles page's search: what it finds, its keyset pages, and how many matches it says there are, without
counting every match. (Its speed at a million profiles is measured by `manage.py bench_imports --search`.)"""

import re

import pytest
from django.db import connection

from audiences.models import AttributeDefinition, Identity, IdentityNamespace, Profile
from audiences.selectors.profiles import profiles_search, profiles_search_count, profiles_search_page

pytestmark = pytest.mark.both_databases  # the search's SQL differs per database: the same results on both


def _analyze():
    """Fresh planner statistics, as autovacuum keeps them: the count's estimate reads them (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audiences_profile")


@pytest.fixture
def people(db):
    AttributeDefinition.objects.create(name="first_name", type="string")
    AttributeDefinition.objects.create(name="last_name", type="string")
    AttributeDefinition.objects.create(name="full_name", type="string_list")  # not text: never searched as a name
    IdentityNamespace.objects.create(name="loyalty_card", label="Loyalty card")
    zoe = Profile.objects.create(
        email="Zoe.Martin@example.com", attributes={"first_name": "Zoé", "last_name": "Martin", "full_name": ["Bob"]}
    )
    Identity.objects.create(profile=zoe, namespace="email", value="Zoe.Martin@example.com")
    Identity.objects.create(profile=zoe, namespace="email", value="zoe@old-job.example")  # no longer her primary
    Identity.objects.create(profile=zoe, namespace="loyalty_card", value="LC-9")
    bob = Profile.objects.create(
        email="bob_99@example.com", phone="+33612345678", attributes={"first_name": "Bob", "last_name": "Marley"}
    )
    Identity.objects.create(profile=bob, namespace="phone", value="+33612345678")
    ann = Profile.objects.create(email="ann%off@example.com", phone="+14155550100", attributes={"first_name": "Ann"})
    return {"zoe": zoe, "bob": bob, "ann": ann}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zoe.martin@EXAMPLE.com", {"zoe"}),  # an exact email, in any case
        ("zoe@old-job.example", {"zoe"}),  # an identity that is not the primary email
        ("LC-9", {"zoe"}),  # a custom namespace's identity, exactly
        ("LC-", set()),  # identities match exactly, never by their beginning
        ("+33 6 12 34 56 78", {"bob"}),  # a phone typed in international form
        ("0033612345678", {"bob"}),
        ("+14155550100", {"ann"}),  # the primary phone, without an identity
        ("ZOE.MAR", {"zoe"}),  # the start of the primary email
        ("example.com", set()),  # ... only its start
        ("bob_", {"bob"}),  # LIKE's wildcards are plain characters
        ("b_b", set()),
        ("ann%", {"ann"}),
        ("%", set()),
        ("Mar", {"zoe", "bob"}),  # the start of a name attribute
        ("zoé mar", {"zoe"}),  # each word the start of one
        ("mar zoé", {"zoe"}),
        ("bob mar", {"bob"}),
        ("tin", set()),
        ("  bob  ", {"bob"}),
        ("nobody", set()),
        ("", {"zoe", "bob", "ann"}),
    ],
)
def test_the_search_finds_by_identity_email_phone_or_name(people, query, expected):
    assert set(profiles_search(query)) == {people[name] for name in expected}


def test_a_list_attribute_is_not_searched_as_a_name(people):
    assert list(profiles_search("Bob")) == [people["bob"]]  # zoe's full_name holds "Bob", but as a list


def test_the_search_by_id(people):
    assert list(profiles_search(f"#{people['bob'].pk}")) == [people["bob"]]
    assert list(profiles_search("#999999999999999999")) == []


def test_results_come_newest_first(people):
    assert list(profiles_search("")) == [people["ann"], people["bob"], people["zoe"]]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the search's indexes are PostgreSQL's")
def test_every_condition_of_the_search_reads_an_index(people):
    """A condition no index serves makes PostgreSQL scan every profile: with sequential scans and plain index
    scans priced out, only a plan combining the search's indexes remains, unless a condition has none."""
    AttributeDefinition.objects.create(name="name", type="string")
    _analyze()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")

    plan = profiles_search("LC-9").order_by().explain()  # an identity, so the profiles it names join by id

    assert "Seq Scan" not in plan, plan
    for index in ("profile_search_email", "profile_search_phone", "profile_search_first_name"):
        assert index in plan, plan
    assert "profile_search_name" in plan and "profile_search_last_name" in plan and "audiences_profile_pkey" in plan


# Keyset pages -----------------------------------------------------------------------------------------------


@pytest.fixture
def readers(db):
    """120 profiles the search "reader" finds, between others it does not."""
    AttributeDefinition.objects.create(name="first_name", type="string")
    found = []
    for number in range(120):
        found.append(Profile.objects.create(email=f"reader{number}@example.com").pk)
        if number % 7 == 0:
            Profile.objects.create(email=f"writer{number}@example.com", attributes={"first_name": "Writer"})
    return found


def _links(page: str) -> dict[str, str]:
    """The pagination's links, by label: Newer, Newest, Older."""
    nav = page[page.index('<nav class="pagination"') :] if '<nav class="pagination"' in page else ""
    return {
        label: href.replace("&amp;", "&")
        for href, label in re.findall(r'<a href="([^"]*)">(?:← )?(Newer|Newest|Older)', nav)
    }


def _shown(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/audiences/profiles/(\d+)/"', page)]


def test_pages_of_a_search_show_every_match_once_newest_first(client, personas, readers):
    client.force_login(personas["manny"])
    page = client.get("/audiences/profiles/", {"q": "reader"}).content.decode()
    pages = [_shown(page)]
    while "Older" in _links(page):
        link = _links(page)["Older"]
        assert "q=reader" in link and "before=" in link
        page = client.get(f"/audiences/profiles/{link}").content.decode()
        pages.append(_shown(page))

    assert [len(shown) for shown in pages] == [50, 50, 20]
    assert [pk for shown in pages for pk in shown] == sorted(readers, reverse=True)

    back = []
    while "Newer" in _links(page):
        page = client.get(f"/audiences/profiles/{_links(page)['Newer']}").content.decode()
        back.append(_shown(page))
    assert back == pages[-2::-1]
    assert "Newest" not in _links(page)  # the newest page again


def test_a_page_knows_whether_there_are_pages_around_it(readers):
    newest = profiles_search_page("reader", size=50)
    middle = profiles_search_page("reader", before=newest.older, size=50)
    oldest = profiles_search_page("reader", before=middle.older, size=50)
    back = profiles_search_page("reader", after=oldest.newer, size=50)

    assert (newest.newer, newest.older) == (None, newest.profiles[-1].pk)
    assert (middle.newer, middle.older) == (middle.profiles[0].pk, middle.profiles[-1].pk)
    assert (oldest.newer, oldest.older) == (oldest.profiles[0].pk, None)
    assert back.profiles == middle.profiles and (back.newer, back.older) == (middle.newer, middle.older)


def test_a_stale_link_shows_the_newest_page(readers):
    below_all = profiles_search_page("reader", before=min(readers), size=50)
    above_all = profiles_search_page("reader", after=max(readers) + 1000, size=50)

    assert below_all.profiles == above_all.profiles == profiles_search_page("reader", size=50).profiles


# How many match ---------------------------------------------------------------------------------------------


def test_the_count_is_exact_up_to_the_cap(readers):
    _analyze()

    count = profiles_search_count(profiles_search("reader1"), cap=100)

    assert (count.value, count.how) == (31, "exact")  # reader1, reader10-19, reader100-119


def test_past_the_cap_the_count_is_an_estimate_on_postgresql_and_a_lower_bound_elsewhere(readers):
    _analyze()

    count = profiles_search_count(profiles_search("reader"), cap=100)

    if connection.vendor == "postgresql":
        assert count.how == "estimate" and count.value > 100
    else:
        assert (count.value, count.how) == (100, "more")


def test_where_the_planner_expects_few_the_count_stops_at_the_cap(db):
    Profile.objects.bulk_create(Profile(email=f"early{number}@example.com") for number in range(5))
    _analyze()  # the statistics know 5 profiles
    Profile.objects.bulk_create(Profile(email=f"early{number}@example.com") for number in range(5, 40))

    count = profiles_search_count(profiles_search("early"), cap=20)

    assert (count.value, count.how) == (20, "more")


def test_a_page_holding_every_match_counts_them_without_a_count_query(readers, django_assert_num_queries):
    # The identities, the name attributes, the planner's estimate (PostgreSQL: it picks the plan), the page.
    with django_assert_num_queries(4 if connection.vendor == "postgresql" else 3):
        page = profiles_search_page("reader11", size=50)

    assert len(page.profiles) == 11 and (page.count.value, page.count.how) == (11, "exact")


def test_the_page_says_how_many_match_and_whether_it_counted_them(client, personas, readers):
    client.force_login(personas["manny"])
    Profile.objects.bulk_create(Profile(email=f"bulk{number}@example.com") for number in range(1000))
    _analyze()

    few = client.get("/audiences/profiles/", {"q": "reader11"}).content.decode()
    one = client.get("/audiences/profiles/", {"q": "reader119"}).content.decode()
    many = client.get("/audiences/profiles/").content.decode()

    assert "11 profiles match" in few and "1 profile matches" in one
    if connection.vendor == "postgresql":
        assert re.search(r"About 1,\d00 profiles \(the database&#x27;s estimate\)", many), many
    else:
        assert "More than 1,000 profiles (counted up to 1,000)" in many
