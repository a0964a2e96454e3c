"""The Roles tab: each role with its permissions and holders, the permission matrix, and custom roles."""

from django.contrib import messages
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from permissions import selectors
from permissions.access import permission_required
from permissions.forms.roles import RoleForm, RoleMemberForm
from permissions.roles import Role, group_permission_names, is_builtin_role, permission_labels, permission_matrix
from permissions.roles import permissions_by_area as by_area
from permissions.services import custom_roles, users


@permission_required("auth.view_group")
def role_list(request):
    groups = selectors.roles_with_users()
    held = {group.pk: [f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()] for group in groups}
    labels = permission_labels({name for names in held.values() for name in names})
    roles = [
        {
            "group": group,
            "builtin": is_builtin_role(group.name),
            "areas": by_area(held[group.pk], labels),
            "members": group.members,
        }
        for group in groups
    ]
    context = {"roles": roles, "matrix": permission_matrix(), "role_names": Role.values}
    context["member_form"] = RoleMemberForm()
    return render(request, "permissions/roles.html", context)


@permission_required("auth.add_group")
def role_create(request):
    form = RoleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = custom_roles.role_create(
                actor=request.user, name=form.cleaned_data["name"], permission_names=form.cleaned_data["permissions"]
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Role “{group.name}” created. Give it to users from the Users tab.")
            return _to_role(group)
    return render(request, "permissions/role_form.html", {"form": form, "group": None})


@permission_required("auth.change_group")
def role_edit(request, pk):
    group = get_object_or_404(Group, pk=pk)
    if is_builtin_role(group.name):
        messages.error(request, f"“{group.name}” is a built-in role: it cannot be changed.")
        return _to_role(group)
    initial = {"name": group.name, "permissions": group_permission_names(group)}
    form = RoleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            custom_roles.role_update(
                actor=request.user,
                group=group,
                name=form.cleaned_data["name"],
                permission_names=form.cleaned_data["permissions"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Role “{group.name}” saved.")
            return _to_role(group)
    return render(request, "permissions/role_form.html", {"form": form, "group": group})


@permission_required("auth.delete_group")
@require_POST
def role_delete(request, pk):
    group = get_object_or_404(Group, pk=pk)
    try:
        custom_roles.role_delete(actor=request.user, group=group)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _to_role(group)
    messages.success(request, f"Role “{group.name}” deleted; its users no longer hold it.")
    return redirect("permissions:roles")


@permission_required("auth.change_user")
@require_POST
def role_add_member(request, pk):
    group = get_object_or_404(Group, pk=pk)
    form = RoleMemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["user"]))
        return _to_role(group)
    user = form.cleaned_data["user"]
    roles = {*user.groups.values_list("name", flat=True), group.name}
    _change_roles(request, user, roles, f"{user.get_username()} now holds “{group.name}”.")
    return _to_role(group)


@permission_required("auth.change_user")
@require_POST
def role_remove_member(request, pk, user_pk):
    group = get_object_or_404(Group, pk=pk)
    user = get_object_or_404(group.user_set, pk=user_pk)
    roles = set(user.groups.values_list("name", flat=True)) - {group.name}
    _change_roles(request, user, roles, f"{user.get_username()} no longer holds “{group.name}”.")
    return _to_role(group)


def _change_roles(request, user, roles, success_message):
    try:
        users.user_change_roles(actor=request.user, user=user, role_names=sorted(roles))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, success_message)


def _to_role(group):
    return redirect(f"{reverse('permissions:roles')}#role-{group.pk}")
