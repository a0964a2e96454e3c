"""The import pages: upload, map, follow the progress, cancel, download the error report."""

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences.models import (
    AttributeDefinition,
    Audience,
    AudienceMember,
    IdentityNamespace,
    Profile,
    ProfileImport,
)
from audiences.services import imports as services
from tests.conftest import run_burst_worker

FIXTURES = Path(__file__).parent / "fixtures"
CRM_EXPORT = FIXTURES / "crm_export_semicolon_bom.csv"


@pytest.fixture(autouse=True)
def storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    settings.IMPORTS_CHUNK_ROWS = 3


def upload(client, content: bytes, name="contacts.csv"):
    return client.post(reverse("audiences:import_create"), {"file": SimpleUploadedFile(name, content)})


def mapping_data(form_context, **overrides) -> dict:
    """What the browser posts: every field of the mapping form at its initial value, then the changes."""
    form = form_context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.django_db(transaction=True)
def test_a_manager_uploads_maps_and_follows_an_import_to_its_end(client, personas, redis):
    # A transactional test starts from empty tables: the built-in namespaces come back as the migration made them.
    IdentityNamespace.objects.get_or_create(name="crm_id", defaults={"label": "CRM id", "builtin": True})
    client.force_login(personas["manny"])
    assert client.get(reverse("audiences:import_create")).status_code == 200

    response = upload(client, CRM_EXPORT.read_bytes(), "crm.csv")

    profile_import = ProfileImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("audiences:import_map", args=[profile_import.pk])

    page = client.get(response["Location"])
    assert page.status_code == 200
    form = page.context["form"]
    header = profile_import.header
    points, first_name, email = header.index("Points"), header.index("Prénom"), header.index("Email")
    # "lots" in one row makes the guess text; the user knows better and declares a number.
    assert form[f"new_type_{points}"].value() == "string"
    assert form[f"new_name_{first_name}"].value() == "pr_nom"
    assert form[f"target_{email}"].value() == "email"
    assert form[f"target_{header.index('Pays')}"].value() == "country"
    assert "ann@example.com" in page.content.decode()

    data = mapping_data(
        page.context,
        **{
            f"target_{header.index('Téléphone')}": "phone",
            f"target_{first_name}": "new",
            f"new_name_{first_name}": "first_name",
            f"target_{points}": "new",
            f"new_type_{points}": "number",
            f"target_{header.index('Newsletter')}": "consent:email",
            f"target_{header.index('Client ID')}": "identity:crm_id",
            "default_region": "fr",
            "audience_choice": "new",
            "new_audience_name": "Fair visitors",
        },
    )
    response = client.post(reverse("audiences:import_map", args=[profile_import.pk]), data)
    assert response.status_code == 302, response.context["form"].errors
    detail_url = reverse("audiences:import_detail", args=[profile_import.pk])
    assert response["Location"] == detail_url

    queued = client.get(detail_url)
    assert 'hx-trigger="every 2s"' in queued.content.decode()
    assert "Cancel the import" in queued.content.decode()

    run_burst_worker()

    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.DONE
    assert (profile_import.rows_stored, profile_import.rows_with_warnings, profile_import.rows_rejected) == (9, 3, 2)
    assert dict(AttributeDefinition.objects.values_list("name", "type")) == {"first_name": "string", "points": "number"}
    assert AudienceMember.objects.filter(audience=Audience.objects.get(name="Fair visitors")).count() == 8
    assert Profile.objects.count() == 8

    progress = client.get(reverse("audiences:import_progress", args=[profile_import.pk]))
    content = progress.content.decode()
    assert "hx-trigger" not in content  # finished: the panel stops polling
    assert "100%" in content
    detail = client.get(detail_url).content.decode()
    assert "expected 8 columns, found 7" in detail

    report = client.get(reverse("audiences:import_errors", args=[profile_import.pk]))
    assert report["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == ["line", "column", "value", "problem", "outcome"]
    assert [(row[0], row[1], row[2], row[4]) for row in rows[1:]] == [
        ("6", "Email", "a@b", "field left out"),
        ("7", "Points", "lots", "field left out"),
        ("8", "", "", "row rejected"),
        ("10", "", "", "row rejected"),
        ("11", "Téléphone", "+33 1 23", "field left out"),
    ]


def test_a_file_in_another_encoding_is_refused_with_a_clear_error(client, personas):
    client.force_login(personas["manny"])

    response = upload(client, "email;prénom\nzoé@example.com;Zoé\n".encode("cp1252"))

    assert response.status_code == 200
    assert "not UTF-8 text" in response.content.decode()
    assert not ProfileImport.objects.exists()


@pytest.mark.parametrize("name", ["😀", "%%%"])
def test_a_file_is_stored_under_a_name_of_ours_and_shown_under_its_own(client, personas, name):
    """An upload's name is the user's: with no letter or digit, no path could keep it (a 400 before the fix)."""
    client.force_login(personas["manny"])

    response = upload(client, b"email\nann@example.com\n", name=name)

    profile_import = ProfileImport.objects.get()
    assert response.status_code == 302
    assert profile_import.original_name == name
    assert Path(profile_import.file.name).name.startswith("import-")


def test_a_mapping_without_an_identity_is_refused_on_the_page(client, personas):
    client.force_login(personas["manny"])
    upload(client, b"name,city\nAnn,Lyon\n")
    profile_import = ProfileImport.objects.get()
    page = client.get(reverse("audiences:import_map", args=[profile_import.pk]))

    response = client.post(reverse("audiences:import_map", args=[profile_import.pk]), mapping_data(page.context))

    assert response.status_code == 200
    assert "map at least one column to an identity" in response.content.decode()
    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.UPLOADED


def test_a_new_attribute_needs_a_valid_name(client, personas):
    client.force_login(personas["manny"])
    upload(client, b"email,Shoe size\na@example.com,42\n")
    profile_import = ProfileImport.objects.get()
    page = client.get(reverse("audiences:import_map", args=[profile_import.pk]))
    assert (page.context["form"]["new_name_1"].value(), page.context["form"]["new_type_1"].value()) == (
        "shoe_size",
        "number",
    )

    response = client.post(
        reverse("audiences:import_map", args=[profile_import.pk]),
        mapping_data(page.context, target_1="new", new_name_1="Shoe Size"),
    )

    assert response.status_code == 200
    assert "lower-case letters" in response.content.decode()
    assert not AttributeDefinition.objects.exists()


def test_cancel_asks_a_running_import_to_stop(client, personas):
    client.force_login(personas["ada"])
    profile_import = services.import_create(
        actor=personas["manny"], upload=SimpleUploadedFile("a.csv", b"email\na@example.com\n")
    )
    services.import_start(profile_import=profile_import, actor=personas["manny"], mapping={"email": "email"})

    response = client.post(reverse("audiences:import_cancel", args=[profile_import.pk]))

    assert response.status_code == 302
    profile_import.refresh_from_db()
    assert profile_import.cancel_requested
    assert services.import_run(import_id=profile_import.pk) == "cancelled"
    assert not Profile.objects.exists()
    assert "Cancelled" in client.get(reverse("audiences:import_detail", args=[profile_import.pk])).content.decode()


def test_the_map_page_of_a_started_import_leads_to_its_progress(client, personas):
    client.force_login(personas["manny"])
    profile_import = services.import_create(
        actor=personas["manny"], upload=SimpleUploadedFile("a.csv", b"email\na@example.com\n")
    )
    services.import_start(profile_import=profile_import, actor=personas["manny"], mapping={"email": "email"})

    response = client.get(reverse("audiences:import_map", args=[profile_import.pk]))

    assert response["Location"] == reverse("audiences:import_detail", args=[profile_import.pk])


@pytest.mark.parametrize(
    ("persona", "status"), [("ada", 200), ("manny", 200), ("april", 403), ("vera", 403), ("otto", 403)]
)
def test_managers_and_administrators_import_others_may_not(client, personas, persona, status):
    client.force_login(personas[persona])

    assert client.get(reverse("audiences:import_create")).status_code == status
    response = upload(client, b"email\na@example.com\n")
    assert response.status_code == (302 if status == 200 else 403)
    assert ProfileImport.objects.exists() == (status == 200)


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get(reverse("audiences:import_create"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
