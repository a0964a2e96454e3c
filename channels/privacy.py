"""The channels app's part in a person's export: their in-app inbox. (Erase needs nothing here: inbox messages
go with the profile row.)"""

from django.dispatch import receiver

from audiences.models import Profile
from audiences.services.privacy import profile_exporting
from channels.models import InboxMessage


@receiver(profile_exporting, sender=Profile, dispatch_uid="channels.privacy.export")
def export_inbox(sender, profile, **kwargs) -> dict:
    messages = InboxMessage.objects.filter(profile=profile).order_by("created_at", "id")
    return {
        "inbox_messages": [
            {
                "id": message.pk,
                "configuration": message.configuration_id,
                "title": message.title,
                "body_text": message.body_text,
                "body_html": message.body_html,
                "created_at": message.created_at.isoformat(),
                "read_at": message.read_at.isoformat() if message.read_at else None,
                "deleted_at": message.deleted_at.isoformat() if message.deleted_at else None,
            }
            for message in messages
        ]
    }
