"""The deliveries of a run as a streamed CSV (campaigns.exports), for holders of campaigns.export_delivery, audited."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from campaigns.exports import DELIVERY_COLUMNS, run_delivery_rows
from campaigns.models import Run
from config.csv_download import csv_download
from permissions.access import permission_required
from permissions.services.audit import audit_record


@permission_required("campaigns.view_delivery", "campaigns.export_delivery")
@require_GET
def run_deliveries_export(request, pk, run_id):
    run = get_object_or_404(Run, pk=run_id)  # by its own id alone: see campaigns.views.reports._run_of
    if run.campaign_id != pk:
        raise Http404("No such run of this campaign.")
    audit_record(actor=request.user, action="deliveries.exported", obj=run, after={"campaign": pk})
    return csv_download(
        header=DELIVERY_COLUMNS,
        rows=run_delivery_rows(run=run),
        filename=f"campaign-{pk}-run-{run.pk}-deliveries.csv",
    )
