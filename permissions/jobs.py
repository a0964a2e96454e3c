"""RQ jobs of the permissions app: they take ids, never model instances (jobs are JSON), and call services."""

from permissions.models import Notification
from permissions.services.notifications import notification_email_send


def send_notification_emails(notification_ids: list[int]) -> None:
    """Email a batch of notifications. Each failure is logged by the service; none is raised."""
    notifications = Notification.objects.select_related("user").filter(pk__in=notification_ids).order_by("pk")
    for notification in notifications:
        notification_email_send(notification=notification)
