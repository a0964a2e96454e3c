"""The authorization matrix: every URL of the site and every operation of the API, for every persona.

The expectations are written out here, not derived from the views' decorators, so a view guarded by the
wrong permission fails. A URL or API operation added without a row here fails too.
"""

import json
from dataclasses import dataclass
from datetime import time

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import URLResolver, get_resolver, reverse

from audiences.models import AttributeDefinition, Audience, IdentityNamespace, Profile, ProfileImport
from campaigns.models import ApprovalPolicy, Campaign, CampaignVersion, FrequencyCap, QuietHours
from campaigns.services import approval, lifecycle, triggers
from channels.models import InboxMessage, Suppression
from channels.unsubscribe import unsubscribe_token
from config.api import api
from permissions.models import Notification
from permissions.services.api_keys import api_key_create, api_key_revoke
from permissions.services.invitations import invitation_create
from tests.campaigns.test_tracking import click_path, open_path, tracked_delivery
from tests.channels.conftest import make_configuration
from tests.conftest import PASSWORD, make_email_configuration

ADMIN = {"ada"}
PUBLISHERS = {"ada", "april"}
EDITORS = {"ada", "april", "manny"}
CAMPAIGN_ROLES = {"ada", "april", "manny", "vera"}
LOGGED_IN = CAMPAIGN_ROLES | {"otto"}
EVERYONE = LOGGED_IN | {"anonymous"}
PERSONAS = sorted(EVERYONE)
IMPORTERS = {"ada", "manny"}


@dataclass(frozen=True)
class Rule:
    allowed: set[str]
    method: str = "GET"
    # The URL's keyword arguments, from the objects the `world` fixture makes.
    kwargs: tuple[str, ...] = ()
    # The status an allowed persona gets for a GET (a POST only has to get through the permission check).
    status: int = 200
    # Logged-in personas outside `allowed` get this (403), unless the URL hides what they may not see (404).
    denied_status: int = 403
    # Logging out lands on the login page by design; for any other URL that means "refused".
    lands_on_login: bool = False
    # A provider's webhook: its credential is a signature, not a login, so every persona posting without
    # one gets 403, logged in or not.
    signed: bool = False
    # The metrics endpoint: its credential is a bearer token (METRICS_TOKEN, set for the test), not a login, so
    # every persona asking without it gets 401, logged in or not.
    bearer: bool = False


