"""Profile pages (list with search, detail, export, erase) and the administrators' settings pages for
profiles: the attribute schema, identity namespaces, and what unknown consent means per channel.

Views check permissions, read the form and call audiences.services (reads: audiences.selectors.profiles). The
parts of the profile page that apps above serve (the messages a profile received, from the campaigns' ledger)
come through audiences.hooks and are loaded into the page with htmx.
"""

import json
import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from audiences import hooks
from audiences.forms.profiles import AttributeForm, ConsentSettingsForm, NamespaceForm
from audiences.models import AttributeDefinition, IdentityNamespace, Profile
from audiences.selectors import profiles as selectors
from audiences.services import attributes as attribute_services
from audiences.services import consent, namespaces, privacy
from config.forms import add_service_errors
from config.untrusted import text_problem
from permissions.access import forbidden, permission_required

PROFILES_PER_PAGE = 50
_PROFILE_ID = re.compile(r"[0-9]{1,18}")


# Profiles -----------------------------------------------------------------------------------------------


@permission_required("audiences.view_profile")
def profile_list(request):
    """Profiles, newest first, searched; keyset pages (`before=` / `after=` a profile id, the links carry the
    search), with how many match: exact where the page's reads found them all, else an estimate or a count up to a
    cap (selectors.profiles_search_page)."""
    query = request.GET.get("q", "").strip()[:320]
    if (problem := text_problem(query)) is not None:  # no stored value holds it, and PostgreSQL refuses to compare
        return render(request, "audiences/profile_list.html", {"search_error": problem}, status=400)
    bounds = {}
    for name in ("before", "after"):
        value = request.GET.get(name, "").strip()
        if value and not _PROFILE_ID.fullmatch(value):
            error = f"{name} must be a profile number, at most 18 digits"
            return render(request, "audiences/profile_list.html", {"query": query, "link_error": error}, status=400)
        bounds[name] = int(value) if value else None
    page = selectors.profiles_search_page(query, **bounds, size=PROFILES_PER_PAGE)
    rows = [(profile, _display_name(profile)) for profile in page.profiles]
    context = {"page": page, "rows": rows, "query": query, "count": _count_words(page.count, searched=bool(query))}
    return render(request, "audiences/profile_list.html", context)


@permission_required("audiences.view_profile")
def profile_detail(request, pk):
    profile = get_object_or_404(Profile, pk=pk)
    definitions = {d.name: d for d in AttributeDefinition.objects.filter(name__in=list(profile.attributes))}
    labels = dict(IdentityNamespace.objects.values_list("name", "label"))
    context = {
        "profile": profile,
        "name": _display_name(profile),
        "identities": [
            (labels.get(identity.namespace, identity.namespace), identity)
            for identity in profile.identities.order_by("namespace", "value")
        ],
        "attributes": [
            (name, definitions.get(name), _shown(value)) for name, value in sorted(profile.attributes.items())
        ],
        "consents": selectors.consent_overview(profile),
        "push_tokens": profile.push_tokens.order_by("retired_at", "-created_at"),
        "memberships": selectors.profile_memberships(profile),
        "sections": hooks.profile_sections.for_page(request, profile),
    }
    return render(request, "audiences/profile_detail.html", context)


