"""The page an invitation link opens: the new user sets a password and is logged in."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import SetPasswordForm
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from permissions.models import Invitation, sha256_hex
from permissions.services import invitations


# The one public page of the app, deliberately without permission_required: the visitor has no password yet.
# The single-use, time-limited token in the URL is the credential; only its SHA-256 hash is stored.
@login_not_required
@never_cache
@sensitive_post_parameters()
def invitation_accept(request, token):
    invitation = invitations.invitation_for_token(token)
    if invitation is None:
        return _unusable(request, token)
    form = SetPasswordForm(invitation.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = invitations.invitation_accept(token=token, password=form.cleaned_data["new_password1"])
        if user is None:  # spent by another submission of the same link in the meantime
            return _unusable(request, token)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Your password is set and you are logged in.")
        return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "permissions/invitation_accept.html", {"form": form, "invited": invitation.user})


def _unusable(request, token):
    invitation = Invitation.objects.filter(token_hash=sha256_hex(token)).first()
    if invitation is None:
        reason = "unknown"
    elif invitation.used_at is not None:
        reason = "used"
    else:
        reason = "expired"
    status = 404 if reason == "unknown" else 410
    return render(request, "permissions/invitation_unusable.html", {"reason": reason}, status=status)
