"""The Roles and Users tabs: the permission matrix, custom roles, inviting, roles, deactivation."""

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.urls import URLResolver, reverse

from permissions.models import AuditEvent
from permissions.roles import ROLE_PERMISSIONS, Role, group_permission_names
from tests.conftest import PASSWORD

DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
User = get_user_model()


def _login(client, user):
    client.force_login(user)
    return client


def _custom_role(name="Reporter", names=("campaigns.view_campaign", "campaigns.view_report")):
    group = Group.objects.create(name=name)
    for permission_name in names:
        app_label, codename = permission_name.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return group


# The roles page and the matrix


def test_roles_page_shows_each_role_with_its_permissions_and_users(client, personas):
    response = _login(client, personas["ada"]).get(reverse("permissions:roles"))

    assert response.status_code == 200
    page = response.content.decode()
    for role in Role:
        assert role.value in page
    assert "Can publish campaigns (activate, pause, stop)" in page
    assert "Audiences and profiles" in page
    for username in ["ada", "april", "manny", "vera"]:
        assert f">{username}</a>" in page


def test_roles_page_shows_the_matrix_of_the_builtin_roles(client, personas):
    response = _login(client, personas["ada"]).get(reverse("permissions:roles"))

    matrix = response.context["matrix"]
    rows = {name: held for _, area_rows in matrix for name, _, held in area_rows}
    assert set(rows) == {name for names in ROLE_PERMISSIONS.values() for name in names}
    for name, held in rows.items():
        assert held == [name in ROLE_PERMISSIONS[role] for role in Role], name


def test_the_documented_matrix_matches_role_permissions():
    lines = DOCS.read_text().splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| permission |"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert table[0][2:] == ["administrator", "approver", "manager", "viewer"]
    documented = {row[0].strip("`"): [cell == "✓" for cell in row[2:]] for row in table[2:] if row[0].startswith("`")}

    every = {name for names in ROLE_PERMISSIONS.values() for name in names}
    assert documented == {name: [name in ROLE_PERMISSIONS[role] for role in Role] for name in every}


@pytest.mark.parametrize("username", ["april", "manny", "vera", "otto"])
def test_roles_page_is_refused_without_view_group(client, personas, username):
    response = _login(client, personas[username]).get(reverse("permissions:roles"))

    assert response.status_code == 403


