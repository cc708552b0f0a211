"""The one settings class. Built once per process by its entry point and passed down.

Nothing else in cubehook reads ``os.environ``: every knob is a field here, named
``CUBEHOOK_<FIELD>`` in the environment (pydantic-settings, ``env_prefix``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import ConfigError

MIB = 1024 * 1024
DAY = 24 * 60 * 60


class LogFormat(StrEnum):
    AUTO = "auto"  # console on a terminal, JSON otherwise
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUBEHOOK_", extra="ignore", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Comma-separated; any one valid. Two are valid at once while a ComplyCube webhook is rotated
    # (create the new webhook, switch, delete the old one).
    webhook_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    max_body_bytes: int = Field(default=MIB, gt=0)
    # How long an accepted event id is remembered. ComplyCube's retries span hours; the default
    # keeps replays of a captured delivery out for a month.
    dedup_retention_seconds: int = Field(default=30 * DAY, gt=0)
    queue_name: str = Field(default="cubehook", pattern=r"^[A-Za-z0-9_.-]+$")
    # Seconds between RQ's retries of a failed job; the count of retries is the length of the list.
    job_retry_intervals: Annotated[tuple[int, ...], NoDecode] = (10, 60, 300, 900, 3600)
    job_timeout_seconds: int = Field(default=300, gt=0)
    redis_timeout_seconds: float = Field(default=2.0, gt=0)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    access_log: bool = False

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("job_retry_intervals", mode="before")
    @classmethod
    def _split_intervals(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("job_retry_intervals")
    @classmethod
    def _non_negative(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(interval < 0 for interval in value):
            raise ValueError("retry intervals must be >= 0 seconds")
        return value

    def secret_keys(self) -> tuple[bytes, ...]:
        """The webhook secrets as HMAC keys; refuses when there are none (no skip-verification mode)."""
        if not self.webhook_secrets:
            raise ConfigError(
                "CUBEHOOK_WEBHOOK_SECRETS is empty: set it to the webhook secret ComplyCube showed when "
                "the webhook was created (comma-separated to accept several during a rotation)"
            )
        return tuple(secret.get_secret_value().encode("utf-8") for secret in self.webhook_secrets)


def load_settings() -> Settings:
    """Build the settings from the environment, turning validation errors into a ConfigError."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CUBEHOOK_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
