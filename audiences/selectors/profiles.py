"""Reads of profiles: the search of the profiles page, identities by namespace, consent per channel with
what it allows, the attribute schema's use, and a profile's list memberships."""

import functools
import itertools
import json
import re
import string
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Q, QuerySet

from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    Channel,
    Consent,
    ConsentEvent,
    Identity,
    IdentityNamespace,
    Profile,
    unknown_consent_allows_marketing,
)
from config import rawsql

# Attributes searched as the person's name on the profiles page, when declared as text.
NAME_ATTRIBUTES = ("name", "full_name", "first_name", "last_name")


# Identities ---------------------------------------------------------------------------------------------


# Identities a namespace holds are counted up to this many; beyond, the namespaces page says "more than".
NAMESPACE_COUNT_CAP = 10_000


def namespace_usage(*, cap: int = NAMESPACE_COUNT_CAP) -> dict[str, int]:
    """How many identities each namespace holds, by name, counted up to `cap` + 1 (more than `cap` shows as
    `cap` + 1); namespaces without any are absent. One count a namespace, each stopping at `cap` + 1 entries of
    the (namespace, value) index: counting every identity (2,000,000 at a million profiles) took 140 ms and
    grew with them."""
    usage = {}
    for name in IdentityNamespace.objects.order_by().values_list("name", flat=True):
        # In the order of the (namespace, value) index, read alone: unordered, PostgreSQL walked the table from its
        # start for a namespace holding half of it, passing a million rows of the others first (70 ms).
        identities = Identity.objects.filter(namespace=name).order_by("value").values("value")
        if found := identities[: cap + 1].count():
            usage[name] = found
    return usage


def identity_search_forms(value: str) -> set[str]:
    """The stored forms `value` may have as an identity: as typed, with the email domain lower-cased, and as
    an E.164 phone number when it reads as one."""
    value = value.strip()
    forms = {value}
    local, at, domain = value.rpartition("@")
    if at and local:
        forms |= {f"{local}@{domain.lower()}", value.lower()}
    if value.startswith("+") or value.startswith("00"):
        try:
            number = phonenumbers.parse("+" + value.lstrip("+0") if value.startswith("00") else value, None)
        except phonenumbers.NumberParseException:
            pass
        else:
            forms.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return forms


# Consent ------------------------------------------------------------------------------------------------


def consent_allows_marketing(*, channel: str, state: str | None) -> bool:
    """Whether marketing may reach a profile with this consent state on `channel` (None: no consent row)."""
    if state == Consent.State.OPTED_IN:
        return True
    if state == Consent.State.OPTED_OUT:
        return False
    return unknown_consent_allows_marketing(channel)


def consent_overview(profile: Profile) -> list[dict]:
    """Per channel, in Channel order: the state (unknown when never set), its source and time, whether
    marketing may reach the profile there, and the history, newest first."""
    current = {consent.channel: consent for consent in profile.consents.all()}
    history: dict[str, list[ConsentEvent]] = {}
    for event in profile.consent_events.all():
        history.setdefault(event.channel, []).append(event)
    overview = []
    for channel in Channel:
        consent = current.get(channel.value)
        state = consent.state if consent else Consent.State.UNKNOWN
        overview.append(
            {
                "channel": channel,
                "state": Consent.State(state),
                "source": consent.source if consent else "",
                "updated_at": consent.updated_at if consent else None,
                "allows_marketing": consent_allows_marketing(channel=channel, state=state),
                "history": history.get(channel.value, []),
            }
        )
    return overview


# The attribute schema -----------------------------------------------------------------------------------


def attribute_has_values(name: str) -> bool:
    """Whether any profile holds a value of attribute `name`: then its type can no longer change."""
    return Profile.objects.filter(attributes__has_key=name).exists()


# Reads for the profile pages ----------------------------------------------------------------------------

_PROFILE_ID = re.compile(r"#\d{1,18}")


