"""Campaign and run reports (campaigns.view_report: viewers included): what was sent and what came of it, live while a
run sends. Every figure comes from the counters the database keeps (campaigns.selectors.reports), so a report costs
the same for the first run as for the hundredth, and for a run of ten messages as for one of a million."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns import charts
from campaigns.models import Campaign, Run, Tally
from campaigns.selectors import reports
from permissions.access import permission_required

RUNS_SHOWN = 50
LIVE_POLL_SECONDS = 2


@permission_required("campaigns.view_campaign", "campaigns.view_report")
@require_GET
def campaign_report(request, pk):
    """Every run together, then each run (each occurrence of a recurring campaign) with its rates, and their trend."""
    campaign = get_object_or_404(Campaign, pk=pk)
    runs = list(campaign.runs.select_related("version").order_by("-created_at", "-pk")[:RUNS_SHOWN])
    by_run = reports.figures_of_runs([run.pk for run in runs])
    rows = [(run, by_run[run.pk]) for run in runs]
    context = {
        "campaign": campaign,
        "figures": reports.figures_of_campaign(campaign_id=campaign.pk),
        "rows": rows,
        "runs_total": campaign.runs.count(),
        "runs_shown": RUNS_SHOWN,
        "trend": _trend(rows) if len(rows) > 1 else None,
    }
    return render(request, "campaigns/report.html", context)


def _trend(rows):
    """The rates of each run, oldest first: one line a rate."""
    chronological = list(reversed(rows))
    labels = [_run_label(run) for run, _figures in chronological]
    wanted = ("Delivery rate", "Open rate", "Click-through rate", "Bounce rate")
    series = []
    for name in wanted:
        values = []
        for _run, figures in chronological:
            rate = next(rate for rate in figures.rates if rate.label == name)
            values.append(round(rate.percent or 0, 1))
        series.append(charts.Series(name, values))
    return charts.trend_chart(title="Rates of each run", labels=labels, series=series, percent=True)


def _run_label(run: Run) -> str:
    if run.kind == Run.Kind.SCHEDULED and run.occurrence[10:11] == "T":
        return f"{run.occurrence[:10]} {run.occurrence[11:16]}"
    return run.get_kind_display()


@permission_required("campaigns.view_campaign", "campaigns.view_report")
@require_GET
def run_report(request, pk, run_id):
    """One run: live progress while it sends; counts and rates; a timeline; recipient domains; the links clicked."""
    run = _run_of(pk, run_id, "campaign", "version")
    now = timezone.now()
    figures = reports.figures_of_runs([run.pk])[run.pk]
    timeline = reports.run_timeline(run_id=run.pk)
    domains = reports.run_domains(run_id=run.pk)
    links = reports.run_links(run=run)
    context = {
        "campaign": run.campaign,
        "run": run,
        "run_label": _run_label(run),
        "figures": figures,
        "timeline": timeline,
        "timeline_rows": list(zip(timeline.buckets, *timeline.series.values(), strict=True)),
        "timeline_chart": charts.timeline_chart(
            title="Sends and engagement over time",
            buckets=[timezone.localtime(bucket) for bucket in timeline.buckets],
            series=[charts.Series(name, values) for name, values in timeline.series.items()],
        ),
        "domains": domains,
        "domains_chart": _domains_chart(domains),
        "other_domains": Tally.OTHER_DOMAINS,
        "links": links,
        **_live_context(run, figures, now),
    }
    return render(request, "campaigns/run_report.html", context)


def _domains_chart(domains):
    if not domains:
        return None
    rows = [
        ("Other domains" if row.domain == Tally.OTHER_DOMAINS else row.domain, [row.messages, row.opened, row.clicked])
        for row in domains
    ]
    return charts.bar_chart(
        title="Recipient domains", rows=rows, series_names=["Messages", "Opened (people)", "Clicked (people)"]
    )


@permission_required("campaigns.view_campaign", "campaigns.view_report")
@require_GET
def run_report_live(request, pk, run_id):
    """The live panel of a run's report, polled while the run plans or sends."""
    run = _run_of(pk, run_id, "campaign")
    figures = reports.figures_of_runs([run.pk])[run.pk]
    context = {"campaign": run.campaign, "run": run, "figures": figures, **_live_context(run, figures, timezone.now())}
    return render(request, "campaigns/_run_live.html", context)


def _run_of(campaign_id: int, run_id: int, *related: str) -> Run:
    """The run, if it is one of the campaign's; found by its own id alone, so an id no row can have (on SQLite, one
    past 64 bits) is a 404 however the other is written."""
    run = get_object_or_404(Run.objects.select_related(*related), pk=run_id)
    if run.campaign_id != campaign_id:
        raise Http404("No such run of this campaign.")
    return run


def _live_context(run: Run, figures: reports.Figures, now) -> dict:
    counts = figures.counts
    active = run.state in Run.ACTIVE_STATES
    return {
        "counts": counts,
        "live": reports.run_live(run=run, counts=counts, now=now) if active else None,
        "polling": active,
        "poll_seconds": LIVE_POLL_SECONDS,
    }
