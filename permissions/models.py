import hashlib

from django.conf import settings
from django.db import models


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class ApiKey(models.Model):
    """A key for the REST API. Only its SHA-256 hash is stored; the prefix is shown to tell keys apart."""

    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    all_triggered_campaigns = models.BooleanField(
        default=False, help_text="May trigger every API-triggered campaign, present and future."
    )
    campaign_ids = models.JSONField(default=list, blank=True, help_text="API-triggered campaigns it may trigger.")
    profiles = models.BooleanField(default=False, help_text="May upsert, export and erase profiles.")
    # Trigger calls per second, shared by every web process (campaigns.api); None for the default
    # (settings.API_KEY_DEFAULT_RATE).
    rate_per_second = models.PositiveIntegerField(
        null=True, blank=True, help_text="Trigger calls per second; empty for the default."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def may_trigger(self, campaign_id: int) -> bool:
        return self.is_active and (self.all_triggered_campaigns or campaign_id in self.campaign_ids)


class Invitation(models.Model):
    """A single-use, time-limited link for a new user to set a password. Only the token's hash is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Invitation for {self.user}"


class AuditEvent(models.Model):
    """Who did what to which object, when, with the state before and after. Never holds secrets."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=200, help_text="The actor as they were named at the time.")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]
        permissions = [("export_auditevent", "Can export the audit log")]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"


class Notification(models.Model):
    """A message to one user in the app (the bell), e.g. a campaign waiting for their approval."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="Where the notification leads, a local path.")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the email job handed it to the mailer; empty if not (yet) emailed."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self):
        return self.title