def test_roles_page_sends_anonymous_visitors_to_login(client, db):
    response = client.get(reverse("permissions:roles"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# Custom roles


def test_administrator_creates_a_custom_role_and_it_is_audited(client, personas):
    response = _login(client, personas["ada"]).post(
        reverse("permissions:role_create"),
        {"name": "Reporter", "permissions": ["campaigns.view_campaign", "campaigns.view_report"]},
    )

    group = Group.objects.get(name="Reporter")
    assert response.status_code == 302
    assert group_permission_names(group) == ["campaigns.view_campaign", "campaigns.view_report"]
    event = AuditEvent.objects.get(action="role.created")
    assert event.actor == personas["ada"]
    assert event.after == {"name": "Reporter", "permissions": ["campaigns.view_campaign", "campaigns.view_report"]}


def test_a_custom_role_grants_its_permissions(client, personas):
    group = _custom_role(names=["campaigns.view_campaign", "campaigns.view_report", "auth.view_user"])
    personas["otto"].groups.add(group)

    response = _login(client, User.objects.get(username="otto")).get(reverse("permissions:users"))

    assert response.status_code == 200


def test_custom_role_edit_is_audited_with_before_and_after(client, personas):
    group = _custom_role()

    response = _login(client, personas["ada"]).post(
        reverse("permissions:role_edit", args=[group.pk]),
        {"name": "Report reader", "permissions": ["campaigns.view_report"]},
    )

    assert response.status_code == 302
    group.refresh_from_db()
    assert group.name == "Report reader"
    assert group_permission_names(group) == ["campaigns.view_report"]
    event = AuditEvent.objects.get(action="role.changed")
    assert event.before == {"name": "Reporter", "permissions": ["campaigns.view_campaign", "campaigns.view_report"]}
    assert event.after == {"name": "Report reader", "permissions": ["campaigns.view_report"]}


def test_custom_role_delete_removes_it_from_its_users_and_is_audited(client, personas):
    group = _custom_role()
    personas["otto"].groups.add(group)

    response = _login(client, personas["ada"]).post(reverse("permissions:role_delete", args=[group.pk]))

    assert response.status_code == 302
    assert not Group.objects.filter(name="Reporter").exists()
    assert not personas["otto"].groups.exists()
    event = AuditEvent.objects.get(action="role.deleted")
    assert event.before["users"] == ["otto"]
    assert event.object_repr == "Reporter"


def test_builtin_roles_cannot_be_edited_or_deleted(client, personas):
    viewer = Group.objects.get(name=Role.VIEWER)
    _login(client, personas["ada"])

    edit = client.post(reverse("permissions:role_edit", args=[viewer.pk]), {"name": "X", "permissions": []})
    delete = client.post(reverse("permissions:role_delete", args=[viewer.pk]))

    assert edit.status_code == delete.status_code == 302
    viewer.refresh_from_db()
    assert viewer.name == Role.VIEWER
    assert group_permission_names(viewer) == sorted(ROLE_PERMISSIONS[Role.VIEWER])
    assert not AuditEvent.objects.filter(action__startswith="role.").exists()


def test_custom_role_takes_only_the_administrators_permissions(client, personas):
    response = _login(client, personas["ada"]).post(
        reverse("permissions:role_create"), {"name": "Sneaky", "permissions": ["auth.delete_user"]}
    )

    assert response.status_code == 200
    assert "permissions" in response.context["form"].errors
    assert not Group.objects.filter(name="Sneaky").exists()


def test_custom_role_cannot_take_a_builtin_name(client, personas):
    response = _login(client, personas["ada"]).post(
        reverse("permissions:role_create"), {"name": "campaign VIEWER", "permissions": ["campaigns.view_campaign"]}
    )

    assert response.status_code == 200
    assert "built-in" in str(response.context["form"].errors)


@pytest.mark.parametrize("url_name", ["role_create"])
def test_non_administrators_cannot_compose_roles(client, personas, url_name):
    response = _login(client, personas["april"]).post(
        reverse(f"permissions:{url_name}"), {"name": "Mine", "permissions": ["campaigns.view_campaign"]}
    )

    assert response.status_code == 403
    assert not Group.objects.filter(name="Mine").exists()


# Users


def test_users_list_searches_username_name_and_email(client, personas):
    User.objects.create_user("grace", "hopper@navy.example", first_name="Grace", last_name="Hopper")
    _login(client, personas["ada"])

    def found(query):
        response = client.get(reverse("permissions:users"), {"q": query})
        return {row["user"].username for row in response.context["rows"]}

    assert found("") >= {"ada", "grace", "vera"}
    assert found("gra") == {"grace"}
    assert found("grace hopper") == {"grace"}
    assert found("navy.example") == {"grace"}
    assert found("nobody") == set()


def test_a_user_search_holding_a_nul_character_answers_400_saying_so(client, personas):
    """PostgreSQL refused to compare text with a NUL character: a server error before."""
    _login(client, personas["ada"])

    response = client.get(reverse("permissions:users"), {"q": "ada\x00"})

    assert response.status_code == 400
    assert "The search contains a NUL character (position 4)" in response.content.decode()


def test_users_list_shows_roles_and_state(client, personas):
    response = _login(client, personas["ada"]).get(reverse("permissions:users"))

    rows = {row["user"].username: row for row in response.context["rows"]}
    assert rows["vera"]["state"] == "active"
    assert "Campaign viewer" in response.content.decode()


def test_adding_a_user_emails_a_working_single_use_invitation(client, personas, settings):
    settings.SITE_URL = "https://campaigns.example.com"
    response = _login(client, personas["ada"]).post(
        reverse("permissions:user_add"),
        {"full_name": "Grace Hopper", "email": "grace@example.com", "username": "", "roles": [Role.MANAGER.value]},
    )

    grace = User.objects.get(email="grace@example.com")
    assert response.status_code == 302
    assert (grace.username, grace.first_name, grace.last_name) == ("grace@example.com", "Grace", "Hopper")
    assert not grace.is_active and not grace.has_usable_password()
    assert list(grace.groups.values_list("name", flat=True)) == [Role.MANAGER.value]
    [message] = mail.outbox
    assert message.to == ["grace@example.com"]
    [link] = re.findall(r"https://campaigns\.example\.com(/settings/invitations/[\w-]+/)", message.body)

    client.logout()
    page = client.get(link)
    assert page.status_code == 200
    assert "grace@example.com" in page.content.decode()
    assert {"user.created", "user.invited", "user.roles_changed"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_adding_someone_who_has_an_account_points_to_it(client, personas):
    response = _login(client, personas["ada"]).post(
        reverse("permissions:user_add"), {"full_name": "Vera", "email": "VERA@example.com"}
    )

    assert response.status_code == 200
    assert response.context["form"].existing_user == personas["vera"]
    assert reverse("permissions:user_detail", args=[personas["vera"].pk]) in response.content.decode()
    assert not mail.outbox


def test_a_failed_invitation_email_keeps_the_user_and_says_so(client, personas, settings):
    settings.MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": {"port": 1, "timeout": 1}}
    }
    response = _login(client, personas["ada"]).post(
        reverse("permissions:user_add"), {"full_name": "Grace", "email": "grace@example.com"}, follow=True
    )

    assert User.objects.filter(email="grace@example.com").exists()
    assert "re-send it" in response.content.decode()


def test_roles_are_assigned_and_removed_with_before_and_after_in_the_audit(client, personas):
    vera = personas["vera"]
    _login(client, personas["ada"])

    client.post(reverse("permissions:user_roles", args=[vera.pk]), {"roles": [Role.VIEWER, Role.MANAGER]})
    client.post(reverse("permissions:user_roles", args=[vera.pk]), {"roles": [Role.MANAGER]})

    assert list(vera.groups.values_list("name", flat=True)) == [Role.MANAGER.value]
    added, removed = AuditEvent.objects.filter(action="user.roles_changed").order_by("id")
    assert (added.before, added.after) == (
        {"roles": [Role.VIEWER.value]},
        {"roles": sorted([Role.MANAGER.value, Role.VIEWER.value])},
    )
    assert (removed.before, removed.after) == (added.after, {"roles": [Role.MANAGER.value]})
    assert removed.actor == personas["ada"] and removed.object_id == str(vera.pk)


def test_a_user_is_picked_for_a_role_on_the_roles_page_and_removed(client, personas):
    approver = Group.objects.get(name=Role.APPROVER)
    _login(client, personas["ada"])

    client.post(reverse("permissions:role_add_member", args=[approver.pk]), {"user": "otto@example.com"})
    assert personas["otto"].groups.filter(pk=approver.pk).exists()

    client.post(reverse("permissions:role_remove_member", args=[approver.pk, personas["otto"].pk]))
    assert not personas["otto"].groups.exists()
    assert AuditEvent.objects.filter(action="user.roles_changed", object_id=str(personas["otto"].pk)).count() == 2


def test_a_role_cannot_be_granted_by_someone_lacking_its_permissions(client, personas):
    user_manager = _custom_role("User manager", ["auth.view_user", "auth.change_user"])
    otto = personas["otto"]
    otto.groups.add(user_manager)

    response = _login(client, otto).post(
        reverse("permissions:user_roles", args=[otto.pk]),
        {"roles": [user_manager.name, Role.ADMINISTRATOR]},
        follow=True,
    )

    assert not otto.groups.filter(name=Role.ADMINISTRATOR).exists()
    assert "permissions you lack" in response.content.decode()


def test_a_deactivated_user_cannot_log_in(client, personas):
    vera = personas["vera"]
    response = _login(client, personas["ada"]).post(reverse("permissions:user_deactivate", args=[vera.pk]))

    assert response.status_code == 302
    vera.refresh_from_db()
    assert not vera.is_active
    assert AuditEvent.objects.filter(action="user.deactivated", object_id=str(vera.pk)).exists()
    client.logout()
    login = client.post(reverse("login"), {"username": "vera", "password": PASSWORD})
    assert login.status_code == 200
    assert "_auth_user_id" not in client.session


def test_a_deactivated_users_open_session_ends(client, personas):
    vera = personas["vera"]
    _login(client, vera)
    vera.is_active = False
    vera.save()

    response = client.get(reverse("campaigns:list"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_administrator_cannot_deactivate_themself(client, personas):
    ada = personas["ada"]
    other = User.objects.create_user("root2", password=PASSWORD)
    other.groups.add(Group.objects.get(name=Role.ADMINISTRATOR))

    response = _login(client, ada).post(reverse("permissions:user_deactivate", args=[ada.pk]), follow=True)

    ada.refresh_from_db()
    assert ada.is_active
    assert "You cannot deactivate your own account." in response.content.decode()


def test_the_last_administrator_keeps_the_administrator_role(client, personas):
    ada = personas["ada"]

    response = _login(client, ada).post(
        reverse("permissions:user_roles", args=[ada.pk]), {"roles": [Role.VIEWER]}, follow=True
    )

    assert ada.groups.filter(name=Role.ADMINISTRATOR).exists()
    assert "You are the last active campaign administrator" in response.content.decode()
    assert not AuditEvent.objects.filter(action="user.roles_changed").exists()


def test_an_administrator_may_step_down_when_another_remains(client, personas):
    ada = personas["ada"]
    personas["april"].groups.add(Group.objects.get(name=Role.ADMINISTRATOR))

    _login(client, ada).post(reverse("permissions:user_roles", args=[ada.pk]), {"roles": [Role.VIEWER]})

    assert list(ada.groups.values_list("name", flat=True)) == [Role.VIEWER.value]


def test_an_inactive_administrator_does_not_count_as_the_remaining_one(client, personas):
    ada = personas["ada"]
    dormant = User.objects.create_user("dormant", is_active=False)
    dormant.groups.add(Group.objects.get(name=Role.ADMINISTRATOR))

    _login(client, ada).post(reverse("permissions:user_roles", args=[ada.pk]), {"roles": []})

    assert ada.groups.filter(name=Role.ADMINISTRATOR).exists()


@pytest.mark.parametrize(
    ("username", "url_name", "method"),
    [
        ("vera", "users", "get"),
        ("april", "user_add", "get"),
        ("manny", "user_roles", "post"),
        ("otto", "user_deactivate", "post"),
        ("vera", "user_invite", "post"),
        ("manny", "role_add_member", "post"),
    ],
)
def test_user_administration_is_refused_without_its_permissions(client, personas, username, url_name, method):
    needs_pk = url_name in {"user_roles", "user_deactivate", "user_invite", "role_add_member"}
    target = Group.objects.get(name=Role.VIEWER).pk if url_name == "role_add_member" else personas["ada"].pk
    url = reverse(f"permissions:{url_name}", args=[target] if needs_pk else [])

    response = getattr(_login(client, personas[username]), method)(url, {"roles": [Role.ADMINISTRATOR]})

    assert response.status_code == 403
    assert personas["ada"].is_active and not personas[username].groups.filter(name=Role.ADMINISTRATOR).exists()


def test_every_settings_view_declares_what_it_needs():
    from permissions import urls
    from permissions.views.invitations import invitation_accept

    for pattern in urls.urlpatterns:
        if isinstance(pattern, URLResolver):
            continue  # the API key pages, tested with them
        if pattern.callback is invitation_accept:
            assert pattern.callback.login_required is False  # the one public page, marked by login_not_required
        else:
            assert hasattr(pattern.callback, "required_permissions"), pattern.name
