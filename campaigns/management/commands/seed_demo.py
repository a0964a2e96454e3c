"""Demo data for trying the product: one user per role, ~1,000 profiles, two audiences, a local mail catcher
configuration, an approval policy for marketing campaigns and a few campaigns, taken through review as a manager
and an approver would. Idempotent: what exists is left as it is."""

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from audiences.models import (
    AttributeDefinition,
    Audience,
    Channel,
    Consent,
    Identity,
    IdentityNamespace,
    Profile,
)
from campaigns.models import ApprovalPolicy, Campaign
from campaigns.services import approval, lifecycle
from channels.models import ChannelConfiguration
from channels.schemas import EmailSettings
from permissions.models import ApiKey, sha256_hex
from permissions.roles import Role

PASSWORD = "demo-password-123"
# The README's trigger examples use this key and recipient. Public: it exists only in the demo data.
DEMO_API_KEY = "cmk_demokey1_" + "d3m0" * 10
DEMO_API_RECIPIENT = "ada@example.com"
PROFILE_COUNT = 1000
BATCH_SIZE = 250
# Marketing campaigns need an approval by a campaign approver; transactional ones (password reset) do not.
POLICY_NAME = "Marketing needs approval"
# Profiles are recognized by this identity, so a second run creates only what is missing.
DEMO_NAMESPACE = "demo_id"

USERS = {
    "admin": Role.ADMINISTRATOR,
    "approver": Role.APPROVER,
    "manager": Role.MANAGER,
    "viewer": Role.VIEWER,
}

FIRST_NAMES = (
    "Alice Bruno Chloe David Emma Felix Grace Hugo Ines Jonas Karin Lucas "
    "Maria Noah Olivia Paul Rosa Samuel Tara Victor Wendy Yann Zoe Leon"
).split()
LAST_NAMES = (
    "Martin Bernard Schmidt Smith Garcia Rossi Dubois Muller Jones Lopez "
    "Bianchi Laurent Fischer Brown Moreau Weber Taylor Romano Petit Wilson"
).split()
# Country: (weight, locale, time zones)
COUNTRIES = {
    "FR": (30, "fr-FR", ["Europe/Paris"]),
    "DE": (20, "de-DE", ["Europe/Berlin"]),
    "US": (20, "en-US", ["America/New_York", "America/Chicago", "America/Los_Angeles"]),
    "GB": (12, "en-GB", ["Europe/London"]),
    "ES": (10, "es-ES", ["Europe/Madrid"]),
    "IT": (8, "it-IT", ["Europe/Rome"]),
}
PLANS = {"free": 60, "pro": 30, "enterprise": 10}

# Marketing email must show an unsubscribe link (campaigns.unsubscribe): the footer of each part has it.
HTML_BODY = """<!doctype html>
<html>
<body style="font-family: Arial, sans-serif; color: #1f2430; max-width: 560px; margin: 0 auto; padding: 24px;">
  <h1 style="color: #2f5bd3;">{heading}</h1>
  <p>Hello {{{{ profile.first_name | default: "there" }}}},</p>
  <p>{paragraph}</p>
  <p><a href="https://shop.example.com/" style="background: #2f5bd3; color: #fff; padding: 10px 16px;
     border-radius: 4px; text-decoration: none;">Visit the shop</a></p>
  <p style="color: #667085; font-size: 12px;">Demo Shop · 1 Example Street · Paris ·
     <a href="{{{{ unsubscribe_url }}}}" style="color: #667085;">Unsubscribe</a></p>
</body>
</html>
"""
TEXT_BODY = """Hello {{{{ profile.first_name | default: "there" }}}},

{paragraph}

Visit the shop: https://shop.example.com/

Demo Shop · 1 Example Street · Paris
Unsubscribe: {{{{ unsubscribe_url }}}}
"""


def _content(subject: str, heading: str, paragraph: str) -> lifecycle.Content:
    return lifecycle.Content(
        subject=subject,
        html_body=HTML_BODY.format(heading=heading, paragraph=paragraph),
        text_body=TEXT_BODY.format(paragraph=paragraph),
    )


