"""Audience pages: list, detail, create and edit with the rule builder, delete; and the htmx fragments the
builder page uses (the builder re-rendered after an action, the live size estimate and sample).

Views check permissions, read the form and call audiences.services.audiences; the builder's logic is in
audiences.rules.builder and audiences.forms.audiences.
"""

import json
import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from audiences.forms.audiences import AudienceForm, RuleEditor
from audiences.models import Audience, Channel, Consent, Profile
from audiences.rules import builder
from audiences.rules.tree import RuleError, member_of_ids
from audiences.rules.words import rule_in_words
from audiences.selectors import audiences as selectors
from audiences.services import audiences as services
from permissions.access import forbidden, permission_required

SAMPLE_SIZE = 20
AUDIENCES_PER_PAGE = 50
_AUDIENCE_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits, as many as a database id holds


# Reads -----------------------------------------------------------------------------------------------------


@permission_required("audiences.view_audience")
def audience_list(request):
    audiences = Audience.objects.select_related("created_by")
    page = Paginator(audiences, AUDIENCES_PER_PAGE).get_page(request.GET.get("page"))
    used_by = selectors.uses_by_audience([audience.pk for audience in page.object_list])
    rows = [(audience, used_by.get(audience.pk, [])) for audience in page.object_list]
    return render(request, "audiences/audience_list.html", {"page": page, "rows": rows})


@permission_required("audiences.view_audience")
@require_GET
def audience_size(request, pk):
    """One audience's size now, loaded into its cell of the list when the cell scrolls into view: counting a
    rule audience can take a while on a large base, and the list must not wait for every count."""
    audience = get_object_or_404(Audience, pk=pk)
    return render(request, "audiences/_audience_size.html", {"size": _size(audience)})


@permission_required("audiences.view_audience")
def audience_detail(request, pk):
    audience = get_object_or_404(Audience.objects.select_related("created_by"), pk=pk)
    context = {
        "audience": audience,
        "words": rule_in_words(audience.rule, _audience_names(audience.rule)),
        "rule_json": json.dumps(audience.rule, indent=2, ensure_ascii=False),
        "member_count": audience.members.count() if audience.kind == Audience.Kind.UPLOADED else None,
        "uses": selectors.audience_uses(audience),
        "included_by": selectors.audiences_including(audience),
        "imports": _imports(audience),
    }
    return render(request, "audiences/audience_detail.html", context)


@permission_required("audiences.view_audience")
@require_GET
def audience_preview(request, pk):
    """The size and sample of a stored audience, loaded after its page."""
    audience = get_object_or_404(Audience, pk=pk)
    return render(request, "audiences/_rule_estimate.html", _estimate(request, audience))


# Create, edit, delete --------------------------------------------------------------------------------------


@permission_required("audiences.add_audience")
def audience_create(request):
    schema = builder.Schema()
    form = AudienceForm(request.POST or None)
    if request.method == "POST":
        editor = RuleEditor.from_post(request.POST, schema=schema)
        saved = _save(request, form, editor, audience=None)
        if saved:
            messages.success(request, f"Audience “{saved.name}” created.")
            return redirect("audiences:audience_detail", saved.pk)
    else:
        editor = RuleEditor.for_rule({}, schema=schema)
    return render(request, "audiences/audience_form.html", _form_context(form, editor, audience=None))


@permission_required("audiences.change_audience")
def audience_edit(request, pk):
    audience = get_object_or_404(Audience, pk=pk)
    schema = builder.Schema()
    form = AudienceForm(request.POST or None, audience=audience)
    if request.method == "POST":
        editor = RuleEditor.from_post(request.POST, schema=schema, audience_id=audience.pk)
        saved = _save(request, form, editor, audience=audience)
        if saved:
            messages.success(request, f"Audience “{saved.name}” saved.")
            return redirect("audiences:audience_detail", saved.pk)
    else:
        rule = audience.rule if audience.kind == Audience.Kind.RULE else {}
        editor = RuleEditor.for_rule(rule, schema=schema, audience_id=audience.pk)
    return render(request, "audiences/audience_form.html", _form_context(form, editor, audience=audience))


def _save(request, form, editor: RuleEditor, *, audience: Audience | None) -> Audience | None:
    """Validate the form and the rule together and store them, or None with the errors on the form and the
    editor. Nothing is stored while either has an error."""
    form_valid = form.is_valid()
    kind = form.chosen_kind
    rule = editor.valid_rule() if kind == Audience.Kind.RULE else {}
    if not form_valid or rule is None:
        return None
    data = form.cleaned_data
    try:
        if audience is None:
            return services.audience_create(
                actor=request.user, name=data["name"], description=data["description"], kind=kind, rule=rule
            )
        return services.audience_update(
            actor=request.user,
            audience=audience,
            name=data["name"],
            description=data["description"],
            kind=kind,
            rule=rule,
        )
    except RuleError as error:
        # The rule changed meaning between the check and the save (an audience it names was changed).
        editor.place(error.errors)
        return None


def _form_context(form, editor: RuleEditor, *, audience: Audience | None) -> dict:
    context = {"form": form, "audience": audience, "save_failed": editor.checked and editor.has_errors}
    if audience is not None:
        context["affected"] = selectors.affected_uses(audience)
        context["included_by"] = selectors.audiences_including(audience)
        context["imports"] = _imports(audience)
    return {**context, **_builder_context(editor)}