C = ("pk:campaign",)
P = ("pk:profile",)
# Holders of audiences.view_profile (and view_attributedefinition): the administrator and the manager.
PROFILE_VIEWERS = {"ada", "manny"}
A = ("pk:audience",)
AUDIENCE_EDITORS = {"ada", "manny"}
CONF = ("pk:configuration",)
PAGES = {
    # The home dashboard. Someone holding only other roles is sent to a page they may read instead (otto, with no
    # role at all, to the forbidden page): tests/test_dashboard.py.
    "": Rule(CAMPAIGN_ROLES),
    "metrics": Rule(set(), bearer=True),
    "login/": Rule(EVERYONE),
    "logout/": Rule(EVERYONE, method="POST", lands_on_login=True),
    "campaigns/": Rule(CAMPAIGN_ROLES),
    "campaigns/calendar/": Rule(CAMPAIGN_ROLES),
    "campaigns/new/": Rule(EDITORS),
    "campaigns/schedule-preview/": Rule(EDITORS),
    "campaigns/<int:pk>/": Rule(CAMPAIGN_ROLES, kwargs=C),
    "campaigns/<int:pk>/status/": Rule(CAMPAIGN_ROLES, kwargs=C),
    "campaigns/<int:pk>/versions/<int:number>/preview/": Rule(CAMPAIGN_ROLES, kwargs=(*C, "number:version")),
    "campaigns/<int:pk>/edit/": Rule(EDITORS, kwargs=C),
    "campaigns/<int:pk>/contract/": Rule(EDITORS, method="POST", kwargs=C),
    # Proofs: holders of campaigns.send_proof (administrators, approvers, managers).
    "campaigns/<int:pk>/proofs/": Rule(EDITORS, method="POST", kwargs=C),
    "campaigns/<int:pk>/submit/": Rule(EDITORS, method="POST", kwargs=C),
    "campaigns/<int:pk>/review/": Rule(PUBLISHERS, kwargs=C),
    "campaigns/<int:pk>/review/approve/": Rule(PUBLISHERS, method="POST", kwargs=C),
    "campaigns/<int:pk>/review/request-changes/": Rule(PUBLISHERS, method="POST", kwargs=C),
    "campaigns/<int:pk>/activate/": Rule(PUBLISHERS, method="POST", kwargs=C),
    "campaigns/<int:pk>/pause/": Rule(PUBLISHERS, method="POST", kwargs=C),
    "campaigns/<int:pk>/resume/": Rule(PUBLISHERS, method="POST", kwargs=C),
    "campaigns/<int:pk>/stop/": Rule(PUBLISHERS, method="POST", kwargs=C),
    "campaigns/<int:pk>/versions/": Rule(CAMPAIGN_ROLES, kwargs=C),
    # Exporting a run's deliveries: holders of campaigns.export_delivery (administrators).
    "campaigns/<int:pk>/runs/<int:run_id>/deliveries.csv": Rule(ADMIN, kwargs=("pk:tracked_campaign", "run_id:run")),
    "campaigns/<int:pk>/report/": Rule(CAMPAIGN_ROLES, kwargs=C),
    "campaigns/<int:pk>/runs/<int:run_id>/report/": Rule(CAMPAIGN_ROLES, kwargs=("pk:tracked_campaign", "run_id:run")),
    "campaigns/<int:pk>/runs/<int:run_id>/report/live/": Rule(
        CAMPAIGN_ROLES, kwargs=("pk:tracked_campaign", "run_id:run")
    ),
    "campaigns/<int:pk>/duplicate/": Rule(EDITORS, method="POST", kwargs=C),
    # Deleting: holders of campaigns.delete_campaign (administrators); the page confirms first.
    "campaigns/<int:pk>/delete/": Rule(ADMIN, kwargs=C),
    "campaigns/<int:pk>/archive/": Rule(EDITORS, method="POST", kwargs=C),
    "campaigns/<int:pk>/unarchive/": Rule(EDITORS, method="POST", kwargs=C),
    "campaigns/approval-policies/": Rule(ADMIN),
    "campaigns/approval-policies/new/": Rule(ADMIN),
    "campaigns/approval-policies/<int:pk>/": Rule(ADMIN, kwargs=("pk:policy",)),
    "campaigns/approval-policies/<int:pk>/delete/": Rule(ADMIN, method="POST", kwargs=("pk:policy",)),
    "campaigns/delivery-rules/": Rule(ADMIN),
    "campaigns/delivery-rules/caps/new/": Rule(ADMIN),
    "campaigns/delivery-rules/caps/<int:pk>/": Rule(ADMIN, kwargs=("pk:cap",)),
    "campaigns/delivery-rules/caps/<int:pk>/delete/": Rule(ADMIN, method="POST", kwargs=("pk:cap",)),
    "campaigns/delivery-rules/quiet-hours/new/": Rule(ADMIN),
    "campaigns/delivery-rules/quiet-hours/<int:pk>/": Rule(ADMIN, kwargs=("pk:quiet_hours",)),
    "campaigns/delivery-rules/quiet-hours/<int:pk>/delete/": Rule(ADMIN, method="POST", kwargs=("pk:quiet_hours",)),
    "settings/api-keys/": Rule(ADMIN),
    "settings/api-keys/new/": Rule(ADMIN),
    "settings/api-keys/<int:pk>/": Rule(ADMIN, kwargs=("pk:api_key",)),
    "settings/api-keys/<int:pk>/revoke/": Rule(ADMIN, method="POST", kwargs=("pk:api_key",)),
    "settings/users/": Rule(ADMIN),
    "settings/users/add/": Rule(ADMIN),
    "settings/users/<int:pk>/": Rule(ADMIN, kwargs=("pk:target",)),
    "settings/users/<int:pk>/roles/": Rule(ADMIN, method="POST", kwargs=("pk:target",)),
    "settings/users/<int:pk>/deactivate/": Rule(ADMIN, method="POST", kwargs=("pk:target",)),
    "settings/users/<int:pk>/invite/": Rule(ADMIN, method="POST", kwargs=("pk:target",)),
    "settings/roles/": Rule(ADMIN),
    "settings/roles/add/": Rule(ADMIN),
    "settings/roles/<int:pk>/edit/": Rule(ADMIN, kwargs=("pk:role",)),
    "settings/roles/<int:pk>/delete/": Rule(ADMIN, method="POST", kwargs=("pk:role",)),
    "settings/roles/<int:pk>/members/": Rule(ADMIN, method="POST", kwargs=("pk:role",)),
    "settings/roles/<int:pk>/members/<int:user_pk>/remove/": Rule(
        ADMIN, method="POST", kwargs=("pk:role", "user_pk:target")
    ),
    "settings/audit/": Rule(ADMIN),
    "settings/audit/export/": Rule(ADMIN),
    # Per-user pages: every logged-in user, each seeing only their own notifications.
    "settings/notifications/": Rule(LOGGED_IN),
    "settings/notifications/<int:pk>/open/": Rule(LOGGED_IN, method="POST", kwargs=("pk:own_notification",)),
    "settings/notifications/read/": Rule(LOGGED_IN, method="POST"),
    # The one page for people without an account yet: the token is the credential.
    "settings/invitations/<str:token>/": Rule(EVERYONE, kwargs=("token:invitation",)),
    # --- audiences: profiles, identity namespaces, attribute schema, consent settings ---
    "audiences/profiles/": Rule(PROFILE_VIEWERS),
    "audiences/profiles/<int:pk>/": Rule(PROFILE_VIEWERS, kwargs=P),
    "audiences/profiles/<int:pk>/export/": Rule(ADMIN, kwargs=P),
    "audiences/profiles/<int:pk>/erase/": Rule(ADMIN, kwargs=P),
    "campaigns/profiles/<int:profile_id>/messages/": Rule(ADMIN, kwargs=("profile_id:profile",)),
    "audiences/attributes/": Rule(PROFILE_VIEWERS),
    "audiences/attributes/new/": Rule(ADMIN),
    "audiences/attributes/<int:pk>/": Rule(PROFILE_VIEWERS, kwargs=("pk:attribute",)),
    "audiences/identity-namespaces/": Rule(ADMIN),
    "audiences/identity-namespaces/new/": Rule(ADMIN),
    "audiences/identity-namespaces/<int:pk>/delete/": Rule(ADMIN, method="POST", kwargs=("pk:namespace",)),
    "audiences/consent-settings/": Rule(ADMIN),
    # --- audiences: audience pages ---
    # Seeing audiences: administrators, approvers, managers; building them: administrators and managers.
    "audiences/": Rule(EDITORS),
    "audiences/new/": Rule(AUDIENCE_EDITORS),
    "audiences/rule-builder/": Rule(AUDIENCE_EDITORS, method="POST"),
    "audiences/rule-estimate/": Rule(AUDIENCE_EDITORS, method="POST"),
    "audiences/<int:pk>/": Rule(EDITORS, kwargs=A),
    "audiences/<int:pk>/edit/": Rule(AUDIENCE_EDITORS, kwargs=A),
    "audiences/<int:pk>/delete/": Rule(ADMIN, method="POST", kwargs=A),
    "audiences/<int:pk>/size/": Rule(EDITORS, kwargs=A),
    "audiences/<int:pk>/preview/": Rule(EDITORS, kwargs=A),
    # --- audiences: imports ---
    # Importing and following imports: administrators and managers.
    "audiences/imports/": Rule(IMPORTERS),
    "audiences/imports/new/": Rule(IMPORTERS),
    "audiences/imports/<int:pk>/": Rule(IMPORTERS, kwargs=("pk:profile_import",)),
    "audiences/imports/<int:pk>/map/": Rule(IMPORTERS, kwargs=("pk:profile_import",)),
    "audiences/imports/<int:pk>/progress/": Rule(IMPORTERS, kwargs=("pk:profile_import",)),
    "audiences/imports/<int:pk>/cancel/": Rule(IMPORTERS, method="POST", kwargs=("pk:profile_import",)),
    "audiences/imports/<int:pk>/errors.csv": Rule(IMPORTERS, kwargs=("pk:profile_import",)),
    "audiences/imports/<int:pk>/rows-to-fix.csv": Rule(IMPORTERS, kwargs=("pk:profile_import",)),
    # --- channels: configurations ---
    # Seeing them: administrators, approvers, managers; creating, changing, testing and deleting: administrators.
    "channels/": Rule(EDITORS),
    "channels/new/": Rule(ADMIN),
    "channels/<int:pk>/": Rule(EDITORS, kwargs=CONF),
    "channels/<int:pk>/edit/": Rule(ADMIN, kwargs=CONF),
    "channels/<int:pk>/active/": Rule(ADMIN, method="POST", kwargs=CONF),
    "channels/<int:pk>/delete/": Rule(ADMIN, method="POST", kwargs=CONF),
    "channels/<int:pk>/send-test/": Rule(ADMIN, method="POST", kwargs=CONF),
    # --- channels: suppression ---
    "channels/suppression/": Rule(ADMIN),
    "channels/suppression/export/": Rule(ADMIN),
    "channels/suppression/add/": Rule(ADMIN),
    "channels/suppression/<int:pk>/remove/": Rule(ADMIN, method="POST", kwargs=("pk:suppression",)),
    # --- channels: public endpoints ---
    # Recipients' links: the signed token is the credential (channels.unsubscribe).
    "u/<str:token>/": Rule(EVERYONE, kwargs=("token:unsubscribe",)),
    # The tracking links in messages: the signed token is the credential (campaigns.tracking); a click redirects.
    "t/o/<str:token>/": Rule(EVERYONE, kwargs=("token:open",)),
    "t/c/<str:token>/": Rule(EVERYONE, kwargs=("token:click",), status=302),
    "channels/<int:pk>/sms/inbound/": Rule(set(), method="POST", kwargs=("pk:sms_configuration",), signed=True),
    "channels/<int:pk>/feedback/": Rule(set(), method="POST", kwargs=CONF, signed=True),
    "channels/<int:pk>/feedback/dsn/": Rule(set(), method="POST", kwargs=CONF, signed=True),
    # The API's own documentation is public; its operations are checked by API_OPERATIONS below.
    "api/openapi.json": Rule(EVERYONE),
    "api/docs": Rule(EVERYONE),
}
API_ROUTES = {"api/", "api/v1/me", "api/v1/campaigns/<campaign_id>"}
API_ROUTES |= {"api/v1/profiles", "api/v1/profiles/<profile_id>", "api/v1/profiles/<profile_id>/export"}
API_ROUTES |= {
    "api/v1/inbox/<profile_id>/messages",
    "api/v1/inbox/<profile_id>/messages/<message_id>/read",
    "api/v1/inbox/<profile_id>/messages/<message_id>",
}
API_ROUTES |= {
    "api/v1/campaigns/<campaign_id>/trigger",
    "api/v1/campaigns/<campaign_id>/trigger-audience",
    "api/v1/executions/<execution_id>",
    "api/v1/trigger-requests/<path:request_id>",
    "api/v1/health",
}


