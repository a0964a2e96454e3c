"""Proof sends from the campaign page: the proof card's form posts here (with htmx the card is replaced by the
answer, each recipient's result in it; without it the campaign page comes back with them as messages). Views check
permissions, read the form and call campaigns.services.proofs; nothing more."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from campaigns.forms.proofs import ProofForm
from campaigns.models import Campaign
from campaigns.services import proofs
from channels.models import ChannelConfiguration
from permissions.access import permission_required


def proof_context(request, campaign, *, form=None, results=None, version=None) -> dict:
    """The proof card's context (no card for those who may not send proofs). Besides the sample profile, the card
    offers the profile the page's preview is rendered for (`preview.profile`). A proof leaves through the channel
    configuration of its version: the card names that of `version` (the one just proofed; None: the latest)."""
    if not request.user.has_perm("campaigns.send_proof"):
        return {"proof_card": False}
    if version is None:
        version = campaign.versions.select_related("channel_configuration").order_by("-number").first()
    if version is None:
        return {"proof_card": False}
    used = set(campaign.versions.values_list("channel_configuration_id", flat=True))
    # The card's form is offered when a version may be proofed; the service refuses the others, naming the version.
    supported = ChannelConfiguration.objects.filter(pk__in=used, channel__in=proofs.PROOF_CHANNELS).exists()
    if form is None and supported:
        form = ProofForm(campaign=campaign, may_pick=request.user.has_perm("audiences.view_profile"))
    return {
        "proof_card": True,
        "proof_form": form,
        "proof_supported": supported,
        "proof_version": version,
        "proof_configuration": version.channel_configuration,
        # Whether the versions' configurations differ (the version choices then name each one's).
        "proof_configurations_differ": len(used) > 1,
        "proof_results": results,
        "proofs_left": proofs.proofs_left(actor=request.user),
        "proof_limits": {
            "addresses": proofs.MAX_PROOF_ADDRESSES,
            "sends": proofs.PROOF_SENDS_PER_WINDOW,
            "minutes": int(proofs.PROOF_WINDOW.total_seconds() // 60),
            "prefix": proofs.PROOF_PREFIX.strip(),
        },
    }


@permission_required("campaigns.send_proof")
@require_POST
def campaign_proof(request, pk):
    campaign = get_object_or_404(Campaign.objects.select_related("live_version"), pk=pk)
    form = ProofForm(request.POST, campaign=campaign, may_pick=request.user.has_perm("audiences.view_profile"))
    results = None
    valid = form.is_valid()
    # The version posted, when it is one of the campaign's: the card names its configuration.
    version = None
    if "version" in form.cleaned_data:
        chosen = campaign.versions.select_related("channel_configuration")
        version = chosen.filter(number=form.cleaned_data["version"]).first()
    if valid and version is None:  # deleted since the form was read
        form.add_error("version", "This version no longer exists: reload the page.")
    elif valid:
        data = form.cleaned_data
        # The recipients as given: typed addresses (str) and profiles named `#42`.
        recipients = data["addresses"]
        try:
            results = proofs.campaign_send_proof(
                campaign=campaign,
                actor=request.user,
                version=version,
                addresses=[entry for entry in recipients if isinstance(entry, str)],
                profile=data.get("profile"),
                profiles=[entry for entry in recipients if not isinstance(entry, str)],
            )
        except ValidationError as error:
            form.add_service_errors(error)
    if request.htmx:
        # The card alone: the profile it offers is the one just posted.
        context = {
            "campaign": campaign,
            "preview": {"profile": form.cleaned_data.get("profile")},
            **proof_context(request, campaign, form=form, results=results, version=version),
        }
        return render(request, "campaigns/_proof.html", context)
    # Without htmx: the campaign page, with what happened as messages.
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"Proof not sent. {label}: {error}" if label else f"Proof not sent. {error}")
    for result in results or []:
        if result.sent:
            messages.success(request, f"Proof sent to {result.label}.")
        else:
            messages.error(request, f"Proof to {result.label} not sent ({_outcome_words(result)}).")
    return redirect(f"{campaign.get_absolute_url()}#proof")


def _outcome_words(result) -> str:
    words = result.outcome
    if result.reason:
        words += f": {result.reason}"
    if result.detail:
        words += f", {result.detail}"
    return words
