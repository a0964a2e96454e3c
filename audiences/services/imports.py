"""The import actions: keep an uploaded CSV, fix its column mapping and queue it, run it chunk by chunk from
where it stopped, cancel it, and re-dispatch the imports whose job died. The file is read by
audiences.csv_files; the rows are stored by services.profiles.profiles_upsert."""

import itertools
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import ValidationError

from audiences import csv_files
from audiences.models import Audience, ImportRowError, ProfileImport
from audiences.schemas import ProfileInput, ProfileSchema, error_list
from audiences.services.attributes import attributes_declare
from audiences.services.profiles import UpsertOutcome, profiles_upsert
from config import queues

log = logging.getLogger(__name__)

ImportStatus = ProfileImport.Status
FINISHED = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)


def import_create(*, actor, upload) -> ProfileImport:
    """Keep an uploaded CSV through the storage API and read its format; FileFormatError if it is not UTF-8 CSV.

    The import waits for its column mapping (status `uploaded`)."""
    upload.seek(0)
    fmt = csv_files.detect_format(upload)
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
            raise csv_files.MappingError(f"this import is {locked.get_status_display().lower()} already")
        mapping = dict(mapping)
        declared = {}
        for column, (name, type_) in (new_attributes or {}).items():
            declared[name] = type_
            mapping[column] = f"attribute:{name}"
        if declared:
            attributes_declare(declared, actor=actor)
        csv_files.plan_columns(locked.header, mapping, valid_targets={value for value, _ in csv_files.target_choices()})
        if new_audience_name:
            if Audience.objects.filter(name=new_audience_name).exists():
                raise csv_files.MappingError(f"an audience named {new_audience_name!r} exists already")
            audience = Audience.objects.create(name=new_audience_name, kind=Audience.Kind.UPLOADED, created_by=actor)
        if audience is not None and audience.kind != Audience.Kind.UPLOADED:
            raise csv_files.MappingError(f"{audience.name!r} is not an uploaded list")
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
    plans = csv_files.plan_columns(
        profile_import.header,
        profile_import.mapping,
        valid_targets={value for value, _ in csv_files.target_choices()},
    )
    schema = ProfileSchema.load(default_region=profile_import.default_region)
    source = f"import {profile_import.pk}"
    committed = profile_import.bytes_read
    with default_storage.open(profile_import.file.name, "rb") as binary:
        line = csv_files.count_lines(binary, committed) if committed else 0
        binary.seek(committed)
        reader = csv_files.RecordReader(binary, delimiter=profile_import.delimiter, offset=committed, line=line)
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
                        errors += [(record.line, csv_files.column_of(f, plans), p) for f, p in outcome.errors]
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
            item = ProfileInput.model_validate(
                csv_files.record_to_data(record.values, plans), context={"schema": schema}
            )
        except ValidationError as error:
            errors += [(record.line, csv_files.column_of(f, plans), p) for f, p in error_list(error)]
            continue
        inputs.append((record, item))
    return inputs, errors


def _finish(profile_import: ProfileImport, status: str) -> str:
    profile_import.status = status
    profile_import.finished_at = timezone.now()
    profile_import.save(update_fields=["status", "finished_at", "error"])
    log.info("import %s: %s", profile_import.pk, status)
    return status
