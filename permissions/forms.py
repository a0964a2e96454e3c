"""Forms of the settings pages: they parse and validate input; the services in permissions.services act."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.validators import MaxLengthValidator
from django.db.models import Q

from permissions.roles import Role, composable_permissions, permission_area, permission_labels


def role_choices() -> list[tuple[str, str]]:
    """Every role, built-in ones first in their order, then custom ones by name."""
    builtin = list(Role.values)
    custom = Group.objects.exclude(name__in=builtin).order_by("name").values_list("name", flat=True)
    return [(name, name) for name in [*builtin, *custom]]


class LoginForm(AuthenticationForm):
    """Django's login form, with the username's length checked before any authentication: AuthenticationForm sets
    its max_length after the field is built, so a longer name reached authenticate() and the failure log of
    django-axes, which keeps 255 characters (PostgreSQL refused more: a server error instead of a login error)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))


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


class UserAddForm(forms.Form):
    full_name = forms.CharField(max_length=300, label="Name")
    email = forms.EmailField()
    username = forms.CharField(
        max_length=150,
        required=False,
        validators=[UnicodeUsernameValidator()],
        help_text="What they log in with. Leave empty to use the email address.",
    )
    roles = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = role_choices()
        self.existing_user = None

    def clean(self):
        data = super().clean()
        email, username = data.get("email"), data.get("username") or data.get("email")
        if not email:
            return data
        User = get_user_model()
        self.existing_user = User.objects.filter(Q(email__iexact=email) | Q(username__iexact=username)).first()
        if self.existing_user is not None:
            raise forms.ValidationError(
                f"{self.existing_user.get_username()} already has an account with this email address or "
                "username: open it to change their roles.",
                code="exists",
            )
        if len(username) > 150:
            self.add_error("username", "The email address is too long to be a username: choose one.")
        return data


class UserRolesForm(forms.Form):
    roles = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False, label="Holds these roles")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = role_choices()


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


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Actor", help_text="Username, as it was at the time.")
    action = forms.ChoiceField(required=False)
    object_type = forms.ChoiceField(required=False, label="Object type")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, actions=(), object_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action"), *((action, action) for action in actions)]
        self.fields["object_type"].choices = [("", "Any type"), *((kind, kind) for kind in object_types)]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "Must be on or after the start date.")
        return data
