"""Import pages: upload a CSV, map its columns, follow the import's progress, cancel it, download its error report.

Views check permissions, read the form and call audiences.services.imports; the file is read by
audiences.csv_files.
"""

from django.contrib import messages
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from audiences import csv_files
from audiences.forms.imports import MappingForm, UploadForm
from audiences.models import ProfileImport
from audiences.selectors import imports as selectors
from audiences.services import imports as services
from audiences.services.attributes import AttributeDeclarationError
from config.csv_download import csv_download
from permissions.access import permission_required

IMPORTS_PER_PAGE = 50
ERRORS_SHOWN = 50
POLL_SECONDS = 2


@permission_required("audiences.view_profileimport")
@require_GET
def import_list(request):
    page = Paginator(ProfileImport.objects.select_related("created_by", "audience"), IMPORTS_PER_PAGE)
    page = page.get_page(request.GET.get("page"))
    return render(request, "audiences/import_list.html", {"page": page, "imports": page.object_list})


@permission_required("audiences.import_profiles")
def import_create(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            profile_import = services.import_create(actor=request.user, upload=form.cleaned_data["file"])
        except csv_files.FileFormatError as error:
            form.add_error("file", str(error))
        else:
            return redirect("audiences:import_map", pk=profile_import.pk)
    return render(request, "audiences/import_new.html", {"form": form})


@permission_required("audiences.import_profiles")
def import_map(request, pk):
    profile_import = get_object_or_404(ProfileImport, pk=pk)
    if profile_import.status != ProfileImport.Status.UPLOADED:
        return redirect("audiences:import_detail", pk=pk)
    with default_storage.open(profile_import.file.name, "rb") as binary:
        fmt = csv_files.CsvFormat(delimiter=profile_import.delimiter, header=profile_import.header)
        samples = csv_files.sample_columns(binary, fmt)
    form = MappingForm(request.POST or None, header=profile_import.header, samples=samples)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        choice = data["audience_choice"]
        try:
            services.import_start(
                profile_import=profile_import,
                actor=request.user,
                mapping=data["mapping"],
                new_attributes=data["new_attributes"],
                default_region=data["default_region"],
                match_on=data["match_on"],
                list_separator=data["list_separator"],
                strict=data["strict"],
                audience=data["audience"] if choice == "existing" else None,
                new_audience_name=data["new_audience_name"].strip() if choice == "new" else "",
            )
        except (csv_files.MappingError, AttributeDeclarationError) as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Import queued: it runs in the background. This page follows its progress.")
            return redirect("audiences:import_detail", pk=pk)
    context = {"profile_import": profile_import, "form": form, "delimiter": _delimiter_name(profile_import.delimiter)}
    return render(request, "audiences/import_map.html", context)


@permission_required("audiences.view_profileimport")
@require_GET
def import_detail(request, pk):
    profile_import = get_object_or_404(ProfileImport.objects.select_related("created_by", "audience"), pk=pk)
    errors = list(profile_import.row_errors.defer("row")[: ERRORS_SHOWN + 1])
    context = {
        **_progress_context(profile_import),
        "errors": errors[:ERRORS_SHOWN],
        "more_errors": len(errors) > ERRORS_SHOWN,
        "delimiter": _delimiter_name(profile_import.delimiter),
    }
    return render(request, "audiences/import_detail.html", context)


@permission_required("audiences.view_profileimport")
@require_GET
def import_progress(request, pk):
    profile_import = get_object_or_404(ProfileImport, pk=pk)
    return render(request, "audiences/_import_progress.html", _progress_context(profile_import))


@permission_required("audiences.import_profiles")
@require_POST
def import_cancel(request, pk):
    profile_import = get_object_or_404(ProfileImport, pk=pk)
    if services.import_cancel(profile_import=profile_import):
        messages.info(request, "Cancelling: the import stops after the chunk it is storing. What it stored stays.")
    else:
        messages.info(request, "This import had finished already.")
    return redirect("audiences:import_detail", pk=pk)


@permission_required("audiences.view_profileimport")
@require_GET
def import_errors(request, pk):
    """Every problem as CSV (line, column, value, problem, outcome), streamed in line order."""
    profile_import = get_object_or_404(ProfileImport, pk=pk)
    rows = (
        (line, column, value, problem, "row rejected" if rejected else "field left out")
        for line, column, value, problem, rejected in profile_import.row_errors.order_by("line", "id")
        .values_list("line", "column", "value", "problem", "rejected")
        .iterator(chunk_size=2000)
    )
    return csv_download(
        header=["line", "column", "value", "problem", "outcome"], rows=rows, filename=f"import-{pk}-errors.csv"
    )


@permission_required("audiences.view_profileimport")
@require_GET
def import_error_rows(request, pk):
    """The rows with a problem as they were in the file, with their problems in two last columns: a CSV to fix
    and import again. Streamed in line order."""
    profile_import = get_object_or_404(ProfileImport, pk=pk)
    header = profile_import.header
    return csv_download(
        header=[*header, "import line", "import problems"],
        rows=selectors.import_rows_to_fix(profile_import, width=len(header)),
        filename=f"import-{pk}-rows-to-fix.csv",
    )


def _progress_context(profile_import: ProfileImport) -> dict:
    size = profile_import.size_bytes or 1
    finished = profile_import.status in services.FINISHED
    percent = (
        100 if profile_import.status == ProfileImport.Status.DONE else min(99, profile_import.bytes_read * 100 // size)
    )
    return {
        "profile_import": profile_import,
        "percent": percent,
        "polling": profile_import.status in (ProfileImport.Status.QUEUED, ProfileImport.Status.RUNNING),
        "poll_seconds": POLL_SECONDS,
        "finished": finished,
    }


def _delimiter_name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(delimiter, repr(delimiter))
