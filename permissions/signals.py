"""Signal receivers of the permissions app, connected in PermissionsConfig.ready()."""

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from permissions.services.login_failures import login_failure_record


@receiver(user_login_failed, dispatch_uid="permissions.login_failed")
def login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in `credentials`; only the username is read.
    username = str(credentials.get("username") or "")[:150]
    ip_address = None
    if request is not None:
        # django-axes resolved the client address (its backend runs first); REMOTE_ADDR otherwise.
        ip_address = getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR") or None
    login_failure_record(username=username, ip_address=ip_address)
