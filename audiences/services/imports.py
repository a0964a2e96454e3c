"""The import actions: keep an uploaded CSV, fix its column mapping and queue it, run it chunk by chunk from
where it stopped, cancel it, and re-dispatch the imports whose job died. The file is read by
audiences.csv_files; the rows are stored by services.profiles.profiles_upsert."""

import contextlib
import fcntl
import functools
import gc
import itertools
import logging
import os
import pickle
import secrets
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import ValidationError

from audiences import csv_files
from audiences.models import AttributeDefinition, Audience, ImportRowError, ProfileImport
from audiences.schemas import ProfileInput, ProfileSchema, error_list
from audiences.services.attributes import attributes_declare
from audiences.services.profiles import UpsertOutcome, profiles_upsert
from config import queues

log = logging.getLogger(__name__)

ImportStatus = ProfileImport.Status
FINISHED = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)
# The first chunk is at most this many rows: its progress shows at once, and storing starts after checking
# 100 rows instead of a whole chunk (docs/benchmarks.md, "Imports").
FIRST_CHUNK_ROWS = 100
# The pipe from the checking child: Linux's default 64 KiB holds a quarter of a checked chunk (about 260 KB
# for 1,000 rows), so the child waited at every chunk for the parent to read; 1 MiB (the most a process may
# ask without privileges) lets it check a few chunks ahead while the parent waits on a commit.
CHECKED_PIPE_BYTES = 1 << 20


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
    match_on: str | None = None,
    list_separator: str = "|",
    strict: bool = False,
    audience: Audience | None = None,
    new_audience_name: str = "",
    run_async: bool = True,
) -> ProfileImport:
    """Declare the new attributes the user confirmed, fix the mapping and queue the import on the maintenance
    queue (on commit). `new_attributes` maps column -> (attribute name, type) declared now; their columns fill
    them. Rows are matched to profiles by their identity in the namespace `match_on` (a mapped one; by default
    email when a column fills it, else the first identity column); list cells are split on `list_separator`;
    `strict` rejects a whole row for one bad field. MappingError or AttributeDeclarationError when something
    does not fit; nothing is changed then."""
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
        plans = csv_files.plan_columns(
            locked.header, mapping, valid_targets={value for value, _ in csv_files.target_choices()}
        )
        match_on = match_on or csv_files.default_match_on(plans)
        csv_files.check_match_on(match_on, plans)
        if list_separator not in csv_files.LIST_SEPARATORS:
            raise csv_files.MappingError(f"the list separator must be one of {' '.join(csv_files.LIST_SEPARATORS)}")
        if new_audience_name:
            if Audience.objects.filter(name=new_audience_name).exists():
                raise csv_files.MappingError(f"an audience named {new_audience_name!r} exists already")
            audience = Audience.objects.create(name=new_audience_name, kind=Audience.Kind.UPLOADED, created_by=actor)
        if audience is not None and audience.kind != Audience.Kind.UPLOADED:
            raise csv_files.MappingError(f"{audience.name!r} is not an uploaded list")
        locked.mapping = mapping
        locked.default_region = default_region.upper()
        locked.match_on = match_on
        locked.list_separator = list_separator
        locked.strict = strict
        locked.audience = audience
        locked.status = ImportStatus.QUEUED
        locked.heartbeat_at = timezone.now()
        fields = ["mapping", "default_region", "match_on", "list_separator", "strict", "audience"]
        locked.save(update_fields=[*fields, "status", "heartbeat_at"])
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
    except _CheckingLost:
        # Killed from outside (a stop signal to the process group, the out-of-memory killer): a crash, not a
        # failure of the import. It stays running; the scheduler re-dispatches it from its last chunk.
        log.warning("import %s: the process checking its rows was killed; it resumes when re-dispatched", import_id)
        return ImportStatus.RUNNING
    except Exception as error:
        log.exception("import %s failed", import_id)
        with transaction.atomic():
            locked = ProfileImport.objects.select_for_update().get(pk=import_id)
            if locked.status != ImportStatus.RUNNING:
                return locked.status
            locked.error = f"{type(error).__name__}: {error}"[:2000]
            return _finish(locked, ImportStatus.FAILED)


