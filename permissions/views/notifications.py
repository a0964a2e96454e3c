"""A user's own in-app notifications (the bell in the top bar)."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from permissions.access import permission_required
from permissions.models import Notification
from permissions.services.notifications import notifications_mark_read

NOTIFICATIONS_PER_PAGE = 50


# No permission: any logged-in user sees their own notifications, and only theirs (every query filters on them).
@permission_required()
def notification_list(request):
    notifications = Notification.objects.filter(user=request.user)
    page = Paginator(notifications, NOTIFICATIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "permissions/notifications.html", {"page": page, "notifications": page.object_list})


@permission_required()
@require_POST
def notification_open(request, pk):
    """Mark one notification read and go where it leads (a local path only)."""
    notification = get_object_or_404(Notification, pk=pk, user=request.user)
    notifications_mark_read(user=request.user, notification_ids=[notification.pk])
    if notification.url.startswith("/") and url_has_allowed_host_and_scheme(
        notification.url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(notification.url)
    return redirect("permissions:notifications")


@permission_required()
@require_POST
def notifications_read_all(request):
    notifications_mark_read(user=request.user)
    return redirect("permissions:notifications")
