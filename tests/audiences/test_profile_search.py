"""The profiles page's search: what it finds, its keyset pages, and how many matches it says there are, without
counting every match. (Its speed at a million profiles is measured by `manage.py bench_imports --search`.)"""

import re

import hypothesis
import pytest
from django.db import connection
from hypothesis import strategies as st

from audiences.models import AttributeDefinition, Identity, IdentityNamespace, Profile
from audiences.selectors import profiles as profile_selectors
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


SEARCHES = [
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
    ("a\\", set()),  # and so is LIKE's escape character
    ("o'", set()),
    ("Mar", {"zoe", "bob"}),  # the start of a name attribute
    ("zoé mar", {"zoe"}),  # each word the start of one
    ("mar zoé", {"zoe"}),
    ("bob mar", {"bob"}),
    ("ma mar", {"zoe", "bob"}),  # two words that start one attribute
    ("mar ma", {"zoe", "bob"}),
    ("zoé zo", {"zoe"}),
    ("bob b", {"bob"}),
    ("bob mar ley", set()),  # every word, not only the first two
    ("bob mar marl", {"bob"}),
    ("tin", set()),
    ("  bob  ", {"bob"}),
    ("nobody", set()),
    ("", {"zoe", "bob", "ann"}),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_the_search_finds_by_identity_email_phone_or_name(people, query, expected):
    assert set(profiles_search(query)) == {people[name] for name in expected}


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
def test_the_page_finds_what_the_search_finds(people, query, expected):
    """On PostgreSQL the page sends a search of its own (selectors.profiles._search_condition): the same meaning."""
    page = profiles_search_page(query, size=50)

    assert page.profiles == sorted((people[name] for name in expected), key=lambda profile: -profile.pk)
    assert (page.count.value, page.count.how) == (len(expected), "exact")


# Words of the people above, cut, recased and joined with the characters LIKE and SQL treat specially.
_PIECES = st.sampled_from(["zo", "Zoé", "ZOE", "mar", "Martin", "bob", "Marley", "ann", "ley", "tin", "é", "ß", "b"])
_JOINERS = st.sampled_from([" ", "  ", ".", "@", "%", "_", "\\", "'", ""])


@hypothesis.settings(
    max_examples=150, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(pieces=st.lists(st.tuples(_PIECES, _JOINERS), min_size=1, max_size=4))
def test_the_page_and_the_search_agree_on_any_query(people, pieces):
    query = "".join(piece + joiner for piece, joiner in pieces)

    assert profiles_search_page(query, size=50).profiles == list(profiles_search(query)), query


def test_a_list_attribute_is_not_searched_as_a_name(people):
    assert list(profiles_search("Bob")) == [people["bob"]]  # zoe's full_name holds "Bob", but as a list


def test_the_search_by_id(people):
    assert list(profiles_search(f"#{people['bob'].pk}")) == [people["bob"]]
    assert list(profiles_search("#999999999999999999")) == []


def test_results_come_newest_first(people):
    assert list(profiles_search("")) == [people["ann"], people["bob"], people["zoe"]]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the search's indexes are PostgreSQL's")
@pytest.mark.parametrize("query", ["LC-9", "bob mar", "mar bob", "Zoé Mar"])
def test_the_pages_own_search_reads_an_index_for_every_condition(people, query):
    """The statement the page sends on PostgreSQL (selectors.profiles._fetch_all_statement) finds every condition's
    profiles through an index (with sequential scans priced out, a condition no index serves would be a scan of
    every profile): the start of an email, a phone, an identity's profile by id, a name through migration 0009's
    indexes on the name columns, and a name of two words through those on first and last name together (without
    the indexes on one name, a pair no other index serves would be a scan of every profile). A word that is not
    ASCII is a LIKE, whose prefix PostgreSQL finds in the same indexes."""
    AttributeDefinition.objects.create(name="name", type="string")
    _analyze()
    names = ("first_name", "last_name") if " " in query else ("first_name", "last_name", "name")
    sql, params = profile_selectors._fetch_all_statement(query, names, before=None, after=None, size=50)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if " " in query and query.isascii():  # both words in one name (Zoé Mar): the indexes on one name serve
            cursor.execute("DROP INDEX profile_search_by_first_name, profile_search_by_last_name")  # this test's
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())

    assert "Seq Scan on audiences_profile" not in plan, plan
    for index in ("profile_search_email", "profile_search_phone", "audiences_profile_pkey"):
        assert index in plan, plan
    if " " in query:
        assert "profile_search_by_first_last" in plan, plan
        assert "profile_search_by_last_first" in plan, plan
    else:
        for index in ("profile_search_by_first_name", "profile_search_by_last_name", "profile_search_by_name"):
            assert index in plan, plan


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the page's own SQL is PostgreSQL's")
def test_where_postgresql_upper_cases_ascii_otherwise_every_start_is_a_like(people, monkeypatch):
    """The page writes the start of ASCII text as a range built from Python's upper(), which is PostgreSQL's in
    this database; under a Turkish or Azeri collation upper('i') is 'İ' in PostgreSQL, and the page then writes
    every start as a LIKE on PostgreSQL's upper(), finding the same profiles."""
    assert profile_selectors._upper_is_pythons_on_ascii()  # so the other tests exercise the ranges
    sql, _ = profile_selectors._fetch_all_statement(
        "bob mar", ("first_name", "last_name"), before=None, after=None, size=50
    )
    assert "~>=~" in sql and "LIKE" not in sql

    monkeypatch.setattr(profile_selectors, "_upper_is_pythons_on_ascii", lambda: False)
    sql, _ = profile_selectors._fetch_all_statement(
        "bob mar", ("first_name", "last_name"), before=None, after=None, size=50
    )
    assert "~>=~" not in sql and "LIKE" in sql
    for query, expected in SEARCHES:
        page = profiles_search_page(query, size=50)
        assert page.profiles == sorted((people[name] for name in expected), key=lambda p: -p.pk), query


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the name columns are PostgreSQL's")
def test_the_name_columns_hold_the_name_attributes_upper_cased(people):
    """Migration 0009's generated columns, which the page's search reads on PostgreSQL: upper() of each name
    attribute, kept by PostgreSQL on every write, whatever writes."""
    bob = people["bob"]
    Profile.objects.filter(pk=bob.pk).update(attributes={"first_name": "Bobby", "name": "zoé", "full_name": ["x"]})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT search_first_name, search_last_name, search_name, search_full_name FROM audiences_profile "
            "WHERE id = %s",
            [bob.pk],
        )
        assert cursor.fetchone() == ("BOBBY", None, "ZOÉ", '["X"]')


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


