from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models


class Channel(models.TextChoices):
    """The channels a message can go through. Consent is kept per channel."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    WEBHOOK = "webhook", "Webhook"
    IN_APP = "in_app", "In-app"


class Profile(models.Model):
    """A person we can message. Attribute values follow the declared schema (AttributeDefinition): each
    attribute has one type, and values of different types never mix in storage."""

    email = models.CharField(max_length=254, blank=True, help_text="Primary email address.")
    phone = models.CharField(max_length=32, blank=True, help_text="Primary phone number, E.164.")
    attributes = models.JSONField(default=dict, blank=True)
    # An IANA zone; empty when unknown (campaigns sending in profiles' zones then use the campaign's).
    timezone = models.CharField(max_length=64, blank=True, default="")
    locale = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("export_profile", "Can export a profile's personal data"),
            ("import_profiles", "Can import profiles"),
        ]
        # The search's indexes (the start of the email and of the name attributes, the phone) are expressions
        # with text_pattern_ops on PostgreSQL only: migration 0007_profile_search_indexes makes them, outside
        # the model's state.

    def __str__(self):
        return self.email or self.phone or f"Profile {self.pk}"

    def address_for(self, channel: str) -> str:
        """The address a message on `channel` goes to, or "" when the profile has none."""
        if channel == Channel.EMAIL:
            return self.email
        if channel == Channel.SMS:
            return self.phone
        if channel == Channel.PUSH:
            # The newest live token; prefetch push_tokens to address many profiles without a query each.
            live = [token for token in self.push_tokens.all() if token.retired_at is None]
            return max(live, key=lambda token: (token.created_at, token.pk)).token if live else ""
        if channel in (Channel.WEBHOOK, Channel.IN_APP):
            return str(self.pk)
        return ""

    def personalization(self) -> dict:
        """What Liquid templates see as `profile`."""
        return {**self.attributes, "id": self.pk, "email": self.email, "phone": self.phone}


class IdentityNamespace(models.Model):
    """A kind of identifier: built in (email, phone, crm_id) or added by an administrator."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email address"
        PHONE = "phone", "Phone number (E.164)"
        TEXT = "text", "Text"

    name = models.SlugField(max_length=64, unique=True)
    label = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TEXT)
    builtin = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-builtin", "name"]

    def __str__(self):
        return self.name


class Identity(models.Model):
    """One identifier of a profile in a namespace (email, phone, crm_id, ...), unique per namespace.

    Values are stored normalized (emails lower-cased in the domain, phones in E.164)."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="identities")
    namespace = models.CharField(max_length=64)
    value = models.CharField(max_length=320)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "value"], name="identity_unique_in_namespace")]
        verbose_name_plural = "identities"

    def __str__(self):
        return f"{self.namespace}:{self.value}"


class Consent(models.Model):
    """A profile's current consent to marketing on one channel. Absent means unknown. Every change is also
    kept in ConsentEvent, the history."""

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


class ConsentEvent(models.Model):
    """One change of a profile's consent on a channel: the history behind Consent."""

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consent_events")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    state = models.CharField(max_length=16, choices=Consent.State.choices)
    source = models.CharField(max_length=64, blank=True, help_text="import, api, unsubscribe link, ...")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["profile", "-created_at"], name="consent_history")]

    def __str__(self):
        return f"{self.profile_id} {self.channel} -> {self.state}"


# What "unknown" consent means for marketing when no ChannelConsentSetting row says otherwise.
UNKNOWN_CONSENT_ALLOWS_MARKETING = {
    Channel.EMAIL: True,
    Channel.SMS: False,
    Channel.PUSH: True,
    Channel.WEBHOOK: True,
    Channel.IN_APP: True,
}


class ChannelConsentSetting(models.Model):
    """Per channel: whether marketing may reach a profile whose consent is unknown."""

    channel = models.CharField(max_length=16, choices=Channel.choices, unique=True)
    unknown_allows_marketing = models.BooleanField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.channel}: unknown {'allows' if self.unknown_allows_marketing else 'blocks'} marketing"


