"""Settings of each channel, validated by pydantic. Secrets are SecretStr so no error or repr shows them.

Field names are stored in ChannelConfiguration.settings: rename one only with a data migration.
"""

import json
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from channels.adapters.email_footer import footer_problem
from channels.adapters.http import ALLOW_SETTING, host_refusal

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$", re.IGNORECASE)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SELECTOR = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,62})(\.[a-z0-9]([a-z0-9_-]{0,62}))*$", re.IGNORECASE)
DAY = 24 * 3600
# The validation context key that refuses provider URLs on private networks (see `entry_context`).
_REFUSE_PRIVATE_HOSTS = "refuse_private_hosts"


def entry_context() -> dict:
    """The validation context for settings someone is entering (the configuration form).

    A URL whose host is `localhost` or a literal address that is not public is refused there, unless
    CHANNELS_ALLOW_PRIVATE_NETWORKS is on. Stored settings load without it, so a configuration saved before
    still opens: its requests are refused when connecting (channels.adapters.http), as are names that resolve
    to such an address.
    """
    from django.conf import settings

    return {_REFUSE_PRIVATE_HOSTS: not getattr(settings, ALLOW_SETTING, False)}


def _http_url(value: str, info: ValidationInfo | None = None) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("is not an http(s) URL")
    if _refuses_private_hosts(info):
        refusal = host_refusal(parts.hostname)
        if refusal:
            raise ValueError(
                f"points at {refusal}: requests to private networks are refused (set {ALLOW_SETTING}=1 to allow)"
            )
    return value


def _refuses_private_hosts(info: ValidationInfo | None) -> bool:
    return info is not None and bool((info.context or {}).get(_REFUSE_PRIVATE_HOSTS))


def _feedback_secret():
    return Field(
        default=SecretStr(""),
        description="Signs the delivery events posted to this configuration's feedback endpoints (HMAC-SHA256, "
        "docs/channels.md); empty: those endpoints refuse every post.",
    )


class _Settings(BaseModel):
    # Pydantic puts the raw input in its errors, and a validator raising about a secret would echo it.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)


