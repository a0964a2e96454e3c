"""Campaign pages. Views check permissions, parse input and call campaigns.lifecycle; nothing more."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns import lifecycle, selectors
from campaigns.forms import CampaignForm
from campaigns.models import Campaign, Delivery, Run
from permissions.access import permission_required

RUNS_SHOWN = 20


@permission_required("campaigns.view_campaign")
def campaign_list(request):
    campaigns = Campaign.objects.select_related("channel_configuration", "audience", "owner")
    page = Paginator(campaigns, 50).get_page(request.GET.get("page"))
    return render(request, "campaigns/list.html", {"page": page, "campaigns": page.object_list})


@permission_required("campaigns.add_campaign")
def campaign_create(request):
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = lifecycle.campaign_create(
                actor=request.user,
                name=data["name"],
                channel_configuration=data["channel_configuration"],
                audience=data["audience"],
                content=lifecycle.Content(data["subject"], data["html_body"], data["text_body"]),
                category=data["category"],
                schedule=data["schedule"],
                start_at=data["start_at"],
                cron=data["cron"],
                timezone_name=data["timezone"],
                end_at=data["end_at"],
                tags=data["tags"],
            )
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, "Campaign created as a draft. Review it, then activate it.")
            return redirect(campaign)
    return render(request, "campaigns/create.html", {"form": form})


@permission_required("campaigns.view_campaign")
def campaign_detail(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("channel_configuration", "audience", "owner"), pk=pk)
    context = {
        "campaign": campaign,
        "version": campaign.latest_version(),
        "actions": _allowed_actions(request.user, campaign),
        **_status_context(campaign),
    }
    return render(request, "campaigns/detail.html", context)


@permission_required("campaigns.view_campaign")
def campaign_status(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    return render(request, "campaigns/_status.html", {"campaign": campaign, **_status_context(campaign)})


@permission_required("campaigns.activate_campaign")
@require_POST
def campaign_activate(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    resuming = campaign.status == Campaign.Status.PAUSED
    return _act(request, campaign, lifecycle.campaign_activate, _activated_message(campaign, resuming))


@permission_required("campaigns.activate_campaign")
@require_POST
def campaign_pause(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    message = "Paused: running sends stop claiming new messages. Resume to send only what was never sent."
    return _act(request, campaign, lifecycle.campaign_pause, message)


@permission_required("campaigns.activate_campaign")
@require_POST
def campaign_stop(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    message = "Stopped: nothing more is sent within seconds. A stopped campaign cannot be resumed."
    return _act(request, campaign, lifecycle.campaign_stop, message)


def _act(request, campaign, action, success_message):
    try:
        action(campaign=campaign, actor=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, success_message)
    return redirect(campaign)


def _activated_message(campaign, resuming: bool) -> str:
    if resuming:
        return "Resumed: sending picks up where it stopped, with only what was never sent."
    if campaign.kind == Campaign.Kind.API_TRIGGERED:
        return "Activated: the campaign now answers trigger API calls."
    if campaign.schedule == Campaign.Schedule.ON_ACTIVATION:
        return "Activated: the scheduler starts the first run within seconds."
    return "Activated: the scheduler starts the first run at the next run time shown under Schedule."


def _allowed_actions(user, campaign) -> set[str]:
    """The buttons to show. The actions check the state again; this only hides what would fail."""
    if not user.has_perm("campaigns.activate_campaign"):
        return set()
    match campaign.status:
        case Campaign.Status.DRAFT:
            return {"activate"}
        case Campaign.Status.ACTIVE:
            return {"pause", "stop"}
        case Campaign.Status.PAUSED:
            return {"resume", "stop"}
    return set()


def _status_context(campaign) -> dict:
    runs = list(campaign.runs.all()[:RUNS_SHOWN])
    exclusions = [
        (_reason_label(reason), count) for reason, count in selectors.exclusion_counts(campaign_id=campaign.pk).items()
    ]
    # Fast while a run plans or sends; slow while an active campaign waits for its next occurrence.
    if campaign.runs.filter(state__in=Run.ACTIVE_STATES).exists():
        poll_seconds = 2
    elif campaign.status == Campaign.Status.ACTIVE:
        poll_seconds = 30
    else:
        poll_seconds = None
    return {
        "counts": selectors.delivery_counts(campaign_id=campaign.pk),
        "runs": runs,
        "exclusions": exclusions,
        "polling": poll_seconds is not None,
        "poll_seconds": poll_seconds,
    }


def _reason_label(reason: str) -> str:
    try:
        return Delivery.Reason(reason).label
    except ValueError:
        return reason or "Unspecified"