@permission_required("audiences.export_profile")
@never_cache
def profile_export(request, pk):
    """Everything stored about the person, as a JSON download. Audited."""
    profile = get_object_or_404(Profile, pk=pk)
    export = privacy.profile_export_recorded(profile=profile, actor=request.user)
    response = HttpResponse(
        json.dumps(export, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="profile-{profile.pk}.json"'
    return response


@permission_required("audiences.delete_profile")
def profile_erase(request, pk):
    """GET asks for confirmation, saying what goes; POST (with the confirmation ticked) erases. Audited."""
    profile = get_object_or_404(Profile, pk=pk)
    if request.method == "POST":
        if request.POST.get("confirm") != "erase":
            messages.error(request, "Tick the box to confirm: erasing cannot be undone.")
            return redirect("audiences:profile_erase", pk=pk)
        receipt = privacy.profile_erase(profile=profile, actor=request.user)
        removed = sum(receipt.values())
        messages.success(
            request,
            f"Profile {pk} is erased: {removed} record{'s' if removed != 1 else ''} of the person removed or "
            "anonymised. Counts of past sends are unchanged.",
        )
        return redirect("audiences:profile_list")
    return render(request, "audiences/profile_erase.html", {"profile": profile, "name": _display_name(profile)})


def _count_words(count: selectors.SearchCount, *, searched: bool) -> str:
    """The count as the page words it: 3 profiles match; More than 1,000 profiles (counted up to 1,000); About
    25,000 profiles match (the database's estimate)."""
    value = count.value
    if count.how == "estimate":
        value = round(value, 2 - len(str(value)))  # two significant digits: 25,099 is "about 25,000"
    noun = "profile" if value == 1 and count.how == "exact" else "profiles"
    verb = (" matches" if noun == "profile" else " match") if searched else ""
    if count.how == "more":
        return f"More than {value:,} {noun}{verb} (counted up to {value:,})"
    if count.how == "estimate":
        return f"About {value:,} {noun}{verb} (the database's estimate)"
    return f"{value:,} {noun}{verb}"


def _display_name(profile: Profile) -> str:
    attributes = profile.attributes
    for key in ("full_name", "name"):
        if isinstance(attributes.get(key), str) and attributes[key].strip():
            return attributes[key]
    parts = [attributes.get(key) for key in ("first_name", "last_name")]
    return " ".join(part for part in parts if isinstance(part, str) and part.strip())


def _shown(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


# The attribute schema -----------------------------------------------------------------------------------


@permission_required("audiences.view_attributedefinition")
def attribute_list(request):
    definitions = AttributeDefinition.objects.select_related("created_by")
    return render(request, "audiences/settings_attributes.html", {"definitions": definitions})


@permission_required("audiences.add_attributedefinition")
def attribute_create(request):
    form = AttributeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            definition = attribute_services.attribute_declare(
                actor=request.user,
                name=data["name"],
                type=data["type"],
                label=data["label"],
                description=data["description"],
                indexed=data["indexed"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{definition.name} is declared as {definition.get_type_display().lower()}.")
            return redirect("audiences:attribute_list")
    return render(request, "audiences/settings_attribute_form.html", {"form": form})


@permission_required("audiences.view_attributedefinition")
def attribute_edit(request, pk):
    """The attribute's declaration; holders of change_attributedefinition may change it."""
    definition = get_object_or_404(AttributeDefinition, pk=pk)
    may_change = request.user.has_perm("audiences.change_attributedefinition")
    if request.method == "POST" and not may_change:
        return forbidden(request, ["audiences.change_attributedefinition"])
    type_locked = selectors.attribute_has_values(definition.name)
    form = AttributeForm(request.POST or None, definition=definition, type_locked=type_locked)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            attribute_services.attribute_change(
                actor=request.user,
                definition=definition,
                type=data["type"],
                label=data["label"],
                description=data["description"],
                indexed=data["indexed"],
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{definition.name} saved.")
            return redirect("audiences:attribute_list")
    context = {"form": form, "definition": definition, "type_locked": type_locked, "may_change": may_change}
    return render(request, "audiences/settings_attribute_form.html", context)


# Identity namespaces ------------------------------------------------------------------------------------


@permission_required("audiences.view_identitynamespace")
def namespace_list(request):
    cap = selectors.NAMESPACE_COUNT_CAP
    usage = selectors.namespace_usage(cap=cap)
    rows = []
    for namespace in IdentityNamespace.objects.all():
        used = usage.get(namespace.name, 0)
        rows.append((namespace, used, f"More than {cap:,}" if used > cap else f"{used:,}"))
    return render(request, "audiences/settings_namespaces.html", {"rows": rows})


@permission_required("audiences.add_identitynamespace")
def namespace_create(request):
    form = NamespaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            namespace = namespaces.namespace_create(
                actor=request.user, name=data["name"], label=data["label"], kind=data["kind"]
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Namespace {namespace.name} added: imports and the API can use it now.")
            return redirect("audiences:namespace_list")
    return render(request, "audiences/settings_namespace_form.html", {"form": form})


@permission_required("audiences.delete_identitynamespace")
@require_POST
def namespace_delete(request, pk):
    namespace = get_object_or_404(IdentityNamespace, pk=pk)
    try:
        namespaces.namespace_delete(actor=request.user, namespace=namespace)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Namespace {namespace.name} deleted.")
    return redirect("audiences:namespace_list")


# Consent settings ---------------------------------------------------------------------------------------


@permission_required("audiences.view_channelconsentsetting")
def consent_settings(request):
    may_change = request.user.has_perm("audiences.change_channelconsentsetting")
    if request.method == "POST" and not may_change:
        return forbidden(request, ["audiences.change_channelconsentsetting"])
    form = ConsentSettingsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for channel, allows in form.settings().items():
            consent.channel_consent_setting_set(actor=request.user, channel=channel, unknown_allows_marketing=allows)
        messages.success(request, "Consent settings saved. They apply to the next messages planned or sent.")
        return redirect("audiences:consent_settings")
    return render(request, "audiences/settings_consent.html", {"form": form, "may_change": may_change})
