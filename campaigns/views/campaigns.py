"""Campaign pages: list, create, detail, edit, review and the lifecycle actions, and the sandboxed preview.
Views check permissions, parse input and call campaigns.services.lifecycle or campaigns.services.approval;
nothing more."""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csp import csp_override
from django.views.decorators.http import require_GET, require_POST

from audiences.models import Profile
from audiences.selectors.audiences import audience_size
from campaigns import api_examples, contracts, previews, schedules, selectors
from campaigns.forms.campaigns import (
    CampaignEditForm,
    CampaignForm,
    ContractFormSet,
    PreviewProfileForm,
    ReviewDecisionForm,
    ScheduleForm,
)
from campaigns.models import Campaign, CampaignVersion, ReviewDecision, Run
from campaigns.selectors.reports import figures_of_campaign
from campaigns.services import approval, lifecycle
from campaigns.views.proofs import proof_context
from permissions.access import permission_required

RUNS_SHOWN = 20
DECISIONS_SHOWN = 20
VERSIONS_SHOWN = 20
RESUMED = "Resumed: sending picks up where it stopped, with only what was never sent."


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
                **form.schedule_fields(),
                tags=data["tags"],
                description=data["description"],
                create_profiles=data["create_profiles"],
            )
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, _created_message(campaign))
            return redirect(campaign)
    return render(request, "campaigns/create.html", {"form": form})


@permission_required("campaigns.add_campaign")
@require_GET
def schedule_preview(request):
    """The create form's schedule card: the next occurrences of the schedule as typed, unsaved (an htmx partial,
    refreshed as the inputs change), or what to fix first."""
    form = ScheduleForm(request.GET)
    if not form.is_valid():
        problems = [
            f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        ]
        return render(request, "campaigns/_occurrences.html", {"problems": problems})
    campaign = form.unsaved_campaign()
    if campaign.kind != Campaign.Kind.SCHEDULED:
        return render(request, "campaigns/_occurrences.html", {"triggered": True})
    return render(request, "campaigns/_occurrences.html", _schedule_context(campaign, check=True))


def _schedule_context(campaign, *, check: bool = False) -> dict:
    """The schedule in words, and while it is not active, its next occurrences and whether they come more often
    than hourly; with `check`, what stops the schedule from being saved now."""
    now = timezone.now()
    problems = list(schedules.schedule_errors(campaign, now=now).values()) if check else []
    show_upcoming = not problems and campaign.status != Campaign.Status.ACTIVE
    return {
        "schedule_campaign": campaign,
        "schedule_words": schedules.describe(campaign),
        "problems": problems,
        "occurrences": schedules.upcoming_occurrences(campaign, after=now) if show_upcoming else None,
        "more_often_than_hourly": schedules.more_often_than_hourly(campaign),
        "zone": campaign.timezone if schedules.zone_of(campaign) else "UTC",
    }


def _created_message(campaign) -> str:
    if campaign.kind == Campaign.Kind.API_TRIGGERED:
        next_step = "Declare the context its calls carry, then activate it to accept calls."
    else:
        next_step = "Review it, then activate it."
    if approval.approval_required(campaign):
        return "Campaign created as a draft. It needs an approval: submit it for review when it is ready."
    return f"Campaign created as a draft. {next_step}"


@permission_required("campaigns.view_campaign")
def campaign_detail(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("channel_configuration", "audience", "owner"), pk=pk)
    return _render_detail(request, campaign)


@permission_required("campaigns.change_campaign")
@require_POST
def campaign_contract(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("channel_configuration", "audience", "owner"), pk=pk)
    formset = ContractFormSet(request.POST, prefix="contract")
    if formset.is_valid():
        try:
            saved = lifecycle.campaign_update_contract(
                campaign=campaign, actor=request.user, contract=formset.contract()
            )
        except ValidationError as error:
            formset.add_contract_errors(error)
        else:
            count = len(saved.context_contract)
            messages.success(request, f"Context contract saved: {count} field{'s' if count != 1 else ''}.")
            return redirect(f"{campaign.get_absolute_url()}#contract")
    if campaign.kind != Campaign.Kind.API_TRIGGERED or campaign.status in Campaign.FINISHED_STATUSES:
        # The page shows no editor to carry the errors.
        for message in formset.row_errors():
            messages.error(request, message)
        return redirect(campaign)
    return _render_detail(request, campaign, contract_formset=formset)