def _routes(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def test_every_url_has_a_rule_and_every_rule_a_url():
    routes = set(_routes())
    assert routes - set(PAGES) - API_ROUTES == set(), "URLs without a rule in the authorization matrix"
    assert set(PAGES) - routes == set(), "rules for URLs that no longer exist"


@pytest.fixture
def world(personas, django_user_model):
    ada = personas["ada"]
    configuration = make_email_configuration(port=25)
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    campaign = lifecycle.campaign_create(
        actor=personas["manny"],
        name="Matrix",
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content("Hi", "<p>Hi</p>", "Hi"),
    )
    triggered = lifecycle.campaign_create(
        actor=ada,
        name="Password reset",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=configuration,
        audience=None,
        content=lifecycle.Content("Reset", "<p>{{ context.url }}</p>", "{{ context.url }}"),
    )
    target = django_user_model.objects.create_user("target", "target@example.com", PASSWORD)
    role = Group.objects.create(name="Custom role")
    target.groups.add(role)
    policy = ApprovalPolicy.objects.create(name="Everything", created_by=ada)
    api_key, _ = api_key_create(actor=ada, name="k", all_triggered_campaigns=True)
    invitation = invitation_create(actor=ada, user=django_user_model.objects.create_user("invited"))
    notifications = {
        username: Notification.objects.create(user=user, title="Hello").pk for username, user in personas.items()
    }
    profile = Profile.objects.create(email="matrix@example.com")
    tracked = tracked_delivery(actor=ada, configuration=configuration, audience=audience, profile=profile)
    attribute = AttributeDefinition.objects.create(name="first_name", type="string")
    namespace = IdentityNamespace.objects.create(name="loyalty", label="Loyalty card")
    return {
        "campaign": campaign.pk,
        "audience": audience.pk,
        "version": 1,
        "triggered": triggered.pk,
        "target": target.pk,
        "role": role.pk,
        "policy": policy.pk,
        "cap": FrequencyCap.objects.create(name="Weekly", limit=3, period="week", created_by=ada).pk,
        "quiet_hours": QuietHours.objects.create(channel="email", start=time(21), end=time(8), created_by=ada).pk,
        "api_key": api_key.pk,
        "invitation": invitation,
        "notifications": notifications,
        "profile": profile.pk,
        "attribute": attribute.pk,
        "namespace": namespace.pk,
        "profile_import": _profile_import(ada).pk,
        "configuration": configuration.pk,
        "unsubscribe": unsubscribe_token(profile_id=profile.pk, channel="email"),
        "open": open_path(tracked.pk).split("/")[-2],
        "click": click_path(tracked.pk).split("/")[-2],
        "tracked_campaign": tracked.run.campaign_id,
        "run": tracked.run_id,
        "suppression": Suppression.objects.create(channel="email", address="matrix@example.com", reason="manual").pk,
        "sms_configuration": make_configuration(
            "sms", name="Matrix texts", account_sid="AC1", auth_token="t", from_number="+15559990000"
        ).pk,
    }


def _profile_import(actor) -> ProfileImport:
    """An uploaded import waiting for its mapping; its one small file is kept in storage once for every test."""
    name = "imports/matrix/matrix.csv"
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(b"email\nmatrix-import@example.com\n"))
    return ProfileImport.objects.create(file=name, original_name="matrix.csv", header=["email"], created_by=actor)


