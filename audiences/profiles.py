"""Profiles outside imports: identity namespaces, consent, push tokens and the attribute schema, and the
person's rights over their data: export everything stored about them, erase them everywhere.

Bulk upserts (imports and the profile API) live in audiences.services. Apps above audiences take part in
export and erase through the two signals below, since audiences may not import them.
"""

import hashlib
import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    Channel,
    ChannelConsentSetting,
    Consent,
    ConsentEvent,
    Identity,
    IdentityNamespace,
    Profile,
    PushToken,
    unknown_consent_allows_marketing,
)
from config import queues
from permissions.models import ApiKey
from permissions.services import audit_record

# Sent with `profile` inside the erase transaction, before the profile's rows are deleted. A receiver removes
# or anonymises what its app stores about the person and may return {what: how many rows} for the receipt;
# an exception aborts the whole erase.
profile_erasing = Signal()
# Sent with `profile` by profile_export. A receiver returns {section: JSON-ready list} of what its app stores
# about the person (the campaigns app answers with deliveries and trigger requests).
profile_exporting = Signal()

NAMESPACE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Attributes searched as the person's name on the profiles page, when declared as text.
NAME_ATTRIBUTES = ("name", "full_name", "first_name", "last_name")


# Identity namespaces ------------------------------------------------------------------------------------


@transaction.atomic
def namespace_create(*, actor, name: str, label: str, kind: str = IdentityNamespace.Kind.TEXT) -> IdentityNamespace:
    """Add a custom namespace. Its name is permanent: identities refer to it by name."""
    name = name.strip()
    if not NAMESPACE_NAME.match(name) or "__" in name:
        raise ValidationError(
            {"name": "Use lower-case letters, digits and single underscores, starting with a letter."}
        )
    if kind not in IdentityNamespace.Kind.values:
        raise ValidationError({"kind": f"Unknown kind {kind!r}."})
    if IdentityNamespace.objects.filter(name=name).exists():
        raise ValidationError({"name": f"There is already a namespace named {name}."})
    namespace = IdentityNamespace.objects.create(name=name, label=label.strip() or name, kind=kind)
    audit_record(actor=actor, action="identity_namespace.created", obj=namespace, after={"name": name, "kind": kind})
    return namespace


@transaction.atomic
def namespace_delete(*, actor, namespace: IdentityNamespace) -> None:
    """Delete a custom namespace that no identity uses. Built-in namespaces are never deleted."""
    namespace = IdentityNamespace.objects.select_for_update().get(pk=namespace.pk)
    if namespace.builtin:
        raise ValidationError(f"{namespace.name} is built in and cannot be deleted.")
    used = Identity.objects.filter(namespace=namespace.name).count()
    if used:
        raise ValidationError(
            f"{used} profile{'s' if used != 1 else ''} {'have' if used != 1 else 'has'} an identity in "
            f"{namespace.name}: it can only be deleted when none does."
        )
    audit_record(actor=actor, action="identity_namespace.deleted", obj=namespace, before={"name": namespace.name})
    namespace.delete()


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


@transaction.atomic
def consent_set(*, profile: Profile, channel: str, state: str, source: str) -> Consent:
    """Make `state` the profile's consent on `channel` and append it to the history.

    Idempotent: setting the state it already has changes nothing and adds no history. No row already means
    unknown, so setting unknown where nothing was ever recorded records nothing (as bulk upserts do).
    """
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    if state not in Consent.State.values:
        raise ValidationError({"state": f"Unknown consent state {state!r}."})
    source = source[:64]
    consent = Consent.objects.select_for_update().filter(profile=profile, channel=channel).first()
    if consent is None:
        if state == Consent.State.UNKNOWN:
            return Consent(profile=profile, channel=channel, state=state)
        # get_or_create: a concurrent first consent on this channel is found, not duplicated.
        consent, created = Consent.objects.get_or_create(
            profile=profile, channel=channel, defaults={"state": state, "source": source}
        )
        if created:
            ConsentEvent.objects.create(profile=profile, channel=channel, state=state, source=source)
            return consent
    if consent.state == state:
        return consent
    consent.state, consent.source = state, source
    consent.save(update_fields=["state", "source", "updated_at"])
    ConsentEvent.objects.create(profile=profile, channel=channel, state=state, source=source)
    return consent


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


