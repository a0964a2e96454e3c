"""The permission checks of the pages (permissions.access) and the API's key scopes (permissions.api_auth).

The built-in roles hold the permissions of each guarded action together, so a check that reads only one of
several required permissions passes every built-in persona. Custom roles holding part of a set tell them apart.
"""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from audiences.models import Audience
from campaigns.models import Campaign
from campaigns.services import approval, lifecycle
from permissions.access import permission_required
from permissions.roles import Role
from permissions.services.api_keys import api_key_create
from permissions.services.users import user_invite
from tests.conftest import make_email_configuration

# The actions guarded by more than one permission: (url name, method, the permissions it needs).
MULTI_PERMISSION_ACTIONS = {
    "approve and activate": (
        "campaigns:approve",
        "post",
        ("campaigns.approve_campaign", "campaigns.activate_campaign"),
    ),
    "export suppressions": (
        "channels:suppression_export",
        "get",
        ("channels.view_suppression", "channels.export_suppression"),
    ),
    "export the audit log": (
        "permissions:audit_export",
        "get",
        ("permissions.view_auditevent", "permissions.export_auditevent"),
    ),
    "re-send an invitation": ("permissions:user_invite", "post", ("auth.add_user", "auth.change_user")),
}


def _permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def custom_role_holder(django_user_model, username: str, permission_names) -> object:
    """A user whose only role is a custom one made of `permission_names`."""
    role = Group.objects.create(name=f"Custom {username}")
    role.permissions.set([_permission(name) for name in permission_names])
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "x")
    user.groups.add(role)
    return user


@pytest.fixture
def campaign_in_review(personas):
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Spring sale",
        channel_configuration=make_email_configuration(port=25),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=lifecycle.Content("Hi", "<p>Hi</p>", "Hi"),
    )
    approval.campaign_submit_for_review(campaign=campaign, actor=personas["manny"])
    return campaign


@pytest.fixture
def invited(personas, django_user_model):
    user, _token = user_invite(actor=personas["ada"], email="newcomer@example.com")
    return user


def _url(action: str, campaign_in_review, invited) -> str:
    name = MULTI_PERMISSION_ACTIONS[action][0]
    if name == "campaigns:approve":
        return reverse(name, args=[campaign_in_review.pk])
    if name == "permissions:user_invite":
        return reverse(name, args=[invited.pk])
    return reverse(name)


@pytest.mark.parametrize("action", sorted(MULTI_PERMISSION_ACTIONS))
@pytest.mark.parametrize("held", ["first", "last"])
def test_holding_only_part_of_the_permissions_an_action_needs_is_refused(
    client, django_user_model, campaign_in_review, invited, action, held
):
    _name, method, needed = MULTI_PERMISSION_ACTIONS[action]
    partial = needed[:1] if held == "first" else needed[-1:]
    client.force_login(custom_role_holder(django_user_model, "pat", partial))

    response = getattr(client, method)(_url(action, campaign_in_review, invited))

    assert response.status_code == 403
    assert b"You don't have access to this" in response.content


@pytest.mark.parametrize("action", sorted(MULTI_PERMISSION_ACTIONS))
def test_a_custom_role_holding_every_permission_an_action_needs_is_let_through(
    client, django_user_model, campaign_in_review, invited, action
):
    _name, method, needed = MULTI_PERMISSION_ACTIONS[action]
    client.force_login(custom_role_holder(django_user_model, "pat", needed))

    response = getattr(client, method)(_url(action, campaign_in_review, invited))

    assert response.status_code in (200, 302)


def test_a_custom_approver_without_the_publish_permission_can_neither_approve_nor_activate(
    client, personas, django_user_model, campaign_in_review
):
    reviewer = custom_role_holder(django_user_model, "rita", ["campaigns.view_campaign", "campaigns.approve_campaign"])
    client.force_login(reviewer)

    review = client.get(reverse("campaigns:review", args=[campaign_in_review.pk]))
    approve = client.post(
        reverse("campaigns:approve", args=[campaign_in_review.pk]),
        {"review_key": campaign_in_review.latest_version().review_key()},
    )

    assert review.status_code == 200  # may read the review page...
    assert approve.status_code == 403  # ...but approving also publishes, which this role may not do
    campaign_in_review.refresh_from_db()
    assert campaign_in_review.status == Campaign.Status.DRAFT
    assert campaign_in_review.latest_version().review_state == "in_review"


