"""Writes to profiles: the shared bulk upsert used by imports and the profile API, and the import actions."""

import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as ModelValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import ValidationError

from audiences import imports
from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    Consent,
    ConsentEvent,
    Identity,
    ImportRowError,
    Profile,
    ProfileImport,
)
from audiences.schemas import ProfileInput, ProfileSchema, error_list
from config import queues

log = logging.getLogger(__name__)

_RETRIES = 3


class AttributeDeclarationError(ValueError):
    """A declared attribute clashes with the schema (same name, other type) or has an invalid name or type."""


@dataclass
class UpsertOutcome:
    """What happened to one input: `created`, `updated` or `rejected` (with `errors`, (field, problem) pairs)."""

    status: str
    profile_id: int | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)

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


def attributes_declare(declared: dict[str, str], *, actor=None) -> None:
    """Create the AttributeDefinition of each declared name -> type that does not exist yet.

    An attribute that exists with the same type is fine; with another type it is an AttributeDeclarationError,
    as is a name or type the schema refuses. Values of an attribute never mix types.
    """
    existing = dict(AttributeDefinition.objects.filter(name__in=list(declared)).values_list("name", "type"))
    for name, type_ in declared.items():
        if name in existing:
            if existing[name] != type_:
                raise AttributeDeclarationError(
                    f"attribute {name!r} is already declared as {existing[name]}, not {type_}"
                )
            continue
        definition = AttributeDefinition(name=name, type=type_, created_by=actor)
        try:
            definition.full_clean()
        except ModelValidationError as error:
            messages = "; ".join(message for messages in error.message_dict.values() for message in messages)
            raise AttributeDeclarationError(f"attribute {name!r}: {messages}") from None
        definition.save()


def profiles_upsert(
    inputs: list[ProfileInput | dict[str, Any]],
    *,
    source: str,
    audience: Audience | None = None,
    declared: dict[str, str] | None = None,
    schema: ProfileSchema | None = None,
) -> list[UpsertOutcome]:
    """Create or update one profile per input, found by ANY of its identities; one outcome per input, in order.

    Guarantees:
    - All of it or none of it: one transaction per call (a savepoint when the caller holds one). A rejected
      input writes nothing at all; the others are stored.
    - Conflict rule: when an input's identities point at two or more different existing profiles, the input is
      rejected with a reason naming the namespaces and the profile ids. Nothing is merged.
    - Within one call, inputs apply in order: a later input that shares an identity with an earlier one
      updates the profile the earlier one created or updated (its outcome is `updated`).
    - Identities an input names that its profile lacks are added to it. `email`/`phone` set the primary
      addresses (and are identities of the email/phone namespaces).
    - Attributes merge: given keys overwrite, absent keys are untouched, a key given as None is removed.
    - Consent: each change of state is kept as a ConsentEvent with `source`; setting the state a profile
      already has records nothing.
    - With `audience` (an uploaded list), every stored profile becomes a member.
    - `declared` (attribute name -> type) creates those attribute definitions first; inputs may then use them.
    Dicts are validated here (errors become `rejected` outcomes); ProfileInput instances are trusted as valid.
    """
    if audience is not None and audience.kind != Audience.Kind.UPLOADED:
        raise ValueError(f"audience {audience.pk} is not an uploaded list: profiles join it by its rule")
    if declared:
        attributes_declare(declared)
    if schema is None and any(not isinstance(item, ProfileInput) for item in inputs):
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

    for attempt in range(_RETRIES):
        try:
            with transaction.atomic():
                stored = _upsert_valid(valid, source=source, audience=audience)
            break
        except IntegrityError:
            # Another process stored one of these identities between our read and our write: read again.
            if attempt == _RETRIES - 1:
                raise
            log.info("profiles_upsert: identity stored concurrently, retrying the batch")
    for index, outcome in stored.items():
        outcomes[index] = outcome
    return outcomes