class Command(BaseCommand):
    help = "Create demo users, profiles, audiences, a mail catcher configuration and campaigns. Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        users = self._users()
        attributes = self._attribute_schema(users["admin"])
        profiles = self._profiles()
        audiences = self._audiences(users["admin"])
        configuration, configuration_created = self._configuration()
        policy_created = self._approval_policy(users["admin"])
        campaigns = self._campaigns(users, audiences, configuration)
        reset, key_created = self._api_demo(users["admin"])

        created = {
            "users": users.created,
            "role grants": users.granted,
            "attribute definitions": attributes,
            "profiles": profiles,
            "audiences": audiences.created,
            "channel configurations": int(configuration_created),
            "approval policies": int(policy_created),
            "campaigns": campaigns,
            "API keys": int(key_created),
        }
        if not any(created.values()):
            self.stdout.write("Nothing to do: the demo data is already there.")
        else:
            summary = ", ".join(
                f"{count} {_singular(what) if count == 1 else what}" for what, count in created.items() if count
            )
            self.stdout.write(self.style.SUCCESS(f"Created {summary}."))
        self.stdout.write(
            f"Log in as {', '.join(USERS)} with the password {PASSWORD!r} "
            f"(mail goes to {settings.SMTP_HOST}:{settings.SMTP_PORT})."
        )
        if reset is not None:
            self.stdout.write(
                f"Trigger API: the password reset is campaign {reset.pk}; the demo key is {DEMO_API_KEY} "
                f"(README: Triggering a campaign)."
            )

    def _attribute_schema(self, admin) -> int:
        """Declare the demo profiles' identity namespace and attributes (audience rules are typed)."""
        IdentityNamespace.objects.get_or_create(
            name=DEMO_NAMESPACE, defaults={"label": "Demo id", "kind": IdentityNamespace.Kind.TEXT}
        )
        created = 0
        for name, type_, indexed in DEMO_ATTRIBUTES:
            _, was_created = AttributeDefinition.objects.get_or_create(
                name=name,
                defaults={
                    "type": type_,
                    "label": name.replace("_", " ").capitalize(),
                    "indexed": indexed,
                    "created_by": admin,
                },
            )
            created += was_created
        return created

    def _users(self):
        User = get_user_model()
        users = _Created()
        for username, role in USERS.items():
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
                users.created += 1
            group = Group.objects.get(name=role.value)
            if not user.groups.filter(pk=group.pk).exists():
                user.groups.add(group)
                users.granted += 1
            users[username] = user
        return users

    def _profiles(self) -> int:
        existing = set(Identity.objects.filter(namespace=DEMO_NAMESPACE).values_list("value", flat=True))
        missing = [n for n in range(1, PROFILE_COUNT + 1) if _demo_id(n) not in existing]
        for start in range(0, len(missing), BATCH_SIZE):
            batch = missing[start : start + BATCH_SIZE]
            built = [_demo_profile(n) for n in batch]
            profiles = Profile.objects.bulk_create([profile for profile, _ in built])
            Identity.objects.bulk_create(
                Identity(profile=profile, namespace=DEMO_NAMESPACE, value=_demo_id(n))
                for n, profile in zip(batch, profiles, strict=True)
            )
            Consent.objects.bulk_create(
                Consent(profile=profile, channel=Channel.EMAIL, state=state, source="demo")
                for profile, (_, state) in zip(profiles, built, strict=True)
                if state
            )
        return len(missing)

    def _audiences(self, admin):
        audiences = _Created()
        for name, kind, rule, description in (
            ("All profiles", Audience.Kind.ALL, {}, "Everyone we have a profile for."),
            (
                "Pro customers in France",
                Audience.Kind.RULE,
                {
                    "all": [
                        {"attribute": "plan", "op": "equals", "value": "pro"},
                        {"attribute": "country", "op": "equals", "value": "FR"},
                    ]
                },
                "Customers on the pro plan whose country is France.",
            ),
        ):
            audience, created = Audience.objects.get_or_create(
                name=name, defaults={"kind": kind, "rule": rule, "description": description, "created_by": admin}
            )
            audiences.created += created
            audiences[name] = audience
        return audiences

    def _configuration(self):
        configuration = ChannelConfiguration.objects.filter(name="Local mail catcher").first()
        created = configuration is None
        if created:
            configuration = ChannelConfiguration(name="Local mail catcher", channel=Channel.EMAIL)
            configuration.set_settings(
                EmailSettings(
                    from_email="news@example.com",
                    from_name="Demo Shop",
                    host=settings.SMTP_HOST,
                    port=settings.SMTP_PORT,
                    security="none",
                    connections=4,
                )
            )
            configuration.save()
        return configuration, created

    def _approval_policy(self, admin) -> bool:
        if ApprovalPolicy.objects.filter(name=POLICY_NAME).exists():
            return False
        approval.approval_policy_create(
            actor=admin,
            rules=approval.PolicyRules(
                name=POLICY_NAME,
                categories=[Campaign.Category.MARKETING],
                approver_groups=[Group.objects.get(name=Role.APPROVER.value)],
                block_self_approval=True,
            ),
        )
        return True

    def _campaigns(self, users, audiences, configuration) -> int:
        created = 0

        def create(name, *, actor, **kwargs):
            nonlocal created
            if Campaign.objects.filter(name=name).exists():
                return None
            created += 1
            return lifecycle.campaign_create(actor=actor, name=name, channel_configuration=configuration, **kwargs)

        spring = create(
            "Spring sale preview",
            actor=users["manager"],
            audience=audiences["Pro customers in France"],
            content=_content(
                "{{ profile.first_name | default: 'Hello' }}, an early look at the spring sale",
                "The spring sale starts soon",
                "As a pro customer you get two days of early access. We will write again when it opens.",
            ),
            tags=["sale", "spring"],
        )
        if spring:
            # Waiting in the approver's review queue.
            approval.campaign_submit_for_review(campaign=spring, actor=users["manager"])
        weekly = create(
            "Weekly newsletter",
            actor=users["manager"],
            audience=audiences["All profiles"],
            content=_content(
                "This week at Demo Shop",
                "This week at Demo Shop",
                "New arrivals, a recipe from the team and the best of the blog.",
            ),
            schedule=Campaign.Schedule.RECURRING,
            cron="0 9 * * 1",
            timezone_name="Europe/Paris",
            start_at=_days_ahead(7, hour=0, zone="Europe/Paris"),
            tags=["newsletter"],
        )
        if weekly:
            _approve_and_activate(weekly, users, comment="Approved for the weekly slot.")
        teaser = create(
            "Black Friday teaser",
            actor=users["manager"],
            audience=audiences["All profiles"],
            content=_content(
                "Black Friday is coming, {{ profile.first_name | default: 'friend' }}",
                "Black Friday is coming",
                "Mark the date: our biggest discounts of the year, for one weekend only.",
            ),
            schedule=Campaign.Schedule.AT,
            start_at=_days_ahead(21, hour=10, zone="America/New_York"),
            timezone_name="America/New_York",
            tags=["black-friday"],
        )
        if teaser:
            _approve_and_activate(teaser, users, comment="Approved; on hold until the offers are final.")
            lifecycle.campaign_pause(campaign=teaser, actor=users["approver"])
        reset = create(
            "Password reset",
            actor=users["admin"],
            audience=None,
            kind=Campaign.Kind.API_TRIGGERED,
            category=Campaign.Category.TRANSACTIONAL,
            content=lifecycle.Content(
                subject="Reset your password",
                html_body='<p>Hello {{ profile.first_name | default: "there" }},</p>\n'
                '<p><a href="{{ context.reset_url }}">Choose a new password</a>. '
                "The link works for one hour.</p>",
                text_body="Hello {{ profile.first_name | default: 'there' }},\n\n"
                "Choose a new password: {{ context.reset_url }}\nThe link works for one hour.\n",
            ),
            tags=["account"],
        )
        if reset:
            # Live at once (transactional: no approval needed), so the README's trigger examples work as written.
            lifecycle.campaign_update_contract(
                campaign=reset,
                actor=users["admin"],
                contract=[
                    {
                        "name": "reset_url",
                        "type": "string",
                        "required": True,
                        "example": "https://shop.example.com/reset/3f9a",
                        "description": "The one-hour link that sets a new password.",
                    }
                ],
            )
            lifecycle.campaign_activate(campaign=reset, actor=users["admin"])
        return created

    def _api_demo(self, admin) -> tuple[Campaign | None, bool]:
        """The README's trigger examples: a profile to send to and an API key whose secret is written there."""
        if not Identity.objects.filter(namespace="email", value=DEMO_API_RECIPIENT).exists():
            profile = Profile.objects.create(email=DEMO_API_RECIPIENT, attributes={"first_name": "Ada"})
            Identity.objects.create(profile=profile, namespace="email", value=DEMO_API_RECIPIENT)
        reset = Campaign.objects.filter(name="Password reset", kind=Campaign.Kind.API_TRIGGERED).first()
        if reset is None or ApiKey.objects.filter(prefix=DEMO_API_KEY.split("_")[1]).exists():
            return reset, False
        ApiKey.objects.create(
            name="Demo key (public: revoke it anywhere but the demo)",
            prefix=DEMO_API_KEY.split("_")[1],
            key_hash=sha256_hex(DEMO_API_KEY),
            campaign_ids=[reset.pk],
            created_by=admin,
        )
        return reset, True


