"""In-app notifications (the bell) and their email copies, which other apps send through `notification_send`."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from config.queues import MAINTENANCE, enqueue_on_commit
from permissions.models import Notification


def notification_send(*, users, title: str, body: str = "", url: str = "", email: bool = True) -> int:
    """Notify each active user in the app and, when `email` is set and they have an address, by email.

    The in-app notifications are written in the caller's transaction. Email leaves the request path: one job
    on the maintenance queue, enqueued once that transaction commits, sends the batch. It is best-effort: a
    failure to enqueue or to send is logged and never undoes the action that caused it.
    """
    users = [user for user in users if user.is_active]
    notifications = Notification.objects.bulk_create(
        Notification(user=user, title=title, body=body, url=url) for user in users
    )
    email_ids = [notification.pk for notification in notifications if notification.user.email]
    if email and email_ids:
        # An unreachable Redis is logged, and the caller's response goes out all the same.
        enqueue_on_commit(MAINTENANCE, "permissions.jobs.send_notification_emails", email_ids)
    return len(users)


def notification_email_send(*, notification) -> bool:
    """Email one notification to its user, at most once however often the job runs. Best-effort: a failure
    is logged, never raised, and leaves the notification unsent so that running the job again retries it.
    Returns whether the email was handed to the mailer."""
    user = notification.user
    if not (user.is_active and user.email):
        return False
    # Claim it before sending: a second run of the same job finds it claimed and sends nothing.
    if not Notification.objects.filter(pk=notification.pk, emailed_at__isnull=True).update(emailed_at=timezone.now()):
        return False
    link = f"{settings.SITE_URL}{notification.url}" if notification.url else settings.SITE_URL
    try:
        send_mail(notification.title, f"{notification.body}\n\n{link}".strip(), None, [user.email])
    except Exception:  # noqa: BLE001 - see docstring
        Notification.objects.filter(pk=notification.pk).update(emailed_at=None)
        logging.getLogger(__name__).exception("notification %s: email to user %s failed", notification.pk, user.pk)
        return False
    return True


def notifications_mark_read(*, user, notification_ids=None) -> int:
    """Mark the user's unread notifications read: those listed, or all. Another user's ids change nothing."""
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


def notifications_resolve(*, url: str) -> int:
    """Mark read, for every user, the unread notifications leading to `url`: what they asked for is settled (a
    review decided, by whoever), so they no longer count on the bell. They stay in each user's inbox."""
    return Notification.objects.filter(url=url, read_at__isnull=True).update(read_at=timezone.now())