def _render_detail(request, campaign, *, contract_formset=None):
    """The campaign page; a contract editor with errors comes back with them."""
    version = _latest_version(campaign)
    policies = approval.matching_policies(campaign)
    decisions = ReviewDecision.objects.filter(version__campaign=campaign).select_related("version", "decided_by")
    context = {
        "campaign": campaign,
        "version": version,
        "policies": policies,
        "approvers": approval.campaign_approvers(campaign, policies) if policies else [],
        "decisions": decisions[:DECISIONS_SHOWN],
        "last_decision": version.decisions.select_related("decided_by").first(),
        "actions": _allowed_actions(request.user, campaign, version, policies),
        **_status_context(campaign),
        **_preview_context(request, version),
        **_schedule_context(campaign, check=campaign.status == Campaign.Status.DRAFT),
        "delivery_rules": selectors.delivery_rules_applying(campaign=campaign),
        **proof_context(request, campaign),
        "pending_changes": _pending_changes(campaign, version),
    }
    if campaign.kind == Campaign.Kind.API_TRIGGERED:
        context |= _trigger_context(request, campaign, contract_formset)
    return render(request, "campaigns/detail.html", context)


def _pending_changes(campaign, version) -> list[str]:
    """What a live campaign's newer version changes (the labels of version_diff), while it is not live."""
    if not campaign.live_version_id or campaign.live_version_id == version.pk:
        return []
    return approval.changed_labels(old=campaign.live_version, new=version)


def _trigger_context(request, campaign, contract_formset) -> dict:
    """The contract and its editor, the endpoint with a ready call, and the recent calls and their messages."""
    may_edit = request.user.has_perm("campaigns.change_campaign") and campaign.status not in Campaign.FINISHED_STATUSES
    if may_edit and contract_formset is None:
        contract_formset = ContractFormSet(contract=campaign.context_contract, prefix="contract")
    endpoint = request.build_absolute_uri(api_examples.trigger_path(campaign))
    body = api_examples.trigger_body(campaign, request_id=api_examples.example_request_id())
    return {
        "contract": [
            (field, "" if field.example is None else json.dumps(field.example, ensure_ascii=False))
            for field in contracts.contract_of(campaign)
        ],
        "contract_formset": contract_formset if may_edit else None,
        "trigger_endpoint": endpoint,
        "trigger_curl": api_examples.trigger_curl(endpoint=endpoint, body=body),
        "trigger_requests": selectors.recent_trigger_requests(campaign_id=campaign.pk),
        "trigger_counts": selectors.trigger_delivery_counts(campaign_id=campaign.pk),
    }


def _preview_context(request, version, *, may_pick: bool = True) -> dict:
    """The content preview, for the profile chosen in the picker (for those who may read profiles) or the sample
    one: its rendering, and the picker's search results or errors."""
    picker = None
    profile = None
    candidates = []
    if may_pick and request.user.has_perm("audiences.view_profile"):
        picker = PreviewProfileForm(request.GET or None)
        if picker.is_bound and picker.is_valid():
            chosen, query = picker.cleaned_data["preview_profile"], picker.cleaned_data["preview_q"]
            if chosen is not None:
                profile = Profile.objects.filter(pk=chosen).first()
                if profile is None:
                    picker.add_error("preview_q", f"There is no profile #{chosen}: the preview uses a sample profile.")
            elif query:
                candidates = selectors.preview_profiles(query=query)
                if len(candidates) == 1:
                    profile, candidates = candidates[0], []
                elif not candidates:
                    picker.add_error("preview_q", "No profile matches: the preview uses a sample profile.")
    preview = previews.version_preview(version=version, profile=profile) if version else None
    return {"preview": preview, "preview_picker": picker, "preview_candidates": candidates}


@permission_required("campaigns.change_campaign")
def campaign_edit(request, pk):
    """Every setting and the content, edited into a draft version: a live campaign goes on sending its live
    version until this one is activated."""
    campaign = get_object_or_404(Campaign.objects.select_related("channel_configuration", "audience"), pk=pk)
    version = _latest_version(campaign)
    form = CampaignEditForm(request.POST or None, campaign=campaign, version=version)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            edited = lifecycle.campaign_update(
                campaign=campaign,
                actor=request.user,
                content=lifecycle.Content(data["subject"], data["html_body"], data["text_body"]),
                settings=form.settings(),
                expected_version=data["version_token"],
            )
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, _saved_message(campaign, version, edited))
            return redirect(campaign)
    context = {
        "campaign": campaign,
        "version": version,
        "form": form,
        "locked": lifecycle.edit_refusal(campaign, version),
        "new_version": lifecycle.edit_makes_new_version(campaign, version),
        "needs_approval": approval.approval_required(campaign),
    }
    return render(request, "campaigns/edit.html", context)


