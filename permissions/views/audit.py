"""The audit log: a filtered, paginated page and its CSV export."""

import json

from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone

from config.csv_download import csv_download
from permissions import selectors
from permissions.access import permission_required
from permissions.forms.audit import AuditFilterForm
from permissions.services.audit import audit_record

EVENTS_PER_PAGE = 50
CSV_COLUMNS = ["time", "actor", "action", "object_type", "object_id", "object", "before", "after", "ip_address"]


@permission_required("permissions.view_auditevent")
def audit_list(request):
    form, events = _filtered(request)
    return _render_list(request, form, events)


def _render_list(request, form, events, status=200):
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    for event in page.object_list:
        event.changes = _changes(event)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "events": page.object_list, "query": query.urlencode()}
    return render(request, "permissions/audit.html", context, status=status)


@permission_required("permissions.view_auditevent", "permissions.export_auditevent")
def audit_export(request):
    form, events = _filtered(request)
    if form.is_bound and not form.is_valid():
        # Nothing to export, and nothing to record: the page says which filter to fix.
        return _render_list(request, form, events, status=400)
    # The filters as the form read them (what else the query string holds is no filter, and may be unstorable).
    filters = {name: value for name, value in form.data.items() if name in form.fields and value}
    audit_record(actor=request.user, action="audit.exported", after={"filters": filters})
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_download(
        header=CSV_COLUMNS,
        rows=(_row(event) for event in events.iterator(chunk_size=1000)),
        filename=f"audit-log-{stamp}.csv",
    )


def _filtered(request):
    actions, object_types = selectors.audit_filter_choices()
    form = AuditFilterForm(request.GET or None, actions=actions, object_types=object_types)
    if not form.is_bound:
        return form, selectors.audit_events()
    if not form.is_valid():
        return form, selectors.audit_events().none()
    return form, selectors.audit_events(**form.cleaned_data)


def _changes(event) -> list[tuple[str, object, object]]:
    """[(name, before, after), ...] for the page: every name in either side, before None when only after has it."""
    before, after = event.before or {}, event.after or {}
    return [
        (name, _shown(before[name]) if name in before else None, _shown(after[name]) if name in after else None)
        for name in sorted(before.keys() | after.keys())
    ]


def _shown(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)


def _row(event) -> list[str]:
    values = [
        timezone.localtime(event.created_at).isoformat(),
        event.actor_label,
        event.action,
        event.object_type,
        event.object_id,
        event.object_repr,
        "" if event.before is None else json.dumps(event.before, sort_keys=True, ensure_ascii=False),
        "" if event.after is None else json.dumps(event.after, sort_keys=True, ensure_ascii=False),
        event.ip_address or "",
    ]
    return values
