from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    """The channels a message can go through. Consent is kept per channel."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    WEBHOOK = "webhook", "Webhook"
    IN_APP = "in_app", "In-app"


class Profile(models.Model):
    """A person we can message. Attributes are free-form for now; a declared schema comes with imports."""

    email = models.CharField(max_length=254, blank=True, help_text="Primary email address.")
    phone = models.CharField(max_length=32, blank=True, help_text="Primary phone number, E.164.")
    attributes = models.JSONField(default=dict, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    locale = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("export_profile", "Can export a profile's personal data"),
            ("import_profiles", "Can import profiles"),
        ]

    def __str__(self):
        return self.email or self.phone or f"Profile {self.pk}"

    def address_for(self, channel: str) -> str:
        """The address a message on `channel` goes to, or "" when the profile has none."""
        if channel == Channel.EMAIL:
            return self.email
        if channel == Channel.SMS:
            return self.phone
        return ""

    def personalization(self) -> dict:
        """What Liquid templates see as `profile`."""
        return {**self.attributes, "id": self.pk, "email": self.email, "phone": self.phone}


class Identity(models.Model):
    """One identifier of a profile in a namespace (email, phone, crm_id, ...), unique per namespace."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="identities")
    namespace = models.CharField(max_length=64)
    value = models.CharField(max_length=320)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "value"], name="identity_unique_in_namespace")]
        verbose_name_plural = "identities"

    def __str__(self):
        return f"{self.namespace}:{self.value}"


class Consent(models.Model):
    """A profile's consent to marketing on one channel. Absent means unknown."""

    class State(models.TextChoices):
        OPTED_IN = "opted_in", "Opted in"
        OPTED_OUT = "opted_out", "Opted out"
        UNKNOWN = "unknown", "Unknown"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    source = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "channel"], name="consent_one_per_channel")]

    def __str__(self):
        return f"{self.profile_id} {self.channel}: {self.state}"


# What "unknown" consent means for marketing, per channel.
UNKNOWN_CONSENT_ALLOWS_MARKETING = {Channel.EMAIL: True, Channel.SMS: False, Channel.PUSH: True}


class Audience(models.Model):
    class Kind(models.TextChoices):
        ALL = "all", "All profiles"
        RULE = "rule", "Profiles matching a rule"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.RULE)
    rule = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