def _url(route: str, rule: Rule, world: dict, persona: str) -> str:
    path = route
    for spec in rule.kwargs:
        name, _, source = spec.partition(":")
        if source == "own_notification":
            value = world["notifications"].get(persona, world["notifications"]["ada"])
        else:
            value = world[source]
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<str:{name}>", str(value))
    return "/" + path


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("route", sorted(PAGES))
def test_page_answers_each_persona_as_the_matrix_says(client, personas, world, settings, route, persona):
    rule = PAGES[route]
    if persona != "anonymous":
        client.force_login(personas[persona])
    url = _url(route, rule, world, persona)
    if rule.bearer:
        settings.METRICS_TOKEN = "matrix-metrics-token-0123456789"

    response = client.generic(rule.method, url)

    login = reverse("login")
    if rule.signed:
        assert response.status_code == 403, f"{persona} got {response.status_code} at {url} without a signature"
    elif rule.bearer:
        assert response.status_code == 401, f"{persona} got {response.status_code} at {url} without the token"
    elif persona in rule.allowed:
        assert response.status_code not in (401, 403, 404, 405), f"{persona} refused at {rule.method} {url}"
        if not rule.lands_on_login:
            assert not response.get("Location", "").startswith(login), f"{persona} sent to log in at {url}"
        if rule.method == "GET":
            assert response.status_code == rule.status, f"{persona} got {response.status_code} at {url}"
    elif persona == "anonymous":
        assert response.status_code == 302 and response["Location"].startswith(login), url
    else:
        assert response.status_code == rule.denied_status, f"{persona} got {response.status_code} at {url}"


