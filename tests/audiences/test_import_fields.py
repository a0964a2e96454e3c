"""What an import decides, field by field: a bad field is left out of its row and reported, consent is never
lost and never given to someone else, a shared phone never merges two people, lists split on the chosen
separator, and the rows to fix come back as a CSV that imports again. The pipeline's mechanics (chunks, resume,
cancel) are in test_imports.py."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from audiences.models import AttributeDefinition, Consent, ConsentEvent, Identity, Profile, ProfileImport
from audiences.services import imports as services
from audiences.services.profiles import UpsertOutcome, profiles_upsert
from tests.conftest import run_burst_worker


@pytest.fixture(autouse=True)
def storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }


@pytest.fixture
def manny(personas):
    return personas["manny"]


def run_import(actor, content: str, mapping: dict, **options) -> ProfileImport:
    upload = SimpleUploadedFile("contacts.csv", content.encode(), content_type="text/csv")
    profile_import = services.import_create(actor=actor, upload=upload)
    services.import_start(profile_import=profile_import, actor=actor, mapping=mapping, run_async=False, **options)
    assert services.import_run(import_id=profile_import.pk) == "done"
    profile_import.refresh_from_db()
    return profile_import


def problems(profile_import) -> list[tuple]:
    rows = profile_import.row_errors.order_by("line", "id")
    return list(rows.values_list("line", "column", "value", "rejected"))


def declare(**types):
    for name, type_ in types.items():
        AttributeDefinition.objects.create(name=name, type=type_)


# A bad field is left out, the row stored ----------------------------------------------------------------


@pytest.mark.both_databases
def test_a_bad_phone_number_or_date_leaves_that_field_out_and_the_person_is_imported(manny):
    declare(points="number", joined="date")
    content = (
        "email,phone,points,joined,newsletter\n"
        "ann@example.com,+33 1 23,12,2024-03-01,no\n"
        "bob@example.com,06 12 34 56 78,lots,2024-03-02,yes\n"
        "cy@example.com,06 12 34 56 79,3,31/31/2024,no\n"
    )
    mapping = {
        "email": "email",
        "phone": "phone",
        "points": "attribute:points",
        "joined": "attribute:joined",
        "newsletter": "consent:email",
    }

    profile_import = run_import(manny, content, mapping, default_region="FR")

    assert (profile_import.rows_stored, profile_import.rows_with_warnings, profile_import.rows_rejected) == (3, 3, 0)
    assert profile_import.profiles_created == 3
    assert problems(profile_import) == [
        (2, "phone", "+33 1 23", False),
        (3, "points", "lots", False),
        (4, "joined", "31/31/2024", False),
    ]
    ann, bob, cy = (Profile.objects.get(email=f"{name}@example.com") for name in ("ann", "bob", "cy"))
    assert (ann.phone, ann.attributes) == ("", {"points": 12, "joined": "2024-03-01"})
    assert (bob.phone, bob.attributes) == ("+33612345678", {"joined": "2024-03-02"})
    assert (cy.phone, cy.attributes) == ("+33612345679", {"points": 3})
    # The opt-outs of rows with a bad field are recorded, with the import as their source.
    consent = dict(Consent.objects.values_list("profile__email", "state"))
    assert consent == {"ann@example.com": "opted_out", "bob@example.com": "opted_in", "cy@example.com": "opted_out"}
    assert ConsentEvent.objects.filter(source=f"import {profile_import.pk}").count() == 3


def test_an_opt_out_is_recorded_when_the_email_is_bad_but_another_identity_finds_the_person(manny):
    profiles_upsert([{"email": "dan@example.com", "identities": {"crm_id": "C-7"}}], source="signup form")
    content = "email,crm,newsletter\ndan@example,C-7,unsubscribed\n"

    profile_import = run_import(
        manny, content, {"email": "email", "crm": "identity:crm_id", "newsletter": "consent:email"}
    )

    assert problems(profile_import) == [(2, "email", "dan@example", False)]
    dan = Profile.objects.get(email="dan@example.com")
    assert dan.consents.get(channel="email").state == "opted_out"
    assert profile_import.profiles_updated == 1


def test_a_row_left_without_any_identity_is_rejected_with_every_problem(manny):
    content = "email,newsletter\nnot-an-address,no\n"

    profile_import = run_import(manny, content, {"email": "email", "newsletter": "consent:email"})

    assert (profile_import.rows_stored, profile_import.rows_rejected) == (0, 1)
    assert [(line, column, rejected) for line, column, _, rejected in problems(profile_import)] == [
        (2, "email", True),
        (2, "", True),
    ]
    assert not Profile.objects.exists() and not Consent.objects.exists()


# People are never merged --------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_two_people_sharing_a_phone_stay_two_profiles_with_their_own_data(manny):
    declare(first_name="string")
    [ann] = profiles_upsert(
        [{"email": "ann@example.com", "phone": "+33612345678", "attributes": {"first_name": "Ann"}}], source="test"
    )
    content = "email,phone,first_name,newsletter\nben@example.com,06 12 34 56 78,Ben,no\n"
    mapping = {"email": "email", "phone": "phone", "first_name": "attribute:first_name", "newsletter": "consent:email"}

    profile_import = run_import(manny, content, mapping, default_region="FR")

    [(line, column, value, rejected)] = problems(profile_import)
    assert (line, column, value, rejected) == (2, "phone", "06 12 34 56 78", False)
    assert f"belongs to profile {ann.profile_id}" in profile_import.row_errors.get().problem
    ann_profile = Profile.objects.get(pk=ann.profile_id)
    ben = Profile.objects.get(email="ben@example.com")
    assert ben.pk != ann_profile.pk
    assert (ann_profile.email, ann_profile.phone, ann_profile.attributes) == (
        "ann@example.com",
        "+33612345678",
        {"first_name": "Ann"},
    )
    assert (ben.phone, ben.attributes) == ("", {"first_name": "Ben"})
    assert set(Identity.objects.filter(profile=ann_profile).values_list("value", flat=True)) == {
        "ann@example.com",
        "+33612345678",
    }
    # Ben's opt-out is his: Ann's consent is untouched.
    assert list(Consent.objects.values_list("profile__email", "state")) == [("ben@example.com", "opted_out")]


def test_rows_are_matched_on_the_chosen_identity(manny):
    [old] = profiles_upsert([{"email": "old@example.com", "identities": {"crm_id": "C-1"}}], source="test")
    content = "crm,email\nC-1,new@example.com\n"

    profile_import = run_import(manny, content, {"crm": "identity:crm_id", "email": "email"}, match_on="crm_id")

    assert (profile_import.profiles_updated, problems(profile_import)) == (1, [])
    profile = Profile.objects.get(pk=old.profile_id)
    assert profile.email == "new@example.com"  # the new address is the primary one; the old one stays an identity
    assert set(profile.identities.values_list("value", flat=True)) == {"C-1", "old@example.com", "new@example.com"}


def test_matching_on_an_identity_no_column_fills_is_refused(manny):
    upload = SimpleUploadedFile("c.csv", b"email\na@example.com\n", content_type="text/csv")
    profile_import = services.import_create(actor=manny, upload=upload)

    with pytest.raises(services.csv_files.MappingError, match="no column fills it"):
        services.import_start(profile_import=profile_import, actor=manny, mapping={"email": "email"}, match_on="phone")
    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.UPLOADED


def test_the_profile_api_rule_keeps_a_shared_phone_from_merging_two_people(db):
    [ann] = profiles_upsert([{"email": "ann@example.com", "phone": "+33612345678"}], source="test")

    [ben, phone_only] = profiles_upsert(
        [{"email": "ben@example.com", "phone": "+33612345678"}, {"phone": "+33612345678", "locale": "fr"}],
        source="api key test",
    )

    assert ben.status == UpsertOutcome.REJECTED
    [(field, problem)] = ben.errors
    assert field == "phone" and f"belongs to profile {ann.profile_id}" in problem
    assert not Profile.objects.filter(email="ben@example.com").exists()
    # A phone alone still finds its profile.
    assert (phone_only.status, phone_only.profile_id) == (UpsertOutcome.UPDATED, ann.profile_id)
    assert Profile.objects.get(pk=ann.profile_id).locale == "fr"


# Lists --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("separator", "cell", "tags"),
    [(";", "vip;beta; churn-risk", ["vip", "beta", "churn-risk"]), ("|", "vip|beta", ["vip", "beta"])],
)
def test_list_cells_split_on_the_chosen_separator(manny, separator, cell, tags):
    declare(tags="string_list")
    content = f'email,tags\na@example.com,"{cell}"\n'

    run_import(manny, content, {"email": "email", "tags": "attribute:tags"}, list_separator=separator)

    assert Profile.objects.get().attributes == {"tags": tags}


def test_a_separator_outside_the_choices_is_refused(manny):
    upload = SimpleUploadedFile("c.csv", b"email\na@example.com\n", content_type="text/csv")
    profile_import = services.import_create(actor=manny, upload=upload)

    with pytest.raises(services.csv_files.MappingError, match="list separator"):
        services.import_start(
            profile_import=profile_import, actor=manny, mapping={"email": "email"}, list_separator="/"
        )


def test_a_huge_list_item_is_left_out_and_named(manny):
    declare(tags="string_list")
    content = f"email,tags\na@example.com,vip|{'x' * 70_000}\n"

    profile_import = run_import(manny, content, {"email": "email", "tags": "attribute:tags"})

    [error] = profile_import.row_errors.all()
    assert (error.column, error.rejected) == ("tags", False)
    assert "item 2" in error.problem and "is longer than" in error.problem
    assert Profile.objects.get().attributes == {}


# The rows to fix ----------------------------------------------------------------------------------------


def test_the_rows_to_fix_come_back_as_a_csv_that_imports_again_once_fixed(client, manny):
    declare(points="number")
    content = "email;phone;points\nann@example.com;+33 6 12 34 56 78;3\nbob@example.com;+33 1 23;lots\nbroken@;;2\n"
    mapping = {"email": "email", "phone": "phone", "points": "attribute:points"}
    profile_import = run_import(manny, content, mapping)
    client.force_login(manny)

    response = client.get(reverse("audiences:import_error_rows", args=[profile_import.pk]))

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["email", "phone", "points", "import line", "import problems"]
    assert [row[:4] for row in rows[1:]] == [
        ["bob@example.com", "+33 1 23", "lots", "3"],  # a phone is kept as written, not made "inert"
        ["broken@", "", "2", "4"],
    ]
    assert "phone:" in rows[1][4] and "points:" in rows[1][4] and "(field left out)" in rows[1][4]
    assert "(row rejected)" in rows[2][4]

    fixed = [["email", "phone", "points", "import line", "import problems"]]
    fixed += [["bob@example.com", "+33 6 12 34 56 79", "7", *rows[1][3:]], ["bea@example.com", "", "2", *rows[2][3:]]]
    out = io.StringIO()
    csv.writer(out).writerows(fixed)
    again = run_import(manny, out.getvalue(), mapping)

    assert (again.rows_stored, again.rows_with_warnings, again.rows_rejected) == (2, 0, 0)
    bob = Profile.objects.get(email="bob@example.com")
    assert (bob.phone, bob.attributes) == ("+33612345679", {"points": 7})
    assert Profile.objects.get(email="bea@example.com").attributes == {"points": 2}


def test_the_problem_list_names_the_value_and_the_outcome(client, manny):
    profile_import = run_import(manny, "email,tz\nann@example.com,Mars/Olympus\n", {"email": "email", "tz": "timezone"})
    client.force_login(manny)

    response = client.get(reverse("audiences:import_errors", args=[profile_import.pk]))

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][:3] == ["2", "tz", "Mars/Olympus"] and rows[1][4] == "field left out"
    page = client.get(reverse("audiences:import_detail", args=[profile_import.pk])).content.decode()
    assert "Mars/Olympus" in page and "field left out" in page and "rows-to-fix.csv" in page


# Workers keep no query log ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_import_worker_keeps_no_query_log_with_debug_on(manny, redis, settings):
    settings.DEBUG = True
    upload = SimpleUploadedFile("c.csv", b"email\n" + b"".join(b"p%d@example.com\n" % n for n in range(50)))
    profile_import = services.import_create(actor=manny, upload=upload)
    services.import_start(profile_import=profile_import, actor=manny, mapping={"email": "email"}, run_async=True)
    connection.queries_log.clear()

    run_burst_worker()

    assert ProfileImport.objects.get().status == "done"
    assert len(connection.queries_log) == 0


@pytest.mark.parametrize("email", ["ben@@example", ""])
def test_a_row_whose_email_is_bad_or_missing_never_takes_the_phone_owners_profile(manny, email):
    declare(city="string")
    [ann] = profiles_upsert(
        [{"email": "ann@example.com", "phone": "+33612345678", "consent": {"email": "opted_out"}}], source="test"
    )
    content = f"email,phone,city,newsletter\n{email},06 12 34 56 78,Lyon,yes\n"
    mapping = {"email": "email", "phone": "phone", "city": "attribute:city", "newsletter": "consent:email"}

    profile_import = run_import(manny, content, mapping, default_region="FR")

    assert (profile_import.rows_stored, profile_import.rows_rejected) == (0, 1)
    problem = profile_import.row_errors.filter(column="phone").get()
    assert f"belongs to profile {ann.profile_id}" in problem.problem and problem.rejected
    ann_profile = Profile.objects.get(pk=ann.profile_id)
    assert ann_profile.attributes == {}
    assert ann_profile.consents.get(channel="email").state == "opted_out"
    assert Profile.objects.count() == 1


def test_a_nul_in_a_list_item_or_in_a_long_named_attribute_leaves_out_that_cell_only(manny):
    long_name = "a_" + "very_" * 10 + "long_name"
    declare(tags="string_list", **{long_name: "string"})
    filler = "".join(f"p{n}@example.com,,,\n" for n in range(5000))  # the upload checks the first 64 KiB for NULs
    content = f"email,tags,long,newsletter\n{filler}ann@example.com,a|b\x00c,ok,no\nbob@example.com,x,bad\x00,no\n"
    mapping = {
        "email": "email",
        "tags": "attribute:tags",
        "long": f"attribute:{long_name}",
        "newsletter": "consent:email",
    }

    profile_import = run_import(manny, content, mapping)

    assert (profile_import.rows_stored, profile_import.rows_rejected) == (5002, 0)
    assert [(line, column, rejected) for line, column, _, rejected in problems(profile_import)] == [
        (5002, "tags", False),
        (5003, "long", False),
    ]
    assert Profile.objects.get(email="ann@example.com").attributes == {long_name: "ok"}
    assert Profile.objects.get(email="bob@example.com").attributes == {"tags": ["x"]}
    assert Consent.objects.filter(state="opted_out").count() == 2