@dataclass
class _Problem:
    """A problem with one row: `rejected` when the row was not stored, else the field was left out of it."""

    line: int
    column: str
    value: str
    problem: str
    rejected: bool


@dataclass
class _Row:
    """One record of the file on its way in: its input once valid, and its problems."""

    record: csv_files.Record
    item: ProfileInput | None = None
    problems: list[_Problem] = field(default_factory=list)

    def rejected(self) -> bool:
        return self.item is None

    def values(self) -> tuple:
        """The row as tuples and its validated model (what crosses the pipe from the checking process);
        from_values reads them.
        The item crosses as the model itself: pickle restores it as validated, without validating it again,
        at two thirds of the cost of a dict both ways (a dict, then model_construct)."""
        record = self.record
        problems = [(p.line, p.column, p.value, p.problem, p.rejected) for p in self.problems]
        return (record.line, record.values, record.problem), self.item, problems

    @classmethod
    def from_values(cls, record, item: ProfileInput | None, problems) -> "_Row":
        return cls(csv_files.Record(*record), item, [_Problem(*problem) for problem in problems])


def _run_chunks(profile_import: ProfileImport, *, chunk_rows: int, deadline: float, on_chunk) -> str:
    plans = csv_files.plan_columns(
        profile_import.header,
        profile_import.mapping,
        valid_targets={value for value, _ in csv_files.target_choices()},
    )
    schema = ProfileSchema.load(default_region=profile_import.default_region)
    checker = RowChecker(
        plans=plans,
        schema=schema,
        width=len(profile_import.header),
        strict=profile_import.strict,
        separator=profile_import.list_separator,
    )
    committed = profile_import.bytes_read
    with default_storage.open(profile_import.file.name, "rb") as binary, collecting_new_objects_only():
        line = csv_files.count_lines(binary, committed) if committed else 0
        binary.seek(committed)
        reader = csv_files.RecordReader(binary, delimiter=profile_import.delimiter, offset=committed, line=line)
        with _CheckedChunks(reader, checker, chunk_rows=chunk_rows, skip_header=committed == 0) as chunks:
            return _store_chunks(profile_import, chunks, checker, deadline=deadline, on_chunk=on_chunk)


def _store_chunks(profile_import: ProfileImport, chunks, checker: "RowChecker", *, deadline: float, on_chunk) -> str:
    """Store each checked chunk in one transaction with the import's counters and byte offset."""
    source = f"import {profile_import.pk}"
    committed = profile_import.bytes_read
    for rows, offset in chunks:
        with transaction.atomic():
            locked = ProfileImport.objects.select_for_update().get(pk=profile_import.pk)
            if locked.status != ImportStatus.RUNNING or locked.bytes_read != committed:
                log.info("import %s: another run took over at byte %s", locked.pk, locked.bytes_read)
                return locked.status
            if locked.cancel_requested:
                return _finish(locked, ImportStatus.CANCELLED)
            valid = [row for row in rows if not row.rejected()]
            outcomes = profiles_upsert(
                [row.item for row in valid],
                source=source,
                audience=locked.audience,
                schema=checker.schema,
                match_on=locked.match_on,
                drop_conflicts=not locked.strict,
            )
            created = updated = 0
            for row, outcome in zip(valid, outcomes, strict=True):
                if outcome.status == UpsertOutcome.REJECTED:
                    row.item = None
                    row.problems = [replace(problem, rejected=True) for problem in row.problems]
                    row.problems += checker.problems(row.record, outcome.errors, rejected=True)
                else:
                    row.problems += checker.problems(row.record, outcome.warnings, rejected=False)
                    created += outcome.status == UpsertOutcome.CREATED
                    updated += outcome.status == UpsertOutcome.UPDATED
            ImportRowError.objects.bulk_create(_row_errors(locked, rows))
            rejected = sum(row.rejected() for row in rows)
            locked.rows_read += len(rows)
            locked.rows_rejected += rejected
            locked.rows_stored += len(rows) - rejected
            locked.rows_with_warnings += sum(bool(row.problems) and not row.rejected() for row in rows)
            locked.profiles_created += created
            locked.profiles_updated += updated
            locked.bytes_read = committed = offset
            locked.heartbeat_at = timezone.now()
            fields = ["rows_read", "rows_rejected", "rows_stored", "rows_with_warnings"]
            locked.save(update_fields=[*fields, "profiles_created", "profiles_updated", "bytes_read", "heartbeat_at"])
            if not rows:
                return _finish(locked, ImportStatus.DONE)
            if time.monotonic() > deadline:
                queues.enqueue_on_commit(queues.MAINTENANCE, "audiences.jobs.import_profiles", locked.pk)
                return locked.status
        if on_chunk:
            on_chunk(locked)
    raise AssertionError("the chunks end with an empty one")  # pragma: no cover