def _saved_message(campaign, previous, edited) -> str:
    saved = f"Saved as version {edited.number}" if edited.pk != previous.pk else f"Version {edited.number} saved"
    if campaign.status in Campaign.LIVE_STATUSES:
        live = campaign.live_version.number if campaign.live_version_id else previous.number
        return f"{saved}. Version {live} goes on sending until version {edited.number} is " + (
            "submitted, approved and activated." if approval.approval_required(campaign) else "activated."
        )
    return f"{saved}."


@permission_required("campaigns.view_campaign")
@require_GET
def version_history(request, pk):
    """Every version: who made and changed it, its review, and what changed from the version before."""
    campaign = get_object_or_404(Campaign, pk=pk)
    versions = list(
        campaign.versions.select_related("created_by", "edited_by", "submitted_by", "audience", "channel_configuration")
        .prefetch_related("decisions__decided_by")
        .order_by("-number")[: VERSIONS_SHOWN + 1]
    )
    rows = [
        (version, approval.version_diff(old=older, new=version) if older else None)
        for version, older in zip(versions[:VERSIONS_SHOWN], [*versions[1:], None], strict=False)
    ]
    context = {"campaign": campaign, "rows": rows, "total": campaign.versions.count(), "shown": VERSIONS_SHOWN}
    return render(request, "campaigns/versions.html", context)


