"""Reads of profiles: the search of the profiles page, identities by namespace, consent per channel with
what it allows, the attribute schema's use, and a profile's list memberships."""

import json
import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from django.db import connection
from django.db.models import Count, F, Q, QuerySet

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

# Attributes searched as the person's name on the profiles page, when declared as text.
NAME_ATTRIBUTES = ("name", "full_name", "first_name", "last_name")


# Identities ---------------------------------------------------------------------------------------------


def namespace_usage() -> dict[str, int]:
    """How many identities each namespace holds, by name (namespaces without any are absent)."""
    rows = Identity.objects.values_list("namespace").annotate(n=Count("id")).order_by()
    return dict(rows)


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


def profiles_search(query: str = "") -> QuerySet[Profile]:
    """Profiles, newest first, matching `query` when given: an exact identity value in any namespace (an
    email in any case, a phone as typed in international form), the start of the primary email, the start
    of a name (each word the start of a declared name attribute), or `#id`.

    Every condition reads an index on PostgreSQL (migration 0007): the identities are looked up first, by
    (namespace, value), and the profiles they name join the prefix searches as a list of ids, so that the
    conditions combine as one bitmap of index scans instead of a scan of every profile."""
    profiles = Profile.objects.order_by("-pk")
    query = query.strip()
    if not query:
        return profiles
    if re.fullmatch(r"#\d{1,18}", query):
        return profiles.filter(pk=int(query[1:]))
    forms = identity_search_forms(query)
    identified = list(
        Identity.objects.filter(namespace__in=IdentityNamespace.objects.values("name"), value__in=forms).values_list(
            "profile_id", flat=True
        )
    )
    matches = Q(pk__in=identified) | Q(email__istartswith=query) | Q(phone__in=forms)
    name_attributes = list(
        AttributeDefinition.objects.filter(name__in=NAME_ATTRIBUTES, type=AttributeDefinition.Type.STRING).values_list(
            "name", flat=True
        )
    )
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
    before it. A bound that lands on no row (a stale link) gives the newest page. With how many match in all
    (profiles_search_count), counted only when the page does not already show it."""
    profiles = profiles_search(query)
    estimate = _estimated_rows(profiles)
    if estimate is not None and estimate <= FETCH_MATCHES_UP_TO:
        # `pk + 0` is the same order, but no index gives it: the planner fetches the matches, then sorts them.
        newest, oldest = (F("pk") + 0).desc(), F("pk") + 0
    else:
        newest, oldest = "-pk", "pk"
    if after is not None:
        rows = list(profiles.filter(pk__gt=after).order_by(oldest)[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        newer = rows[0].pk if more_newer else None
        older = rows[-1].pk if rows and profiles.filter(pk__lt=rows[-1].pk).exists() else None
    else:
        bounded = profiles if before is None else profiles.filter(pk__lt=before)
        rows = list(bounded.order_by(newest)[: size + 1])
        older = rows[size - 1].pk if len(rows) > size else None
        rows = rows[:size]
        newer = rows[0].pk if before is not None and rows and profiles.filter(pk__gt=rows[0].pk).exists() else None
    if not rows and (before is not None or after is not None):
        return profiles_search_page(query, size=size)
    if newer is None and older is None:
        count = SearchCount(len(rows), "exact")  # all of them are on this page
    else:
        count = profiles_search_count(profiles, estimate=estimate)
    return ProfilePage(profiles=rows, newer=newer, older=older, count=count)


def profiles_search_count(
    profiles: QuerySet[Profile], *, cap: int = SEARCH_COUNT_CAP, estimate: int | None = None
) -> SearchCount:
    """How many profiles a search (a profiles_search queryset) finds, reading at most `cap` + 1 of them: exact up
    to `cap`; beyond it the planner's estimate on PostgreSQL (`estimate`, when the caller has it already) where it
    expects more than `cap`, so that a broad search costs a plan, not a count; else "more than `cap`"."""
    if estimate is None:
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


def profile_memberships(profile: Profile) -> QuerySet[Audience]:
    """The uploaded-list audiences the profile is on. (Rule-based membership is computed from the profile's
    data, never stored.)"""
    return Audience.objects.filter(
        pk__in=AudienceMember.objects.filter(profile=profile).values("audience_id")
    ).order_by("name")
