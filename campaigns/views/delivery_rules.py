"""The delivery rule pages (administrators): frequency caps and quiet hours, listed together, each created, edited
and deleted on its own pages."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render

from campaigns import selectors
from campaigns.forms.delivery_rules import FrequencyCapForm, QuietHoursForm
from campaigns.models import FrequencyCap, QuietHours
from campaigns.services import delivery_rules
from permissions.access import permission_required


@permission_required("campaigns.view_frequencycap", "campaigns.view_quiethours")
def delivery_rule_list(request):
    return render(request, "campaigns/delivery_rules.html", {"rules": selectors.delivery_rules_all()})


# Frequency caps


@permission_required("campaigns.add_frequencycap")
def cap_create(request):
    form = FrequencyCapForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cap = delivery_rules.frequency_cap_create(actor=request.user, rules=form.rules())
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, f"Cap “{cap.name}” created: it applies to the messages planned from now on.")
            return redirect("campaigns:delivery_rules")
    return render(request, "campaigns/cap_form.html", {"form": form, "cap": None})


@permission_required("campaigns.change_frequencycap")
def cap_edit(request, pk):
    cap = get_object_or_404(FrequencyCap, pk=pk)
    form = FrequencyCapForm.for_cap(cap, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cap = delivery_rules.frequency_cap_update(actor=request.user, cap=cap, rules=form.rules())
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, f"Cap “{cap.name}” saved.")
            return redirect("campaigns:delivery_rules")
    return render(request, "campaigns/cap_form.html", {"form": form, "cap": cap})


@permission_required("campaigns.delete_frequencycap")
def cap_delete(request, pk):
    cap = get_object_or_404(FrequencyCap, pk=pk)
    if request.method == "POST":
        delivery_rules.frequency_cap_delete(actor=request.user, cap=cap)
        messages.success(request, f"Cap “{cap.name}” deleted.")
        return redirect("campaigns:delivery_rules")
    return render(request, "campaigns/cap_delete.html", {"cap": cap, "words": selectors.frequency_cap_words(cap)})


# Quiet hours


@permission_required("campaigns.add_quiethours")
def quiet_create(request):
    form = QuietHoursForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            window = delivery_rules.quiet_hours_create(actor=request.user, rules=form.rules())
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, f"{window} created: it applies to the messages planned from now on.")
            return redirect("campaigns:delivery_rules")
    return render(request, "campaigns/quiet_form.html", {"form": form, "window": None})


@permission_required("campaigns.change_quiethours")
def quiet_edit(request, pk):
    window = get_object_or_404(QuietHours, pk=pk)
    form = QuietHoursForm.for_window(window, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            window = delivery_rules.quiet_hours_update(actor=request.user, window=window, rules=form.rules())
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, f"{window} saved.")
            return redirect("campaigns:delivery_rules")
    return render(request, "campaigns/quiet_form.html", {"form": form, "window": window})


@permission_required("campaigns.delete_quiethours")
def quiet_delete(request, pk):
    window = get_object_or_404(QuietHours, pk=pk)
    if request.method == "POST":
        delivery_rules.quiet_hours_delete(actor=request.user, window=window)
        messages.success(request, f"{window} deleted.")
        return redirect("campaigns:delivery_rules")
    return render(
        request, "campaigns/quiet_delete.html", {"window": window, "words": selectors.quiet_hours_words(window)}
    )
