from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self):
        # Connect the receivers of provider feedback, and of a profile's export and erase.
        from campaigns import (
            privacy,  # noqa: F401
            uses,
        )
        from campaigns.rules import business  # noqa: F401 - forgets the business rules a save changes
        from campaigns.services import feedback, tracking  # noqa: F401 - unsubscribes counted in reports

        # Answer the hooks of the apps below: what uses an audience or a configuration, a profile's messages.
        uses.register()