def test_a_notification_of_someone_else_is_not_found(client, personas, world):
    client.force_login(personas["vera"])
    someone_elses = world["notifications"]["ada"]

    response = client.post(f"/settings/notifications/{someone_elses}/open/")

    assert response.status_code == 404
    assert Notification.objects.get(pk=someone_elses).read_at is None


# The API ------------------------------------------------------------------------------------------------

# What each operation requires: "any" valid key, a key whose scope covers the campaign named in the path (or
# the campaign of the call asked about), the profiles scope, or None: no key at all.
API_OPERATIONS = {
    ("GET", "/api/v1/me"): "any",
    ("GET", "/api/v1/health"): None,
    ("GET", "/api/v1/campaigns/{campaign_id}"): "campaign",
    # --- campaigns: trigger API ---
    ("POST", "/api/v1/campaigns/{campaign_id}/trigger"): "campaign",
    ("POST", "/api/v1/campaigns/{campaign_id}/trigger-audience"): "campaign",
    ("GET", "/api/v1/executions/{execution_id}"): "campaign",
    ("GET", "/api/v1/trigger-requests/{request_id}"): "campaign",
    # --- audiences: profile API ---
    ("POST", "/api/v1/profiles"): "profiles",
    ("GET", "/api/v1/profiles/{profile_id}/export"): "profiles",
    ("DELETE", "/api/v1/profiles/{profile_id}"): "profiles",
    # --- channels: inbox API ---
    ("GET", "/api/v1/inbox/{profile_id}/messages"): "profiles",
    ("POST", "/api/v1/inbox/{profile_id}/messages/{message_id}/read"): "profiles",
    ("DELETE", "/api/v1/inbox/{profile_id}/messages/{message_id}"): "profiles",
}
# What an allowed key gets from an operation that does not answer 200, and the body it sends.
API_SUCCESS = {
    ("DELETE", "/api/v1/profiles/{profile_id}"): 204,
    ("DELETE", "/api/v1/inbox/{profile_id}/messages/{message_id}"): 204,
    ("POST", "/api/v1/campaigns/{campaign_id}/trigger"): 202,
    ("POST", "/api/v1/campaigns/{campaign_id}/trigger-audience"): 202,
}
# What a valid key out of scope gets when it is not 403: the status of a call is found only among the calls the
# key may read, so another campaign's call is as absent as one that never was.
API_OUT_OF_SCOPE = {
    ("GET", "/api/v1/executions/{execution_id}"): 404,
    ("GET", "/api/v1/trigger-requests/{request_id}"): 404,
}
API_BODIES = {
    ("POST", "/api/v1/profiles"): {"profiles": [{"email": "api-matrix@example.com"}]},
    ("POST", "/api/v1/campaigns/{campaign_id}/trigger"): {
        "requestId": "m-1",
        "recipients": [{"profileId": "<profile>"}],
    },
    ("POST", "/api/v1/campaigns/{campaign_id}/trigger-audience"): {"requestId": "m-2"},
}
API_PERSONAS = ["no key", "session only", "revoked", "all campaigns", "this campaign", "other campaign", "profiles"]


