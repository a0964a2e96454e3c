from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using, **kwargs):
    from permissions.roles import sync_roles

    sync_roles(using=using)


class PermissionsConfig(AppConfig):
    name = "permissions"
    verbose_name = "Roles and permissions"

    def ready(self):
        # Connected for every app's post-migrate signal, after Django's create_permissions (auth is
        # installed earlier), so the last call sees every permission.
        post_migrate.connect(_sync_roles, dispatch_uid="permissions.sync_roles")
