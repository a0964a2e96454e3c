from django.core.management.base import BaseCommand
from django.db import transaction

from channels.models import ChannelConfiguration
from channels.secrets import rotate_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS. Put the new key first, "
        "keep the old one after it, run this, then remove the old key."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        rotated = 0
        for configuration in ChannelConfiguration.objects.select_for_update().exclude(encrypted_secrets=""):
            configuration.encrypted_secrets = rotate_secrets(configuration.encrypted_secrets)
            configuration.save(update_fields=["encrypted_secrets"])
            rotated += 1
        self.stdout.write(f"Re-encrypted the secrets of {rotated} channel configuration(s) with the first key.")
