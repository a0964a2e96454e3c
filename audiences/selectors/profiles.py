"""Reads of profiles: the search of the profiles page, identities by namespace, consent per channel with
what it allows, the attribute schema's use, and a profile's list memberships."""

import re

import phonenumbers
from django.db.models import Count, Q, QuerySet

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
    of a name (each word the start of a declared name attribute), or `#id`."""
    profiles = Profile.objects.order_by("-pk")
    query = query.strip()
    if not query:
        return profiles
    if re.fullmatch(r"#\d{1,18}", query):
        return profiles.filter(pk=int(query[1:]))
    forms = identity_search_forms(query)
    matches = Q(
        pk__in=Identity.objects.filter(namespace__in=IdentityNamespace.objects.values("name"), value__in=forms).values(
            "profile_id"
        )
    )
    matches |= Q(email__istartswith=query) | Q(phone__in=forms)
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


def profile_memberships(profile: Profile) -> QuerySet[Audience]:
    """The uploaded-list audiences the profile is on. (Rule-based membership is computed from the profile's
    data, never stored.)"""
    return Audience.objects.filter(
        pk__in=AudienceMember.objects.filter(profile=profile).values("audience_id")
    ).order_by("name")