class EmailSettings(_Settings):
    from_email: str = Field(max_length=254)
    from_name: str = Field(default="", max_length=200)
    reply_to: str = Field(default="", max_length=254)
    purpose: Literal["marketing", "transactional", "both"] = Field(
        default="both",
        description=(
            "Which campaigns may send through this relay: keep transactional mail (password resets) on a relay "
            "and reputation of its own by choosing one."
        ),
    )
    bounce_domain: str = Field(
        default="",
        max_length=253,
        description="Return-Path domain: bounces go to bounce+<delivery id>@<this domain>. Empty: the sender address.",
    )
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str = Field(default="", max_length=254)
    password: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    connections: int = Field(default=4, ge=1, le=32, description="SMTP connections kept open per worker.")
    rate_per_second: float | None = Field(
        default=None, gt=0, le=1_000_000, allow_inf_nan=False, description="Messages per second, all workers."
    )
    list_unsubscribe: bool = Field(
        default=True, description="Add List-Unsubscribe and one-click unsubscribe headers (RFC 8058) to marketing mail."
    )
    footer_html: str = Field(
        default="",
        max_length=10_000,
        description="Appended to the HTML part of marketing mail, before </body>: Liquid that must contain "
        "{{ unsubscribe_url }}, the recipient's unsubscribe link. Empty: each marketing campaign's content shows "
        "the link itself.",
        json_schema_extra={"multiline": True},
    )
    footer_text: str = Field(
        default="",
        max_length=5_000,
        description="Appended to the text part of marketing mail: Liquid that must contain {{ unsubscribe_url }}. "
        "Empty: each marketing campaign's text shows the link itself.",
        json_schema_extra={"multiline": True},
    )
    track_opens: bool = Field(
        default=False,
        description="Add a 1x1 image to the HTML part of each campaign message; its loads are counted as opens, those "
        'of mail privacy proxies apart (docs/campaigns.md, "Tracking").',
    )
    track_clicks: bool = Field(
        default=False,
        description="Send each absolute http(s) link written in a campaign's HTML through a signed redirect that "
        "counts clicks, those of link scanners apart. Unsubscribe links, links built by Liquid and the text part are "
        "left as written.",
    )
    utm_parameters: bool = Field(
        default=False,
        description="With click tracking: add utm_source, utm_medium and utm_campaign (the campaign's name) to where "
        "a tracked link leads, each one the link does not set itself.",
    )
    utm_source: str = Field(
        default="newsletter", max_length=100, description="The utm_source added to tracked links; empty: none."
    )
    utm_medium: str = Field(
        default="email", max_length=100, description="The utm_medium added to tracked links; empty: none."
    )
    dkim_domain: str = Field(default="", max_length=253, description="DKIM signing domain (d=); empty: no signing.")
    dkim_selector: str = Field(default="", max_length=253, description="DKIM selector (s=).")
    dkim_private_key: SecretStr = Field(default=SecretStr(""), description="PEM RSA private key (2048 bits advised).")
    retry_window_seconds: int = Field(
        default=DAY, ge=60, le=7 * DAY, description="How long transient failures are retried."
    )
    feedback_secret: SecretStr = _feedback_secret()

    @field_validator("from_email", "reply_to")
    @classmethod
    def _address(cls, value: str, info) -> str:
        if value and not _ADDRESS.match(value):
            raise ValueError("is not an email address")
        if not value and info.field_name == "from_email":
            raise ValueError("is required")
        return value

    @field_validator("footer_html", "footer_text")
    @classmethod
    def _footer(cls, value: str) -> str:
        if value and (problem := footer_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("bounce_domain", "dkim_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if value and not _DOMAIN.match(value):
            raise ValueError("is not a domain name")
        return value.lower()

    @field_validator("dkim_selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        if value and not _SELECTOR.match(value):
            raise ValueError("is not a DKIM selector")
        return value

    @field_validator("dkim_private_key")
    @classmethod
    def _private_key(cls, value: SecretStr) -> SecretStr:
        pem = value.get_secret_value().strip()
        if not pem:
            return SecretStr("")
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("is not an unencrypted PEM private key") from None
        if not isinstance(key, RSAPrivateKey) or key.key_size < 1024:
            raise ValueError("is not an RSA key of 1024 bits or more")
        return SecretStr(pem)

    @model_validator(mode="after")
    def _dkim_complete(self):
        given = [bool(self.dkim_domain), bool(self.dkim_selector), bool(self.dkim_private_key.get_secret_value())]
        if any(given) and not all(given):
            raise ValueError("DKIM needs all of dkim_domain, dkim_selector and dkim_private_key, or none of them")
        return self

    @property
    def dkim_enabled(self) -> bool:
        return bool(self.dkim_domain)


class _HttpSettings(_Settings):
    """What every channel that talks HTTP to a provider has."""

    timeout_seconds: float = Field(default=10, gt=0, le=120, description="Seconds to wait for the provider.")
    connections: int = Field(default=4, ge=1, le=64, description="Requests kept in flight per worker.")
    rate_per_second: float | None = Field(
        default=None, gt=0, le=1_000_000, allow_inf_nan=False, description="Messages per second, all workers."
    )
    retry_window_seconds: int = Field(
        default=DAY, ge=60, le=7 * DAY, description="How long transient failures are retried."
    )
    feedback_secret: SecretStr = _feedback_secret()


class SmsSettings(_HttpSettings):
    """A Twilio-compatible REST provider."""

    base_url: str = Field(default="https://api.twilio.com", max_length=500)
    account_sid: str = Field(min_length=1, max_length=64)
    auth_token: SecretStr
    from_number: str = Field(description="The sender number, E.164 (+15551234567).")
    help_reply: str = Field(
        default="Reply STOP to unsubscribe, START to subscribe again.",
        min_length=1,
        max_length=320,
        description="The answer to a text saying HELP (inbound SMS webhook).",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str, info: ValidationInfo) -> str:
        return _http_url(value, info).rstrip("/")

    @field_validator("account_sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError("may hold only letters, digits, - and _")
        return value

    @field_validator("from_number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not _E164.match(value):
            raise ValueError("is not an E.164 number (+ and 7 to 15 digits)")
        return value

    @field_validator("auth_token")
    @classmethod
    def _required(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("is required")
        return value


class PushSettings(_HttpSettings):
    """Firebase Cloud Messaging, HTTP v1 API, authenticated with a service account."""

    project_id: str = Field(min_length=1, max_length=100)
    service_account_json: SecretStr = Field(description="The service account's JSON key file, as downloaded.")
    send_endpoint: str = Field(default="https://fcm.googleapis.com", max_length=500)
    token_uri: str = Field(default="", max_length=500, description="OAuth2 token endpoint; empty: the key's own.")

    @field_validator("send_endpoint", "token_uri")
    @classmethod
    def _endpoint(cls, value: str, info: ValidationInfo) -> str:
        return _http_url(value, info).rstrip("/") if value else value

    @field_validator("project_id")
    @classmethod
    def _project(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value):
            raise ValueError("is not a Firebase project id")
        return value

    @field_validator("service_account_json")
    @classmethod
    def _service_account(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        # Errors name what is missing, never a value from the key.
        try:
            key = json.loads(value.get_secret_value())
        except ValueError:
            raise ValueError("is not JSON") from None
        if not isinstance(key, dict):
            raise ValueError("is not a service account key (a JSON object)")
        missing = [name for name in ("client_email", "private_key") if not isinstance(key.get(name), str)]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            private_key = load_pem_private_key(key["private_key"].encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("holds a private_key that is not an unencrypted PEM key") from None
        if not isinstance(private_key, RSAPrivateKey):
            raise ValueError("holds a private_key that is not an RSA key")
        if key.get("token_uri") is not None:
            token_uri = _http_url(str(key["token_uri"]))
            if _refuses_private_hosts(info) and host_refusal(urlsplit(token_uri).hostname):
                raise ValueError(f"holds a token_uri on a private network: refused (set {ALLOW_SETTING}=1 to allow)")
        return value

    def service_account(self) -> dict:
        return json.loads(self.service_account_json.get_secret_value())


class WebhookSettings(_HttpSettings):
    """POST each message as signed JSON to a URL of the organization's own."""

    url: str = Field(max_length=2000)
    signing_secret: SecretStr = Field(description="Shared secret for the X-Campaign-Signature HMAC, 16+ characters.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        return _http_url(value, info)

    @field_validator("signing_secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


class InAppSettings(_Settings):
    """The inbox is served by this product (channels.api): there is nothing to configure yet."""

    rate_per_second: float | None = Field(
        default=None, gt=0, le=1_000_000, allow_inf_nan=False, description="Messages per second, all workers."
    )


SECRET_FIELDS = {
    "email": ("password", "dkim_private_key", "feedback_secret"),
    "sms": ("auth_token", "feedback_secret"),
    "push": ("service_account_json", "feedback_secret"),
    "webhook": ("signing_secret", "feedback_secret"),
    "in_app": (),
}
SETTINGS_MODELS = {
    "email": EmailSettings,
    "sms": SmsSettings,
    "push": PushSettings,
    "webhook": WebhookSettings,
    "in_app": InAppSettings,
}
