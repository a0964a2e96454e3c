"""The import pipeline, from a stored file to profiles and row errors, on CSV files with the defects real exports
have. Pages are in test_import_pages.py."""

import gc
import io
import os
import signal
import time
import weakref
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from audiences import csv_files
from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    Consent,
    ConsentEvent,
    Identity,
    IdentityNamespace,
    Profile,
    ProfileImport,
)
from audiences.services import imports as services
from audiences.services.attributes import AttributeDeclarationError
from audiences.services.profiles import profiles_upsert
from tests.conftest import run_burst_worker

FIXTURES = Path(__file__).parent / "fixtures"
CRM_EXPORT = "crm_export_semicolon_bom.csv"
CRM_MAPPING = {
    "Email": "email",
    "Téléphone": "phone",
    "Pays": "country",
    "Newsletter": "consent:email",
    "Client ID": "identity:crm_id",
}
CRM_NEW_ATTRIBUTES = {
    "Prénom": ("first_name", "string"),
    "Points": ("points", "number"),
    "Adresse": ("address", "string"),
}


@pytest.fixture(autouse=True)
def storage(settings, tmp_path):
    """Files go to a folder of the test's own, through the storage API as in production."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    return tmp_path


@pytest.fixture
def manny(personas):
    return personas["manny"]


def upload(actor, content: bytes, name: str = "contacts.csv") -> ProfileImport:
    return services.import_create(actor=actor, upload=SimpleUploadedFile(name, content, content_type="text/csv"))


def start(profile_import, actor, mapping, **options) -> ProfileImport:
    return services.import_start(
        profile_import=profile_import, actor=actor, mapping=mapping, run_async=False, **options
    )


def crm_import(actor, **options) -> ProfileImport:
    profile_import = upload(actor, (FIXTURES / CRM_EXPORT).read_bytes(), CRM_EXPORT)
    return start(profile_import, actor, CRM_MAPPING, new_attributes=CRM_NEW_ATTRIBUTES, default_region="FR", **options)


def errors_of(profile_import, *, outcome: bool = False) -> list[tuple]:
    fields = ["line", "column", "problem", *(["rejected"] if outcome else [])]
    return list(profile_import.row_errors.order_by("line", "id").values_list(*fields))


def assert_counters_match_the_database(profile_import):
    profile_import.refresh_from_db()
    errors = profile_import.row_errors
    assert profile_import.rows_read == profile_import.rows_stored + profile_import.rows_rejected
    assert profile_import.rows_rejected == errors.filter(rejected=True).values("line").distinct().count()
    assert profile_import.rows_with_warnings == errors.filter(rejected=False).values("line").distinct().count()
    assert profile_import.profiles_created == Profile.objects.count()


# The format ---------------------------------------------------------------------------------------------


def test_the_format_of_a_bom_semicolon_export_is_detected(manny):
    profile_import = upload(manny, (FIXTURES / CRM_EXPORT).read_bytes())

    assert profile_import.delimiter == ";"
    assert profile_import.header == [
        "Email",
        "Téléphone",
        "Pays",
        "Prénom",
        "Points",
        "Adresse",
        "Newsletter",
        "Client ID",
    ]
    assert profile_import.status == ProfileImport.Status.UPLOADED
    assert profile_import.size_bytes == (FIXTURES / CRM_EXPORT).stat().st_size


def test_tabs_are_detected(manny):
    assert upload(manny, (FIXTURES / "helpdesk_tabs.tsv").read_bytes()).delimiter == "\t"


def test_blank_and_repeated_header_names_are_named_apart(manny):
    assert upload(manny, b"email,,email,x\n").header == ["email", "column 2", "email (2)", "x"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("email;prénom\nzoé@example.com;Zoé\n".encode("latin-1"), "not UTF-8"),
        (b"", "empty"),
        (b"\x00\x01\x02binary", "binary"),
    ],
)
def test_files_we_cannot_read_are_refused_at_upload(manny, content, problem):
    with pytest.raises(csv_files.FileFormatError, match=problem):
        upload(manny, content)
    assert not ProfileImport.objects.exists()


# A real export, end to end ------------------------------------------------------------------------------


@pytest.mark.both_databases
@pytest.mark.parametrize("chunk_rows", [2, 1000])
def test_a_crm_export_lands_row_by_row_with_a_report_of_the_rest(manny, chunk_rows):
    profile_import = crm_import(manny)

    assert services.import_run(import_id=profile_import.pk, chunk_rows=chunk_rows) == "done"

    profile_import.refresh_from_db()
    assert (profile_import.rows_read, profile_import.rows_stored, profile_import.rows_rejected) == (11, 9, 2)
    assert profile_import.rows_with_warnings == 3
    assert (profile_import.profiles_created, profile_import.profiles_updated) == (8, 1)
    assert profile_import.bytes_read == profile_import.size_bytes
    assert_counters_match_the_database(profile_import)

    errors = errors_of(profile_import, outcome=True)
    assert [(line, column, rejected) for line, column, _, rejected in errors] == [
        (6, "Email", False),
        (7, "Points", False),
        (8, "", True),
        (10, "", True),
        (11, "Téléphone", False),
    ]
    assert "no dot" in errors[0][2]
    assert "expected a number" in errors[1][2]
    assert errors[2][2] == "expected 8 columns, found 7"
    assert errors[3][2].startswith("no identity")
    assert "not a valid phone number" in errors[4][2]
    # Each stored without its bad field: a@b is found by its CRM id, Carl without points, Eve without a phone.
    broken = Profile.objects.get(identities__namespace="crm_id", identities__value="C-004")
    assert (broken.email, broken.attributes) == ("", {"first_name": "Broken", "points": 1})
    assert Profile.objects.get(email="carl@example.com").attributes == {"first_name": "Carl"}
    eve = Profile.objects.get(email="eve@example.com")
    assert (eve.phone, eve.attributes) == ("", {"first_name": "Eve", "points": 2})

    ann = Profile.objects.get(identities__namespace="crm_id", identities__value="C-001")
    # The later row of the file updated what the earlier one created: merged, not duplicated.
    assert ann.attributes == {"first_name": "Annie", "points": 15, "address": "1 High Street"}
    assert ann.phone == "+442079460958"
    bruno = Profile.objects.get(email="bruno@example.fr")
    assert bruno.phone == "+33612345678"
    assert bruno.attributes["address"] == "12 rue de la Paix\r\n75002 Paris"
    zoe = Profile.objects.get(email="zoë@exämple.com")
    assert zoe.phone == "+4930123456"
    assert Profile.objects.get(email="frank@example.com").phone == "+442079460959"
    consent = dict(Consent.objects.filter(channel="email").values_list("profile__email", "state"))
    assert consent == {
        "ann@example.com": "opted_in",
        "bruno@example.fr": "opted_out",
        "zoë@exämple.com": "opted_in",
        "gina@example.com": "opted_out",
    }
    assert set(ConsentEvent.objects.values_list("source", flat=True)) == {f"import {profile_import.pk}"}
    assert dict(AttributeDefinition.objects.values_list("name", "type")) == {
        "first_name": "string",
        "points": "number",
        "address": "string",
    }


def test_strict_mode_rejects_a_whole_row_for_one_bad_field(manny):
    profile_import = crm_import(manny, strict=True)

    assert services.import_run(import_id=profile_import.pk, chunk_rows=3) == "done"

    profile_import.refresh_from_db()
    assert (profile_import.rows_read, profile_import.rows_stored, profile_import.rows_rejected) == (11, 6, 5)
    assert (profile_import.rows_with_warnings, profile_import.profiles_created) == (0, 5)
    assert [(line, column) for line, column, _ in errors_of(profile_import)] == [
        (6, "Email"),
        (7, "Points"),
        (8, ""),
        (10, ""),
        (11, "Téléphone"),
    ]
    assert_counters_match_the_database(profile_import)


def test_a_rejected_row_leaves_nothing_behind(manny):
    profile_import = crm_import(manny, strict=True)

    services.import_run(import_id=profile_import.pk, chunk_rows=3)

    rejected = ["a@b", "carl@example.com", "dora@example.com", "eve@example.com"]
    assert not Identity.objects.filter(value__in=rejected).exists()
    assert not Identity.objects.filter(namespace="crm_id", value__in=["C-004", "C-005", "C-006"]).exists()
    assert not Profile.objects.filter(email__in=rejected).exists()


def test_the_profiles_join_the_uploaded_list(manny):
    profile_import = crm_import(manny, new_audience_name="CRM export")

    services.import_run(import_id=profile_import.pk, chunk_rows=4)

    audience = Audience.objects.get(name="CRM export")
    assert audience.kind == Audience.Kind.UPLOADED
    assert AudienceMember.objects.filter(audience=audience).count() == 8


def test_an_identity_of_another_profile_is_left_out_and_merges_nothing(manny):
    one, two = profiles_upsert([{"email": "x@example.com"}, {"identities": {"crm_id": "C-9"}}], source="test")
    profile_import = upload(manny, b"crm,email,city\nC-9,x@example.com,Lyon\nC-10,y@example.com,Nice\n")
    start(
        profile_import, manny, {"crm": "identity:crm_id", "email": "email"}, new_attributes={"city": ("city", "string")}
    )

    services.import_run(import_id=profile_import.pk)

    [(line, column, problem, rejected)] = errors_of(profile_import, outcome=True)
    assert (line, column, rejected) == (2, "crm", False)
    assert f"'C-9' belongs to profile {two.profile_id}" in problem and "nothing was merged" in problem
    assert Profile.objects.get(pk=one.profile_id).attributes == {"city": "Lyon"}  # matched on its email
    assert Profile.objects.get(pk=two.profile_id).attributes == {}
    assert set(Identity.objects.filter(profile_id=one.profile_id).values_list("namespace", flat=True)) == {"email"}
    assert Identity.objects.filter(profile_id=two.profile_id).count() == 1


def test_in_strict_mode_an_identity_of_another_profile_rejects_the_row(manny):
    _, two = profiles_upsert([{"email": "x@example.com"}, {"identities": {"crm_id": "C-9"}}], source="test")
    profile_import = upload(manny, b"crm,email\nC-9,x@example.com\n")
    start(profile_import, manny, {"crm": "identity:crm_id", "email": "email"}, strict=True)

    services.import_run(import_id=profile_import.pk)

    [(line, column, problem, rejected)] = errors_of(profile_import, outcome=True)
    assert (line, column, rejected) == (2, "crm", True)
    assert f"profile {two.profile_id}" in problem
    assert Identity.objects.count() == 2


def test_a_huge_field_rejects_its_row_not_the_import(manny):
    huge = "x" * (csv_files.MAX_FIELD + 10)
    content = (
        "email,notes\n"
        "a@example.com,short\n"
        f'b@example.com,"{huge}\nstill the same field, with a ""quote"" and, a comma\nand more"\n'
        "c@example.com,after the huge one\n"
        f"d@example.com,{huge}{huge}{huge}{huge}\n"
        "e@example.com,last\n"
    ).encode()
    profile_import = upload(manny, content)
    start(profile_import, manny, {"email": "email"}, new_attributes={"notes": ("notes", "string")})

    services.import_run(import_id=profile_import.pk, chunk_rows=2)

    assert [(line, problem) for line, _, problem in errors_of(profile_import)] == [
        (3, "a field is larger than 1 MB"),
        (7, "the row is larger than 4 MB"),
    ]
    assert set(Profile.objects.values_list("email", flat=True)) == {"a@example.com", "c@example.com", "e@example.com"}
    assert Profile.objects.get(email="c@example.com").attributes == {"notes": "after the huge one"}
    assert_counters_match_the_database(profile_import)


def test_a_line_that_is_not_utf8_rejects_that_row(manny):
    padding = "".join(f"p{n}@example.com\n" for n in range(5000)).encode()  # past the bytes checked at upload
    content = b"email\n" + padding + "late@exämple.com\n".encode("latin-1") + b"ok@example.com\n"
    profile_import = upload(manny, content)
    start(profile_import, manny, {"email": "email"})

    services.import_run(import_id=profile_import.pk)

    assert errors_of(profile_import) == [(5002, "", "the row is not UTF-8 text")]
    assert Profile.objects.count() == 5001


def test_empty_cells_change_nothing(manny):
    AttributeDefinition.objects.create(name="city", type="string")
    profiles_upsert([{"email": "ann@example.com", "attributes": {"city": "Lyon"}}], source="test")
    profile_import = upload(manny, b"email,city\nann@example.com,\n")
    start(profile_import, manny, {"email": "email", "city": "attribute:city"})

    services.import_run(import_id=profile_import.pk)

    assert Profile.objects.get().attributes == {"city": "Lyon"}


def test_a_mapping_without_an_identity_or_with_a_target_twice_is_refused(manny):
    profile_import = upload(manny, b"a,b\n1,2\n")
    with pytest.raises(csv_files.MappingError, match="at least one column"):
        start(profile_import, manny, {"a": "locale"})
    with pytest.raises(csv_files.MappingError, match="both fill"):
        start(profile_import, manny, {"a": "email", "b": "email"})
    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.UPLOADED


def test_declaring_a_new_attribute_with_an_existing_name_and_another_type_is_refused(manny):
    AttributeDefinition.objects.create(name="points", type="string")
    profile_import = upload(manny, b"email,points\na@example.com,3\n")

    with pytest.raises(AttributeDeclarationError, match="already declared as string"):
        start(profile_import, manny, {"email": "email"}, new_attributes={"points": ("points", "number")})


# Cancel, failure, resume ---------------------------------------------------------------------------------


def numbered_csv(rows: int) -> bytes:
    return ("email,crm\n" + "".join(f"p{n}@example.com,C{n}\n" for n in range(rows))).encode()


def test_the_first_chunk_is_small_so_progress_shows_at_once(manny):
    profile_import = upload(manny, numbered_csv(250))
    start(profile_import, manny, {"email": "email", "crm": "identity:crm_id"})
    progress = []

    status = services.import_run(
        import_id=profile_import.pk, chunk_rows=1000, on_chunk=lambda p: progress.append(p.rows_read)
    )

    assert status == "done"
    assert progress == [services.FIRST_CHUNK_ROWS, 250]
    assert Profile.objects.count() == 250


def test_the_cycle_collector_skips_the_objects_from_before_a_run_and_keeps_no_garbage_of_them():
    class Node:
        pass

    cycle = Node()
    cycle.itself = cycle
    gone = weakref.ref(cycle)
    del cycle

    with services.collecting_new_objects_only():
        assert gone() is None  # collected before the others were frozen, not kept with them
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0

    gc.freeze()  # frozen by someone else: left frozen (the count moves only as frozen objects are freed)
    try:
        with services.collecting_new_objects_only():
            pass
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_cancelling_between_chunks_leaves_exact_counts(manny):
    profile_import = upload(manny, numbered_csv(10))
    start(profile_import, manny, {"email": "email", "crm": "identity:crm_id"})

    def cancel_after_the_second_chunk(progress):
        if progress.rows_read == 6:
            services.import_cancel(profile_import=progress)

    status = services.import_run(import_id=profile_import.pk, chunk_rows=3, on_chunk=cancel_after_the_second_chunk)

    assert status == "cancelled"
    profile_import.refresh_from_db()
    assert (profile_import.rows_read, profile_import.rows_stored, profile_import.profiles_created) == (6, 6, 6)
    assert Profile.objects.count() == 6
    assert Identity.objects.count() == 12
    assert profile_import.finished_at is not None


def test_an_import_waiting_for_its_mapping_is_cancelled_at_once(manny):
    profile_import = upload(manny, numbered_csv(3))

    assert services.import_cancel(profile_import=profile_import)

    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.CANCELLED
    with pytest.raises(csv_files.MappingError, match="cancelled already"):
        start(profile_import, manny, {"email": "email"})
    assert not services.import_cancel(profile_import=profile_import)


def test_a_failure_says_what_was_stored(manny, monkeypatch):
    profile_import = upload(manny, numbered_csv(10))
    start(profile_import, manny, {"email": "email"})
    calls = []
    real_upsert = services.profiles_upsert

    def failing_upsert(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(services, "profiles_upsert", failing_upsert)

    assert services.import_run(import_id=profile_import.pk, chunk_rows=4) == "failed"

    profile_import.refresh_from_db()
    assert profile_import.error == "RuntimeError: database went away"
    assert (profile_import.rows_read, profile_import.rows_stored) == (8, 8)
    assert Profile.objects.count() == 8


class WorkerDied(BaseException):
    """Stands for a killed worker: nothing in the import catches it."""


def test_a_resumed_import_continues_where_it_stopped_without_duplicates(manny):
    content = numbered_csv(9).replace(b"p4@example.com", b'"p4@example.com"').replace(b"C5\n", b'"C\n5"\n')
    profile_import = upload(manny, content)
    start(profile_import, manny, {"email": "email", "crm": "identity:crm_id"})

    def die_after_the_second_chunk(progress):
        if progress.rows_read == 4:
            raise WorkerDied

    with pytest.raises(WorkerDied):
        services.import_run(import_id=profile_import.pk, chunk_rows=2, on_chunk=die_after_the_second_chunk)
    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.RUNNING
    assert profile_import.rows_read == 4

    assert services.import_run(import_id=profile_import.pk, chunk_rows=2) == "done"

    profile_import.refresh_from_db()
    assert (profile_import.rows_read, profile_import.rows_stored, profile_import.profiles_created) == (9, 9, 9)
    assert profile_import.profiles_updated == 0
    assert Profile.objects.count() == 9
    assert Identity.objects.filter(namespace="crm_id", value="C\n5").exists()


def test_line_numbers_stay_right_after_a_resume_past_multiline_fields(manny):
    content = b'email,note\na@example.com,"one\ntwo"\nb@example.com,x\nc@b,x\nd@example.com,"3\n4\n5"\ne@b,x\n'
    profile_import = upload(manny, content)
    start(profile_import, manny, {"email": "email"})

    def die_after_the_first_chunk(progress):
        raise WorkerDied

    with pytest.raises(WorkerDied):
        services.import_run(import_id=profile_import.pk, chunk_rows=2, on_chunk=die_after_the_first_chunk)
    services.import_run(import_id=profile_import.pk, chunk_rows=2)

    assert sorted({line for line, _, _ in errors_of(profile_import)}) == [5, 9]


def test_two_runs_at_once_store_each_chunk_once(manny):
    profile_import = upload(manny, numbered_csv(8))
    start(profile_import, manny, {"email": "email"})
    statuses = []

    def a_second_run_starts(progress):
        if not statuses:
            statuses.append(services.import_run(import_id=profile_import.pk, chunk_rows=2))

    final = services.import_run(import_id=profile_import.pk, chunk_rows=2, on_chunk=a_second_run_starts)

    assert statuses == ["done"]
    assert final == "done"
    profile_import.refresh_from_db()
    assert (profile_import.rows_read, profile_import.profiles_created, profile_import.profiles_updated) == (8, 8, 0)


def test_a_finished_import_does_not_run_again(manny):
    profile_import = upload(manny, numbered_csv(3))
    start(profile_import, manny, {"email": "email"})
    services.import_run(import_id=profile_import.pk)

    assert services.import_run(import_id=profile_import.pk) == "done"
    profile_import.refresh_from_db()
    assert profile_import.rows_read == 3


@pytest.mark.django_db(transaction=True)
def test_a_job_that_runs_out_of_time_queues_its_continuation(manny, redis, settings):
    settings.IMPORTS_CHUNK_ROWS = 2
    settings.IMPORTS_JOB_SECONDS = 0.000001
    profile_import = upload(manny, numbered_csv(7))
    start(profile_import, manny, {"email": "email"})

    assert services.import_run(import_id=profile_import.pk) == "running"
    run_burst_worker()

    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.DONE
    assert profile_import.rows_stored == 7


# The scheduler's part ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_stalled_import_is_dispatched_again_and_finishes(manny, redis, settings):
    settings.IMPORTS_CHUNK_ROWS = 2
    profile_import = upload(manny, numbered_csv(5))
    start(profile_import, manny, {"email": "email"})
    with pytest.raises(WorkerDied):
        services.import_run(import_id=profile_import.pk, chunk_rows=2, on_chunk=lambda progress: _die())
    now = timezone.now() + timedelta(seconds=61)

    assert services.imports_redispatch_stalled(now) == [profile_import.pk]
    assert services.imports_redispatch_stalled(now) == []  # claimed: one re-dispatch per stall
    run_burst_worker()

    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.DONE
    assert (profile_import.rows_read, profile_import.profiles_created) == (5, 5)


def _die():
    raise WorkerDied


def test_a_fresh_or_finished_import_is_not_dispatched_again(manny):
    running = start(upload(manny, numbered_csv(1)), manny, {"email": "email"})
    ProfileImport.objects.filter(pk=running.pk).update(status="running", heartbeat_at=timezone.now())
    done = start(upload(manny, numbered_csv(1)), manny, {"email": "email"})
    ProfileImport.objects.filter(pk=done.pk).update(status="done", heartbeat_at=timezone.now() - timedelta(hours=1))

    assert services.imports_redispatch_stalled(timezone.now() + timedelta(seconds=30)) == []


# Reading records -----------------------------------------------------------------------------------------


def test_records_report_their_first_line_and_the_offset_after_them():
    data = b'h1,h2\r\na,"multi\r\nline"\r\n\r\nb,c\r\n'
    reader = csv_files.RecordReader(io.BytesIO(data), delimiter=",")
    seen = []
    for record in reader:
        seen.append((record.line, record.values, reader.offset, reader.line))

    assert seen == [
        (1, ["h1", "h2"], 7, 1),
        (2, ["a", "multi\r\nline"], 24, 3),
        (5, ["b", "c"], len(data), 5),
    ]


def test_sampling_reads_at_most_the_rows_asked():
    data = b"n,flag\n" + b"".join(f"{n},yes\n".encode() for n in range(3000))
    fmt = csv_files.CsvFormat(",", ["n", "flag"])

    samples = csv_files.sample_columns(io.BytesIO(data), fmt, rows=1000)

    assert [len(values) for values in samples] == [1000, 1000]


# The management command ----------------------------------------------------------------------------------


def test_the_command_imports_a_file_and_prints_the_summary(manny, tmp_path):
    path = tmp_path / "crm.csv"
    path.write_bytes((FIXTURES / CRM_EXPORT).read_bytes())
    out = io.StringIO()

    with pytest.raises(CommandError):  # one bad --map stops it before anything is stored
        call_command("import_profiles", str(path), "--map", "Nope=email", "--user", "manny", stdout=out)
    call_command(
        "import_profiles",
        str(path),
        *("--map", "Email=email", "--map", "Téléphone=phone", "--map", "Pays=country"),
        *("--map", "Client ID=identity:crm_id", "--map", "Prénom=new:first_name", "--map", "Points=new:points:number"),
        *("--region", "FR", "--user", "manny", "--audience", "From the CLI", "--chunk-rows", "4"),
        stdout=out,
    )

    output = out.getvalue()
    assert "new attribute first_name of type string (inferred)" in output
    assert "Rows read 11, stored 9 (3 with a field left out), rejected 2; profiles created 8, updated 1." in output
    assert "line 8: expected 8 columns, found 7 (row rejected)" in output
    assert AttributeDefinition.objects.get(name="points").type == "number"
    assert AudienceMember.objects.filter(audience__name="From the CLI").count() == 8
    assert ProfileImport.objects.get().created_by == manny


@pytest.mark.django_db(transaction=True)
def test_the_command_can_leave_the_work_to_a_worker(manny, tmp_path, redis):
    # A transactional test starts from empty tables: the built-in namespaces come back as the migration made them.
    IdentityNamespace.objects.get_or_create(name="crm_id", defaults={"label": "CRM id", "builtin": True})
    path = tmp_path / "generated.csv"
    call_command("import_profiles", str(path), "--generate", "25", stdout=io.StringIO())
    out = io.StringIO()

    call_command(
        "import_profiles",
        str(path),
        *("--map", "email=email", "--map", "phone=phone", "--map", "crm_id=identity:crm_id"),
        *("--map", "points=new:points", "--map", "signed_up=new:signed_up", "--map", "newsletter=consent:email"),
        *("--region", "FR", "--user", "manny", "--async"),
        stdout=out,
    )
    assert "queued" in out.getvalue()
    run_burst_worker()

    profile_import = ProfileImport.objects.get()
    assert (profile_import.status, profile_import.rows_stored, profile_import.rows_rejected) == ("done", 25, 0)
    assert dict(AttributeDefinition.objects.values_list("name", "type")) == {"points": "number", "signed_up": "date"}
    assert Identity.objects.filter(namespace="phone").count() == 25


def test_cells_that_cannot_be_stored_are_left_out_of_their_row_with_the_column_named(manny):
    filler = b"".join(b"p%d@example.com,Someone with a long enough name,%d\n" % (i, i) for i in range(1500))
    content = (
        b"email,name,points\n" + filler + b"ann@example.com,Ann,3\n"  # the upload checks the first 64 KiB for NULs
        b"bob@example.com,B\x00b,4\n"
        b"cy@example.com,Cy,1e308\n"  # overflowed SQLite's integers as a whole number of 309 digits
        b"di@example.com,Di,5\n"
    )
    profile_import = start(
        upload(manny, content),
        manny,
        {"email": "email"},
        new_attributes={"name": ("name", "string"), "points": ("points", "number")},
    )

    assert services.import_run(import_id=profile_import.pk) == "done"

    assert Profile.objects.count() == 1504
    assert Profile.objects.get(email="bob@example.com").attributes == {"points": 4}  # without the name
    assert Profile.objects.get(email="cy@example.com").attributes == {"name": "Cy"}  # without the points
    [(line_bob, column_bob, problem_bob), (line_cy, column_cy, problem_cy)] = errors_of(profile_import)
    assert (line_bob, line_cy) == (1503, 1504)
    assert "name" in column_bob and "NUL" in problem_bob
    assert "points" in column_cy and "expected a number between" in problem_cy
    assert_counters_match_the_database(profile_import)


# The checking process ------------------------------------------------------------------------------------


def children() -> set[int]:
    """The pids of this process's children (Linux)."""
    pids = set()
    for task in Path("/proc/self/task").iterdir():
        pids |= {int(pid) for pid in (task / "children").read_text().split()}
    return pids


