"""The suppression list: search, CSV export, manual add and remove. Administrators only, every change audited."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from channels import selectors
from channels.forms.suppression import SuppressionAddForm, SuppressionFilterForm
from channels.models import Suppression
from channels.services import suppression as services
from config.csv_download import csv_download
from config.forms import add_service_errors
from permissions.access import permission_required
from permissions.services.audit import audit_record

PER_PAGE = 50
CSV_COLUMNS = ["channel", "address", "reason", "added_at"]


@permission_required("channels.view_suppression")
def suppression_list(request):
    form, rows = _filtered(request)
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "suppressions": page.object_list, "query": query.urlencode()}
    return render(request, "channels/suppression_list.html", context)


@permission_required("channels.view_suppression", "channels.export_suppression")
def suppression_export(request):
    form, rows = _filtered(request)
    audit_record(actor=request.user, action="suppression.exported", after={"filters": form.cleaned_data or {}})
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_download(
        header=CSV_COLUMNS,
        rows=(
            [row.channel, row.address, row.reason, row.created_at.isoformat()] for row in rows.iterator(chunk_size=2000)
        ),
        filename=f"suppression-list-{stamp}.csv",
    )


@permission_required("channels.add_suppression")
def suppression_add(request):
    form = SuppressionAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = services.suppression_add(
                actor=request.user, channel=form.cleaned_data["channel"], address=form.cleaned_data["address"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request, f"{added.address} is suppressed: no {added.get_channel_display()} message goes to it."
            )
            return redirect("channels:suppression_list")
    return render(request, "channels/suppression_add.html", {"form": form})


@permission_required("channels.delete_suppression")
@require_POST
def suppression_remove(request, pk):
    row = get_object_or_404(Suppression, pk=pk)
    services.suppression_remove(actor=request.user, suppression=row)
    messages.success(request, f"{row.address} is off the suppression list and may be messaged again.")
    return redirect("channels:suppression_list")


def _filtered(request):
    form = SuppressionFilterForm(request.GET or None)
    if not form.is_bound:
        form.cleaned_data = {}
        return form, selectors.suppressions_search()
    if not form.is_valid():
        return form, Suppression.objects.none()
    data = form.cleaned_data
    return form, selectors.suppressions_search(query=data["q"], channel=data["channel"], reason=data["reason"])
