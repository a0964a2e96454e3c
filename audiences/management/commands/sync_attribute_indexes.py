from django.core.management.base import BaseCommand

from audiences.indexes import sync_attribute_indexes


class Command(BaseCommand):
    help = "Create (CONCURRENTLY) the PostgreSQL indexes of attributes declared indexed, drop undeclared ones."

    def handle(self, *args, **options):
        done = sync_attribute_indexes()
        self.stdout.write(
            f"Attribute indexes in step with the schema: {len(done.created)} created, {len(done.dropped)} dropped."
        )
