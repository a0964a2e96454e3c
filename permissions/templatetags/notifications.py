from django import template

from permissions.models import Notification

register = template.Library()


@register.simple_tag
def unread_notification_count(user) -> int:
    """`{% unread_notification_count user as unread %}`: one count on the (user, read_at) index."""
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
