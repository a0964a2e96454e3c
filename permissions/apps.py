from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, using, **kwargs):
    from django.contrib.auth.models import Group, Permission
    from django.db import connections

    from permissions.roles import sync_roles

    tables = set(connections[using].introspection.table_names())
    if {Group._meta.db_table, Permission._meta.db_table} <= tables:  # not after `migrate auth zero`
        sync_roles(using=using)


class PermissionsConfig(AppConfig):
    name = "permissions"
    verbose_name = "Roles and permissions"

    def ready(self):
        # Connected for every app's post-migrate signal, after Django's create_permissions (auth is
        # installed earlier), so the last call sees every permission.
        post_migrate.connect(_sync_roles, dispatch_uid="permissions.sync_roles")
        from permissions import signals  # noqa: F401 - connects the login failure receiver