@pytest.fixture(params=["fetch every match", "walk", "fetch every match, unprepared", "walk, unprepared"])
def strategy(request, monkeypatch, settings):
    """The ways a page is read on PostgreSQL (selectors.profiles._searched_page): every match fetched, or the
    primary key walked (where the planner expects many), with prepared statements or without. SQLite has one."""
    if connection.vendor != "postgresql" and request.param != "fetch every match":
        pytest.skip("one way on SQLite")
    if "walk" in request.param:
        monkeypatch.setattr(profile_selectors, "FETCH_MATCHES_UP_TO", -1)
    if "unprepared" in request.param:
        settings.DATABASE_PREPARED_STATEMENTS = False
    return request.param


def _links(page: str) -> dict[str, str]:
    """The pagination's links, by label: Newer, Newest, Older."""
    nav = page[page.index('<nav class="pagination"') :] if '<nav class="pagination"' in page else ""
    return {
        label: href.replace("&amp;", "&")
        for href, label in re.findall(r'<a href="([^"]*)">(?:← )?(Newer|Newest|Older)', nav)
    }


def _shown(page: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/audiences/profiles/(\d+)/"', page)]


def test_pages_of_a_search_show_every_match_once_newest_first(client, personas, readers, strategy):
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


def test_a_page_knows_whether_there_are_pages_around_it(readers, strategy):
    newest = profiles_search_page("reader", size=50)
    middle = profiles_search_page("reader", before=newest.older, size=50)
    oldest = profiles_search_page("reader", before=middle.older, size=50)
    back = profiles_search_page("reader", after=oldest.newer, size=50)

    assert (newest.newer, newest.older) == (None, newest.profiles[-1].pk)
    assert (middle.newer, middle.older) == (middle.profiles[0].pk, middle.profiles[-1].pk)
    assert (oldest.newer, oldest.older) == (oldest.profiles[0].pk, None)
    assert back.profiles == middle.profiles and (back.newer, back.older) == (middle.newer, middle.older)


def test_a_stale_link_shows_the_newest_page(readers, strategy):
    below_all = profiles_search_page("reader", before=min(readers), size=50)
    above_all = profiles_search_page("reader", after=max(readers) + 1000, size=50)

    assert below_all.profiles == above_all.profiles == profiles_search_page("reader", size=50).profiles


def test_a_bound_that_is_no_match_pages_from_where_it_lies(readers, strategy):
    """A link's bound is a profile of the page it came from; one typed by hand, or from another search, may be
    none the search finds: the pages around it are found all the same."""
    writer = Profile.objects.get(email="writer70@example.com").pk  # after reader70: 71 readers below, 49 above
    below = sorted((pk for pk in readers if pk < writer), reverse=True)
    above = sorted(pk for pk in readers if pk > writer)

    older = profiles_search_page("reader", before=writer, size=50)
    newer = profiles_search_page("reader", after=writer, size=50)

    assert [profile.pk for profile in older.profiles] == below[:50]
    assert (older.newer, older.older) == (below[0], below[49])
    assert [profile.pk for profile in newer.profiles] == above[::-1]
    assert (newer.newer, newer.older) == (None, above[0])


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


@pytest.mark.parametrize(("query", "found", "sqlite_queries"), [("reader11", 11, 3), ("reader", 120, 4)])
def test_a_search_is_two_round_trips_on_postgresql(readers, django_assert_num_queries, query, found, sqlite_queries):
    """PostgreSQL: the name attributes and the plan, then the page with how many match. SQLite: the identities,
    the name attributes, the page, and a count when the page does not hold every match."""
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else sqlite_queries):
        page = profiles_search_page(query, size=50)

    assert len(page.profiles) == min(found, 50) and (page.count.value, page.count.how) == (found, "exact")


def test_a_search_follows_the_declared_name_attributes_at_once(db):
    """The page remembers the declared name attributes between searches (PostgreSQL), and checks them each time."""
    marley = Profile.objects.create(attributes={"first_name": "Bob", "last_name": "Marley"})
    AttributeDefinition.objects.create(name="first_name", type="string")
    assert profiles_search_page("marl").profiles == []

    last_name = AttributeDefinition.objects.create(name="last_name", type="string")
    assert profiles_search_page("marl").profiles == profiles_search_page("bob marl").profiles == [marley]

    last_name.delete()
    assert profiles_search_page("marl").profiles == []


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