def profiles_search(query: str = "") -> QuerySet[Profile]:
    """Profiles, newest first, matching `query` when given: an exact identity value in any namespace (an
    email in any case, a phone as typed in international form), the start of the primary email, the start
    of a name (each word the start of a declared name attribute), or `#id`.

    This is the search's meaning, and what the page reads on SQLite. On PostgreSQL the page sends the same search
    in SQL of its own (_search_arms), on the name columns of migration 0009 and their indexes, which this queryset
    does not read: its conditions on a name would scan every profile there."""
    profiles = Profile.objects.order_by("-pk")
    query = query.strip()
    if not query:
        return profiles
    if _PROFILE_ID.fullmatch(query):
        return profiles.filter(pk=int(query[1:]))
    forms = identity_search_forms(query)
    identified = list(
        Identity.objects.filter(namespace__in=IdentityNamespace.objects.values("name"), value__in=forms).values_list(
            "profile_id", flat=True
        )
    )
    matches = Q(pk__in=identified) | Q(email__istartswith=query) | Q(phone__in=forms)
    name_attributes = declared_name_attributes()
    if name_attributes:
        words = query.split()[:4]
        name_match = Q()
        for word in words:
            any_name = Q()
            for attribute in name_attributes:
                any_name |= Q(**{f"attributes__{attribute}__istartswith": word})
            name_match &= any_name
        matches |= name_match
    return profiles.filter(matches)


def declared_name_attributes() -> tuple[str, ...]:
    """The NAME_ATTRIBUTES declared as text, by name: those the search reads as the person's name."""
    return tuple(
        AttributeDefinition.objects.filter(name__in=NAME_ATTRIBUTES, type=AttributeDefinition.Type.STRING)
        .order_by("name")
        .values_list("name", flat=True)
    )


# Counts above it are estimated (PostgreSQL) or given as "more than" (SQLite): counting every match of a broad
# search reads as many rows as it matches.
SEARCH_COUNT_CAP = 1_000
# Up to this many matches (as the planner estimates them), a page fetches every match through the search's indexes
# and keeps the newest; beyond it, it walks the primary key from the newest profile until the page is full. At a
# million profiles the two cost the same at about 4,000 matches (`manage.py bench_imports --search`); PostgreSQL,
# which prices the walk's filter (JSON keys, upper()) too low, would walk for as few as 1,000, reading 60,000 rows.
FETCH_MATCHES_UP_TO = 4_000


@dataclass(frozen=True)
class SearchCount:
    """How many profiles a search finds: `exact`, more than `value` (`more`: counting stopped there), or about
    `value` (`estimate`: the query planner's)."""

    value: int
    how: Literal["exact", "more", "estimate"]


@dataclass(frozen=True)
class ProfilePage:
    """One page of a search, newest first, with the bounds of the pages around it: `newer` for `after=`, `older`
    for `before=` (None where there is no such page)."""

    profiles: list[Profile]
    newer: int | None
    older: int | None
    count: SearchCount


def profiles_search_page(
    query: str = "", *, before: int | None = None, after: int | None = None, size: int = 50
) -> ProfilePage:
    """The page of profiles_search(query) just below id `before` (older), just above id `after` (newer), or the
    newest: a keyset page, which costs as much deep in the list as at its top, where an OFFSET reads every row
    before it. A bound that lands on no row (a stale link) gives the newest page. With how many match in all:
    exact when the page shows them all or the statement that read it read them all, else as
    profiles_search_count says.

    A search on PostgreSQL is two round trips (_searched_page); the list without a search, `#id` and SQLite read
    through the ORM (_walked_page)."""
    query = query.strip()
    if connection.vendor == "postgresql" and query and not _PROFILE_ID.fullmatch(query):
        page = _searched_page(query, before=before, after=after, size=size)
    else:
        page = _walked_page(profiles_search(query), before=before, after=after, size=size)
    if page is None:  # the bound lands on no row
        return profiles_search_page(query, size=size)
    return page


