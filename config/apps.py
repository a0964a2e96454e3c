from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """Holds the project-wide management commands (preflight, mailcatcher)."""

    name = "config"
    verbose_name = "Project"