def test_rows_are_checked_in_a_child_process_that_is_gone_when_the_import_ends(manny):
    before = children()
    profile_import = upload(manny, numbered_csv(10))
    start(profile_import, manny, {"email": "email"})
    during = []

    def cancel_after_the_first_chunk(progress):
        during.append(children() - before)
        services.import_cancel(profile_import=progress)

    assert services.import_run(import_id=profile_import.pk, chunk_rows=3, on_chunk=cancel_after_the_first_chunk) == (
        "cancelled"
    )

    assert len(during[0]) == 1  # the checking child, a chunk ahead
    assert children() == before  # killed and reaped when the run stopped
    profile_import.refresh_from_db()
    assert profile_import.rows_read == 3


def test_a_failure_while_checking_fails_the_import_with_its_message(manny, monkeypatch):
    profile_import = upload(manny, numbered_csv(10))
    start(profile_import, manny, {"email": "email"})
    real_row = services.RowChecker.row

    def row(self, record):
        if record.line == 8:
            raise ValueError("the disk went away")
        return real_row(self, record)

    monkeypatch.setattr(services.RowChecker, "row", row)  # the child is forked with it

    assert services.import_run(import_id=profile_import.pk, chunk_rows=3) == "failed"

    profile_import.refresh_from_db()
    assert "checking the file failed: ValueError: the disk went away" in profile_import.error
    assert (profile_import.rows_read, profile_import.rows_stored) == (6, 6)  # the chunks before it, stored
    assert Profile.objects.count() == 6


