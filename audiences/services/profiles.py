"""Writes to profiles: the shared bulk upsert used by imports and the profile API.

Profiles outside bulk upserts are changed by the modules beside this one: consent (services.consent), push
tokens (services.push_tokens), identity namespaces (services.namespaces), the attribute schema
(services.attributes), and the person's rights (services.privacy).
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import ValidationError

from audiences.models import Audience, Consent, IdentityNamespace, Profile
from audiences.schemas import ProfileInput, ProfileSchema, error_list, excerpt
from audiences.services import profile_rows
from audiences.services.attributes import attributes_declare

log = logging.getLogger(__name__)

_RETRIES = 3


@dataclass
class UpsertOutcome:
    """What happened to one input: `created`, `updated` or `rejected` (with `errors`, (field, problem) pairs).
    `warnings` are the (field, problem) pairs of identities left out of a stored input (conflicts dropped)."""

    status: str
    profile_id: int | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    CREATED = "created"
    UPDATED = "updated"
    REJECTED = "rejected"


@dataclass
class _Pending:
    """A profile of this batch: an existing one (loaded) or one to create."""

    profile: Profile
    new: bool
    identities: set[tuple[str, str]]
    changed: bool = False
    consent: dict[str, str] = field(default_factory=dict)


def profiles_upsert(
    inputs: list[ProfileInput | dict[str, Any]],
    *,
    source: str,
    audience: Audience | None = None,
    declared: dict[str, str] | None = None,
    schema: ProfileSchema | None = None,
    match_on: str | None = None,
    drop_conflicts: bool = False,
) -> list[UpsertOutcome]:
    """Create or update one profile per input; one outcome per input, in order.

    Guarantees:
    - All of it or none of it: one transaction per call (a savepoint when the caller holds one). A rejected
      input writes nothing at all; the others are stored.
    - Matching: with `match_on` (imports), an input is found by its identity in that namespace, or when it has
      none there, by its other identities except a phone; without `match_on`, by any of its identities, except
      that a phone (households and switchboards share one) finds a profile only when the input names no other
      identity.
    - Conflict rule: when the identities an input is found by point at two or more different existing
      profiles, the input is rejected with a reason naming the namespaces and the profile ids. Nothing is
      merged.
    - The input's other identities are added to its profile only when no other profile holds them. One that
      another profile holds is a conflict for that field: the input is rejected, or, with `drop_conflicts`,
      stored without that identity (and without it as a primary address), the conflict in its `warnings`; an
      input left with no identity of its own is rejected.
    - Within one call, inputs apply in order: a later input that shares an identity with an earlier one
      updates the profile the earlier one created or updated (its outcome is `updated`).
    - `email`/`phone` set the primary addresses (and are identities of the email/phone namespaces).
    - Attributes merge: given keys overwrite, absent keys are untouched, a key given as None is removed.
    - Consent: each change of state is kept as a ConsentEvent with `source`; setting the state a profile
      already has records nothing. Consent goes to the input's own profile only.
    - With `audience` (an uploaded list), every stored profile becomes a member.
    - `declared` (attribute name -> type) creates those attribute definitions first; inputs may then use them.
    Dicts are validated here (errors become `rejected` outcomes); ProfileInput instances are trusted as valid.
    """
    if audience is not None and audience.kind != Audience.Kind.UPLOADED:
        raise ValueError(f"audience {audience.pk} is not an uploaded list: profiles join it by its rule")
    if declared:
        attributes_declare(declared)
    if schema is None:
        schema = ProfileSchema.load(declared=declared)
    outcomes: list[UpsertOutcome | None] = [None] * len(inputs)
    valid: list[tuple[int, ProfileInput]] = []
    for index, item in enumerate(inputs):
        if isinstance(item, ProfileInput):
            valid.append((index, item))
            continue
        try:
            valid.append((index, ProfileInput.model_validate(item, context={"schema": schema})))
        except ValidationError as error:
            outcomes[index] = UpsertOutcome(UpsertOutcome.REJECTED, errors=error_list(error))

    rules = _Matching(match_on=match_on, drop_conflicts=drop_conflicts, namespaces=schema.namespaces)
    for attempt in range(_RETRIES):
        try:
            with transaction.atomic():
                stored = _upsert_valid(valid, source=source, audience=audience, rules=rules)
            break
        except IntegrityError:
            # Another process stored one of these identities between our read and our write: read again.
            if attempt == _RETRIES - 1:
                raise
            log.info("profiles_upsert: identity stored concurrently, retrying the batch")
    for index, outcome in stored.items():
        outcomes[index] = outcome
    return outcomes


@dataclass(frozen=True)
class _Matching:
    match_on: str | None
    drop_conflicts: bool
    namespaces: dict[str, str]

    def keys(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The identities an input is found by. With `match_on`, a row without it is found by its other
        identities but never by a phone: the row may have named an email that failed its check, and the
        phone's owner would then take this person's data."""
        strong = [pair for pair in pairs if not self.is_phone(pair[0])]
        if self.match_on is not None:
            return [pair for pair in pairs if pair[0] == self.match_on] or strong
        return strong or pairs

    def is_phone(self, namespace: str) -> bool:
        return namespace == "phone" or self.namespaces.get(namespace) == IdentityNamespace.Kind.PHONE


