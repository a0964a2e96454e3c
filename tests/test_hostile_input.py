"""No input, however hostile, reaches a server error: every public endpoint and every form of the site, fed
arbitrary text by hypothesis, answers below 500, and the pages that show what was stored keep rendering.

The text includes what browsers never send but a client can: lone surrogates (as a raw, invalid UTF-8 body and
as JSON escapes), NUL and control characters, 100 KB values, numbers no database keeps, JSON nested 5,000 deep,
markup, SQL, characters outside the BMP. Each form is posted as the administrator with the fields its own page
shows (some kept, some replaced) plus fields it does not expect. A POST-accepting URL that is neither fuzzed
here nor excluded with a reason fails `test_every_url_accepting_post_is_fuzzed_or_excluded`.

Bounded and derandomized: the same examples on every run. The REST API is fuzzed from its schema by
tests/test_api_fuzz.py.
"""

import json
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import Client, override_settings
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audiences.models import AttributeDefinition, Audience, IdentityNamespace, Profile, ProfileImport
from campaigns.models import ApprovalPolicy, Campaign, FrequencyCap, QuietHours
from campaigns.services import approval, lifecycle
from channels.feedback import feedback_signature
from channels.inbound_sms import twilio_signature
from channels.models import ChannelConfiguration, Suppression
from channels.schemas import SETTINGS_MODELS
from channels.unsubscribe import unsubscribe_token
from permissions.models import Notification
from permissions.roles import Role
from permissions.services.api_keys import api_key_create
from permissions.services.invitations import invitation_create
from tests.audiences.test_audience_pages import _Inputs
from tests.campaigns.test_tracking import click_path, open_path, tracked_delivery
from tests.channels.conftest import make_configuration
from tests.channels.test_settings_schemas import pem, valid_settings
from tests.conftest import make_email_configuration
from tests.test_authorization_matrix import _routes

pytestmark = pytest.mark.both_databases  # what overflows or refuses a character differs per database

FEEDBACK_SECRET = "hostile-feedback-secret-0123456789"
AUTH_TOKEN = "hostile-twilio-auth-token-0123456789"
SITE_URL = "https://campaigns.example.org"
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a test send fails at once and stays local

# Text ---------------------------------------------------------------------------------------------------------

# Date-times with no equivalent in UTC (past year 9999, before year 1): converting them overflowed.
FAR_MOMENTS = ("9999-12-31T23:59:00-12:00", "0001-01-01T00:00:00+14:00")
HOSTILE = [
    "",
    " ",
    "\ud800",
    "\udfff",
    "a\ud800b",
    "\x00",
    "a\x00b",
    "\x01\x02\x08\x0b\x0c\x1b[31m\x7f\x85",
    "\r\n\t",
    "\u202e\u200b\ufeff\u2028",
    "x" * 100_000,
    "é" * 50_000,
    "1e308",
    "-1e308",
    "1e999",
    "9" * 400,
    "-" + "9" * 400,
    "9223372036854775808",
    "-9223372036854775809",
    "NaN",
    "Infinity",
    "-Infinity",
    "-1",
    "0",
    "0x1f",
    "１２３",
    "²",
    "[" * 5000,
    "{" * 5000,
    '{"all": ' * 200 + "[]" + "}" * 200,
    "[1, 2",
    '{"a": }',
    "null",
    "true",
    '"\\ud800"',
    '{"\\udfff": "\\u0000"}',
    '{"attribute": "age", "op": "gt", "value": 1e999}',
    '{"attribute": "age", "op": "between", "value": [1e308, -1e308]}',
    '{"attribute": "plan", "op": "in", "value": ["%s"]}' % ("9" * 400),
    '{"any": [{"member_of": %s}]}' % ("9" * 400),
    '{"member_of": -1}',
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }}{% for x in (1..999999999) %}{% endfor %}",
    "' OR 1=1 --",
    "'; DROP TABLE campaigns_campaign; --",
    "%",
    "_%\\",
    "%00",
    "../../../etc/passwd",
    "😀",
    "\U0010ffff",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "a@b",
    "@",
    "+",
    "+4477009001230000000000",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    *FAR_MOMENTS,
    "0000-00-00",
    "2026-13-45T25:61",
    "* * * * *",
    "61 25 32 13 8",
    "*/0 * * * *",
    "Etc/GMT+12",
    "Etc/GMT-14",
    "../UTC",
    "t=1,v1=",
    "=" * 300,
]

# Posted in every field of every form at once, on every run: one value of each kind that broke something once.
KILLERS = ["\ud800", "\x00", "9" * 400, "²", "-1", "1e999", "NaN", "[" * 5000, "x" * 100_000, ""]


def killers(*names, **arguments):
    """Explicit examples, run before what hypothesis draws: each of KILLERS as every parameter named, and as what
    each callable in `arguments` makes of it (other arguments are fixed)."""

    def decorate(test):
        for value in KILLERS:
            made = {name: argument(value) if callable(argument) else argument for name, argument in arguments.items()}
            test = example(**dict.fromkeys(names, value), **made)(test)
        return test

    return decorate


# st.characters() leaves out surrogates unless told otherwise.
_ANY_CHARACTER = st.characters(exclude_categories=())
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=40),
    st.text(_ANY_CHARACTER, max_size=12),
    st.tuples(st.sampled_from(HOSTILE), st.sampled_from(HOSTILE)).map("".join),
)
hostile_name = st.one_of(
    st.sampled_from(["", "\x00", "\ud800", "rule[0][value]", "x" * 2000, "csrfmiddlewaretoken"]), st.text(max_size=20)
)


def header_text(text: str) -> str:
    """What a server hands Django for a header: its bytes read as Latin-1, without NUL or line breaks (gunicorn
    refuses those before any view)."""
    raw = text.encode("utf-8", "surrogatepass").decode("latin-1")
    return "".join(ch for ch in raw if ch not in "\x00\r\n")


def urlencoded(pairs) -> bytes:
    """A form body as a client may send it: a lone surrogate goes out as the bytes Python's surrogatepass gives."""
    return "&".join(
        f"{quote(name, safe='', errors='surrogatepass')}={quote(value, safe='', errors='surrogatepass')}"
        for name, value in pairs
    ).encode("ascii")


FORM = "application/x-www-form-urlencoded"
BOUNDARY = "hostile-boundary-7MA4YWxkTrZu0gW"


def multipart(pairs, files) -> bytes:
    def encoded(text: str) -> bytes:
        return text.encode("utf-8", "surrogatepass")

    parts = []
    for name, value in pairs:
        parts.append(
            b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
            % (BOUNDARY.encode(), encoded(name.replace('"', "%22")), encoded(value))
        )
    for name, (filename, content) in files.items():
        parts.append(
            b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: text/csv\r\n\r\n%s\r\n'
            % (BOUNDARY.encode(), encoded(name), encoded(filename.replace('"', "%22")), content)
        )
    return b"".join(parts) + b"--%s--\r\n" % BOUNDARY.encode()