@transaction.atomic
def channel_consent_setting_set(*, actor, channel: str, unknown_allows_marketing: bool) -> ChannelConsentSetting:
    """Say whether marketing on `channel` may reach profiles whose consent is unknown. Audited when changed."""
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    before = unknown_consent_allows_marketing(channel)
    setting, _ = ChannelConsentSetting.objects.update_or_create(
        channel=channel, defaults={"unknown_allows_marketing": unknown_allows_marketing}
    )
    if before != unknown_allows_marketing:
        audit_record(
            actor=actor,
            action="consent_setting.changed",
            obj=setting,
            before={"channel": channel, "unknown_allows_marketing": before},
            after={"channel": channel, "unknown_allows_marketing": unknown_allows_marketing},
        )
    return setting


# Push tokens --------------------------------------------------------------------------------------------


def push_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def push_token_register(*, profile: Profile, token: str, platform: str, app: str) -> PushToken:
    """Attach a device's push token to `profile`, active. A token already known moves to this profile (the
    device changed hands or its app was reinstalled) and is no longer retired. Idempotent."""
    token = token.strip()
    if not token or len(token) > 4096:
        raise ValidationError({"token": "A push token is 1 to 4096 characters."})
    if platform not in PushToken.Platform.values:
        raise ValidationError({"platform": f"Unknown platform {platform!r}: use ios, android or web."})
    if not app.strip():
        raise ValidationError({"app": "Name the app the token belongs to."})
    push_token, _ = PushToken.objects.update_or_create(
        token_hash=push_token_hash(token),
        defaults={"profile": profile, "token": token, "platform": platform, "app": app.strip(), "retired_at": None},
    )
    return push_token


def push_token_retire(*, token: str) -> bool:
    """Retire a token the provider reported invalid; it is kept, never used again. False if unknown or
    already retired."""
    retired = PushToken.objects.filter(token_hash=push_token_hash(token.strip()), retired_at__isnull=True)
    return bool(retired.update(retired_at=timezone.now()))


# The attribute schema -----------------------------------------------------------------------------------


def attribute_has_values(name: str) -> bool:
    """Whether any profile holds a value of attribute `name`: then its type can no longer change."""
    return Profile.objects.filter(attributes__has_key=name).exists()


@transaction.atomic
def attribute_declare(
    *, actor, name: str, type: str, label: str = "", description: str = "", indexed: bool = False
) -> AttributeDefinition:
    """Declare a new attribute with its one type. Imports and the API then validate values against it."""
    definition = AttributeDefinition(
        name=name.strip(), type=type, label=label.strip(), description=description.strip(), indexed=indexed
    )
    definition.created_by = actor if getattr(actor, "is_authenticated", False) else None
    definition.full_clean()  # the name's pattern, the type's choices, uniqueness
    definition.save()
    if indexed:
        _sync_indexes_on_commit()
    audit_record(
        actor=actor,
        action="attribute.declared",
        obj=definition,
        after={"name": definition.name, "type": type, "indexed": indexed},
    )
    return definition


@transaction.atomic
def attribute_change(
    *, actor, definition: AttributeDefinition, type: str, label: str, description: str, indexed: bool
) -> AttributeDefinition:
    """Change a declared attribute. Its type may change only while no profile holds a value of it, so values
    of one attribute never mix types in storage."""
    definition = AttributeDefinition.objects.select_for_update().get(pk=definition.pk)
    before = {"type": definition.type, "label": definition.label, "indexed": definition.indexed}
    if type != definition.type and attribute_has_values(definition.name):
        raise ValidationError(
            {"type": f"Profiles already hold values of {definition.name}: its type can no longer change."}
        )
    definition.type, definition.label, definition.description, definition.indexed = (
        type,
        label.strip(),
        description.strip(),
        indexed,
    )
    definition.full_clean()
    definition.save()
    after = {"type": definition.type, "label": definition.label, "indexed": definition.indexed}
    if before["indexed"] != after["indexed"] or (definition.indexed and before["type"] != after["type"]):
        _sync_indexes_on_commit()
    if before != after:
        audit_record(actor=actor, action="attribute.changed", obj=definition, before=before, after=after)
    return definition


def _sync_indexes_on_commit() -> None:
    """Build or drop attribute indexes in a maintenance job: CREATE INDEX CONCURRENTLY cannot run in the
    request's transaction, and a large table takes a while. If Redis is down, the next change (or
    `manage.py sync_attribute_indexes`) catches up."""

    queues.enqueue_on_commit(queues.MAINTENANCE, "audiences.jobs.sync_attribute_indexes")


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