def _upsert_valid(
    valid: list[tuple[int, ProfileInput]], *, source: str, audience: Audience | None, rules: _Matching
) -> dict:
    owner = profile_rows.identity_owners({pair for _, item in valid for pair in item.identity_pairs()})
    profiles = Profile.objects.in_bulk(set(owner.values()))
    pending: dict[Any, _Pending] = {}  # profile id, or ("new", n) for a profile this batch creates
    outcomes: dict[int, UpsertOutcome] = {}
    targets: dict[int, Any] = {}

    for index, item in valid:
        pairs = item.identity_pairs()
        keys = rules.keys(pairs)
        found: dict[Any, list[str]] = {}
        for namespace, value in keys:
            key = owner.get((namespace, value))
            if key is not None:
                found.setdefault(key, []).append(namespace)
        if len(found) > 1:
            outcomes[index] = UpsertOutcome(UpsertOutcome.REJECTED, errors=[("identities", _conflict(found))])
            continue
        key = next(iter(found), None) or ("new", index)
        conflicts = [
            (namespace, value, holder)
            for namespace, value in pairs
            if (holder := owner.get((namespace, value))) is not None and holder != key
        ]
        if conflicts and not rules.drop_conflicts:
            errors = [
                (_field(item, namespace), _held(value, holder, "nothing was merged"))
                for namespace, value, holder in conflicts
            ]
            outcomes[index] = UpsertOutcome(UpsertOutcome.REJECTED, errors=errors)
            continue
        warnings = []
        for namespace, value, holder in conflicts:
            warnings.append((_field(item, namespace), _held(value, holder, "left out, nothing was merged")))
            item = _without_identity(item, namespace, value)
        pairs = item.identity_pairs()
        if not pairs:  # every identity it named is someone else's: nothing to store it by
            errors = [*warnings, ("", "no identity of its own is left: nothing was stored, nothing was merged")]
            outcomes[index] = UpsertOutcome(UpsertOutcome.REJECTED, errors=errors)
            continue
        if found:
            entry = pending.get(key)
            if entry is None:
                entry = pending[key] = _Pending(profiles[key], new=False, identities=set())
            outcome = UpsertOutcome(UpsertOutcome.UPDATED, profile_id=None if entry.new else key)
        else:
            entry = pending[key] = _Pending(Profile(), new=True, identities=set())
            outcome = UpsertOutcome(UpsertOutcome.CREATED)
        outcome.warnings = warnings
        outcomes[index] = outcome
        targets[index] = key
        for pair in pairs:
            if pair not in owner:
                owner[pair] = key
                entry.identities.add(pair)
        _apply(entry, item)

    now = timezone.now()
    profile_rows.profiles_insert([entry.profile for entry in pending.values() if entry.new], now=now)
    profile_rows.profiles_update([e.profile for e in pending.values() if e.changed and not e.new], now=now)
    profile_rows.identities_insert(
        [
            (entry.profile.pk, namespace, value)
            for entry in pending.values()
            for namespace, value in sorted(entry.identities)
        ]
    )
    _store_consent(pending.values(), source=source, now=now)
    if audience is not None:
        profile_rows.members_add(audience.pk, [entry.profile.pk for entry in pending.values()])
    for index, key in targets.items():
        outcomes[index].profile_id = pending[key].profile.pk
    return outcomes