@contextlib.contextmanager
def collecting_new_objects_only():
    """Python's cycle collector, for the work inside, looking only at the objects made inside it. A worker holds
    about 140,000 objects from its start (Django, the apps, the libraries); each full collection scanned them all,
    and a run makes enough long-lived objects a chunk to trigger one every few chunks: 0.4 s of a 20,000-row
    import's 2 s in the storing process (gc.callbacks). They are frozen (gc.freeze) after one collection, so no
    garbage is kept with them, and given back to the collector after. The checking child, forked inside, and
    bench_imports' baseline work the same way."""
    if gc.get_freeze_count():  # frozen by someone else (a preforking server): theirs to undo, not ours
        yield
        return
    try:
        gc.collect()
        gc.freeze()
        yield
    finally:
        gc.unfreeze()


class _CheckingLost(Exception):
    """The child checking the rows died without a word (killed from outside)."""


class _CheckedChunks:
    """The file's records, read and checked a few chunks ahead by a forked child process: checking is Python work
    (pydantic, emails, phones) and storing is Python work and waiting on the database, so on two cores they
    overlap instead of taking turns (bench_imports: 0.48-0.64x of its baseline in one process, 0.92-0.93x so;
    docs/benchmarks.md, "Imports").

    Yields (rows, byte offset after them), the last chunk empty. The child touches no database (the parent's
    connection is never used in it, and it leaves with os._exit, so nothing of the parent's is closed or
    flushed twice); it writes each chunk to a pipe, pickled (_Row.values), and the pipe (1 MiB) and this
    process's reading buffer (as much again) hold it back when it is ahead, so memory stays flat. An error in it
    is raised where the chunk is taken; its death without one (_CheckingLost) leaves the import running, to be
    re-dispatched. Leaving the `with` kills and reaps it, whatever happened; if this process dies, the child's
    next write fails and it exits.
    """

    def __init__(self, reader: csv_files.RecordReader, checker: "RowChecker", *, chunk_rows: int, skip_header: bool):
        self._work = (reader, checker, chunk_rows, skip_header)

    def __enter__(self):
        read_end, write_end = os.pipe()
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or a lower limit: the default size
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, CHECKED_PIPE_BYTES)
        with warnings.catch_warnings():
            # RQ's worker runs a thread (its command listener); the child uses nothing that thread may hold:
            # no Redis, no database, no logging, and Python resets its own locks in a forked child.
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            self._pid = os.fork()
        if self._pid == 0:
            status = 1
            try:
                os.close(read_end)
                # A stop signal to the process group is the worker's to handle: the child ends when its parent
                # stops reading (its next write fails) or kills it.
                for name in ("SIGTERM", "SIGINT", "SIGHUP"):
                    signal.signal(getattr(signal, name), signal.SIG_IGN)
                with os.fdopen(write_end, "wb", buffering=1 << 20) as out:
                    _check_into(out, *self._work)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        self._input = os.fdopen(read_end, "rb", buffering=1 << 20)
        return self

    def __exit__(self, *exc_info):
        self._input.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)

    def __iter__(self):
        while True:
            try:
                item = pickle.load(self._input)  # noqa: S301 - our own child's values, through our own pipe
            except (EOFError, pickle.UnpicklingError):  # it died before or while writing this chunk
                raise _CheckingLost from None
            if isinstance(item, str):
                raise RuntimeError(item)
            rows, offset = item
            yield [_Row.from_values(*values) for values in rows], offset
            if not rows:
                return


