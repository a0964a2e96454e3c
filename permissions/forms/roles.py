"""Forms of the Roles tab: compose a custom role, add a user to a role."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from permissions.roles import composable_permissions, permission_area, permission_labels


class RoleForm(forms.Form):
    name = forms.CharField(max_length=150)
    permissions = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        help_text="A custom role is composed of the permissions a campaign administrator has.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        labels = permission_labels(composable_permissions())
        self.fields["permissions"].choices = [(name, labels[name]) for name in composable_permissions()]

    def permission_areas(self):
        """The permission checkboxes grouped by area: [(area, [checkbox, ...]), ...]."""
        areas: dict[str, list] = {}
        for checkbox in self["permissions"]:
            areas.setdefault(permission_area(checkbox.data["value"]), []).append(checkbox)
        return list(areas.items())


class RoleMemberForm(forms.Form):
    """Pick an existing user for a role, by username or email address."""

    user = forms.CharField(max_length=254, label="Username or email")

    def clean_user(self):
        value = self.cleaned_data["user"].strip()
        matches = list(get_user_model().objects.filter(Q(username__iexact=value) | Q(email__iexact=value))[:2])
        if not matches:
            raise forms.ValidationError("No user has this username or email address.")
        if len(matches) > 1:
            raise forms.ValidationError("Several users have this email address: give the username.")
        return matches[0]
