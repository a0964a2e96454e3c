from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"

    def ready(self):
        from channels import privacy  # noqa: F401 - connects the export receiver