@pytest.fixture
def slow_checking(monkeypatch):
    """Checking takes 1 ms a row, so the child is still at work when the first chunk is stored: it can hold a few
    chunks in its pipe, and would otherwise finish a small file before a test's signal reached it."""
    check = services.RowChecker.row

    def slowly(self, record):
        time.sleep(0.001)
        return check(self, record)

    monkeypatch.setattr(services.RowChecker, "row", slowly)


def test_a_checking_process_killed_from_outside_leaves_the_import_to_resume(manny, slow_checking):
    profile_import = upload(manny, numbered_csv(2000))
    start(profile_import, manny, {"email": "email"})
    before = children()

    def kill_the_child(progress):
        for pid in children() - before:
            os.kill(pid, signal.SIGKILL)

    status = services.import_run(import_id=profile_import.pk, chunk_rows=100, on_chunk=kill_the_child)

    assert status == "running"  # a crash: the scheduler's re-dispatch resumes it
    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.RUNNING and not profile_import.error
    stored = profile_import.rows_read
    assert services.import_run(import_id=profile_import.pk, chunk_rows=100) == "done"
    profile_import.refresh_from_db()
    assert (profile_import.rows_read, profile_import.profiles_created) == (2000, 2000)
    assert Profile.objects.count() == 2000 and stored < 2000
    assert children() == before


def test_the_checking_process_ignores_a_stop_signal_to_the_group(manny, slow_checking):
    profile_import = upload(manny, numbered_csv(600))
    start(profile_import, manny, {"email": "email"})
    before = children()
    signalled = []

    def terminate_the_child(progress):
        for pid in children() - before:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            os.kill(pid, signal.SIGTERM)
            signalled.append(state)

    assert services.import_run(import_id=profile_import.pk, chunk_rows=100, on_chunk=terminate_the_child) == "done"
    profile_import.refresh_from_db()
    assert profile_import.rows_stored == 600
    assert signalled and signalled[0] != "Z"  # the first signal reached the child at work, not a finished one