def _upsert_valid(valid: list[tuple[int, ProfileInput]], *, source: str, audience: Audience | None) -> dict:
    owner = _existing_identities(pair for _, item in valid for pair in item.identity_pairs())
    profiles = Profile.objects.in_bulk(set(owner.values()))
    pending: dict[Any, _Pending] = {}  # profile id, or ("new", n) for a profile this batch creates
    outcomes: dict[int, UpsertOutcome] = {}
    targets: dict[int, Any] = {}

    for index, item in valid:
        pairs = item.identity_pairs()
        found: dict[Any, list[str]] = {}
        for namespace, value in pairs:
            key = owner.get((namespace, value))
            if key is not None:
                found.setdefault(key, []).append(namespace)
        if len(found) > 1:
            outcomes[index] = UpsertOutcome(UpsertOutcome.REJECTED, errors=[("identities", _conflict(found))])
            continue
        if found:
            (key,) = found
            entry = pending.get(key)
            if entry is None:
                profile = profiles[key]
                entry = pending[key] = _Pending(profile, new=False, identities=set())
            outcomes[index] = UpsertOutcome(UpsertOutcome.UPDATED, profile_id=None if entry.new else key)
        else:
            key = ("new", index)
            entry = pending[key] = _Pending(Profile(), new=True, identities=set())
            outcomes[index] = UpsertOutcome(UpsertOutcome.CREATED)
        targets[index] = key
        for pair in pairs:
            if pair not in owner:
                owner[pair] = key
                entry.identities.add(pair)
        _apply(entry, item)

    now = timezone.now()
    created = [entry for entry in pending.values() if entry.new]
    for entry in created:
        entry.profile.created_at = entry.profile.updated_at = now
    Profile.objects.bulk_create([entry.profile for entry in created])
    changed = [entry.profile for entry in pending.values() if entry.changed and not entry.new]
    for profile in changed:
        profile.updated_at = now
    Profile.objects.bulk_update(changed, ["email", "phone", "attributes", "timezone", "locale", "updated_at"])
    Identity.objects.bulk_create(
        Identity(profile=entry.profile, namespace=namespace, value=value)
        for entry in pending.values()
        for namespace, value in sorted(entry.identities)
    )
    _store_consent(pending.values(), source=source, now=now)
    if audience is not None:
        AudienceMember.objects.bulk_create(
            (AudienceMember(audience=audience, profile=entry.profile) for entry in pending.values()),
            ignore_conflicts=True,
        )
    for index, key in targets.items():
        outcomes[index].profile_id = pending[key].profile.pk
    return outcomes


def _existing_identities(pairs) -> dict[tuple[str, str], int]:
    """(namespace, value) -> profile id of the identities already stored, in one query."""
    by_namespace: dict[str, set[str]] = {}
    for namespace, value in pairs:
        by_namespace.setdefault(namespace, set()).add(value)
    if not by_namespace:
        return {}
    query = Q()
    for namespace, values in by_namespace.items():
        query |= Q(namespace=namespace, value__in=sorted(values))
    return {
        (namespace, value): profile_id
        for namespace, value, profile_id in Identity.objects.filter(query).values_list(
            "namespace", "value", "profile_id"
        )
    }


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
    if not wanted:
        return
    current = {
        (consent.profile_id, consent.channel): consent
        for consent in Consent.objects.filter(profile_id__in=list(wanted))
    }
    to_create, to_update, events = [], [], []
    for profile_id, states in wanted.items():
        for channel, state in states.items():
            consent = current.get((profile_id, channel))
            if consent is None:
                if state == Consent.State.UNKNOWN:
                    continue  # no row already means unknown
                to_create.append(Consent(profile_id=profile_id, channel=channel, state=state, source=source))
            elif consent.state != state:
                consent.state, consent.source, consent.updated_at = state, source, now
                to_update.append(consent)
            else:
                continue
            events.append(ConsentEvent(profile_id=profile_id, channel=channel, state=state, source=source))
    Consent.objects.bulk_create(to_create)
    Consent.objects.bulk_update(to_update, ["state", "source", "updated_at"])
    ConsentEvent.objects.bulk_create(events)


# Imports ------------------------------------------------------------------------------------------------

ImportStatus = ProfileImport.Status
FINISHED = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)


def import_create(*, actor, upload) -> ProfileImport:
    """Keep an uploaded CSV through the storage API and read its format; FileFormatError if it is not UTF-8 CSV.

    The import waits for its column mapping (status `uploaded`)."""
    upload.seek(0)
    fmt = imports.detect_format(upload)
    upload.seek(0)
    original_name = upload.name or "import.csv"
    # Stored under a name of ours: the uploader's (shown as `original_name`) may hold nothing a path can keep.
    upload.name = f"import-{secrets.token_hex(8)}.csv"
    return ProfileImport.objects.create(
        file=upload,
        original_name=original_name[:255],
        size_bytes=upload.size,
        delimiter=fmt.delimiter,
        header=fmt.header,
        created_by=actor,
    )