# Export and erase ---------------------------------------------------------------------------------------


def profile_export(profile: Profile) -> dict:
    """Everything stored about the person, JSON-ready: profile fields, identities, attributes (with their
    declared types), consent and its history, push tokens, list memberships, and what the apps above
    audiences keep about them (deliveries and trigger requests). Nothing about anyone else."""
    profile = Profile.objects.get(pk=profile.pk)
    declared = dict(AttributeDefinition.objects.filter(name__in=list(profile.attributes)).values_list("name", "type"))
    export = {
        "exported_at": _iso(timezone.now()),
        "profile": {
            "id": profile.pk,
            "email": profile.email,
            "phone": profile.phone,
            "timezone": profile.timezone,
            "locale": profile.locale,
            "created_at": _iso(profile.created_at),
            "updated_at": _iso(profile.updated_at),
        },
        "identities": [
            {"namespace": namespace, "value": value}
            for namespace, value in profile.identities.order_by("namespace", "value").values_list("namespace", "value")
        ],
        "attributes": [
            {"name": name, "type": declared.get(name, ""), "value": value}
            for name, value in sorted(profile.attributes.items())
        ],
        "consent": [
            {"channel": c.channel, "state": c.state, "source": c.source, "updated_at": _iso(c.updated_at)}
            for c in profile.consents.order_by("channel")
        ],
        "consent_history": [
            {"channel": e.channel, "state": e.state, "source": e.source, "at": _iso(e.created_at)}
            for e in profile.consent_events.order_by("created_at", "id")
        ],
        "push_tokens": [
            {
                "platform": t.platform,
                "app": t.app,
                "token": t.token,
                "created_at": _iso(t.created_at),
                "retired_at": _iso(t.retired_at),
            }
            for t in profile.push_tokens.order_by("created_at", "id")
        ],
        "audience_memberships": [
            {"audience_id": audience.pk, "audience": audience.name} for audience in profile_memberships(profile)
        ],
    }
    for _receiver, sections in profile_exporting.send(sender=Profile, profile=profile):
        for name, rows in (sections or {}).items():
            export.setdefault(name, []).extend(rows)
    return export


def profile_export_recorded(*, profile: Profile, actor) -> dict:
    """profile_export, with an audit record saying who exported whom (by id only)."""
    export = profile_export(profile)
    _audit(actor=actor, action="profile.exported", profile_id=profile.pk)
    return export


@transaction.atomic
def profile_erase(*, profile: Profile, actor) -> dict[str, int]:
    """Remove the person's personal data everywhere, keeping anonymous counts.

    The profile row is deleted with its identities, attributes, consent and history, push tokens and list
    memberships; apps above audiences scrub what they keep through `profile_erasing` (the campaigns app
    keeps each delivery for the counts, without its address or its link to the person, and empties stored
    trigger contexts). All of it in one transaction: an erase is whole or not at all. The audit log names the
    profile by id only. Returns how many rows of each kind were removed or scrubbed.
    """
    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    profile_id = profile.pk
    receipt = {
        "identities": profile.identities.count(),
        "attributes": len(profile.attributes),
        "consents": profile.consents.count(),
        "consent_events": profile.consent_events.count(),
        "push_registrations": profile.push_tokens.count(),  # "token" names are redacted in the audit log
        "audience_memberships": AudienceMember.objects.filter(profile=profile).count(),
    }
    for _receiver, counts in profile_erasing.send(sender=Profile, profile=profile):
        receipt.update(counts or {})
    profile.delete()
    _audit(actor=actor, action="profile.erased", profile_id=profile_id, after=receipt)
    return receipt


def _audit(*, actor, action: str, profile_id: int, after: dict | None = None) -> None:
    # A stand-in names the profile by id only ("Profile 12"): no address of the person enters the audit log.
    stand_in = Profile(pk=profile_id)
    if isinstance(actor, ApiKey):
        event = audit_record(actor=None, action=action, obj=stand_in, after=after)
        event.actor_label = f"API key {actor.prefix}…"[:200]
        event.save(update_fields=["actor_label"])
    else:
        audit_record(actor=actor, action=action, obj=stand_in, after=after)


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None
