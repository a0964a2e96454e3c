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


def _form_page(request, form, template: str, context: dict, *, save, saved):
    """A create or edit page: the form and, on a valid POST, the service `save(rules)`, whose refusals show on the
    form; after it, `saved(rule)` says what happened on the list page."""
    if request.method == "POST" and form.is_valid():
        try:
            rule = save(form.rules())
        except ValidationError as error:
            form.add_lifecycle_errors(error)
        else:
            messages.success(request, saved(rule))
            return redirect("campaigns:delivery_rules")
    return render(request, template, {"form": form, **context})


APPLIES = "it applies to the messages planned or sent from now on."


# Frequency caps


@permission_required("campaigns.add_frequencycap")
def cap_create(request):
    return _form_page(
        request,
        FrequencyCapForm(request.POST or None),
        "campaigns/cap_form.html",
        {"cap": None},
        save=lambda rules: delivery_rules.frequency_cap_create(actor=request.user, rules=rules),
        saved=lambda cap: f"Cap “{cap.name}” created: {APPLIES}",
    )


@permission_required("campaigns.change_frequencycap")
def cap_edit(request, pk):
    cap = get_object_or_404(FrequencyCap, pk=pk)
    return _form_page(
        request,
        FrequencyCapForm.for_cap(cap, request.POST or None),
        "campaigns/cap_form.html",
        {"cap": cap},
        save=lambda rules: delivery_rules.frequency_cap_update(actor=request.user, cap=cap, rules=rules),
        saved=lambda cap: f"Cap “{cap.name}” saved.",
    )


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
    return _form_page(
        request,
        QuietHoursForm(request.POST or None),
        "campaigns/quiet_form.html",
        {"window": None},
        save=lambda rules: delivery_rules.quiet_hours_create(actor=request.user, rules=rules),
        saved=lambda window: f"{window} created: {APPLIES}",
    )


@permission_required("campaigns.change_quiethours")
def quiet_edit(request, pk):
    window = get_object_or_404(QuietHours, pk=pk)
    return _form_page(
        request,
        QuietHoursForm.for_window(window, request.POST or None),
        "campaigns/quiet_form.html",
        {"window": window},
        save=lambda rules: delivery_rules.quiet_hours_update(actor=request.user, window=window, rules=rules),
        saved=lambda window: f"{window} saved.",
    )


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
