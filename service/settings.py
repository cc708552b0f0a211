"""The one settings class. Built once per process by its entry point and passed down.

Nothing else in cubehook reads ``os.environ``: every knob is a field here, named
``CUBEHOOK_<FIELD>`` in the environment (pydantic-settings, ``env_prefix``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import ConfigError

KIB = 1024
DAY = 24 * 60 * 60


class LogFormat(StrEnum):
    AUTO = "auto"  # console on a terminal, JSON otherwise
    JSON = "json"
    CONSOLE = "console"


class WorkerClass(StrEnum):
    SIMPLE = "simple"  # RQ's SimpleWorker: jobs run in the worker process
    FORK = "fork"  # RQ's Worker: a forked process per job


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUBEHOOK_", extra="ignore", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Comma-separated; any one valid. Two are valid at once while a ComplyCube webhook is rotated
    # (create the new webhook, switch, delete the old one).
    webhook_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    # A ComplyCube event is about 2 KB: 64 KiB is 30 times that, and what a reverse proxy in front
    # should allow too (deploy/nginx). It bounds what the web process holds per request.
    max_body_bytes: int = Field(default=64 * KIB, gt=0)
    # A body not received in full within this time gets 408: a stalled or trickling client must not
    # hold a request open for ever. ComplyCube's deliveries are small and sent at once.
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long an accepted event id is remembered. ComplyCube's retries span hours; the default
    # keeps replays of a captured delivery out for a month.
    dedup_retention_seconds: int = Field(default=30 * DAY, gt=0)
    queue_name: str = Field(default="cubehook", pattern=r"^[A-Za-z0-9_.-]+$")
    # Seconds between RQ's retries of a failed job; the count of retries is the length of the list.
    job_retry_intervals: Annotated[tuple[int, ...], NoDecode] = (10, 60, 300, 900, 3600)
    job_timeout_seconds: int = Field(default=300, gt=0)
    redis_timeout_seconds: float = Field(default=2.0, gt=0)

    # ComplyCube's API. Keys start test_ (sandbox) or live_; sent raw in Authorization.
    complycube_api_key: SecretStr | None = None
    complycube_base_url: str = "https://api.complycube.com/v1"
    complycube_timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries of one call (429, 5xx, timeouts) inside a job: attempts and total time they may take.
    complycube_max_attempts: int = Field(default=5, ge=1)
    complycube_retry_budget_seconds: float = Field(default=20.0, ge=0)
    # Requests per second for the whole worker fleet, shared through Redis (0: no limit).
    # ComplyCube allows 10/s on live keys and 5/s on sandbox keys.
    complycube_rate_limit: float = Field(default=10.0, ge=0)
    # A session is processed by one worker at a time. Its lock is renewed while the holder works
    # and lapses this long after the holder dies.
    session_lock_seconds: int = Field(default=15, gt=0)
    # A running job's lease: its worker renews it every third of this; once a dead worker's lease
    # has lapsed, the recovery sweep (every recovery_interval_seconds, one worker of the fleet at a
    # time) puts the job back at the front of the queue.
    job_lease_seconds: int = Field(default=15, ge=3)
    recovery_interval_seconds: float = Field(default=5.0, gt=0)
    # A complete session with checks still pending is looked at again after these delays (seconds
    # from when it was first seen pending); once they are used up it is decided `attention`.
    pending_recheck_intervals: Annotated[tuple[int, ...], NoDecode] = (30, 120, 600, 1800, 3600)
    worker_class: WorkerClass = WorkerClass.SIMPLE
    # How often RQ's own clean-up of its registries runs in a worker (RQ's default is 600). Jobs of
    # dead workers are found by cubehook's recovery sweep (above), far sooner.
    worker_maintenance_seconds: int = Field(default=60, gt=0)
    # Every maintenance_interval_seconds one worker of the fleet, whichever lives, runs maintenance:
    # it checks the webhook subscription (the one pointing at public_webhook_url, or every one when
    # unset) and backfills sessions updated since the previous run (the first time:
    # backfill_lookback_seconds back). 0: never.
    maintenance_interval_seconds: int = Field(default=900, ge=0)
    backfill_lookback_seconds: int = Field(default=DAY, gt=0)
    public_webhook_url: str | None = None
    webhook_auto_enable: bool = False
    # A worker serves its Prometheus metrics on this port (0: not at all).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    # The audit trail and action ledger: a SQLite file by default, PostgreSQL in production
    # (postgresql+psycopg://user:password@host/db).
    database_url: str = "sqlite:///var/cubehook.db"
    # Which actions run for which decisions (TOML); without one, every outcome is logged.
    rules_file: Path | None = None
    # Seconds between retries of a failed action (each with +-20% jitter); then the dead-letter queue.
    action_retry_intervals: Annotated[tuple[int, ...], NoDecode] = (10, 30, 120, 600, 1800)

    # The public listener: POST /webhooks/complycube (and /healthz), the one route ComplyCube needs.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # The admin listener: /healthz, /readyz, /metrics, /openapi.json, for the probes and Prometheus,
    # never exposed to the internet (0: not at all). A worker's metrics bind admin_host too.
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=9000, ge=0, le=65535)
    access_log: bool = False
    # Limits of the listeners, against slow or greedy clients (a reverse proxy in front has its own):
    # a request head (request line and headers) over max_head_bytes gets 431, one not all received
    # head_timeout_seconds after its first byte 408; an idle keep-alive connection is closed after
    # keep_alive_timeout_seconds; past limit_concurrency connections or requests at once, a new
    # request gets 503. ComplyCube sends small requests at once and retries a 503.
    max_head_bytes: int = Field(default=16 * KIB, ge=KIB)
    head_timeout_seconds: float = Field(default=5.0, gt=0)
    keep_alive_timeout_seconds: int = Field(default=5, ge=1)
    limit_concurrency: int = Field(default=512, ge=1)

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "job_retry_intervals", "pending_recheck_intervals", "action_retry_intervals", mode="before"
    )
    @classmethod
    def _split_intervals(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(int(part) for part in value.split(",") if part.strip())
        return value

    @field_validator("job_retry_intervals", "pending_recheck_intervals", "action_retry_intervals")
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
