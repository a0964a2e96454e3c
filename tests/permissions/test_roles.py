import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from permissions.roles import ROLE_PERMISSIONS, Role, sync_roles


def _held(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


@pytest.mark.django_db(transaction=True)
def test_roles_exist_with_their_permissions_after_migrating_an_empty_database():
    # Back to nothing, then migrate as a fresh installation does: no permission rows exist until
    # Django's own post-migrate handler has run, and the roles must still come out complete.
    call_command("migrate", "auth", "zero", verbosity=0)
    call_command("migrate", verbosity=0)

    for role, names in ROLE_PERMISSIONS.items():
        assert _held(Group.objects.get(name=role.value)) == set(names), role


@pytest.mark.django_db
def test_syncing_roles_twice_changes_nothing_and_repairs_drift():
    viewer = Group.objects.get(name=Role.VIEWER)
    viewer.permissions.clear()

    sync_roles()
    sync_roles()

    assert Group.objects.filter(name__in=[r.value for r in Role]).count() == 4
    assert _held(viewer) == set(ROLE_PERMISSIONS[Role.VIEWER])


def test_every_named_permission_is_declared_by_a_model(db):
    from django.contrib.auth.models import Permission

    declared = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
    named = {name for names in ROLE_PERMISSIONS.values() for name in names}
    assert named <= declared, named - declared


def test_viewer_cannot_publish_and_manager_cannot_activate():
    assert "campaigns.activate_campaign" not in ROLE_PERMISSIONS[Role.MANAGER]
    assert not {"campaigns.add_campaign", "campaigns.activate_campaign"} & set(ROLE_PERMISSIONS[Role.VIEWER])
    assert "campaigns.activate_campaign" in ROLE_PERMISSIONS[Role.APPROVER]
