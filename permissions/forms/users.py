"""Forms of the Users tab: add (invite) a user, change a user's roles."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db.models import Q

from permissions.roles import Role


def role_choices() -> list[tuple[str, str]]:
    """Every role, built-in ones first in their order, then custom ones by name."""
    builtin = list(Role.values)
    custom = Group.objects.exclude(name__in=builtin).order_by("name").values_list("name", flat=True)
    return [(name, name) for name in [*builtin, *custom]]


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
