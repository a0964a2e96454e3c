"""The login page's form (mounted by config.urls)."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxLengthValidator


class LoginForm(AuthenticationForm):
    """Django's login form, with the username's length checked before any authentication: AuthenticationForm sets
    its max_length after the field is built, so a longer name reached authenticate() and the failure log of
    django-axes, which keeps 255 characters (PostgreSQL refused more: a server error instead of a login error)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length))
