"""Notification settings: SMTP, webhooks, caps and retries.

Read from ``$PUKARA_HOME/notify.toml`` (an administrator's file, private to the home) until
the lead folds it into :class:`pukara.core.config.Settings`. A webhook may point at an
internal address only when the administrator says so in this file (``allow_internal``,
SECURITY G1); nothing submitted by an entity or an analyst can set a webhook URL.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from pukara.core.errors import ConfigError

FILE_NAME = "notify.toml"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmtpConfig(_Config):
    """The relay every e-mail goes through."""

    host: str = ""
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = "csirt@localhost"
    starttls: bool = False
    username: str = ""
    password: SecretStr = SecretStr("")
    timeout_seconds: float = 30.0


class WebhookConfig(_Config):
    """One webhook receiver; ``entity_id`` None means a staff webhook."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    url: str
    secret: SecretStr
    entity_id: str | None = None
    kinds: list[str] = Field(default_factory=list, description="empty: every kind")
    allow_internal: bool = False
    timeout_seconds: float = 10.0

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("a webhook URL is http:// or https://")
        return value


class NotifyConfig(_Config):
    """Everything the outbox and its channels need."""

    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    staff_email: str = ""
    per_recipient_per_hour: int = Field(default=30, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0)

    def webhooks_for(self, entity_id: str | None, kind: str) -> list[WebhookConfig]:
        """The webhooks that receive ``kind`` messages for ``entity_id``."""
        return [hook for hook in self.webhooks if hook.entity_id == entity_id
                and (not hook.kinds or kind in hook.kinds)]

    def webhook(self, name: str) -> WebhookConfig | None:
        """The webhook called ``name``."""
        return next((hook for hook in self.webhooks if hook.name == name), None)


def load_notify_config(home: Path) -> NotifyConfig:
    """The notification settings of a Pukara home (defaults when the file is absent)."""
    path = home / FILE_NAME
    if not path.exists():
        return NotifyConfig()
    try:
        return NotifyConfig.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
