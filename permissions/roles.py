"""The built-in campaign roles and the permissions each one carries.

Roles are Django groups; a user may hold several. Permissions are named "app_label.codename" and are
declared on the models of the apps that own them (campaigns, audiences, channels), so this module only
names them and never imports those apps.
"""

from django.db.models import TextChoices


class Role(TextChoices):
    ADMINISTRATOR = "Campaign administrator"
    APPROVER = "Campaign approver"
    MANAGER = "Campaign manager"
    VIEWER = "Campaign viewer"


_VIEW_CAMPAIGNS = ["campaigns.view_campaign", "campaigns.view_report"]
_EDIT_CAMPAIGNS = [
    "campaigns.add_campaign",
    "campaigns.change_campaign",
    "campaigns.submit_campaign",
    "campaigns.send_proof",
]
# Publishing: activate, pause, resume and stop.
_PUBLISH_CAMPAIGNS = ["campaigns.activate_campaign", "campaigns.approve_campaign"]
_VIEW_CONFIGURATION = ["channels.view_channelconfiguration", "audiences.view_audience"]

ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.ADMINISTRATOR: [
        *_VIEW_CAMPAIGNS,
        *_EDIT_CAMPAIGNS,
        *_PUBLISH_CAMPAIGNS,
        "campaigns.delete_campaign",
        "campaigns.view_delivery",
        "campaigns.export_delivery",
        # approval policies (campaigns app)
        "campaigns.view_approvalpolicy",
        "campaigns.add_approvalpolicy",
        "campaigns.change_approvalpolicy",
        "campaigns.delete_approvalpolicy",
        *_VIEW_CONFIGURATION,
        "audiences.add_audience",
        "audiences.change_audience",
        "audiences.delete_audience",
        "audiences.view_profile",
        "audiences.add_profile",
        "audiences.change_profile",
        "audiences.delete_profile",
        "audiences.export_profile",
        "audiences.import_profiles",
        "channels.add_channelconfiguration",
        "channels.change_channelconfiguration",
        "channels.delete_channelconfiguration",
        "channels.view_suppression",
        "channels.add_suppression",
        "channels.delete_suppression",
        "channels.export_suppression",
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        "auth.add_group",
        "auth.change_group",
        "auth.delete_group",
        "permissions.view_apikey",
        "permissions.add_apikey",
        "permissions.change_apikey",
        "permissions.view_auditevent",
        "permissions.export_auditevent",
    ],
    Role.APPROVER: [*_VIEW_CAMPAIGNS, *_EDIT_CAMPAIGNS, *_PUBLISH_CAMPAIGNS, *_VIEW_CONFIGURATION],
    Role.MANAGER: [
        *_VIEW_CAMPAIGNS,
        *_EDIT_CAMPAIGNS,
        *_VIEW_CONFIGURATION,
        "audiences.add_audience",
        "audiences.change_audience",
        "audiences.view_profile",
        "audiences.import_profiles",
    ],
    Role.VIEWER: [*_VIEW_CAMPAIGNS],
}


def sync_roles(*, using: str = "default") -> None:
    """Make each built-in role a group holding exactly its permissions. Idempotent.

    Runs after every app's migrations: a fresh database has no permission rows until Django's own
    post-migrate handler has created them, so permissions not yet created are picked up on a later call.
    """
    from django.contrib.auth.models import Group, Permission

    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        wanted = set()
        for name in names:
            app_label, codename = name.split(".")
            wanted.add((app_label, codename))
        permissions = [
            permission
            for permission in Permission.objects.using(using).select_related("content_type")
            if (permission.content_type.app_label, permission.codename) in wanted
        ]
        group.permissions.set(permissions)


def user_roles(user) -> list[str]:
    """The built-in role names a user holds, in the order of the Role enum."""
    if not user.is_authenticated:
        return []
    held = set(user.groups.values_list("name", flat=True))
    return [role.value for role in Role if role.value in held]