# Server errors, counted ------------------------------------------------------------------------------------------


class ServerErrors:
    """The exceptions behind 500 answers, captured through got_request_exception."""

    def __init__(self):
        self.exceptions = []

    def __call__(self, sender, request=None, **kwargs):
        self.exceptions.append(sys.exc_info()[1])

    def check(self, response, what: str) -> None:
        exceptions, self.exceptions = self.exceptions, []
        if response.status_code >= 500 or exceptions:
            trace = "".join(traceback.format_exception(exceptions[-1])) if exceptions else "(no exception)"
            raise AssertionError(f"{what} answered {response.status_code}:\n{trace[-6000:]}")


@pytest.fixture
def server_errors():
    errors = ServerErrors()
    got_request_exception.connect(errors)
    yield errors
    got_request_exception.disconnect(errors)


def send(client, method: str, path: str, body: bytes = b"", *, content_type: str = FORM, headers=None):
    """One request, its streamed body read through, in a savepoint rolled back when it fails: a database error
    (PostgreSQL then aborts the transaction) is reported as itself, not as every later request failing."""
    with transaction.atomic():
        response = client.generic(method, path, body, content_type=content_type, headers=headers or {})
        if response.streaming:  # a CSV export fails while streaming, after its 200
            try:
                b"".join(response.streaming_content)
            except Exception as error:
                raise AssertionError(f"{method} {path:.300} failed while streaming its body") from error
        if response.status_code >= 500:
            transaction.set_rollback(True)
    return response


# The world the URLs need ----------------------------------------------------------------------------------------

ATTRIBUTES = {
    "plan": "string",
    "age": "number",
    "vip": "boolean",
    "born": "date",
    "last_order": "datetime",
    "tags": "string_list",
}
RULE = {"all": [{"attribute": "plan", "op": "equals", "value": "pro"}, {"attribute": "age", "op": "gt", "value": 30}]}


@pytest.fixture(scope="module")
def rsa_pem():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def world(personas, django_user_model, settings, tmp_path, redis, rsa_pem):
    """What the URLs name, by key: campaigns (a draft, one in review, an API-triggered one), audiences, profiles,
    a configuration of each channel (sending nowhere), an import waiting for its mapping, a key, a custom role
    and its member, an invitation, a notification, a suppression."""
    settings.SITE_URL = SITE_URL
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    ada, manny = personas["ada"], personas["manny"]
    for name, type_ in ATTRIBUTES.items():
        AttributeDefinition.objects.create(name=name, type=type_)
    email = make_email_configuration(port=9, feedback_secret=FEEDBACK_SECRET)
    configurations = {"email": email}
    for channel in SETTINGS_MODELS:
        if channel == "email":
            continue
        values = valid_settings(channel, rsa_pem)
        if "feedback_secret" in values:
            values["feedback_secret"] = FEEDBACK_SECRET
        if channel == "sms":
            values |= {"auth_token": AUTH_TOKEN, "base_url": CLOSED}
        elif channel == "push":
            values |= {"send_endpoint": CLOSED, "token_uri": CLOSED + "/token"}
        elif channel == "webhook":
            values |= {"url": CLOSED + "/in"}
        configurations[channel] = make_configuration(channel, name=f"Hostile {channel}", **values)
    audience = Audience.objects.create(name="Pros over 30", kind=Audience.Kind.RULE, rule=RULE, created_by=ada)
    Audience.objects.create(name="Uploaded list", kind=Audience.Kind.UPLOADED, created_by=ada)
    spare = Audience.objects.create(name="Spare", kind=Audience.Kind.ALL, created_by=ada)
    profile = Profile.objects.create(
        email="ann@example.com", phone="+447700900123", attributes={"plan": "pro", "age": 31, "first_name": "Ann"}
    )
    erasable = Profile.objects.create(email="erase-me@example.com")
    policy = ApprovalPolicy.objects.create(name="Marketing email", created_by=ada)
    policy.approver_groups.add(
        Group.objects.get(name=Role.APPROVER.value), Group.objects.get(name=Role.ADMINISTRATOR.value)
    )

    def campaign(name, **kwargs):
        return lifecycle.campaign_create(
            actor=manny,
            name=name,
            channel_configuration=email,
            audience=audience,
            content=lifecycle.Content("Hi {{ profile.first_name }}", "<p>Hi</p>", "Hi"),
            **kwargs,
        )

    draft = campaign("Draft", tags=["spring"])
    in_review = campaign("In review")
    approval.campaign_submit_for_review(campaign=in_review, actor=manny)
    triggered = lifecycle.campaign_create(
        actor=ada,
        name="Password reset",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=email,
        audience=None,
        content=lifecycle.Content("Reset", "<p>{{ context.url }}</p>", "{{ context.url }}"),
    )
    target = django_user_model.objects.create_user("target", "target@example.com", "x")
    role = Group.objects.create(name="Custom role")
    target.groups.add(role)
    api_key, _ = api_key_create(actor=ada, name="Shop", campaign_ids=[triggered.pk], profiles=True)
    invited = django_user_model.objects.create_user("invited", "invited@example.com")
    invited.set_unusable_password()
    invited.save()
    name = default_storage.save(
        "imports/hostile/contacts.csv",
        ContentFile(b"email,phone,first_name,plan,age\nann@example.com,+447700900123,Ann,pro,31\n"),
    )
    profile_import = ProfileImport.objects.create(
        file=name, original_name="contacts.csv", header=["email", "phone", "first_name", "plan", "age"], created_by=ada
    )
    return {
        "campaign": draft.pk,
        "in_review": in_review.pk,
        "triggered": triggered.pk,
        "audience": audience.pk,
        "spare_audience": spare.pk,
        "profile": profile.pk,
        "erasable": erasable.pk,
        "policy": policy.pk,
        "cap": FrequencyCap.objects.create(name="Weekly", limit=3, period="week", created_by=ada).pk,
        "quiet_hours": QuietHours.objects.create(channel="email", start="21:00", end="08:00", created_by=ada).pk,
        "api_key": api_key.pk,
        "target": target.pk,
        "role": role.pk,
        "invitation": invitation_create(actor=ada, user=invited),
        "notification": Notification.objects.create(user=ada, title="Hello", url="/campaigns/").pk,
        "attribute": AttributeDefinition.objects.get(name="plan").pk,
        "namespace": IdentityNamespace.objects.create(name="loyalty", label="Loyalty card").pk,
        "profile_import": profile_import.pk,
        "suppression": Suppression.objects.create(channel="email", address="gone@example.com", reason="manual").pk,
        "unsubscribe": unsubscribe_token(profile_id=profile.pk, channel="email"),
        "tracked_delivery": tracked_delivery(actor=manny, configuration=email, audience=audience, profile=profile).pk,
        **{f"configuration_{channel}": configuration.pk for channel, configuration in configurations.items()},
        "configuration": email.pk,
    }


