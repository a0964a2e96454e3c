from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self):
        from campaigns import feedback, privacy  # noqa: F401 - connect the receivers of provider feedback, export and erase