def profiles_search_count(profiles: QuerySet[Profile], *, cap: int = SEARCH_COUNT_CAP) -> SearchCount:
    """How many profiles a search (a profiles_search queryset) finds, reading at most `cap` + 1 of them: exact up
    to `cap`; beyond it the planner's estimate on PostgreSQL where it expects more than `cap`, so that a broad
    search costs a plan, not a count; else "more than `cap`"."""
    estimate = _estimated_rows(profiles)
    if estimate is not None and estimate > cap:
        return SearchCount(estimate, "estimate")
    found = profiles.order_by()[: cap + 1].count()
    return SearchCount(cap, "more") if found > cap else SearchCount(found, "exact")


def _estimated_rows(profiles: QuerySet[Profile]) -> int | None:
    """How many rows PostgreSQL's planner expects `profiles` to hold (a plan, nothing read); None elsewhere."""
    if connection.vendor != "postgresql":
        return None
    return round(json.loads(profiles.order_by().explain(format="json"))[0]["Plan"]["Plan Rows"])


def _walked_page(
    profiles: QuerySet[Profile], *, before: int | None, after: int | None, size: int
) -> ProfilePage | None:
    """A page read through the ORM, walking the primary key from its bound, or None when the bound lands on no
    row."""
    if after is not None:
        rows = list(profiles.filter(pk__gt=after).order_by("pk")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        newer = rows[0].pk if more_newer else None
        older = rows[-1].pk if rows and profiles.filter(pk__lt=rows[-1].pk).exists() else None
    else:
        bounded = profiles if before is None else profiles.filter(pk__lt=before)
        rows = list(bounded.order_by("-pk")[: size + 1])
        older = rows[size - 1].pk if len(rows) > size else None
        rows = rows[:size]
        newer = rows[0].pk if before is not None and rows and profiles.filter(pk__gt=rows[0].pk).exists() else None
    if not rows and (before is not None or after is not None):
        return None
    if newer is None and older is None:
        count = SearchCount(len(rows), "exact")  # all of them are on this page
    else:
        count = profiles_search_count(profiles)
    return ProfilePage(profiles=rows, newer=newer, older=older, count=count)


# A search on PostgreSQL ---------------------------------------------------------------------------------------
#
# At a million profiles the time of a selective search went on building statements and planning them, not on
# reading rows (docs/benchmarks.md, "Profile search"): the ORM took 1 to 2 ms to build and compile the search, and
# PostgreSQL 0.5 to 1.5 ms to plan its OR of index conditions, once for the estimate and again for the page. So the
# page's statements are written here in SQL, and the one PostgreSQL explains is the one it runs, planned once.

_PROFILE_FIELDS = tuple(field.attname for field in Profile._meta.concrete_fields)
# The declared name attributes as the last search of this process found them: each search reads them again in its
# first round trip and starts over when they changed, so none ever searches with a stale schema.
_name_attributes: tuple[str, ...] = ()
_statement_numbers = itertools.count()


def _searched_page(query: str, *, before: int | None, after: int | None, size: int) -> ProfilePage | None:
    """The page of a search on PostgreSQL, or None when its bound lands on no row. Two round trips: the plan of
    the statement that fetches every match (_explained_fetch_all); then, up to FETCH_MATCHES_UP_TO estimated
    matches, that statement, prepared, so run without planning it again: the page, the exact count and the pages
    around it. Beyond, the walk down the primary key (_walk_statement), with the estimate as the count.

    Several statements go in one execute(): Django's PostgreSQL cursor binds parameters on the client."""
    bounded = before is not None or after is not None
    with connection.cursor() as cursor:
        names, prepared, estimate = _explained_fetch_all(cursor, query, before=before, after=after, size=size)
        if estimate <= FETCH_MATCHES_UP_TO:
            if prepared:
                cursor.execute(f"EXECUTE {prepared}; DEALLOCATE {prepared}")
            else:
                cursor.execute(*_fetch_all_statement(query, names, before=before, after=after, size=size))
            return _fetched_page(cursor.fetchall(), bounded=bounded)
        walk, params = _walk_statement(query, names, before=before, after=after, size=size)
        cursor.execute(f"{walk}; DEALLOCATE {prepared}" if prepared else walk, params)
        rows = cursor.fetchall()
        bound = after if after is not None else before
        beyond = False
        if bound is not None and rows and rows[0][0] == bound:
            beyond, rows = True, rows[1:]
        elif bound is not None:  # a bound that is no match (a link from another search, or a stale one)
            cursor.execute(*_beyond_statement(query, names, before=before, after=after))
            beyond = cursor.fetchone()[0]
        return _walked_rows_page(rows, beyond=beyond, estimate=estimate, bounded=bounded, after=after, size=size)


def _explained_fetch_all(
    cursor, query: str, *, before: int | None, after: int | None, size: int
) -> tuple[tuple[str, ...], str | None, int]:
    """The first round trip of a search: the declared name attributes, and the plan of the statement that fetches
    every match (_fetch_all_statement), whose rows are the planner's estimate of how many match. The statement is
    prepared: one without parameters keeps the plan it was explained with. Built with the name attributes this
    process saw last, it is built again when they changed. Returns the name attributes, the prepared statement's
    name, and the estimate.

    DATABASE_PREPARED_STATEMENTS=false (a pooler that may change connections between statements): explained, not
    prepared (None), and sent again in full. A statement prepared by a search that fails on the way stays with the
    connection until it closes: numbered, it is in no other's way."""
    global _name_attributes
    while True:
        names = _name_attributes
        fetch_all, params = _fetch_all_statement(query, names, before=before, after=after, size=size)
        prepared = f"profile_search_{next(_statement_numbers)}" if settings.DATABASE_PREPARED_STATEMENTS else None
        if prepared:
            explained = f"PREPARE {prepared} AS {fetch_all}; EXPLAIN (FORMAT JSON) EXECUTE {prepared}"
        else:
            explained = f"EXPLAIN (FORMAT JSON) {fetch_all}"
        cursor.execute(f"{_DECLARED_NAMES}; {explained}", [list(NAME_ATTRIBUTES), "string", *params])
        declared = tuple(name for (name,) in cursor.fetchall())
        for _ in range(2 if prepared else 1):
            cursor.nextset()
        plan = cursor.fetchone()[0]
        if declared == names:
            return names, prepared, _estimated_matches(plan)
        _name_attributes = declared
        if prepared:
            cursor.execute(f"DEALLOCATE {prepared}")


_DECLARED_NAMES = (  # declared_name_attributes(), parameters NAME_ATTRIBUTES and "string"
    f"SELECT name FROM {AttributeDefinition._meta.db_table} "  # noqa: S608
    "WHERE name = ANY(%s) AND type = %s ORDER BY name"
)


def _search_condition(query: str, names: tuple[str, ...], alias: str) -> tuple[str, list]:
    """profiles_search(query)'s condition in SQL on the profiles table as `alias`, `names` the declared name
    attributes: the OR of _search_arms, each start a LIKE (for a statement that checks rows, not one that finds
    them through the indexes)."""
    return _any_of(_search_arms(query, names, alias, ranges=False))


def _search_arms(query: str, names: tuple[str, ...], alias: str, *, ranges: bool) -> list[tuple[str, list]]:
    """The conditions on the profiles table as `alias` any of which is a match of profiles_search(query), `names`
    the declared name attributes: each on the columns of one of the search's indexes (migrations 0007 and 0009),
    so that each finds its profiles through one index, and those of a name (0009's, which hold the id) without
    reading the table. `ranges`: a start written as the range of the index (_starts_condition).

    A name of two words or more that start with letters: each way to give the first two words to the name
    attributes (first and last name, or the reverse, or both to one) is its own condition, not the AND of each
    word's OR, so that the indexes on (first_name, last_name) and (last_name, first_name) find `Julie Rou` directly
    where the AND intersects every Julie with every Rou. Else each name attribute the first word starts, with the
    other words' starts of any name: with more than two name attributes the ways to give words are too many, and a
    phone typed in groups of digits is no name.

    In the order a statement that checks rows should try them: the name first, unless the query reads as the
    start of an email (one word with @ or .)."""
    forms = sorted(identity_search_forms(query))
    identities = (
        f"{alias}.id = ANY(ARRAY(SELECT profile_id FROM {Identity._meta.db_table} WHERE value = ANY(%s) "  # noqa: S608
        f"AND namespace = ANY(ARRAY(SELECT name FROM {IdentityNamespace._meta.db_table}))))",
        [forms],
    )
    phone = (f"{alias}.phone = ANY(%s)", [forms])
    email = _starts_condition(f"upper({alias}.email::text)", query, ranges=ranges)
    if not names:
        return [email, identities, phone]

    def starts(name: str, text: str) -> tuple[str, list]:
        return _starts_condition(f"{alias}.search_{name}", text, ranges=ranges)

    words = query.split()[:4]
    if len(words) >= 2 and len(names) <= 2 and words[0][0].isalpha() and words[1][0].isalpha():
        first, second, *rest = words
        # Each word in its own attribute first: the usual way to type a name. Both in one attribute only when one
        # word starts the other; else no value starts with both (ASCII words, whose upper() PostgreSQL and Python
        # agree on).
        pairs = [(a, b) for a in names for b in names if a != b]
        if not (first.isascii() and second.isascii()) or _either_starts_other(first.upper(), second.upper()):
            pairs += [(a, a) for a in names]
        ways = [[starts(a, first), starts(b, second)] for a, b in pairs]
    else:
        first, *rest = words
        ways = [[starts(name, first)] for name in names]
    others = [_any_of(starts(name, word) for name in names) for word in rest]
    name_arms = [_all_of([*way, *others]) for way in ways]
    reads_as_email = len(words) == 1 and ("@" in query or "." in query)
    if reads_as_email:
        return [email, *name_arms, identities, phone]
    return [*name_arms, email, identities, phone]


def _either_starts_other(one: str, other: str) -> bool:
    return one.startswith(other) or other.startswith(one)


def _starts_condition(upper_value: str, text: str, *, ranges: bool) -> tuple[str, list]:
    """The condition that `upper_value` (an upper() of the search's indexes) starts with `text` in any case.

    ASCII text, whose upper() PostgreSQL and Python agree on: the range of the index itself, from the text to the
    text with its last character's successor, compared byte by byte as text_pattern_ops compares (UTF-8 keeps the
    order of code points): what starts with JULIE is at least JULIE and below JULIF. PostgreSQL plans a range
    twice as fast as a LIKE (0.9 ms against 1.7 for `Julie Rou`), whose prefix it has to find and estimate first.
    (A database whose upper() of ASCII is not Python's, _upper_is_pythons_on_ascii, gets the LIKE.) Else, and for a
    statement that checks rows (`ranges` false: the walk, which computes the value once for a LIKE
    and twice for a range), a LIKE on the upper() PostgreSQL makes of the text."""
    upper = text.upper()
    if ranges and text.isascii() and upper[-1] != "\x7f" and _upper_is_pythons_on_ascii():
        return f"({upper_value} ~>=~ %s AND {upper_value} ~<~ %s)", [upper, upper[:-1] + chr(ord(upper[-1]) + 1)]
    return f"{upper_value} LIKE upper(%s)", [_starts_with(text)]


@functools.cache
def _upper_is_pythons_on_ascii() -> bool:
    """Whether PostgreSQL's upper() of the ASCII letters is Python's, which builds the ranges of
    _starts_condition: not under a Turkish or Azeri collation, where upper('i') is 'İ' (the range of `julie` would
    then find no JULİE). Asked once a process."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT upper(%s) = %s", [string.ascii_lowercase, string.ascii_uppercase])
        return cursor.fetchone()[0]


def _all_of(conditions) -> tuple[str, list]:
    return _joined(" AND ", list(conditions))


def _any_of(conditions) -> tuple[str, list]:
    return _joined(" OR ", list(conditions))


def _joined(operator: str, conditions: list[tuple[str, list]]) -> tuple[str, list]:
    return "(" + operator.join(sql for sql, _ in conditions) + ")", _params(conditions)


def _params(conditions: list[tuple[str, list]]) -> list:
    """The parameters of `conditions` (sql, params), in their order."""
    return [param for _, params in conditions for param in params]


def _starts_with(text: str) -> str:
    """The LIKE pattern of what starts with `text`, whose own % and _ are plain characters (as the ORM's
    istartswith escapes them)."""
    return connection.ops.prep_for_like_query(text) + "%"


def _fetch_all_statement(
    query: str, names: tuple[str, ...], *, before: int | None, after: int | None, size: int
) -> tuple[str, list]:
    """The page when few match: the ids of every match, fetched through the search's indexes, each condition of
    _search_arms on its own (a UNION: an OR of them would be one bitmap of the indexes, which reads every match's
    table row); how many there are and the newest and oldest (whether there are pages around this one); then the
    profiles of the page's ids, newest first."""
    table = Profile._meta.db_table
    arms = _search_arms(query, names, "p", ranges=True)
    params = _params(arms)
    found = " UNION ".join(f"SELECT p.id FROM {table} AS p WHERE {condition}" for condition, _ in arms)  # noqa: S608
    bound, order, bound_params = _keyset("found", before=before, after=after)
    sql = (
        f"WITH found AS MATERIALIZED ({found}) "  # noqa: S608
        f"SELECT {rawsql.columns(Profile, list(_PROFILE_FIELDS), 'p')}, counted.* "
        "FROM (SELECT count(*), max(id), min(id) FROM found) AS counted, "
        f"{table} AS p WHERE p.id = ANY(ARRAY(SELECT id FROM found WHERE {bound} ORDER BY id {order} LIMIT %s)) "
        "ORDER BY p.id DESC"
    )
    return sql, [*params, *bound_params, size]


def _walk_statement(
    query: str, names: tuple[str, ...], *, before: int | None, after: int | None, size: int
) -> tuple[str, list]:
    """The page when many match: the primary key walked from the bound, the bound included, until the page and one
    more row are found (whether there is a page past it). A link's bound is the first or last profile of the page
    it came from, a match: found again, it says there is a page on its other side, without a second statement.

    The condition is checked on each row walked, `IS TRUE` (the same rows): the planner looks for no index in it,
    which halves its planning (0.6 to 0.3 ms), and walks, as it should where many match."""
    condition, params = _search_condition(query, names, "p")
    bound, order, bound_params = _keyset("p", before=before, after=after, inclusive=True)
    sql = (
        f"SELECT {rawsql.columns(Profile, list(_PROFILE_FIELDS), 'p')} FROM {Profile._meta.db_table} AS p "  # noqa: S608
        f"WHERE {condition} IS TRUE AND {bound} ORDER BY p.id {order} LIMIT %s"
    )
    return sql, [*params, *bound_params, size + 2]


def _beyond_statement(query: str, names: tuple[str, ...], *, before: int | None, after: int | None) -> tuple[str, list]:
    """Whether a match lies past the bound on its other side (a page there), for a bound that is no match: a walk
    from it, as _walk_statement's, to the first match, in the primary key's order. PostgreSQL drops the ORDER BY
    and LIMIT of an EXISTS unless it has an OFFSET, and then may read the table from wherever a scan of it starts
    (at a million profiles, from 0.1 ms to the whole table, by where the last scan stopped)."""
    condition, params = _search_condition(query, names, "p")
    bound, order, bound_params = ("p.id > %s", "ASC", [before]) if after is None else ("p.id < %s", "DESC", [after])
    table = Profile._meta.db_table
    sql = (
        f"SELECT EXISTS (SELECT p.id FROM {table} AS p "  # noqa: S608
        f"WHERE {condition} IS TRUE AND {bound} ORDER BY p.id {order} LIMIT 1 OFFSET 0)"
    )
    return sql, [*params, *bound_params]


def _keyset(alias: str, *, before: int | None, after: int | None, inclusive: bool = False) -> tuple[str, str, list]:
    """A keyset page's bound on `alias`.id, its order from the bound, and the bound's parameter."""
    if after is not None:
        return f"{alias}.id {'>=' if inclusive else '>'} %s", "ASC", [after]
    if before is not None:
        return f"{alias}.id {'<=' if inclusive else '<'} %s", "DESC", [before]
    return "TRUE", "DESC", []


def _estimated_matches(plan: list | str) -> int:
    """The rows the planner expects the fetching statement to find: the search's matches."""
    nodes = [(json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Subplan Name") == "CTE found":
            return round(node["Plan Rows"])
        nodes.extend(node.get("Plans", ()))
    raise ValueError("the plan of the search's page does not find its matches")


def _fetched_page(rows: list[tuple], *, bounded: bool) -> ProfilePage | None:
    """The page from the fetching statement's rows: each a profile, then how many match and the newest and oldest
    id among them."""
    if not rows:
        return None if bounded else ProfilePage(profiles=[], newer=None, older=None, count=SearchCount(0, "exact"))
    profiles = _profiles(rows)
    matches, newest, oldest = rows[0][len(_PROFILE_FIELDS) :]
    return ProfilePage(
        profiles=profiles,
        newer=profiles[0].pk if newest > profiles[0].pk else None,
        older=profiles[-1].pk if oldest < profiles[-1].pk else None,
        count=SearchCount(matches, "exact"),
    )


def _walked_rows_page(
    rows: list[tuple], *, beyond: bool, estimate: int, bounded: bool, after: int | None, size: int
) -> ProfilePage | None:
    """The page from the walking statement's rows past the bound (more than `size`: a page past it), `beyond`
    whether a match lies on the bound's other side."""
    profiles = _profiles(rows[:size])
    if after is not None:
        profiles.reverse()
        newer = profiles[0].pk if len(rows) > size else None
        older = profiles[-1].pk if profiles and beyond else None
    else:
        older = profiles[-1].pk if len(rows) > size else None
        newer = profiles[0].pk if profiles and beyond else None
    if not profiles and bounded:
        return None
    if newer is None and older is None:
        count = SearchCount(len(profiles), "exact")  # all of them are on this page
    else:
        count = SearchCount(estimate, "estimate")  # more than FETCH_MATCHES_UP_TO, so more than SEARCH_COUNT_CAP
    return ProfilePage(profiles=profiles, newer=newer, older=older, count=count)


def _profiles(rows: list[tuple]) -> list[Profile]:
    """Profiles from rows that start with their _PROFILE_FIELDS, as the ORM makes them: psycopg gives every column
    as its Python value but the attributes' JSON, which the field decodes (rawsql.instance, which finds each
    column's conversions, took twice as long for a page)."""
    attributes = Profile._meta.get_field("attributes")
    position = _PROFILE_FIELDS.index("attributes")
    database = connections[DEFAULT_DB_ALIAS]  # once, not through the proxy a row
    profiles = []
    for row in rows:
        values = list(row[: len(_PROFILE_FIELDS)])
        values[position] = attributes.from_db_value(values[position], None, database)
        profiles.append(Profile.from_db(database.alias, _PROFILE_FIELDS, values))
    return profiles


def profile_memberships(profile: Profile) -> QuerySet[Audience]:
    """The uploaded-list audiences the profile is on. (Rule-based membership is computed from the profile's
    data, never stored.)"""
    return Audience.objects.filter(
        pk__in=AudienceMember.objects.filter(profile=profile).values("audience_id")
    ).order_by("name")
