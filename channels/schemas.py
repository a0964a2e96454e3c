"""Settings of each channel, validated by pydantic. Secrets are SecretStr so no error or repr shows them."""

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    from_email: str = Field(max_length=254)
    from_name: str = Field(default="", max_length=200)
    reply_to: str = Field(default="", max_length=254)
    host: str = Field(min_length=1, max_length=253)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str = Field(default="", max_length=254)
    password: SecretStr = SecretStr("")
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    connections: int = Field(default=4, ge=1, le=32, description="SMTP connections kept open per worker.")
    rate_per_second: float | None = Field(default=None, gt=0, description="Messages per second, all workers.")

    @field_validator("from_email", "reply_to")
    @classmethod
    def _address(cls, value: str, info) -> str:
        if value and not _ADDRESS.match(value):
            raise ValueError("is not an email address")
        if not value and info.field_name == "from_email":
            raise ValueError("is required")
        return value


SECRET_FIELDS = {"email": ("password",)}
SETTINGS_MODELS = {"email": EmailSettings}
