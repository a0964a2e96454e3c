"""The home page, `/`: what is sending now with its progress, the next scheduled sends, the latest results, and
the system's health (workers per queue, queue lengths, failed jobs, the oldest due message, the scheduler's
heartbeat) with a warning banner when something that sends is not running. The campaigns app serves it because
its figures are the campaigns'; the health it reads is the project's (config.health)."""

from datetime import timedelta

from django.shortcuts import redirect, render
from django.urls import resolve, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from campaigns import schedules
from campaigns.models import Campaign, Run
from campaigns.selectors.reports import figures_of_runs, oldest_due_pending
from config.health import scheduler_stale_after, system_health
from permissions.access import permission_required

LIVE_SHOWN = 20
NEXT_SENDS_SHOWN = 10
RECENT_RESULTS_SHOWN = 10
LIVE_STATES = (Run.State.PLANNING, Run.State.SENDING, Run.State.PAUSED)
FINISHED_STATES = (Run.State.COMPLETE, Run.State.STOPPED, Run.State.FAILED)

# Where a user who may not read campaigns lands instead, in the order of the top bar: the first they may read.
# Each page's own permission check (its view's required_permissions) decides, so this list cannot drift from it.
OTHER_SECTIONS = (
    "audiences:audience_list",
    "audiences:profile_list",
    "audiences:import_list",
    "channels:configuration_list",
    "channels:suppression_list",
    "campaigns:policy_list",
    "campaigns:delivery_rules",
    "permissions:users",
    "permissions:roles",
    "permissions:api_key_list",
    "permissions:audit",
)


@require_GET
def home(request):
    """The dashboard for those who may read campaigns. Someone holding only other roles is sent to the first
    section they may read; someone with no role at all gets the forbidden page, which names the roles and who
    grants them."""
    if request.user.is_authenticated and not request.user.has_perm("campaigns.view_campaign"):
        section = first_readable_section(request.user)
        if section is not None:
            return redirect(section)
    return dashboard(request)


def first_readable_section(user) -> str | None:
    for name in OTHER_SECTIONS:
        url = reverse(name)
        if user.has_perms(resolve(url).func.required_permissions):
            return url
    return None


@permission_required("campaigns.view_campaign")
def dashboard(request):
    now = timezone.now()
    live = list(
        Run.objects.filter(state__in=LIVE_STATES)
        .select_related("campaign")
        .order_by("-created_at", "-pk")[: LIVE_SHOWN + 1]
    )
    next_sends = list(
        Campaign.objects.filter(
            status=Campaign.Status.ACTIVE,
            kind=Campaign.Kind.SCHEDULED,
            archived_at__isnull=True,
            next_run_at__isnull=False,
        ).order_by("next_run_at", "pk")[:NEXT_SENDS_SHOWN]
    )
    for campaign in next_sends:
        campaign.next_occurrence = schedules.next_run_occurrence(campaign)
    recent = list(
        Run.objects.filter(state__in=FINISHED_STATES, finished_at__isnull=False)
        .select_related("campaign")
        .order_by("-finished_at", "-pk")[:RECENT_RESULTS_SHOWN]
    )
    figures = figures_of_runs([run.pk for run in [*live[:LIVE_SHOWN], *recent]])
    for run in [*live[:LIVE_SHOWN], *recent]:
        run.counts = figures[run.pk].counts
    health = system_health(now=now)
    oldest_due = oldest_due_pending(now=now)
    context = {
        "live": live[:LIVE_SHOWN],
        "more_live": len(live) > LIVE_SHOWN,
        "next_sends": next_sends,
        "recent": recent,
        "health": health,
        "tick_age": _duration_words(health.scheduler_tick_age),
        "stale_after": _duration_words(scheduler_stale_after()),
        "oldest_due": oldest_due,
        "oldest_due_age": _duration_words(now - oldest_due if oldest_due else None),
    }
    return render(request, "campaigns/dashboard.html", context)


def _duration_words(delta: timedelta | None) -> str:
    """A delay in words, to the unit that matters: 45 s, 12 min, 3 h 5 min, 2 days 4 h."""
    if delta is None:
        return ""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"
