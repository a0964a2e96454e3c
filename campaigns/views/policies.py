"""The approval policy pages (administrators): which campaigns need an approval, and who gives it."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from audiences.models import Channel
from campaigns.forms.policies import ApprovalPolicyForm
from campaigns.models import ApprovalPolicy, Campaign
from campaigns.services import approval
from permissions.access import permission_required

CRITERIA = ("kinds", "categories", "channels")


@permission_required("campaigns.view_approvalpolicy")
def policy_list(request):
    policies = ApprovalPolicy.objects.prefetch_related("approver_groups", "approver_users")
    labels = {**dict(Campaign.Kind.choices), **dict(Campaign.Category.choices), **dict(Channel.choices)}
    rows = [
        (
            policy,
            {name: [labels.get(value, value) for value in getattr(policy, name)] for name in CRITERIA},
        )
        for policy in policies
    ]
    return render(request, "campaigns/policy_list.html", {"rows": rows})


@permission_required("campaigns.add_approvalpolicy")
def policy_create(request):
    form = ApprovalPolicyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            policy = approval.approval_policy_create(actor=request.user, rules=form.rules())
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, f"Policy “{policy.name}” created: it applies to the next activation.")
            return redirect("campaigns:policy_list")
    return render(request, "campaigns/policy_form.html", {"form": form, "policy": None})


@permission_required("campaigns.change_approvalpolicy")
def policy_edit(request, pk):
    policy = get_object_or_404(ApprovalPolicy, pk=pk)
    form = ApprovalPolicyForm.for_policy(policy, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            approval.approval_policy_update(actor=request.user, policy=policy, rules=form.rules())
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, f"Policy “{form.cleaned_data['name']}” saved.")
            return redirect("campaigns:policy_list")
    return render(request, "campaigns/policy_form.html", {"form": form, "policy": policy})


@permission_required("campaigns.delete_approvalpolicy")
def policy_delete(request, pk):
    policy = get_object_or_404(ApprovalPolicy, pk=pk)
    if request.method == "POST":
        approval.approval_policy_delete(actor=request.user, policy=policy)
        messages.success(request, f"Policy “{policy.name}” deleted.")
        return redirect(reverse("campaigns:policy_list"))
    return render(request, "campaigns/policy_delete.html", {"policy": policy})
