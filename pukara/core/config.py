"""Configuration: ``$PUKARA_HOME/pukara.toml`` overridden by ``PUKARA_*`` variables.

Secrets are ``SecretStr`` so ``repr()`` and JSON dumps mask them (SECURITY K4).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pukara.core.errors import ConfigError


def default_home() -> Path:
    """``$PUKARA_HOME`` or ``~/.pukara``."""
    return Path(os.environ.get("PUKARA_HOME") or Path.home() / ".pukara").expanduser()


class DeadlineRegime(BaseModel):
    """Reporting deadlines of one regime, in hours after awareness (final: after notification)."""

    early_warning_hours: float | None = 24
    notification_hours: float | None = 72
    final_report_days: int | None = 30
    final_report_calendar_month: bool = False


def _default_regimes() -> dict[str, DeadlineRegime]:
    return {
        "default": DeadlineRegime(),
        "nis2": DeadlineRegime(final_report_calendar_month=True),
        "peru": DeadlineRegime(early_warning_hours=None, notification_hours=48),
        "circia": DeadlineRegime(early_warning_hours=None, notification_hours=72),
    }


class ApiLimits(BaseModel):
    """Request size and rate limits of the HTTP API."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_evidence_bytes: int = 50 * 1024 * 1024
    max_json_depth: int = 64
    rate_per_minute: int = 600
    rate_burst: int = 120
    failed_auth_per_minute: int = 30
    idempotency_ttl_hours: int = 72
    trusted_proxies: list[str] = Field(default_factory=list)


class Settings(BaseSettings):
    """Everything configurable. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="PUKARA_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Field(default_factory=default_home)
    database_url: str = ""
    center_name: str = "Centro Nacional de Seguridad Digital"
    tracking_prefix: str = "INC"
    default_regime: str = "default"
    regimes: dict[str, DeadlineRegime] = Field(default_factory=_default_regimes)
    api: ApiLimits = Field(default_factory=ApiLimits)
    token_pepper: SecretStr = SecretStr("")
    misp_url: str = ""
    misp_key: SecretStr = SecretStr("")
    misp_verify_tls: bool = True
    elasticsearch_url: str = ""
    mail_authserv_id: str = Field(
        default="", description="authserv-id of the center's MTA in Authentication-Results"
    )
    yara_rule_dirs: list[Path] = Field(default_factory=list)
    yara_engine: Literal["yara", "yara-x"] = "yara"
    correlation_min_entities: int = 3
    correlation_window_hours: int = 24
    dedup_bucket_seconds: int = 3600
    ingest_workers: int = Field(
        default=0, ge=0,
        description="processes that parse and enrich large line-delimited reports "
        "(0 = one per CPU core; 1 = parse in the ingesting process)")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=default_home() / "pukara.toml")
        return (init_settings, env_settings, toml)

    @property
    def db_url(self) -> str:
        """The database URL; the embedded SQLite file under ``home`` by default."""
        return self.database_url or f"sqlite:///{self.home / 'pukara.db'}"

    @property
    def evidence_dir(self) -> Path:
        """Content-addressed evidence store."""
        return self.home / "evidence"

    @property
    def cache_dir(self) -> Path:
        """Derived, rebuildable data (compiled rules)."""
        return self.home / "cache"

    def regime(self, name: str | None = None) -> DeadlineRegime:
        """The deadline regime ``name`` (or the default one)."""
        key = name or self.default_regime
        if key not in self.regimes:
            raise ConfigError(f"unknown regime {key!r}; configured: {', '.join(self.regimes)}")
        return self.regimes[key]


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a malformed file or variable raises ConfigError naming it."""
    try:
        return Settings(**overrides)
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