@pytest.fixture
def ada(personas):
    """The administrator's browser; a server error comes back as a 500 response, its exception to `server_errors`."""
    client = Client(raise_request_exception=False)
    client.force_login(personas["ada"])
    return client


# The forms ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """A form to post: its URL, the page showing it (whose inputs give the field names; default the URL itself),
    whether htmx posts it, whether it uploads a file, and `cases`: values that broke it once together, each posted
    over the page's own (the first choice of each checkbox and radio)."""

    url: str
    source: str = ""
    # The form whose fields are posted, when it is not one posting to `url` (htmx posts the page's own form).
    fields_of: str = ""
    # Fields the page shows only after a switch (the JSON editor of a rule), with a valid value.
    extra: tuple[tuple[str, str], ...] = ()
    htmx: bool = False
    upload: bool = False
    examples: int = 5
    cases: tuple[dict[str, str], ...] = ()


CAMPAIGN = "/campaigns/{campaign}/"
REVIEW = "/campaigns/{in_review}/review/"
USER = "/settings/users/{target}/"
ROLES = "/settings/roles/"
AUDIENCE_EDIT = "/audiences/{audience}/edit/"
# A campaign starting past year 9999 in UTC, or whose next occurrence falls there: Python's dates overflowed.
CAMPAIGN_FIELDS = {"name": "Far", "subject": "Hi", "text_body": "Hi", "audience": "{audience}"}
CAMPAIGN_FIELDS["channel_configuration"] = "{configuration}"
FAR_DATES = tuple(
    CAMPAIGN_FIELDS | schedule
    for schedule in (
        {"schedule": "at", "start_at": "9999-12-31T23:59", "timezone": "Pacific/Pago_Pago"},
        {"schedule": "at", "start_at": "0001-01-01T00:00", "timezone": "Pacific/Kiritimati"},
        {
            "schedule": "recurring",
            "cron": "59 23 31 12 *",
            "start_at": "9999-12-31T23:58",
            "end_at": "9999-12-31T23:59",
        },
    )
)
# Context contract rows with examples no database keeps or no parser survives, and a form count past any limit.
CONTRACTS = tuple(
    {"contract-0-name": "order", "contract-0-type": kind, "contract-0-example": example}
    for kind, example in (
        ("integer", "9" * 400),
        ("number", "1e999"),
        ("array", "[" * 5000),
        ("object", '{"\\udfff": "\\u0000"}'),
        ("string", '"\\ud800"'),
    )
) + ({"contract-TOTAL_FORMS": "9" * 400, "contract-INITIAL_FORMS": "-1"},)
# Proofs (to the discard port: refused at once): addresses past the limit, none, one no relay takes, a profile or a
# version that does not exist or no column keeps.
PROOFS = (
    {"addresses": ", ".join(f"p{n}@example.com" for n in range(11))},
    {"addresses": " ,;\n"},
    {"addresses": "ok@example.com\nnot an address\nx@[127.0.0.1]"},
    {"addresses": "ok@example.com", "profile": "9" * 400},
    {"addresses": "ok@example.com", "profile": "999999"},
    {"addresses": "ok@example.com", "version": "-1"},
    # Profiles named in "Send to": ids no column keeps (past 64 bits, zero, negative), no id, unknown, repeated, and
    # more than ten recipients with them.
    {"addresses": "#" + "9" * 400},
    {"addresses": f"#{2**63}, #0, #-1, #, ##1, #1e9, #٣"},
    {"addresses": "ok@example.com #999999 #999999 #00999999"},
    {"addresses": ", ".join(f"#{n}" for n in range(1, 12))},
    {"addresses": "#1\x00"},
)
JSON_EDITOR = (("rule_mode", "json"), ("rule_json", json.dumps(RULE)))
FAR_RULES = tuple(
    case
    for moment in FAR_MOMENTS
    for case in (
        {"kind": "rule", "rule_mode": "json", "builder_action": "to-builder"}
        | {"rule_json": json.dumps({"attribute": "last_order", "op": "after", "value": moment})},
        {"kind": "rule", "rule_mode": "builder", "builder_action": "to-json"}
        | {"rule[r.0][subject]": "attribute:last_order", "rule[r.0][op]": "after", "rule[r.0][value]": moment},
    )
)
# Frequency caps: limits no column keeps or past the rule's 1 to 1000, unknown choices, NUL bytes, a name too long.
CAP_CASES = (
    {"limit": "9" * 400},
    {"limit": "1e999"},
    {"limit": "32768"},
    {"limit": "1001"},
    {"limit": "0"},
    {"limit": "-1"},
    {"period": "fortnight", "channel": "fax"},
    {"name": "Weekly\x00"},
    {"name": "x" * 201},
)
# Quiet hours: times no clock shows, a window ending when it starts, NUL bytes, unknown choices.
QUIET_CASES = (
    {"start": "25:00", "end": "24:60"},
    {"start": "21:00", "end": "21:00"},
    {"start": "21:00:00", "end": "21:00:00.000001"},
    {"start": "\x00", "end": "08:00\x00"},
    {"start": "9" * 400},
    {"channel": "fax", "action": "explode"},
)
CAP = "/campaigns/delivery-rules/caps/{cap}/"
QUIET = "/campaigns/delivery-rules/quiet-hours/{quiet_hours}/"
# Per area, in the order posted: what deletes or disables comes after the forms that use it.
FORMS: dict[str, list[Form]] = {
    "campaigns/new/": [Form("/campaigns/new/", examples=10, cases=FAR_DATES)],
    "campaigns/<int:pk>/edit/": [Form("/campaigns/{campaign}/edit/")],
    "campaigns/<int:pk>/contract/": [
        Form("/campaigns/{triggered}/contract/", "/campaigns/{triggered}/", cases=CONTRACTS)
    ],
    "campaigns/<int:pk>/proofs/": [
        Form("/campaigns/{campaign}/proofs/", CAMPAIGN, cases=PROOFS),
        Form("/campaigns/{campaign}/proofs/", CAMPAIGN, htmx=True, examples=3),
    ],
    "campaigns/<int:pk>/submit/": [Form("/campaigns/{campaign}/submit/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/review/request-changes/": [Form("/campaigns/{in_review}/review/request-changes/", REVIEW)],
    "campaigns/<int:pk>/review/approve/": [Form("/campaigns/{in_review}/review/approve/", REVIEW)],
    "campaigns/<int:pk>/activate/": [Form("/campaigns/{campaign}/activate/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/pause/": [Form("/campaigns/{campaign}/pause/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/resume/": [Form("/campaigns/{campaign}/resume/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/stop/": [Form("/campaigns/{campaign}/stop/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/duplicate/": [Form("/campaigns/{campaign}/duplicate/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/archive/": [Form("/campaigns/{campaign}/archive/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/unarchive/": [Form("/campaigns/{campaign}/unarchive/", CAMPAIGN, examples=2)],
    "campaigns/<int:pk>/delete/": [Form("/campaigns/{in_review}/delete/", examples=2)],
    "campaigns/approval-policies/new/": [Form("/campaigns/approval-policies/new/")],
    "campaigns/approval-policies/<int:pk>/": [Form("/campaigns/approval-policies/{policy}/")],
    "campaigns/approval-policies/<int:pk>/delete/": [Form("/campaigns/approval-policies/{policy}/delete/", examples=2)],
    "campaigns/delivery-rules/caps/new/": [Form("/campaigns/delivery-rules/caps/new/", cases=CAP_CASES)],
    "campaigns/delivery-rules/caps/<int:pk>/": [Form(CAP, cases=CAP_CASES)],
    "campaigns/delivery-rules/caps/<int:pk>/delete/": [Form(CAP + "delete/", examples=2)],
    "campaigns/delivery-rules/quiet-hours/new/": [
        Form("/campaigns/delivery-rules/quiet-hours/new/", cases=QUIET_CASES)
    ],
    "campaigns/delivery-rules/quiet-hours/<int:pk>/": [Form(QUIET, cases=QUIET_CASES)],
    "campaigns/delivery-rules/quiet-hours/<int:pk>/delete/": [Form(QUIET + "delete/", examples=2)],
    "settings/api-keys/new/": [Form("/settings/api-keys/new/")],
    "settings/api-keys/<int:pk>/revoke/": [
        Form("/settings/api-keys/{api_key}/revoke/", "/settings/api-keys/{api_key}/", examples=2)
    ],
    "settings/users/add/": [Form("/settings/users/add/")],
    "settings/users/<int:pk>/roles/": [Form("/settings/users/{target}/roles/", USER)],
    "settings/users/<int:pk>/invite/": [Form("/settings/users/{target}/invite/", USER, examples=2)],
    "settings/roles/add/": [Form("/settings/roles/add/")],
    "settings/roles/<int:pk>/edit/": [Form("/settings/roles/{role}/edit/")],
    "settings/roles/<int:pk>/members/": [Form("/settings/roles/{role}/members/", ROLES)],
    "settings/roles/<int:pk>/members/<int:user_pk>/remove/": [
        Form("/settings/roles/{role}/members/{target}/remove/", ROLES, examples=2)
    ],
    "settings/roles/<int:pk>/delete/": [Form("/settings/roles/{role}/delete/", ROLES, examples=2)],
    "settings/users/<int:pk>/deactivate/": [Form("/settings/users/{target}/deactivate/", USER, examples=2)],
    "settings/notifications/<int:pk>/open/": [
        Form("/settings/notifications/{notification}/open/", "/settings/notifications/", examples=2)
    ],
    "settings/notifications/read/": [Form("/settings/notifications/read/", "/settings/notifications/", examples=2)],
    "audiences/new/": [Form("/audiences/new/"), Form("/audiences/new/", extra=JSON_EDITOR)],
    "audiences/<int:pk>/edit/": [Form(AUDIENCE_EDIT, cases=FAR_RULES), Form(AUDIENCE_EDIT, extra=JSON_EDITOR)],
    "audiences/rule-builder/": [
        Form("/audiences/rule-builder/", AUDIENCE_EDIT, AUDIENCE_EDIT, htmx=True, cases=FAR_RULES),
        Form("/audiences/rule-builder/", AUDIENCE_EDIT, AUDIENCE_EDIT, JSON_EDITOR, htmx=True),
    ],
    "audiences/rule-estimate/": [
        Form("/audiences/rule-estimate/", AUDIENCE_EDIT, AUDIENCE_EDIT, htmx=True, cases=FAR_RULES),
        Form("/audiences/rule-estimate/", AUDIENCE_EDIT, AUDIENCE_EDIT, JSON_EDITOR, htmx=True),
    ],
    "audiences/attributes/new/": [Form("/audiences/attributes/new/")],
    "audiences/attributes/<int:pk>/": [Form("/audiences/attributes/{attribute}/")],
    "audiences/identity-namespaces/new/": [Form("/audiences/identity-namespaces/new/")],
    "audiences/consent-settings/": [Form("/audiences/consent-settings/")],
    "audiences/profiles/<int:pk>/erase/": [Form("/audiences/profiles/{erasable}/erase/", examples=2)],
    "audiences/identity-namespaces/<int:pk>/delete/": [
        Form("/audiences/identity-namespaces/{namespace}/delete/", "/audiences/identity-namespaces/", examples=2)
    ],
    "audiences/<int:pk>/delete/": [Form("/audiences/{spare_audience}/delete/", examples=2)],
    "audiences/imports/new/": [Form("/audiences/imports/new/", upload=True, examples=10)],
    "audiences/imports/<int:pk>/map/": [Form("/audiences/imports/{profile_import}/map/", examples=10)],
    "audiences/imports/<int:pk>/cancel/": [
        Form("/audiences/imports/{profile_import}/cancel/", "/audiences/imports/{profile_import}/", examples=2)
    ],
    "channels/new/": [Form(f"/channels/new/?channel={channel}", examples=4) for channel in SETTINGS_MODELS],
    "channels/<int:pk>/edit/": [
        Form(f"/channels/{{configuration_{channel}}}/edit/", examples=4) for channel in SETTINGS_MODELS
    ],
    "channels/<int:pk>/send-test/": [
        Form(f"/channels/{{configuration_{channel}}}/send-test/", f"/channels/{{configuration_{channel}}}/", examples=2)
        for channel in SETTINGS_MODELS
    ],
    "channels/suppression/add/": [Form("/channels/suppression/add/")],
    "channels/suppression/<int:pk>/remove/": [
        Form("/channels/suppression/{suppression}/remove/", "/channels/suppression/", examples=2)
    ],
    "channels/<int:pk>/active/": [Form("/channels/{configuration}/active/", "/channels/{configuration}/", examples=2)],
    "channels/<int:pk>/delete/": [Form("/channels/{configuration_in_app}/delete/", examples=2)],
}
AREAS = ["audiences/imports/", "audiences/", "campaigns/", "settings/", "channels/"]


def _area(route: str) -> str:
    return next(area for area in AREAS if route.startswith(area))


# Fuzzed by the public tests below, without a login.
PUBLIC = {
    "login/",
    "logout/",
    "u/<str:token>/",
    "settings/invitations/<str:token>/",
    "channels/<int:pk>/feedback/",
    "channels/<int:pk>/feedback/dsn/",
    "channels/<int:pk>/sms/inbound/",
}
# Pages that only read: they answer a POST as a GET, reading no POST data; each gets hostile posts all the same.
READS = {
    "audiences/": "/audiences/",
    "audiences/<int:pk>/": "/audiences/{audience}/",
    "audiences/attributes/": "/audiences/attributes/",
    "audiences/identity-namespaces/": "/audiences/identity-namespaces/",
    "audiences/profiles/": "/audiences/profiles/",
    "audiences/profiles/<int:pk>/": "/audiences/profiles/{profile}/",
    "audiences/profiles/<int:pk>/export/": "/audiences/profiles/{profile}/export/",
    "campaigns/": "/campaigns/",
    "campaigns/calendar/": "/campaigns/calendar/",
    "campaigns/<int:pk>/": "/campaigns/{campaign}/",
    "campaigns/<int:pk>/review/": "/campaigns/{in_review}/review/",
    "campaigns/<int:pk>/status/": "/campaigns/{campaign}/status/",
    "campaigns/approval-policies/": "/campaigns/approval-policies/",
    "campaigns/delivery-rules/": "/campaigns/delivery-rules/",
    "channels/": "/channels/",
    "channels/<int:pk>/": "/channels/{configuration}/",
    "channels/suppression/": "/channels/suppression/",
    "channels/suppression/export/": "/channels/suppression/export/",
    "settings/api-keys/": "/settings/api-keys/",
    "settings/api-keys/<int:pk>/": "/settings/api-keys/{api_key}/",
    "settings/audit/": "/settings/audit/",
    "settings/audit/export/": "/settings/audit/export/",
    "settings/notifications/": "/settings/notifications/",
    "settings/roles/": "/settings/roles/",
    "settings/users/": "/settings/users/",
    "settings/users/<int:pk>/": "/settings/users/{target}/",
}
EXCLUDED: dict[str, str] = {}
EXCLUDED_PREFIXES = {"api/": "the REST API: fuzzed from its OpenAPI schema by tests/test_api_fuzz.py"}


class _Forms(_Inputs):
    """Each form of a page: its action and the name/value pairs a browser would post, with every checkbox and
    radio value offered (the strategies pick among them) and the buttons' names."""

    def __init__(self, page: str):
        super().__init__()
        self.page = page
        self.outside = self.values
        self.forms: list[tuple[str, dict[str, str], dict[str, list[str]]]] = []
        self.options: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        named = dict(attrs)
        if tag == "form":
            self.values, self.options = {}, {}
            self.forms.append((named.get("action") or self.page, self.values, self.options))
        elif tag == "input" and named.get("type") in ("checkbox", "radio") and named.get("name"):
            self.options.setdefault(named["name"], []).append(named.get("value") or "on")
            return
        elif tag == "button" and named.get("name"):
            self.options.setdefault(named["name"], []).append(named.get("value") or "")
        elif tag == "option" and self._select:
            self.options.setdefault(self._select, []).append(named.get("value") or "")
        if tag in ("button", "input") and named.get("formaction"):  # this button posts its form elsewhere
            self.forms.append((named["formaction"], self.values, self.options))
        super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self.values, self.options = self.outside, {}
        super().handle_endtag(tag)


def filled(text: str, world: dict) -> str:
    """`text` with each `{name}` of the world replaced by its value (other braces, as in JSON, stay)."""
    for name, value in world.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


def _path(url: str) -> str:
    return urlsplit(url).path


def form_fields(client, form: Form, world: dict) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The inputs of the forms on the form's page that post to its URL, as the page renders them now."""
    url = (form.fields_of or form.url).format(**world)
    source = (form.source or form.url).format(**world)
    response = client.get(source)
    assert response.status_code == 200, f"GET {source} answered {response.status_code}"
    parser = _Forms(source)
    parser.feed(response.content.decode())
    values, options = {}, {}
    for action, form_values, form_options in parser.forms:
        if _path(action) == _path(url):
            values |= form_values
            options |= form_options
    values = {name: value for name, value in values.items() if name not in options}  # a select's: chosen among
    return values | dict(form.extra), options


@st.composite
def form_data(draw, values: dict[str, str], options: dict[str, list[str]]):
    """The page's fields as it renders them, except a few replaced by hostile text and maybe one left out (so the
    rest stays valid and the hostile value gets past the first check), then a few fields it does not expect."""
    names = [*values, *options]
    hostile = set(draw(st.lists(st.sampled_from(names), max_size=3, unique=True))) if names else set()
    dropped = set(draw(st.lists(st.sampled_from(names), max_size=1))) if names else set()
    pairs = []
    for name, value in values.items():
        if name not in dropped:
            pairs.append((name, draw(hostile_text) if name in hostile else value))
    for name, offered in options.items():
        if name in hostile:
            chosen = draw(st.lists(st.one_of(hostile_text, st.sampled_from(offered)), min_size=1, max_size=3))
        elif name not in dropped:
            chosen = draw(st.lists(st.sampled_from(offered), min_size=1, max_size=2, unique=True))
        else:
            chosen = []
        pairs.extend((name, value) for value in chosen)
    pairs.extend(draw(st.lists(st.tuples(hostile_name, hostile_text), max_size=2)))
    return pairs


csv_cell = st.one_of(st.sampled_from(HOSTILE[:40]), st.text(max_size=10)).map(lambda text: text[:2000])


@st.composite
def csv_file(draw) -> tuple[str, bytes]:
    """A file for the import upload: a hostile header and rows, in UTF-8 (surrogates passed through), Latin-1
    or random bytes, under a hostile name."""
    header = draw(st.lists(csv_cell, min_size=1, max_size=4))
    rows = draw(st.lists(st.lists(csv_cell, max_size=5), max_size=3))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    text = "\n".join(delimiter.join(row) for row in [header, *rows])
    content = draw(
        st.one_of(
            st.just(text.encode("utf-8", "surrogatepass")),
            st.just(b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")),
            st.just(text.encode("latin-1", "replace")),
            st.binary(max_size=200),
        )
    )
    return draw(st.one_of(st.just("contacts.csv"), hostile_text.map(lambda name: name[:300]))), content


def scaled(examples: int) -> int:
    """More examples for a deeper local run: HOSTILE_EXAMPLES=10 runs ten times as many."""
    return examples * int(os.environ.get("HOSTILE_EXAMPLES") or 1)


HYPOTHESIS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("area", AREAS)
def test_no_form_answers_a_server_error_whatever_is_posted(ada, world, server_errors, area):
    failures = []
    for route in [route for route in FORMS if _area(route) == area]:
        for form in FORMS[route]:
            try:
                post_hostile_forms(ada, world, server_errors, form)
            except AssertionError as failure:  # hypothesis raises the smallest failing example; go on to the next
                failures.append(f"{route}: {failure}")
    try:
        check_stored_data_renders(ada, server_errors)
    except AssertionError as failure:
        failures.append(str(failure))
    assert not failures, "\n\n".join(failures)


def post_hostile_forms(client, world: dict, server_errors, form: Form) -> None:
    url = form.url.format(**world)
    values, options = form_fields(client, form, world)
    headers = {"HX-Request": "true"} if form.htmx else {}

    def post_hostile_form(pairs, upload):
        if "/imports/" in url and url.endswith("/map/"):  # waiting for its mapping again
            ProfileImport.objects.filter(pk=world["profile_import"]).update(status=ProfileImport.Status.UPLOADED)
        if form.upload:
            body, content_type = multipart(pairs, {"file": upload}), f"multipart/form-data; boundary={BOUNDARY}"
        else:
            body, content_type = urlencoded(pairs), FORM
        response = send(client, "POST", url, body, content_type=content_type, headers=headers)
        server_errors.check(response, f"POST {url} {pairs!r:.2000} {upload!r:.500}")

    # The known cases and each of the worst values in every field at once, always; then what hypothesis draws.
    for case in form.cases:
        page = values | {name: offered[0] for name, offered in options.items()}
        case = {name: filled(value, world) for name, value in case.items()}
        post_hostile_form = example(pairs=list((page | case).items()), upload=None)(post_hostile_form)
    names = [*values, *options] or ["field"]
    for value in KILLERS:
        upload = (value[:300] or "empty", value.encode("utf-8", "surrogatepass")) if form.upload else None
        post_hostile_form = example(pairs=[(name, value) for name in names], upload=upload)(post_hostile_form)
    strategies = {"pairs": form_data(values, options), "upload": csv_file() if form.upload else st.none()}
    settings(HYPOTHESIS, max_examples=scaled(form.examples))(given(**strategies)(post_hostile_form))()


# Each hostile case over a rule that would otherwise be saved: the page's own values, or a valid new rule.
NEW_CAP = {"name": "Daily", "limit": "2"}
NEW_QUIET = {"channel": "sms", "start": "22:00", "end": "07:00"}
DELIVERY_RULE_FORMS = [
    *(("/campaigns/delivery-rules/caps/new/", NEW_CAP | case) for case in CAP_CASES),
    *((CAP, case) for case in CAP_CASES),
    *(("/campaigns/delivery-rules/quiet-hours/new/", NEW_QUIET | case) for case in QUIET_CASES),
    *((QUIET, case) for case in QUIET_CASES),
]


def _delivery_rules_stored() -> list:
    return [
        *FrequencyCap.objects.values_list("name", "limit", "period", "channel", "is_active", "updated_at"),
        *QuietHours.objects.values_list("channel", "start", "end", "action", "is_active", "updated_at"),
    ]


@pytest.mark.parametrize(("url", "case"), DELIVERY_RULE_FORMS)
def test_a_hostile_delivery_rule_is_refused_with_form_errors_and_nothing_changes(ada, world, server_errors, url, case):
    url = url.format(**world)
    values, options = form_fields(ada, Form(url), world)
    stored = _delivery_rules_stored()

    response = send(ada, "POST", url, urlencoded((values | {n: o[0] for n, o in options.items()} | case).items()))

    server_errors.check(response, f"POST {url} {case!r:.300}")
    assert response.status_code == 200
    assert b'class="field-errors"' in response.content
    assert _delivery_rules_stored() == stored


@settings(HYPOTHESIS, max_examples=scaled(3))
@given(pairs=st.lists(st.tuples(hostile_name, hostile_text), min_size=1, max_size=4))
@example(pairs=[(name, value) for value in KILLERS[:-3] for name in ("q", "page", "next")])
def test_no_page_that_only_reads_answers_a_server_error_to_a_hostile_post(ada, world, server_errors, pairs):
    for route, url in READS.items():
        response = send(ada, "POST", url.format(**world), urlencoded(pairs))
        server_errors.check(response, f"POST {route} {pairs!r:.2000}")


# What was stored still renders ------------------------------------------------------------------------------------

LIST_PAGES = [
    "/",
    "/settings/audit/",
    "/settings/audit/export/",
    "/audiences/",
    "/audiences/profiles/",
    "/audiences/attributes/",
    "/audiences/identity-namespaces/",
    "/audiences/imports/",
    "/campaigns/",
    "/campaigns/calendar/",
    "/campaigns/approval-policies/",
    "/campaigns/delivery-rules/",
    "/settings/api-keys/",
    "/settings/users/",
    "/settings/roles/",
    "/settings/notifications/",
    "/channels/",
    "/channels/suppression/",
    "/channels/suppression/export/",
]
DETAIL_PAGES = {
    Audience: ["/audiences/{pk}/", "/audiences/{pk}/edit/", "/audiences/{pk}/size/", "/audiences/{pk}/preview/"],
    Profile: ["/audiences/profiles/{pk}/", "/audiences/profiles/{pk}/export/"],
    ProfileImport: [
        "/audiences/imports/{pk}/",
        "/audiences/imports/{pk}/map/",
        "/audiences/imports/{pk}/errors.csv",
        "/audiences/imports/{pk}/rows-to-fix.csv",
    ],
    AttributeDefinition: ["/audiences/attributes/{pk}/"],
    Campaign: [
        "/campaigns/{pk}/",
        "/campaigns/{pk}/edit/",
        "/campaigns/{pk}/review/",
        "/campaigns/{pk}/status/",
        "/campaigns/{pk}/versions/1/preview/",
    ],
    ApprovalPolicy: ["/campaigns/approval-policies/{pk}/"],
    FrequencyCap: ["/campaigns/delivery-rules/caps/{pk}/", "/campaigns/delivery-rules/caps/{pk}/delete/"],
    QuietHours: ["/campaigns/delivery-rules/quiet-hours/{pk}/", "/campaigns/delivery-rules/quiet-hours/{pk}/delete/"],
    Group: ["/settings/roles/{pk}/edit/"],
    ChannelConfiguration: ["/channels/{pk}/", "/channels/{pk}/edit/"],
}
RECENT = 8


def check_stored_data_renders(client, server_errors) -> None:
    """GET the lists, and the pages of the most recent objects, of whatever the posts may have stored."""
    from django.contrib.auth import get_user_model

    from permissions.models import ApiKey

    pages = list(LIST_PAGES)
    for model, routes in {
        **DETAIL_PAGES,
        get_user_model(): ["/settings/users/{pk}/"],
        ApiKey: ["/settings/api-keys/{pk}/"],
    }.items():
        for pk in model.objects.order_by("-pk").values_list("pk", flat=True)[:RECENT]:
            pages.extend(route.format(pk=pk) for route in routes)
    for page in pages:
        response = send(client, "GET", page)
        server_errors.check(response, f"GET {page} after the posts")


# Query strings of the pages that read them ------------------------------------------------------------------------

QUERY_PAGES = {
    "/settings/audit/": ["actor", "action", "object_type", "since", "until", "page"],
    "/settings/audit/export/": ["actor", "action", "object_type", "since", "until"],
    "/settings/users/": ["q", "page"],
    "/audiences/profiles/": ["q", "page"],
    "/channels/suppression/": ["q", "channel", "reason", "page"],
    "/channels/suppression/export/": ["q", "channel", "reason"],
    "/channels/new/": ["channel"],
    "/campaigns/": ["q", "status", "kind", "category", "channel", "tag", "owner", "sort", "page"],
    "/campaigns/calendar/": ["start"],
    "/audiences/": ["page"],
    "/audiences/imports/": ["page"],
    "/settings/api-keys/": ["page"],
    "/settings/notifications/": ["page"],
}


@pytest.mark.parametrize("page", sorted(QUERY_PAGES))
def test_no_page_answers_a_server_error_whatever_its_query_string(ada, world, server_errors, page):
    names = QUERY_PAGES[page]

    @settings(HYPOTHESIS, max_examples=scaled(8))
    @given(values=st.lists(hostile_text, min_size=len(names), max_size=len(names)))
    @killers(values=lambda value: [value] * len(names))
    def get_with_hostile_query(values):
        query = urlencoded(zip(names, (value[:3000] for value in values), strict=True)).decode()
        response = send(ada, "GET", f"{page}?{query}")
        server_errors.check(response, f"GET {page}?{query:.2000}")

    get_with_hostile_query()


# Public endpoints ---------------------------------------------------------------------------------------------


@pytest.fixture
def anonymous(world):
    return Client(raise_request_exception=False)


@settings(HYPOTHESIS, max_examples=scaled(12))
@given(username=hostile_text, password=hostile_text, next_=hostile_text)
@killers("username", "password", "next_")
def test_the_login_page_never_answers_a_server_error(anonymous, world, server_errors, username, password, next_):
    body = urlencoded([("username", username), ("password", password), ("next", next_)])
    query = urlencoded([("next", next_[:3000])]).decode()

    for method in ("GET", "POST"):
        response = send(anonymous, method, f"/login/?{query}", body if method == "POST" else b"")
        server_errors.check(response, f"{method} /login/ with {username!r:.300} {next_!r:.300}")


@settings(HYPOTHESIS, max_examples=scaled(6))
@given(next_=hostile_text, extra=st.lists(st.tuples(hostile_name, hostile_text), max_size=3))
@killers("next_", extra=lambda value: [(value, value)])
def test_logging_out_never_answers_a_server_error(ada, personas, world, server_errors, next_, extra):
    ada.force_login(personas["ada"])
    body = urlencoded([("next", next_), *extra])

    response = send(ada, "POST", "/logout/", body)

    server_errors.check(response, f"POST /logout/ next={next_!r:.300}")


def token_path(prefix: str, token: str) -> str:
    return f"{prefix}{quote(token, safe='', errors='surrogatepass')}/"


def readable(text: str) -> str:
    """`text` as a server reads it from bytes: each lone surrogate replaced (U+FFFD)."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def signed_token(payload: str) -> str:
    """A token with a valid signature over any payload: what the view reads once the signature holds."""
    from django.core import signing

    return signing.Signer(salt="channels.unsubscribe").sign(payload)


tokens = st.one_of(
    hostile_text.map(lambda token: token[:3000]),
    st.sampled_from(
        ["1.e", "1.e.1", "0.x", "1.e.", "²³.e", "9" * 400 + ".e", "1.e." + "9" * 400, "-1.e", ":", "1.e:"]
    ).map(signed_token),
)


@settings(HYPOTHESIS, max_examples=scaled(15))
@given(token=st.one_of(tokens, st.just(None)), data=st.lists(st.tuples(hostile_name, hostile_text), max_size=3))
@killers("token", data=lambda value: [("List-Unsubscribe", value)])
@killers(token=lambda value: signed_token(f"{readable(value)}.e"), data=[])
@killers(token=lambda value: signed_token(f"1.e.{readable(value)}"), data=[])
@example(token=None, data=[(value, value) for value in KILLERS[:-3]])
def test_the_unsubscribe_page_never_answers_a_server_error(anonymous, world, server_errors, token, data):
    path = token_path("/u/", world["unsubscribe"] if token is None else token)

    for method in ("GET", "POST"):
        response = send(anonymous, method, path, urlencoded(data))
        server_errors.check(response, f"{method} {path:.2000}")


def tracking_token(payload: str) -> str:
    """A tracking link's token with a valid signature over any payload (campaigns.tracking)."""
    from django.core import signing

    return signing.Signer(salt="campaigns.tracking").sign(payload)


tracking_tokens = st.one_of(
    hostile_text.map(lambda token: token[:3000]),
    st.sampled_from(
        [
            "o.1",
            "c.1.0",
            "c.1.9999",
            "c.1.-1",
            "c.1.0.0",
            "o.²³",
            "c.1.²",
            "o." + "9" * 400,
            "c.1." + "9" * 400,
            "o",
            "",
        ]
    ).map(tracking_token),
)


@settings(HYPOTHESIS, max_examples=scaled(15))
@given(
    kind=st.sampled_from(["o", "c"]),
    token=st.one_of(tracking_tokens, st.just(None)),
    user_agent=hostile_text,
    data=st.lists(st.tuples(hostile_name, hostile_text), max_size=3),
)
@killers("token", "user_agent", kind="c", data=lambda value: [(value, value)])
@killers(kind="o", token=lambda value: tracking_token(f"o.{readable(value)}"), user_agent="", data=[])
@killers(kind="c", token=lambda value: tracking_token(f"c.1.{readable(value)}"), user_agent="", data=[])
@example(kind="o", token=None, user_agent="\x00\r\n", data=[])
def test_the_tracking_links_never_answer_a_server_error(anonymous, world, server_errors, kind, token, user_agent, data):
    delivery_id = world["tracked_delivery"]
    valid = open_path(delivery_id) if kind == "o" else click_path(delivery_id)
    path = valid if token is None else token_path(f"/t/{kind}/", token)
    headers = {"User-Agent": header_text(user_agent)}

    for method in ("GET", "HEAD", "POST"):
        body = urlencoded(data) if method == "POST" else b""
        response = send(anonymous, method, path, body, headers=headers)
        server_errors.check(response, f"{method} {path:.2000}")
        assert response.status_code in (200, 302, 404, 405), f"{method} {path:.300}: {response.status_code}"


@settings(HYPOTHESIS, max_examples=scaled(12))
@given(
    token=st.one_of(hostile_text.map(lambda token: token[:3000]), st.just(None)),
    passwords=st.tuples(hostile_text, hostile_text),
    same=st.booleans(),
)
@killers("token", passwords=lambda value: (value, value), same=True)
@killers(token=lambda value: None, passwords=lambda value: (value, value), same=True)
def test_the_invitation_page_never_answers_a_server_error(anonymous, world, server_errors, token, passwords, same):
    path = token_path("/settings/invitations/", world["invitation"] if token is None else token)
    first, second = passwords
    body = urlencoded([("new_password1", first), ("new_password2", first if same else second)])

    for method in ("GET", "POST"):
        response = send(anonymous, method, path, body)
        server_errors.check(response, f"{method} {path:.500} {passwords!r:.500}")


feedback_bodies = st.one_of(
    hostile_text,
    st.sampled_from(
        [
            '[{"type": "bounced", "delivery_id": %s}]' % ("9" * 400),
            '[{"type": "bounced", "delivery_id": 1e999}]',
            '[{"type": "complained", "provider_message_id": "\\ud800"}]',
            '[{"type": "delivered", "delivery_id": -1, "detail": "\\u0000"}]',
            '{"type": "bounced", "delivery_id": 1}',
            '[{"type": "bounced", "delivery_id": "1"}]',
            '[{"type": "\\udfff"}]',
            "[" + ",".join(['{"type": "bounced", "delivery_id": 1}'] * 2000) + "]",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"
            "Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822;\udfff\r\nStatus: 9.9.9\r\n--x--",
            "Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nOriginal-Rcpt-To: \x00\r\n",
        ]
    ),
)


@pytest.mark.parametrize("endpoint", ["feedback", "feedback/dsn"])
@settings(HYPOTHESIS, max_examples=scaled(12))
@given(
    body=feedback_bodies,
    header=hostile_text,
    sign=st.booleans(),
    content_type=st.sampled_from(["application/json", "message/rfc822", "text/plain", "multipart/report; boundary=x"]),
)
@killers("body", "header", sign=True, content_type="application/json")
@killers("body", "header", sign=False, content_type="message/rfc822")
def test_the_feedback_webhooks_never_answer_a_server_error(
    anonymous, world, server_errors, endpoint, body, header, sign, content_type
):
    raw = body.encode("utf-8", "surrogatepass")
    signature = feedback_signature(FEEDBACK_SECRET, raw, int(time.time())) if sign else header_text(header)[:5000]

    for configuration in ("configuration", "configuration_sms"):
        path = f"/channels/{world[configuration]}/{endpoint}/"
        headers = {"X-Campaign-Signature": signature}
        response = send(anonymous, "POST", path, raw, content_type=content_type, headers=headers)
        server_errors.check(response, f"POST {path} signed={sign} {raw!r:.1000}")


METRICS_TOKEN = "hostile-metrics-token-0123456789"


@settings(HYPOTHESIS, max_examples=scaled(15))
@given(
    scheme=st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "", "Basic ", "Bearer\t"]),
    credentials=hostile_text,
)
@killers("credentials", scheme="Bearer ")
@example(scheme="Bearer ", credentials=METRICS_TOKEN + "\udfff")
@example(scheme="Bearer ", credentials="é" * len(METRICS_TOKEN))
def test_the_metrics_endpoint_never_answers_a_server_error(anonymous, world, server_errors, scheme, credentials):
    headers = {"Authorization": header_text(scheme + credentials)}

    with override_settings(METRICS_TOKEN=METRICS_TOKEN):
        response = send(anonymous, "GET", "/metrics", headers=headers)

    server_errors.check(response, f"GET /metrics with {headers!r:.300}")
    assert response.status_code == 401, f"{headers!r:.300}: {response.status_code}"


sms_fields = st.fixed_dictionaries(
    {"From": hostile_text, "Body": hostile_text},
    optional={
        "To": hostile_text,
        "MessageSid": st.one_of(hostile_text, st.uuids().map(lambda uuid: f"SM{uuid.hex}")),
        "AccountSid": hostile_text,
        "OptOutType": hostile_text,
    },
)


@settings(HYPOTHESIS, max_examples=scaled(15))
@given(fields=sms_fields, extra=st.lists(st.tuples(hostile_name, hostile_text), max_size=2), sign=st.booleans())
@killers(fields=lambda value: dict.fromkeys(["From", "To", "Body", "MessageSid"], value), extra=[], sign=True)
@killers(
    fields=lambda value: {"From": value, "Body": value, "MessageSid": f"SM{KILLERS.index(value)}"}, sign=True, extra=[]
)
def test_the_inbound_sms_webhook_never_answers_a_server_error(anonymous, world, server_errors, fields, extra, sign):
    path = f"/channels/{world['configuration_sms']}/sms/inbound/"
    pairs = [*fields.items(), *extra]
    # What the provider signs: the parameters as Django will read them back (invalid UTF-8 replaced).
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(readable(name), []).append(readable(value))
    signature = twilio_signature(AUTH_TOKEN, SITE_URL + path, params) if sign else "x"

    response = send(anonymous, "POST", path, urlencoded(pairs), headers={"X-Twilio-Signature": signature})

    server_errors.check(response, f"POST {path} signed={sign} {pairs!r:.1000}")


# Nothing slips through -------------------------------------------------------------------------------------------

PLACEHOLDER = {"int": "987654321", "str": "no-such-token"}


def _probe_url(route: str, placeholder: dict[str, str] = PLACEHOLDER) -> str:
    return "/" + re.sub(r"<(\w+):\w+>", lambda match: placeholder[match.group(1)], route)


# What a URL's converters let through that no object has: ids past 64 bits, tokens of every kind.
FAR_IDS = [{"int": "9" * 30, "str": "9" * 400}]
FAR_IDS += [{"int": "0", "str": token} for token in ("%C2%B2", "%ED%A0%80", "%00", "x" * 3000)]


@pytest.mark.parametrize("placeholder", FAR_IDS, ids=["past-64-bits", "superscript", "surrogate", "nul", "long"])
def test_no_url_answers_a_server_error_for_an_object_no_id_can_name(ada, world, server_errors, placeholder):
    for route in sorted(set(_routes())):
        if "<" not in route or route.startswith(tuple(EXCLUDED_PREFIXES)):
            continue
        url = _probe_url(route, placeholder)
        for method in ("GET", "POST"):
            response = send(ada, method, url)
            server_errors.check(response, f"{method} {url:.300}")


def test_every_url_accepting_post_is_fuzzed_or_excluded(ada, world):
    """A new form, or a new POST on an old URL, fails here until it is in FORMS or PUBLIC, or excluded with a
    reason. Probed with objects that do not exist, so nothing changes: 405 means the URL refuses POST."""
    routes = set(_routes())
    covered = set(FORMS) | PUBLIC | set(READS)
    assert covered - routes == set(), "fuzzed URLs that no longer exist"
    assert set(EXCLUDED) - routes == set(), "exclusions of URLs that no longer exist"
    unfuzzed = []
    for route in sorted(routes - covered - set(EXCLUDED)):
        if route.startswith(tuple(EXCLUDED_PREFIXES)):
            continue
        url = _probe_url(route)
        try:
            resolve(_path(url))
        except Resolver404:
            unfuzzed.append(f"{route} (no probe URL: give it a placeholder)")
            continue
        if ada.post(url).status_code != 405:
            unfuzzed.append(route)
    assert unfuzzed == [], (
        "\n".join(unfuzzed) + "\nURLs accepting POST that are neither fuzzed nor excluded with a reason"
    )