def _check_into(out, reader: csv_files.RecordReader, checker: "RowChecker", chunk_rows: int, skip_header: bool):
    """In the child: check the records chunk by chunk and write each, pickled, to `out`; a failure is
    written as its message."""
    try:
        records = iter(reader)
        if skip_header:
            next(records, None)
        size = min(chunk_rows, FIRST_CHUNK_ROWS)
        while True:
            chunk = list(itertools.islice(records, size))
            size = chunk_rows
            rows = [checker.row(record).values() for record in chunk]
            pickle.dump((rows, reader.offset), out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
            if not chunk:
                return
    except Exception as error:  # noqa: BLE001 - told to the parent, which fails the import with it
        pickle.dump(f"checking the file failed: {type(error).__name__}: {error}", out)


@dataclass(frozen=True)
class RowChecker:
    """How the records of one import become profile inputs: its columns, schema, width, mode and separator.
    bench_imports's baseline validates with it too, so both sides of that comparison do the same work."""

    plans: list[csv_files.ColumnPlan]
    schema: ProfileSchema
    width: int
    strict: bool
    separator: str

    @functools.cached_property
    def list_fields(self) -> frozenset[str]:
        return frozenset(
            plan.field
            for plan in self.plans
            if plan.field.startswith("attributes.")
            and self.schema.attribute_types.get(plan.field.partition(".")[2]) == AttributeDefinition.Type.STRING_LIST
        )

    def row(self, record: csv_files.Record) -> _Row:
        """The record validated. Not strict: each field that fails is left out and reported, and the rest
        stored while an identity is left; strict: any problem rejects the row."""
        row = _Row(record)
        if record.values is None:
            row.problems.append(_Problem(record.line, "", "", record.problem, rejected=True))
            return row
        if len(record.values) != self.width:
            problem = f"expected {self.width} columns, found {len(record.values)}"
            row.problems.append(_Problem(record.line, "", "", problem, rejected=True))
            return row
        data = csv_files.record_to_data(
            record.values, self.plans, list_fields=self.list_fields, separator=self.separator
        )
        while True:
            try:
                row.item = ProfileInput.model_validate(data, context={"schema": self.schema})
                return row
            except ValidationError as error:
                errors = [(csv_files.plan_field(f, self.plans), problem) for f, problem in error_list(error)]
            dropped = not self.strict and [f for f, _ in errors if f and csv_files.without_field(data, f)]
            row.problems += self.problems(record, errors, rejected=not dropped)
            if not dropped:
                for problem in row.problems:
                    problem.rejected = True
                return row

    def problems(self, record: csv_files.Record, errors, *, rejected: bool) -> list[_Problem]:
        return [
            _Problem(
                record.line,
                csv_files.column_of(field_, self.plans),
                csv_files.cell(record.values, field_, self.plans),
                problem,
                rejected,
            )
            for field_, problem in errors
        ]


def _row_errors(profile_import: ProfileImport, rows: list[_Row]):
    for row in rows:
        for number, problem in enumerate(row.problems):
            yield ImportRowError(
                profile_import=profile_import,
                line=problem.line,
                column=problem.column[:255],
                value=_storable(problem.value[:500]),
                problem=problem.problem[:500],
                rejected=problem.rejected,
                row=[_storable(value) for value in row.record.values] if number == 0 and row.record.values else None,
            )


def _storable(text: str) -> str:
    """`text` with its NULs (which no database text column takes) shown as U+FFFD."""
    return text.replace("\x00", "\ufffd")


def _finish(profile_import: ProfileImport, status: str) -> str:
    profile_import.status = status
    profile_import.finished_at = timezone.now()
    profile_import.save(update_fields=["status", "finished_at", "error"])
    log.info("import %s: %s", profile_import.pk, status)
    return status