def test_a_permission_granted_to_the_user_directly_counts_like_one_from_a_role(client, django_user_model):
    user = custom_role_holder(django_user_model, "pat", ["channels.view_suppression"])
    user.user_permissions.add(_permission("channels.export_suppression"))
    client.force_login(user)

    response = client.get(reverse("channels:suppression_export"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")


# The page a refused user gets


def test_the_refusal_names_only_roles_holding_every_needed_permission_and_the_active_administrators(
    client, personas, django_user_model, campaign_in_review
):
    retired = django_user_model.objects.create_user("zed", "zed@example.com", "x", is_active=False)
    retired.groups.add(Group.objects.get(name=Role.ADMINISTRATOR.value))
    backup = django_user_model.objects.create_user("abby", "abby@example.com", "x", first_name="Abby", last_name="A")
    backup.groups.add(Group.objects.get(name=Role.ADMINISTRATOR.value))
    client.force_login(personas["manny"])

    response = client.post(reverse("campaigns:approve", args=[campaign_in_review.pk]))

    assert response.status_code == 403
    assert response.context["roles"] == [Role.ADMINISTRATOR.value, Role.APPROVER.value]
    assert [user.username for user in response.context["administrators"]] == ["abby", "ada"]
    content = response.content.decode()
    assert "This needs one of these roles" in content and '<li class="role">Campaign approver</li>' in content
    assert "mailto:ada@example.com" in content and "zed@example.com" not in content


def test_the_refusal_is_a_page_of_the_site_with_the_users_menu(client, personas):
    client.force_login(personas["vera"])

    response = client.get(reverse("channels:suppression_export"))

    content = response.content.decode()
    assert response.status_code == 403
    assert 'action="/logout/"' in content and "csrfmiddlewaretoken" in content
    assert '<a href="/campaigns/">Back to campaigns</a>' in content  # vera may read campaigns


def test_an_action_no_built_in_role_short_of_administrator_allows_names_the_administrator_only(client, personas):
    client.force_login(personas["vera"])

    response = client.get(reverse("channels:suppression_export"))

    assert response.status_code == 403
    assert response.context["roles"] == [Role.ADMINISTRATOR.value]


def test_the_refusal_of_a_set_no_role_but_the_administrators_holds_whole_names_only_them(rf, personas):
    # The approver holds the first, the manager the second: neither role lets its holder in.
    view = permission_required("campaigns.approve_campaign", "audiences.add_audience")(lambda request: None)
    request = rf.get("/")
    request.user = personas["otto"]

    response = view(request)

    assert response.status_code == 403
    needed = response.content.decode().split("This needs one of these roles:")[1].split("</ul>")[0]
    assert re.findall(r'<li class="role">([^<]+)</li>', needed) == [Role.ADMINISTRATOR.value]


def test_every_view_says_which_permissions_it_checks():
    from campaigns.views import campaigns as views

    assert views.campaign_approve.required_permissions == (
        "campaigns.approve_campaign",
        "campaigns.activate_campaign",
    )


# Visitors who are not logged in


def test_an_anonymous_visitor_is_sent_to_log_in_and_back(client, personas):
    response = client.get("/campaigns/?page=2")

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/campaigns/%3Fpage%3D2"


def test_an_anonymous_htmx_request_sends_the_whole_page_to_the_login_form(client, personas, campaign_in_review):
    response = client.get(
        reverse("campaigns:list"),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/campaigns/?status=draft"},
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == f"{reverse('login')}?next=/campaigns/%3Fstatus%3Ddraft"
    assert not response.content


def test_an_anonymous_htmx_request_without_a_current_url_logs_in_to_the_home_page(client, personas):
    response = client.get(reverse("campaigns:list"), headers={"HX-Request": "true"})

    assert response.status_code == 204
    assert response["HX-Redirect"] == f"{reverse('login')}?next=/"


# API keys and their scopes


@pytest.fixture
def triggered(personas):
    def make(name):
        return lifecycle.campaign_create(
            actor=personas["ada"],
            name=name,
            kind=Campaign.Kind.API_TRIGGERED,
            channel_configuration=make_email_configuration(port=25, name=f"Relay {name}"),
            audience=None,
            content=lifecycle.Content("x", "x", "x"),
        )

    return make("Password reset"), make("Receipt")


def _key(personas, **scope) -> str:
    return api_key_create(actor=personas["ada"], name="k", **scope)[1]


def _get(client, path: str, authorization: str):
    return client.get(path, headers={"Authorization": authorization})


def test_a_key_for_chosen_campaigns_reads_those_and_no_other(client, personas, triggered):
    reset, receipt = triggered
    secret = _key(personas, campaign_ids=[reset.pk])

    assert _get(client, f"/api/v1/campaigns/{reset.pk}", f"Bearer {secret}").status_code == 200
    assert _get(client, f"/api/v1/campaigns/{receipt.pk}", f"Bearer {secret}").status_code == 403
    assert _get(client, "/api/v1/profiles/1/export", f"Bearer {secret}").status_code == 403


def test_a_key_for_all_triggered_campaigns_reads_each_and_learns_which_do_not_exist(client, personas, triggered):
    secret = _key(personas, all_triggered_campaigns=True)

    for campaign in triggered:
        assert _get(client, f"/api/v1/campaigns/{campaign.pk}", f"Bearer {secret}").status_code == 200
    assert _get(client, "/api/v1/campaigns/999999", f"Bearer {secret}").status_code == 404


def test_a_key_for_all_triggered_campaigns_does_not_read_a_scheduled_one(client, personas, triggered):
    scheduled = lifecycle.campaign_create(
        actor=personas["ada"],
        name="Newsletter",
        channel_configuration=make_email_configuration(port=25, name="Newsletter relay"),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=lifecycle.Content("x", "x", "x"),
    )
    secret = _key(personas, all_triggered_campaigns=True)

    assert _get(client, f"/api/v1/campaigns/{scheduled.pk}", f"Bearer {secret}").status_code == 404


def test_a_profiles_key_reads_no_campaign(client, personas, triggered):
    secret = _key(personas, profiles=True)

    assert _get(client, f"/api/v1/campaigns/{triggered[0].pk}", f"Bearer {secret}").status_code == 403
    assert _get(client, "/api/v1/profiles/999999/export", f"Bearer {secret}").status_code == 404


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_read_in_any_case(client, personas, scheme):
    secret = _key(personas, profiles=True)

    response = _get(client, "/api/v1/me", f"{scheme} {secret}")

    assert response.status_code == 200
    assert response.json()["scopes"] == {"all_triggered_campaigns": False, "campaign_ids": [], "profiles": True}


def test_spaces_around_the_key_are_ignored(client, personas):
    secret = _key(personas, profiles=True)

    assert _get(client, "/api/v1/me", f"Bearer  {secret} ").status_code == 200


@pytest.mark.parametrize("authorization", ["Token {secret}", "Basic {secret}", "{secret}", "Bearer", "Bearer "])
def test_a_key_without_the_bearer_scheme_or_a_scheme_without_a_key_is_refused(client, personas, authorization):
    secret = _key(personas, profiles=True)

    response = _get(client, "/api/v1/me", authorization.format(secret=secret))

    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]


def test_a_key_revoked_after_it_was_read_may_trigger_nothing(personas, triggered):
    key, _secret = api_key_create(actor=personas["ada"], name="k", all_triggered_campaigns=True)
    assert key.may_trigger(triggered[0].pk)

    key.revoked_at = timezone.now()

    assert not key.may_trigger(triggered[0].pk)
