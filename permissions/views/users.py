"""The Users tab: search, invite, roles, deactivation, invitations."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.untrusted import text_problem
from permissions import selectors
from permissions.access import permission_required
from permissions.forms.users import UserAddForm, UserRolesForm
from permissions.models import Invitation
from permissions.services import invitations, users

USERS_PER_PAGE = 50


@permission_required("auth.view_user")
def user_list(request):
    query = request.GET.get("q", "").strip()
    if (problem := text_problem(query)) is not None:  # no stored name holds it, and PostgreSQL refuses to compare
        context = {"page": Paginator([], USERS_PER_PAGE).get_page(1), "rows": [], "search_error": problem}
        return render(request, "permissions/users.html", context, status=400)
    page = Paginator(selectors.users_search(query), USERS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [{"user": user, "state": selectors.user_state(user)} for user in page.object_list]
    return render(request, "permissions/users.html", {"page": page, "rows": rows, "query": query})


@permission_required("auth.add_user")
def user_add(request):
    form = UserAddForm(request.POST or None)
    if not request.user.has_perm("auth.change_user"):
        del form.fields["roles"]  # giving roles is changing a user
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user, sent = users.user_invite(
                actor=request.user,
                email=data["email"],
                full_name=data["full_name"],
                username=data["username"],
                role_names=data.get("roles", []),
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if sent:
                messages.success(request, f"Invitation sent to {user.email}. The link works once, for a few days.")
            else:
                failed = f"{user.get_username()} was added, but the invitation email failed: re-send it."
                messages.warning(request, failed)
            return redirect("permissions:user_detail", pk=user.pk)
    return render(request, "permissions/user_add.html", {"form": form})


@permission_required("auth.view_user")
def user_detail(request, pk):
    person = get_object_or_404(selectors.users_search(), pk=pk)
    invitation = (
        Invitation.objects.filter(user=person, used_at__isnull=True, expires_at__gt=timezone.now())
        .order_by("-created_at")
        .first()
    )
    context = {
        "person": person,
        "state": selectors.user_state(person),
        "invitation": invitation,
        "roles_form": UserRolesForm(initial={"roles": [group.name for group in person.groups.all()]}),
        "is_self": person.pk == request.user.pk,
        "may_invite": bool(person.email) and not (person.is_active and person.has_usable_password()),
    }
    return render(request, "permissions/user_detail.html", context)


@permission_required("auth.change_user")
@require_POST
def user_roles(request, pk):
    person = get_object_or_404(get_user_model(), pk=pk)
    form = UserRolesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown role: reload the page and try again.")
        return redirect("permissions:user_detail", pk=pk)
    try:
        users.user_change_roles(actor=request.user, user=person, role_names=form.cleaned_data["roles"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Roles of {person.get_username()} saved.")
    return redirect("permissions:user_detail", pk=pk)


@permission_required("auth.change_user")
@require_POST
def user_deactivate(request, pk):
    person = get_object_or_404(get_user_model(), pk=pk)
    try:
        users.account_deactivate(actor=request.user, user=person)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{person.get_username()} is deactivated: they can no longer log in.")
    return redirect("permissions:user_detail", pk=pk)


@permission_required("auth.add_user", "auth.change_user")
@require_POST
def user_invite(request, pk):
    person = get_object_or_404(get_user_model(), pk=pk)
    try:
        sent = invitations.invitation_resend(actor=request.user, user=person)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if sent:
            messages.success(request, f"A new invitation was sent to {person.email}; earlier links no longer work.")
        else:
            messages.error(request, "The invitation email could not be sent: check the mail settings and retry.")
    return redirect("permissions:user_detail", pk=pk)