def _operations():
    schema = api.get_openapi_schema()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def test_every_api_operation_has_a_rule_that_matches_its_documented_scope():
    operations = {(method, path): operation for method, path, operation in _operations()}
    assert set(operations) == set(API_OPERATIONS)
    for key, operation in operations.items():
        assert operation.get("x-required-scope") == API_OPERATIONS[key], key
        if API_OPERATIONS[key] is None:
            assert not operation.get("security"), f"{key} declares security but needs no key"
        else:
            assert operation.get("security"), f"{key} declares no security"


@pytest.fixture
def api_world(world, personas):
    """The triggered campaign active (approved, as the world's policy asks), with an audience, so a key in scope
    can trigger it; a call made to it."""
    ada = personas["ada"]
    Campaign.objects.filter(pk=world["triggered"]).update(audience_id=world["audience"])
    CampaignVersion.objects.filter(campaign_id=world["triggered"]).update(audience_id=world["audience"])
    triggered = Campaign.objects.get(pk=world["triggered"])
    ApprovalPolicy.objects.get(pk=world["policy"]).approver_users.add(personas["april"])
    approval.campaign_submit_for_review(campaign=triggered, actor=ada)
    triggered = lifecycle.campaign_approve_and_activate(campaign=triggered, actor=personas["april"])
    call = triggers.trigger_unitary(
        earlier=None,
        campaign=triggered,
        api_key_prefix="matrix",
        request_id="matrix-call",
        digest=triggers.body_hash({"recipients": [{"profileId": world["profile"]}]}),
        context={},
        recipients=[triggers.RecipientIn(profile_id=world["profile"])],
    ).body
    other = lifecycle.campaign_create(
        actor=ada,
        name="Other",
        kind=Campaign.Kind.API_TRIGGERED,
        channel_configuration=make_email_configuration(port=25, name="Other relay"),
        audience=None,
        content=lifecycle.Content("x", "x", "x"),
    )
    revoked, revoked_secret = api_key_create(actor=ada, name="revoked", all_triggered_campaigns=True)
    api_key_revoke(actor=ada, key=revoked)
    keys = {
        "revoked": revoked_secret,
        "all campaigns": api_key_create(actor=ada, name="all", all_triggered_campaigns=True)[1],
        "this campaign": api_key_create(actor=ada, name="this", campaign_ids=[world["triggered"]])[1],
        "other campaign": api_key_create(actor=ada, name="other", campaign_ids=[other.pk])[1],
        "profiles": api_key_create(actor=ada, name="profiles", profiles=True)[1],
    }
    inbox_message = InboxMessage.objects.create(
        profile_id=world["profile"], configuration=make_configuration("in_app"), delivery_id=1, title="Hi"
    )
    return {
        **world,
        "keys": keys,
        "inbox_message": inbox_message.pk,
        "execution_id": call["executionId"],
        "request_id": call["requestId"],
    }


