from django.db import models
from django.views.decorators.debug import sensitive_variables
from pydantic import BaseModel, SecretStr

from audiences.models import Channel, Profile
from channels.schemas import SECRET_FIELDS, SETTINGS_MODELS
from channels.secrets import decrypt_secrets, encrypt_secrets


class ChannelConfiguration(models.Model):
    """How messages leave on one channel: provider settings, with secrets encrypted at rest."""

    name = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    settings = models.JSONField(default=dict, help_text="Settings without secrets.")
    encrypted_secrets = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_settings(self) -> BaseModel:
        """The validated settings, secrets included (as SecretStr)."""
        return SETTINGS_MODELS[self.channel].model_validate(
            {**self.settings, **decrypt_secrets(self.encrypted_secrets)}
        )

    @sensitive_variables("secrets", "value", "values")
    def set_settings(self, values: BaseModel) -> None:
        """Store validated settings, encrypting the secret fields. Call save() afterwards."""
        secret_names = SECRET_FIELDS.get(self.channel, ())
        data = values.model_dump(mode="json", exclude=set(secret_names))
        secrets = {}
        for name in secret_names:
            value = getattr(values, name)
            secrets[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        self.settings = data
        self.encrypted_secrets = encrypt_secrets(secrets) if any(secrets.values()) else ""


class Suppression(models.Model):
    """An address that must not be messaged on a channel, whatever the profile's consent says."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Complaint"
        MANUAL = "manual", "Added by hand"

    channel = models.CharField(max_length=16, choices=Channel.choices)
    address = models.CharField(max_length=320)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "address"], name="suppression_unique_address")]
        permissions = [("export_suppression", "Can export the suppression list")]

    def __str__(self):
        return f"{self.channel}:{self.address}"


def normalize_address(channel: str, address: str) -> str:
    """The form addresses are stored and compared in: emails lower-cased whole, others stripped."""
    return address.strip().lower() if channel == Channel.EMAIL else address.strip()


class InboxMessage(models.Model):
    """A message in a profile's in-app inbox, written by the in-app adapter and served to apps by channels.api."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="inbox_messages")
    configuration = models.ForeignKey(ChannelConfiguration, on_delete=models.CASCADE, related_name="inbox_messages")
    delivery_id = models.BigIntegerField(help_text="The delivery that wrote it: a re-sent delivery adds nothing.")
    title = models.CharField(max_length=500, blank=True)
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Deleted by the person; the row stays so a re-send stays deleted."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["configuration", "delivery_id"], name="inbox_message_once_per_delivery")
        ]
        indexes = [models.Index(fields=["profile", "-created_at"], name="inbox_profile_recent")]

    def __str__(self):
        return f"Inbox message {self.pk} of profile {self.profile_id}"


class InboundSms(models.Model):
    """An inbound SMS already acted on, by the provider's message id: a captured, validly signed request
    replayed later (Twilio signatures carry no timestamp) changes nothing."""

    configuration = models.ForeignKey(ChannelConfiguration, on_delete=models.CASCADE, related_name="+")
    message_sid = models.CharField(max_length=64)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["configuration", "message_sid"], name="inbound_sms_once"),
        ]

    def __str__(self):
        return self.message_sid