def import_start(
    *,
    profile_import: ProfileImport,
    actor,
    mapping: dict[str, str],
    new_attributes: dict[str, str] | None = None,
    default_region: str = "",
    audience: Audience | None = None,
    new_audience_name: str = "",
    run_async: bool = True,
) -> ProfileImport:
    """Declare the new attributes the user confirmed, fix the mapping and queue the import on the maintenance
    queue (on commit). `new_attributes` maps column -> (attribute name, type) declared now; their columns fill
    them. MappingError or AttributeDeclarationError when something does not fit; nothing is changed then."""
    with transaction.atomic():
        locked = ProfileImport.objects.select_for_update().get(pk=profile_import.pk)
        if locked.status != ImportStatus.UPLOADED:
            raise imports.MappingError(f"this import is {locked.get_status_display().lower()} already")
        mapping = dict(mapping)
        declared = {}
        for column, (name, type_) in (new_attributes or {}).items():
            declared[name] = type_
            mapping[column] = f"attribute:{name}"
        if declared:
            attributes_declare(declared, actor=actor)
        imports.plan_columns(locked.header, mapping, valid_targets={value for value, _ in imports.target_choices()})
        if new_audience_name:
            if Audience.objects.filter(name=new_audience_name).exists():
                raise imports.MappingError(f"an audience named {new_audience_name!r} exists already")
            audience = Audience.objects.create(name=new_audience_name, kind=Audience.Kind.UPLOADED, created_by=actor)
        if audience is not None and audience.kind != Audience.Kind.UPLOADED:
            raise imports.MappingError(f"{audience.name!r} is not an uploaded list")
        locked.mapping = mapping
        locked.default_region = default_region.upper()
        locked.audience = audience
        locked.status = ImportStatus.QUEUED
        locked.heartbeat_at = timezone.now()
        locked.save(update_fields=["mapping", "default_region", "audience", "status", "heartbeat_at"])
        if run_async:
            queues.enqueue_on_commit(queues.MAINTENANCE, "audiences.jobs.import_profiles", locked.pk)
    return locked


def import_cancel(*, profile_import: ProfileImport) -> bool:
    """Ask a queued or running import to stop. It stops between two chunks: what it stored stays, and its
    counters say exactly what that is. An import still waiting for its mapping is cancelled at once. False
    when the import had finished already."""
    imports_of = ProfileImport.objects.filter(pk=profile_import.pk)
    if imports_of.filter(status=ImportStatus.UPLOADED).update(
        status=ImportStatus.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    ):
        return True
    return bool(imports_of.filter(status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]).update(cancel_requested=True))


def imports_redispatch_stalled(now: datetime) -> list[int]:
    """Enqueue again the imports whose job died: running with no heartbeat for IMPORTS_STALL_SECONDS (60 s),
    or queued for ten times that (their job was lost with Redis). The scheduler calls this on each tick.

    A re-run continues from the last committed chunk; one scheduler wins each re-dispatch (conditional update).
    """
    stall = _setting("IMPORTS_STALL_SECONDS", 60)
    stalled = ProfileImport.objects.filter(
        Q(status=ImportStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=stall))
        | Q(status=ImportStatus.QUEUED, heartbeat_at__lt=now - timedelta(seconds=stall * 10))
    )
    kicked = []
    for import_id, status, heartbeat_at in stalled.values_list("pk", "status", "heartbeat_at"):
        with transaction.atomic():
            claimed = ProfileImport.objects.filter(pk=import_id, status=status, heartbeat_at=heartbeat_at).update(
                heartbeat_at=now
            )
            if claimed:
                queues.enqueue_on_commit(queues.MAINTENANCE, "audiences.jobs.import_profiles", import_id)
                kicked.append(import_id)
                log.warning("import %s: re-dispatched after no progress since %s", import_id, heartbeat_at)
    return kicked


def _setting(name: str, default: int) -> int:
    return getattr(settings, name, default)


def import_run(
    *,
    import_id: int,
    chunk_rows: int | None = None,
    max_seconds: float | None = None,
    on_chunk: Callable[[ProfileImport], None] | None = None,
) -> str:
    """Read the import's file from where it stopped and store it chunk by chunk; the import's status at the end.

    Guarantees: each chunk's profiles, row errors, counters, byte offset and heartbeat commit in one
    transaction, so the counters always say exactly what was stored (after a crash, a failure or a cancel).
    A rejected row stores nothing. A second run of the same import continues after the last committed chunk;
    two runs at once cannot both store a chunk (the byte offset is checked under a row lock). Cancelling
    takes effect between two chunks. After `max_seconds` (IMPORTS_JOB_SECONDS) the run queues its own
    continuation and returns `running`.
    """
    chunk_rows = chunk_rows or _setting("IMPORTS_CHUNK_ROWS", 1000)
    max_seconds = max_seconds or _setting("IMPORTS_JOB_SECONDS", 600)
    started = time.monotonic()
    with transaction.atomic():
        profile_import = ProfileImport.objects.select_for_update().get(pk=import_id)
        if profile_import.status in FINISHED or profile_import.status == ImportStatus.UPLOADED:
            return profile_import.status
        if profile_import.cancel_requested:
            return _finish(profile_import, ImportStatus.CANCELLED)
        now = timezone.now()
        profile_import.status = ImportStatus.RUNNING
        profile_import.started_at = profile_import.started_at or now
        profile_import.heartbeat_at = now
        profile_import.save(update_fields=["status", "started_at", "heartbeat_at"])
    try:
        return _run_chunks(profile_import, chunk_rows=chunk_rows, deadline=started + max_seconds, on_chunk=on_chunk)
    except Exception as error:
        log.exception("import %s failed", import_id)
        with transaction.atomic():
            locked = ProfileImport.objects.select_for_update().get(pk=import_id)
            if locked.status != ImportStatus.RUNNING:
                return locked.status
            locked.error = f"{type(error).__name__}: {error}"[:2000]
            return _finish(locked, ImportStatus.FAILED)


