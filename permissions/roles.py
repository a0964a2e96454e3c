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
        # delivery rules (campaigns app): frequency caps and quiet hours
        "campaigns.view_frequencycap",
        "campaigns.add_frequencycap",
        "campaigns.change_frequencycap",
        "campaigns.delete_frequencycap",
        "campaigns.view_quiethours",
        "campaigns.add_quiethours",
        "campaigns.change_quiethours",
        "campaigns.delete_quiethours",
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
        "audiences.view_profileimport",
        "audiences.view_attributedefinition",
        "audiences.add_attributedefinition",
        "audiences.change_attributedefinition",
        "audiences.view_identitynamespace",
        "audiences.add_identitynamespace",
        "audiences.change_identitynamespace",
        "audiences.delete_identitynamespace",
        "audiences.view_channelconsentsetting",
        "audiences.change_channelconsentsetting",
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
        "audiences.view_profileimport",
        "audiences.view_attributedefinition",
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


# Areas the roles page and the custom-role form group permissions under, by the app that declares them.
_AREAS = {
    "campaigns": "Campaigns and reports",
    "audiences": "Audiences and profiles",
    "channels": "Channel configurations and suppression",
    "auth": "Users and roles",
}


def is_builtin_role(name: str) -> bool:
    return name in Role.values


def composable_permissions() -> list[str]:
    """The permissions a custom role may be composed from: those of the built-in administrator."""
    return list(ROLE_PERMISSIONS[Role.ADMINISTRATOR])


def permission_area(name: str) -> str:
    app_label, codename = name.split(".")
    if app_label == "permissions":
        return "Audit log" if codename.endswith("auditevent") else "API keys"
    return _AREAS.get(app_label, app_label.title())


def permission_labels(names) -> dict[str, str]:
    """Human names of permissions ("Can publish campaigns (activate, pause, stop)"), as their models declare
    them; the code itself for one not in the database yet."""
    from django.contrib.auth.models import Permission

    wanted = set(names)
    labels = {name: name for name in wanted}
    for permission in Permission.objects.select_related("content_type").filter(
        content_type__app_label__in={name.split(".")[0] for name in wanted}
    ):
        name = f"{permission.content_type.app_label}.{permission.codename}"
        if name in wanted:
            labels[name] = permission.name
    return labels


def permissions_by_area(names, labels: dict[str, str] | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """`names` as [(area, [(name, label), ...]), ...], areas and names in the order of the administrator's list.
    Pass `labels` (from permission_labels) to save its query when grouping several lists."""
    order = {name: index for index, name in enumerate(composable_permissions())}
    labels = labels if labels is not None else permission_labels(names)
    areas: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(set(names), key=lambda name: (order.get(name, len(order)), name)):
        areas.setdefault(permission_area(name), []).append((name, labels[name]))
    return list(areas.items())


def group_permission_names(group) -> list[str]:
    return sorted(
        f"{permission.content_type.app_label}.{permission.codename}"
        for permission in group.permissions.select_related("content_type")
    )


def permission_matrix() -> list[tuple[str, list[tuple[str, str, list[bool]]]]]:
    """The built-in roles × permissions table: [(area, [(name, label, [held by each Role, in order]), ...])]."""
    names = {name for held in ROLE_PERMISSIONS.values() for name in held}
    return [
        (area, [(name, label, [name in ROLE_PERMISSIONS[role] for role in Role]) for name, label in rows])
        for area, rows in permissions_by_area(names)
    ]