@permission_required("campaigns.add_campaign")
@require_POST
def campaign_duplicate(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    duplicate = lifecycle.campaign_duplicate(campaign=campaign, actor=request.user)
    messages.success(request, f"Duplicated as a new draft from version {campaign.latest_version().number}.")
    return redirect(duplicate)


@permission_required("campaigns.delete_campaign")
def campaign_delete(request, pk):
    """A confirmation page, and the deletion (drafts that never went live only)."""
    campaign = get_object_or_404(Campaign, pk=pk)
    if request.method == "POST":
        try:
            lifecycle.campaign_delete(campaign=campaign, actor=request.user)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
            return redirect(campaign)
        messages.success(request, f"Deleted the draft “{campaign.name}”.")
        return redirect("campaigns:list")
    refusal = None if lifecycle.deletable(campaign) else lifecycle.DELETE_REFUSAL
    return render(request, "campaigns/delete.html", {"campaign": campaign, "refusal": refusal})


@permission_required("campaigns.change_campaign")
@require_POST
def campaign_archive(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    may_stop = request.user.has_perm("campaigns.activate_campaign")
    try:
        archived = lifecycle.campaign_archive(campaign=campaign, actor=request.user, may_stop=may_stop)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        stopped = campaign.status in Campaign.LIVE_STATUSES and archived.status == Campaign.Status.STOPPED
        messages.success(request, f"Archived: it {'is stopped and ' if stopped else ''}leaves the campaign list.")
    return redirect(campaign)


@permission_required("campaigns.change_campaign")
@require_POST
def campaign_unarchive(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    return _act(request, campaign, lifecycle.campaign_unarchive, "Unarchived: it is back in the campaign list.")


@permission_required("campaigns.submit_campaign")
@require_POST
def campaign_submit(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    message = "Submitted for review: the approvers are notified, and the content is locked until they decide."
    return _act(request, campaign, approval.campaign_submit_for_review, message)


@permission_required("campaigns.approve_campaign")
def campaign_review(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("channel_configuration", "audience"), pk=pk)
    return _render_review(request, campaign)


@permission_required("campaigns.approve_campaign", "campaigns.activate_campaign")
@require_POST
def campaign_approve(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("channel_configuration", "audience"), pk=pk)
    form = ReviewDecisionForm(request.POST)
    status_before, live_before = campaign.status, campaign.live_version_id
    if form.is_valid():
        try:
            lifecycle.campaign_approve_and_activate(
                campaign=campaign,
                actor=request.user,
                review_key=form.cleaned_data["review_key"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            campaign.refresh_from_db()
            messages.success(request, f"Approved. {_activated_message(campaign, status_before, live_before)}")
            return redirect(campaign)
    return _render_review(request, campaign, form)


@permission_required("campaigns.approve_campaign")
@require_POST
def campaign_request_changes(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("channel_configuration", "audience"), pk=pk)
    form = ReviewDecisionForm(request.POST)
    if form.is_valid():
        try:
            approval.campaign_request_changes(
                campaign=campaign,
                actor=request.user,
                review_key=form.cleaned_data["review_key"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, "Changes requested: the version is a draft again, and its submitter is told.")
            return redirect(campaign)
    return _render_review(request, campaign, form)


def _render_review(request, campaign, form=None):
    """The read-only review: content, audience and its size now, schedule, sender, and the diff against the
    last approved version. A form with errors comes back with them."""
    version = _latest_version(campaign)
    # The reviewer sees what goes live: the version's settings, not (for a live campaign) the live version's.
    campaign = campaign.with_settings_of(version)
    in_review = version.review_state == CampaignVersion.ReviewState.IN_REVIEW
    policies = approval.matching_policies(campaign)
    form = form or ReviewDecisionForm(initial={"review_key": version.review_key()})
    refusal = approval.decision_refusal(
        campaign=campaign, version=version, user=request.user, approving=True, policies=policies
    )
    previous = approval.last_approved_version(version)
    context = {
        "campaign": campaign,
        "version": version,
        "in_review": in_review,
        "form": form,
        "policies": policies,
        "approvers": approval.campaign_approvers(campaign, policies),
        "may_approve": in_review and refusal is None and request.user.has_perm("campaigns.activate_campaign"),
        "approve_refusal": refusal,
        "may_request_changes": in_review
        and approval.decision_refusal(
            campaign=campaign, version=version, user=request.user, approving=False, policies=policies
        )
        is None,
        "audience_size": audience_size(campaign.audience) if campaign.audience else None,
        "sender": _sender_settings(campaign.channel_configuration),
        "previous": previous,
        "diff": approval.version_diff(old=previous, new=version) if previous else None,
        "decisions": version.decisions.select_related("decided_by"),
        **_preview_context(request, version, may_pick=False),
        **_schedule_context(campaign, check=campaign.status == Campaign.Status.DRAFT),
        "delivery_rules": selectors.delivery_rules_applying(campaign=campaign),
    }
    return render(request, "campaigns/review.html", context)


# What a reviewer checks of the configuration: who the message comes from and how fast it leaves. The stored
# settings never hold secrets, but only these are shown.
_SENDER_SETTINGS = {
    "from_email": "From address",
    "from_name": "From name",
    "reply_to": "Reply-to",
    "rate_per_second": "Messages per second",
}


def _sender_settings(configuration) -> list[tuple[str, object]]:
    return [
        (label, configuration.settings[name])
        for name, label in _SENDER_SETTINGS.items()
        if configuration.settings.get(name) not in (None, "")
    ]


def _latest_version(campaign) -> CampaignVersion:
    return campaign.versions.select_related("submitted_by", "created_by", "edited_by").order_by("-number").first()


@permission_required("campaigns.view_campaign")
def campaign_status(request, pk):
    campaign = get_object_or_404(Campaign, pk=pk)
    return render(request, "campaigns/_status.html", {"campaign": campaign, **_status_context(campaign)})


@permission_required("campaigns.activate_campaign")
@require_POST
def campaign_activate(request, pk):
    """A draft goes live, or a live campaign switches to its newer version."""
    campaign = get_object_or_404(Campaign, pk=pk)
    status_before, live_before = campaign.status, campaign.live_version_id
    try:
        activated = lifecycle.campaign_activate(campaign=campaign, actor=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, _activated_message(activated, status_before, live_before))
    return redirect(campaign)


@permission_required("campaigns.activate_campaign")
@require_POST
def campaign_resume(request, pk):
    """A paused campaign sends again, with its live version."""
    campaign = get_object_or_404(Campaign, pk=pk)
    return _act(request, campaign, lifecycle.campaign_resume, RESUMED)


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


def _activated_message(campaign, status_before: str, live_before: int | None) -> str:
    """What activation did to `campaign` (as it is now), from its status and live version before it."""
    if live_before is not None and campaign.live_version_id != live_before:
        words = f"Version {campaign.live_version.number} is live"
        if status_before == Campaign.Status.PAUSED:
            words += " and sending resumed"
        if campaign.kind == Campaign.Kind.API_TRIGGERED:
            words += ": trigger calls send it from now on"
        elif campaign.next_run_at is not None:
            words += ": the next occurrence sends it (see Schedule)"
        else:
            words += ", but the campaign has no occurrence left to send it"
        return f"{words}. Runs under way finish with the version they began."
    if status_before == Campaign.Status.PAUSED:
        return RESUMED
    if campaign.kind == Campaign.Kind.API_TRIGGERED:
        return "Activated: the campaign now answers trigger API calls."
    if campaign.schedule == Campaign.Schedule.ON_ACTIVATION:
        return "Activated: the scheduler starts the first run within seconds."
    return "Activated: the scheduler starts the first run at the next run time shown under Schedule."


def _allowed_actions(user, campaign, version, policies) -> set[str]:
    """The buttons to show. The actions check the state again; this only hides what would fail."""
    actions = set()
    archived = campaign.archived_at is not None
    editable = campaign.status not in Campaign.FINISHED_STATUSES and not archived
    state = version.review_state
    in_review = state == CampaignVersion.ReviewState.IN_REVIEW
    if user.has_perm("campaigns.add_campaign"):
        actions.add("duplicate")
    if user.has_perm("campaigns.delete_campaign") and lifecycle.deletable(campaign):
        actions.add("delete")
    if user.has_perm("campaigns.change_campaign") and campaign.status != Campaign.Status.DRAFT:
        live = campaign.status in Campaign.LIVE_STATUSES
        if archived:
            actions.add("unarchive")
        elif not live or user.has_perm("campaigns.activate_campaign"):
            actions.add("archive")
    if editable and not in_review and user.has_perm("campaigns.change_campaign"):
        actions.add("edit")
    if (
        editable
        and state == CampaignVersion.ReviewState.DRAFT
        and campaign.live_version_id != version.pk
        and user.has_perm("campaigns.submit_campaign")
    ):
        actions.add("submit")
    if in_review and user.has_perm("campaigns.approve_campaign"):
        actions.add("review")
    if not user.has_perm("campaigns.activate_campaign"):
        return actions
    publishable = not in_review and (
        not policies or state == CampaignVersion.ReviewState.APPROVED or campaign.live_version_id == version.pk
    )
    match campaign.status:
        case Campaign.Status.DRAFT if publishable:
            actions.add("activate")
        case Campaign.Status.ACTIVE:
            actions |= {"pause", "stop"}
        case Campaign.Status.PAUSED:
            actions |= {"resume", "stop"}
    if campaign.status in Campaign.LIVE_STATUSES and publishable and campaign.live_version_id != version.pk:
        actions.add("publish")
    return actions


def _status_context(campaign) -> dict:
    runs = list(campaign.runs.select_related("version")[:RUNS_SHOWN])
    figures = figures_of_campaign(campaign_id=campaign.pk)  # the counters, read once for the panel
    # Fast while a run plans or sends; slow while an active campaign waits for its next occurrence.
    if campaign.runs.filter(state__in=Run.ACTIVE_STATES).exists():
        poll_seconds = 2
    elif campaign.status == Campaign.Status.ACTIVE:
        poll_seconds = 30
    else:
        poll_seconds = None
    return {
        "status_label": selectors.campaign_status_label(campaign=campaign),
        "counts": figures.counts,
        "runs": runs,
        "exclusions": figures.excluded_reasons,
        "polling": poll_seconds is not None,
        "poll_seconds": poll_seconds,
    }


# Marketer HTML is untrusted. It is served on its own, never inline in our pages, under a policy that makes it
# a sandboxed document of a unique origin (no scripts, even when opened directly) which may keep its own
# inline styles and load images, and which only our pages may frame.
_PREVIEW_POLICY = {
    "default-src": ["'none'"],
    "style-src": ["'unsafe-inline'", "https:"],
    "img-src": ["https:", "data:"],
    "font-src": ["https:", "data:"],
    "frame-ancestors": ["'self'"],
    "sandbox": [""],
}


@permission_required("campaigns.view_campaign")
@require_GET
@xframe_options_sameorigin
@csp_override(_PREVIEW_POLICY)
def version_preview(request, pk, number):
    """The HTML body rendered as the page's preview says: for `?profile=<id>` (for those who may read
    profiles) or the sample profile, with the contract's example context."""
    version = get_object_or_404(CampaignVersion.objects.select_related("campaign"), campaign_id=pk, number=number)
    profile = None
    if "profile" in request.GET:
        if not request.user.has_perm("audiences.view_profile"):
            raise PermissionDenied
        profile_id = request.GET["profile"]
        if not profile_id.isascii() or not profile_id.isdigit() or len(profile_id) > 18:
            raise Http404
        profile = get_object_or_404(Profile, pk=int(profile_id))
    preview = previews.version_preview(version=version, profile=profile)
    if preview.error:
        body = format_html('<p style="font-family: sans-serif; color: #a4281b">{}</p>', preview.error_text)
    else:
        body = preview.rendered.html
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