def _field(item: ProfileInput, namespace: str) -> str:
    """The input field that names an identity of `namespace` (the primary address wins)."""
    if namespace in ("email", "phone") and getattr(item, namespace) and namespace not in item.identities:
        return namespace
    return f"identities.{namespace}" if namespace in item.identities else namespace


def _held(value: str, holder, what: str) -> str:
    return f"{excerpt(value)} belongs to {_describe(holder)}, another person than this input's: {what}"


def _without_identity(item: ProfileInput, namespace: str, value: str) -> ProfileInput:
    """A copy of `item` without the identity (namespace, value), as a primary address too."""
    changes: dict[str, Any] = {}
    if namespace in item.identities and item.identities[namespace] == value:
        changes["identities"] = {ns: v for ns, v in item.identities.items() if ns != namespace}
    if namespace in ("email", "phone") and getattr(item, namespace) == value:
        changes[namespace] = None
    return item.model_copy(update=changes)


def _conflict(found: dict[Any, list[str]]) -> str:
    parts = [f"{', '.join(namespaces)} -> {_describe(key)}" for key, namespaces in found.items()]
    return "identities point at different profiles (" + "; ".join(parts) + "); nothing was merged"


def _describe(key) -> str:
    if isinstance(key, tuple):
        return f"the profile created by input {key[1] + 1} of this batch"
    return f"profile {key}"


def _apply(entry: _Pending, item: ProfileInput) -> None:
    profile = entry.profile
    before = (profile.email, profile.phone, profile.timezone, profile.locale, dict(profile.attributes))
    if item.email:
        profile.email = item.email
    if item.phone:
        profile.phone = item.phone
    if item.timezone:
        profile.timezone = item.timezone
    if item.locale:
        profile.locale = item.locale
    attributes = dict(profile.attributes)
    for name, value in item.attributes.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    profile.attributes = attributes
    entry.consent.update(item.consent)
    if (profile.email, profile.phone, profile.timezone, profile.locale, profile.attributes) != before:
        entry.changed = True


def _store_consent(entries, *, source: str, now) -> None:
    wanted = {entry.profile.pk: entry.consent for entry in entries if entry.consent}
    existing = [entry.profile.pk for entry in entries if entry.consent and not entry.new]
    if not wanted:
        return
    current = dict(
        ((profile_id, channel), (pk, state))
        for pk, profile_id, channel, state in Consent.objects.filter(profile_id__in=existing).values_list(
            "pk", "profile_id", "channel", "state"
        )
    )
    created, updated, events = [], [], []
    for profile_id, states in wanted.items():
        for channel, state in states.items():
            pk, stored = current.get((profile_id, channel), (None, None))
            if pk is None:
                if state == Consent.State.UNKNOWN:
                    continue  # no row already means unknown
                created.append((profile_id, channel, state))
            elif stored != state:
                updated.append((pk, state))
            else:
                continue
            events.append((profile_id, channel, state))
    profile_rows.consent_write(created=created, updated=updated, events=events, source=source, now=now)