def unknown_consent_allows_marketing(channel: str) -> bool:
    setting = ChannelConsentSetting.objects.filter(channel=channel).values_list("unknown_allows_marketing").first()
    return setting[0] if setting else UNKNOWN_CONSENT_ALLOWS_MARKETING.get(channel, False)


class PushToken(models.Model):
    """A device's push token for one app. Tokens the provider reports invalid are retired, not deleted."""

    class Platform(models.TextChoices):
        IOS = "ios", "iOS"
        ANDROID = "android", "Android"
        WEB = "web", "Web"

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="push_tokens")
    token = models.CharField(max_length=4096)
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, for uniqueness.")
    platform = models.CharField(max_length=8, choices=Platform.choices)
    app = models.CharField(max_length=200, help_text="The app the token belongs to (bundle or package id).")
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.platform} token of {self.profile_id}"


class AttributeDefinition(models.Model):
    """The declared type of one profile attribute. Imports and the API validate values against it."""

    class Type(models.TextChoices):
        STRING = "string", "Text"
        NUMBER = "number", "Number"
        BOOLEAN = "boolean", "Yes/no"
        DATE = "date", "Date"
        DATETIME = "datetime", "Date and time"
        STRING_LIST = "string_list", "List of texts"

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z][a-z0-9_]{0,63}$",
                "Use lower-case letters, digits and underscores, starting with a letter.",
            ),
            RegexValidator(r"__", "Two underscores in a row are reserved.", inverse_match=True),
        ],
    )
    type = models.CharField(max_length=16, choices=Type.choices)
    label = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    indexed = models.BooleanField(
        default=False, help_text="Keep a database index on this attribute, for audiences that filter on it."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.type})"


class Audience(models.Model):
    class Kind(models.TextChoices):
        ALL = "all", "All profiles"
        RULE = "rule", "Profiles matching a rule"
        UPLOADED = "uploaded", "An uploaded list"

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


class AudienceMember(models.Model):
    """A profile on an uploaded-list audience."""

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["audience", "profile"], name="audience_member_unique")]

    def __str__(self):
        return f"{self.profile_id} in {self.audience_id}"


class ProfileImport(models.Model):
    """One CSV import: the file (kept through the storage API), its column mapping, and its progress.

    Rows are stored in chunks, each in one transaction with the progress counters, so the counts always say
    exactly what was stored, even after a failure or a cancellation."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded: columns to map"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    delimiter = models.CharField(max_length=1, default=",")
    header = models.JSONField(default=list, blank=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="Column name -> what it fills.")
    default_region = models.CharField(max_length=2, blank=True, help_text="ISO country for phone numbers.")
    match_on = models.CharField(
        max_length=64, default="email", help_text="The identity namespace rows are matched to profiles by."
    )
    list_separator = models.CharField(max_length=1, default="|", help_text="Between the items of a list cell.")
    strict = models.BooleanField(default=False, help_text="Reject a whole row for one bad field.")
    audience = models.ForeignKey(
        Audience,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="imports",
        help_text="For an uploaded-list audience: the list the rows join.",
    )
    rows_read = models.PositiveIntegerField(default=0)
    rows_stored = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    rows_with_warnings = models.PositiveIntegerField(
        default=0, help_text="Rows stored without one or more of their fields (each reported)."
    )
    profiles_created = models.PositiveIntegerField(default=0)
    profiles_updated = models.PositiveIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0, help_text="Progress, and where a resumed import starts.")
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Import {self.pk} of {self.original_name}"


class ImportRowError(models.Model):
    """A problem with one row of an import: the line, the column, its value and the problem. `rejected` when the
    row was not stored at all; otherwise the row was stored without that field. The first problem of a line
    keeps the row's original values (`row`), for the report that is fixed and uploaded again."""

    profile_import = models.ForeignKey(ProfileImport, on_delete=models.CASCADE, related_name="row_errors")
    line = models.PositiveIntegerField()
    column = models.CharField(max_length=255, blank=True)
    value = models.CharField(max_length=500, blank=True)
    problem = models.CharField(max_length=500)
    rejected = models.BooleanField(default=True)
    row = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["line", "id"]
        indexes = [models.Index(fields=["profile_import", "line"], name="import_error_line")]

    def __str__(self):
        return f"line {self.line}: {self.problem}"