def _approve_and_activate(campaign: Campaign, users, *, comment: str) -> None:
    """The manager submits the campaign and the approver approves and activates it, as the policy requires."""
    version = approval.campaign_submit_for_review(campaign=campaign, actor=users["manager"])
    lifecycle.campaign_approve_and_activate(
        campaign=campaign, actor=users["approver"], review_key=version.review_key(), comment=comment
    )


def _singular(what: str) -> str:
    return what.removesuffix("ies") + "y" if what.endswith("ies") else what.removesuffix("s")


class _Created(dict):
    """Objects by name, and how many of them this run created (or granted a role)."""

    created = 0
    granted = 0


def _days_ahead(days: int, *, hour: int, zone: str) -> datetime:
    """`hour` o'clock in `zone`, `days` days from today there."""
    local = timezone.localtime(timezone=ZoneInfo(zone)) + timedelta(days=days)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


DEMO_ATTRIBUTES = [
    ("first_name", AttributeDefinition.Type.STRING, False),
    ("last_name", AttributeDefinition.Type.STRING, False),
    ("country", AttributeDefinition.Type.STRING, True),
    ("plan", AttributeDefinition.Type.STRING, True),
    ("signup_date", AttributeDefinition.Type.DATE, True),
    ("age", AttributeDefinition.Type.NUMBER, False),
    ("vip", AttributeDefinition.Type.BOOLEAN, False),
]


def _demo_id(n: int) -> str:
    return f"demo-{n:04d}"


def _demo_profile(n: int) -> tuple[Profile, str | None]:
    """Profile number `n` and its email consent (None: unknown), the same on every run."""
    rng = random.Random(n)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    country = rng.choices(list(COUNTRIES), weights=[weight for weight, _, _ in COUNTRIES.values()])[0]
    _, locale, zones = COUNTRIES[country]
    attributes = {
        "first_name": first,
        "last_name": last,
        "country": country,
        "plan": rng.choices(list(PLANS), weights=list(PLANS.values()))[0],
        "signup_date": (date(2026, 1, 1) - timedelta(days=rng.randrange(3 * 365))).isoformat(),
        "age": rng.randint(18, 80),
        "vip": rng.random() < 0.05,
    }
    # Every 50th profile has no email address; about one in ten has opted out of email.
    email = "" if n % 50 == 0 else f"{first.lower()}.{last.lower()}.{n}@example.com"
    roll = rng.random()
    consent = Consent.State.OPTED_OUT if roll < 0.1 else Consent.State.OPTED_IN if roll < 0.4 else None
    profile = Profile(email=email, attributes=attributes, timezone=rng.choice(zones), locale=locale)
    return profile, consent