def _expected_api_status(scope: str | None, persona: str) -> int:
    if scope is None:
        return 200
    if persona in ("no key", "session only", "revoked"):
        return 401
    if scope == "profiles":  # the profile API and the inbox API
        return 200 if persona == "profiles" else 403
    if scope == "any" or persona in ("all campaigns", "this campaign"):
        return 200
    return 403


@pytest.mark.parametrize("persona", API_PERSONAS)
@pytest.mark.parametrize(("method", "path"), sorted(API_OPERATIONS))
def test_api_operation_answers_each_key_as_the_matrix_says(client, personas, api_world, method, path, persona):
    headers = {}
    if persona in api_world["keys"]:
        headers["Authorization"] = f"Bearer {api_world['keys'][persona]}"
    if persona == "session only":
        client.force_login(personas["ada"])  # a browser session is no API credential
    url = path.replace("{campaign_id}", str(api_world["triggered"])).replace("{profile_id}", str(api_world["profile"]))
    url = url.replace("{message_id}", str(api_world["inbox_message"]))
    url = url.replace("{execution_id}", api_world["execution_id"]).replace("{request_id}", api_world["request_id"])
    body = json.dumps(API_BODIES[(method, path)]) if (method, path) in API_BODIES else ""
    body = body.replace('"<profile>"', str(api_world["profile"]))

    response = client.generic(method, url, data=body, content_type="application/json", headers=headers)

    expected = _expected_api_status(API_OPERATIONS[(method, path)], persona)
    expected = API_SUCCESS.get((method, path), 200) if expected == 200 else expected
    expected = API_OUT_OF_SCOPE.get((method, path), 403) if expected == 403 else expected
    assert response.status_code == expected, response.content