@permission_required("audiences.delete_audience")
def audience_delete(request, pk):
    """GET asks for confirmation (or says why it cannot be deleted); POST deletes."""
    audience = get_object_or_404(Audience, pk=pk)
    if request.method == "POST":
        try:
            services.audience_delete(actor=request.user, audience=audience)
        except services.AudienceInUse as refusal:
            messages.error(request, refusal.message)
            return redirect("audiences:audience_detail", audience.pk)
        messages.success(request, f"Audience “{audience.name}” deleted.")
        return redirect("audiences:audience_list")
    context = {"audience": audience, "refusal": services.deletion_refusal(audience)}
    return render(request, "audiences/audience_delete.html", context)


# htmx fragments of the builder page ------------------------------------------------------------------------


def _may_build(user) -> bool:
    return user.has_perm("audiences.add_audience") or user.has_perm("audiences.change_audience")


@permission_required("audiences.view_audience")
@require_POST
def rule_builder(request):
    """The builder re-rendered from the posted form after one action: add a condition or group, remove one,
    change a condition's attribute (its operators and value inputs follow the type), switch between the
    builder and the JSON editor. No page reload, nothing stored."""
    if not _may_build(request.user):
        return forbidden(request, ("audiences.change_audience",))
    editor = RuleEditor.from_post(request.POST, schema=builder.Schema(), audience_id=_posted_audience(request))
    editor.apply(request.POST.get("builder_action", ""))
    response = render(request, "audiences/_rule_builder.html", _builder_context(editor))
    # The estimate beside the builder listens for this: the rule changed without a "change" event.
    response["HX-Trigger"] = "rule-changed"
    return response


@permission_required("audiences.view_audience")
@require_POST
def rule_estimate(request):
    """The size and a sample of the rule as it stands in the form, unsaved."""
    if not _may_build(request.user):
        return forbidden(request, ("audiences.change_audience",))
    audience_id = _posted_audience(request)
    kind = request.POST.get("kind", Audience.Kind.RULE)
    if audience_id:
        stored = Audience.objects.filter(pk=audience_id).first()
        if stored is not None and stored.kind == Audience.Kind.UPLOADED:
            return render(request, "audiences/_rule_estimate.html", _estimate(request, stored))
    if kind == Audience.Kind.ALL:
        context = {**_estimate(request, Audience(kind=kind)), "unsaved": True}
        return render(request, "audiences/_rule_estimate.html", context)
    editor = RuleEditor.from_post(request.POST, schema=builder.Schema(), audience_id=audience_id)
    rule = editor.valid_rule()
    if rule is None:
        count = len(editor.errors) + sum(len(node.errors) for node in editor.tree.walk())
        return render(request, "audiences/_rule_estimate.html", {"incomplete": count or 1, "unsaved": True})
    unsaved = Audience(pk=audience_id, kind=Audience.Kind.RULE, rule=rule)
    return render(request, "audiences/_rule_estimate.html", {**_estimate(request, unsaved), "unsaved": True})


def _posted_audience(request) -> int | None:
    """The audience being edited, as the form names it; None for anything else (`"²".isdigit()` holds, but int()
    refuses it)."""
    value = request.POST.get("rule_audience", "")
    return int(value) if _AUDIENCE_ID.fullmatch(value) else None


def _builder_context(editor: RuleEditor) -> dict:
    schema = editor.schema
    builder.annotate(editor.tree, schema)
    return {
        "editor": editor,
        "schema": schema,
        "combinators": builder.COMBINATORS,
        "channels": Channel.choices,
        "consent_states": Consent.State.choices,
        "member_choices": builder.audience_choices(exclude=editor.audience_id),
        "max_group_depth": builder.MAX_GROUP_DEPTH,
    }


# Size, sample and links ------------------------------------------------------------------------------------


def _size(audience: Audience) -> int | None:
    """The number of members now, or None when the stored rule no longer validates."""
    try:
        return selectors.audience_size(audience)
    except RuleError:
        return None


def _sample(audience: Audience) -> list[Profile]:
    sample = getattr(selectors, "audience_sample", None)
    if sample is not None:
        return list(sample(audience, limit=SAMPLE_SIZE))
    return list(selectors.audience_profiles(audience).order_by("pk")[:SAMPLE_SIZE])


def _estimate(request, audience: Audience) -> dict:
    try:
        size = selectors.audience_size(audience)
    except RuleError as error:
        return {"invalid": error.errors}
    context = {"size": size, "audience": audience, "may_see_profiles": request.user.has_perm("audiences.view_profile")}
    if context["may_see_profiles"] and size:
        context["sample"] = [(profile, _name(profile), _profile_url(profile)) for profile in _sample(audience)]
    return context


def _name(profile: Profile) -> str:
    attributes = profile.attributes if isinstance(profile.attributes, dict) else {}
    parts = [attributes.get("first_name"), attributes.get("last_name")]
    name = " ".join(str(part) for part in parts if part)
    return name or str(attributes.get("name") or "")


def _profile_url(profile: Profile) -> str | None:
    return _optional_url("audiences:profile_detail", profile.pk)


def _optional_url(name: str, pk: int) -> str | None:
    """The URL of a page another part of the app serves, or None while it does not exist."""
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return None


def _imports(audience: Audience) -> list[tuple[object, str | None]]:
    """For an uploaded list: its imports, each with the link to its report when that page exists."""
    if audience.kind != Audience.Kind.UPLOADED:
        return []
    return [
        (profile_import, _optional_url("audiences:import_detail", profile_import.pk))
        for profile_import in audience.imports.select_related("created_by").order_by("-created_at")[:20]
    ]


def _audience_names(rule) -> dict[int, str]:
    ids = member_of_ids(rule)
    return dict(Audience.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}
