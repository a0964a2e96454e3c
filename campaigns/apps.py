from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self):
        from campaigns import privacy  # noqa: F401 - connects the receivers of profile export and erase
