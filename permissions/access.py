"""The checks every view uses. Permissions are checked on the server; templates only hide what fails."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import render

from permissions.hooks import forbidden_page_links
from permissions.roles import Role


def permission_required(*perms: str):
    """Let a view through only for a logged-in user holding every permission in `perms`.

    A user without them gets a 403 page naming the roles that carry them and who administers roles.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    # A partial swapped into a page must not become a login form: send the whole page there.
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = redirect_to_login(request.htmx.current_url_abs_path or "/").url
                    return response
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perms(perms):
                return forbidden(request, perms)
            return view(request, *args, **kwargs)

        wrapped.required_permissions = perms
        return wrapped

    return decorator


def forbidden(request, perms):
    from django.contrib.auth import get_user_model

    from permissions.roles import ROLE_PERMISSIONS

    roles = [role.value for role, names in ROLE_PERMISSIONS.items() if set(perms) <= set(names)]
    administrators = get_user_model().objects.filter(groups__name=Role.ADMINISTRATOR, is_active=True)
    return render(
        request,
        "permissions/forbidden.html",
        {
            "roles": roles,
            "administrators": administrators.order_by("username"),
            "back_links": forbidden_page_links.for_page(request, None),
        },
        status=403,
    )