def _run_chunks(profile_import: ProfileImport, *, chunk_rows: int, deadline: float, on_chunk) -> str:
    plans = imports.plan_columns(
        profile_import.header,
        profile_import.mapping,
        valid_targets={value for value, _ in imports.target_choices()},
    )
    schema = ProfileSchema.load(default_region=profile_import.default_region)
    source = f"import {profile_import.pk}"
    committed = profile_import.bytes_read
    with default_storage.open(profile_import.file.name, "rb") as binary:
        line = imports.count_lines(binary, committed) if committed else 0
        binary.seek(committed)
        reader = imports.RecordReader(binary, delimiter=profile_import.delimiter, offset=committed, line=line)
        records = iter(reader)
        if committed == 0:
            next(records, None)  # the header
        while True:
            chunk = list(itertools.islice(records, chunk_rows))
            inputs, errors = _validate_chunk(chunk, plans, schema, width=len(profile_import.header))
            with transaction.atomic():
                locked = ProfileImport.objects.select_for_update().get(pk=profile_import.pk)
                if locked.status != ImportStatus.RUNNING or locked.bytes_read != committed:
                    log.info("import %s: another run took over at byte %s", locked.pk, locked.bytes_read)
                    return locked.status
                if locked.cancel_requested:
                    return _finish(locked, ImportStatus.CANCELLED)
                outcomes = profiles_upsert(
                    [item for _, item in inputs], source=source, audience=locked.audience, schema=schema
                )
                created = updated = 0
                for (record, _), outcome in zip(inputs, outcomes, strict=True):
                    if outcome.status == UpsertOutcome.REJECTED:
                        errors += [(record.line, imports.column_of(f, plans), p) for f, p in outcome.errors]
                    elif outcome.status == UpsertOutcome.CREATED:
                        created += 1
                    else:
                        updated += 1
                ImportRowError.objects.bulk_create(
                    ImportRowError(profile_import=locked, line=line_, column=column[:255], problem=problem[:500])
                    for line_, column, problem in errors
                )
                rejected = len({line_ for line_, _, _ in errors})
                locked.rows_read += len(chunk)
                locked.rows_rejected += rejected
                locked.rows_stored += len(chunk) - rejected
                locked.profiles_created += created
                locked.profiles_updated += updated
                locked.bytes_read = committed = reader.offset
                locked.heartbeat_at = timezone.now()
                fields = ["rows_read", "rows_rejected", "rows_stored", "profiles_created", "profiles_updated"]
                locked.save(update_fields=[*fields, "bytes_read", "heartbeat_at"])
                if not chunk:
                    return _finish(locked, ImportStatus.DONE)
                if time.monotonic() > deadline:
                    queues.enqueue_on_commit(queues.MAINTENANCE, "audiences.jobs.import_profiles", locked.pk)
                    return locked.status
            if on_chunk:
                on_chunk(locked)


def _validate_chunk(chunk, plans, schema, *, width: int):
    """(record, ProfileInput) for the valid records, and (line, column, problem) for the rejected ones."""
    inputs, errors = [], []
    for record in chunk:
        if record.values is None:
            errors.append((record.line, "", record.problem))
            continue
        if len(record.values) != width:
            errors.append((record.line, "", f"expected {width} columns, found {len(record.values)}"))
            continue
        try:
            item = ProfileInput.model_validate(imports.record_to_data(record.values, plans), context={"schema": schema})
        except ValidationError as error:
            errors += [(record.line, imports.column_of(f, plans), p) for f, p in error_list(error)]
            continue
        inputs.append((record, item))
    return inputs, errors


def _finish(profile_import: ProfileImport, status: str) -> str:
    profile_import.status = status
    profile_import.finished_at = timezone.now()
    profile_import.save(update_fields=["status", "finished_at", "error"])
    log.info("import %s: %s", profile_import.pk, status)
    return status
