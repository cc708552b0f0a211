"""The one settings class. Built once per process by its entry point and passed down.

Nothing else in cubehook reads ``os.environ``: every knob is a field here, named
``CUBEHOOK_<FIELD>`` in the environment (pydantic-settings, ``env_prefix``).

An entry point also reads the env file ``CUBEHOOK_ENV_FILE`` names, under the environment (a
variable of the environment wins); unset or empty, none. `cubehook dev` records the settings of
the system it runs in ``var/dev.env`` and names it to the processes it starts; any other process
reads it only when told to (``CUBEHOOK_ENV_FILE=var/dev.env``), so a production command run from a
checkout never picks up the dev key, simulator or rules. With ``CUBEHOOK_ENV=production`` a file
written for development (it says ``CUBEHOOK_ENV=development``, or sets ``DEV_*`` variables) is
refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from dotenv import dotenv_values  # pydantic-settings' own reader of env files
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.errors import ConfigError

if TYPE_CHECKING:  # pydantic tells validators with info by their parameters, not this type
    from pydantic import ValidationInfo

MIB = 1024 * 1024
KIB = 1024
DAY = 24 * 60 * 60
LIVE_RATE, SANDBOX_RATE = 10.0, 5.0  # ComplyCube's requests/s per key
MIN_DECISION_KEY_BYTES = 32  # a decision key as long as a SHA-256 (HMAC-SHA256 seals)
DEV_ENV_FILE = Path("var") / "dev.env"  # relative: the folder `cubehook dev` starts in
ENV_FILE_VARIABLE = "CUBEHOOK_ENV_FILE"
ENV_VARIABLE = "CUBEHOOK_ENV"  # production | development: which env files a process may read


class LogFormat(StrEnum):
    AUTO = "auto"  # console on a terminal, JSON otherwise
    JSON = "json"
    CONSOLE = "console"


class SnapshotMode(StrEnum):
    FULL = "full"  # ComplyCube's session and check JSON as it came
    MINIMAL = "minimal"  # only what decisions use (workers.audit.privacy): no names, no extracted data


class WorkerClass(StrEnum):
    SIMPLE = "simple"  # RQ's SimpleWorker: jobs run in the worker process
    FORK = "fork"  # RQ's Worker: a forked process per job


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUBEHOOK_", extra="ignore", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Comma-separated; any one valid. Two are valid at once while a ComplyCube webhook is rotated
    # (create the new webhook, switch, delete the old one).
    webhook_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    # The workers' and the console's only (never the web process's): the keys that seal the
    # decisions they keep in Redis (workers/seal.py), comma-separated; the first seals, any verifies.
    decision_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    # A ComplyCube event is about 2 KB: 64 KiB is 30 times that, and what a reverse proxy in front
    # should allow too (deploy/nginx). It bounds what the web process holds per request.
    max_body_bytes: int = Field(default=64 * KIB, gt=0)
    # A body not received in full within this time gets 408: a stalled or trickling client must not
    # hold a request open for ever. ComplyCube's deliveries are small and sent at once.
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long an accepted event id is remembered. ComplyCube's retries span hours; the default
    # keeps replays of a captured delivery out for a month.
    dedup_retention_seconds: int = Field(default=30 * DAY, gt=0)
    # Copies of an event seen before (retries, replays) cost no job: they are counted, and the first
    # copy in each window of this many seconds is put on the audit trail, the others only counted.
    replay_window_seconds: int = Field(default=3600, gt=0)
    # Correctly signed bodies that cannot be read are kept for a replay (service/quarantine.py):
    # at most this many, this many bytes of bodies (the oldest evicted first), for this long.
    quarantine_max_items: int = Field(default=10_000, gt=0)
    quarantine_max_bytes: int = Field(default=64 * MIB, gt=0)
    quarantine_retention_seconds: int = Field(default=30 * DAY, gt=0)
    queue_name: str = Field(default="cubehook", pattern=r"^[A-Za-z0-9_.-]+$")
    # Seconds between RQ's retries of a failed job; the count of retries is the length of the list.
    job_retry_intervals: Annotated[tuple[int, ...], NoDecode] = (10, 60, 300, 900, 3600)
    job_timeout_seconds: int = Field(default=300, gt=0)
    # How long RQ keeps a finished job and its result. cubehook reads neither (decisions and action
    # results are in Redis's session state and the audit trail); an operator may, for a while.
    result_ttl_seconds: int = Field(default=600, ge=0)
    # A session's state in Redis (its current decision, history, fence, check index) lives this
    # long after its last write; then only the audit trail holds it, and a late event recalls the
    # session's latest decision from there.
    session_state_ttl_seconds: int = Field(default=7 * DAY, gt=0)
    redis_timeout_seconds: float = Field(default=2.0, gt=0)
    # Replicas that must hold an accepted event before the intake answers 2xx (Redis's WAIT;
    # docs/redis.md): a number, strict, or auto (1 while the primary has a replica, else 0). Fewer
    # within redis_wait_timeout_ms: 503, and ComplyCube retries.
    redis_min_replicas: Literal["auto"] | int = "auto"
    redis_wait_timeout_ms: int = Field(default=200, ge=1)  # 0 would be WAIT's "for ever"

    # Development only: lets workers talk plain text (http:// to ComplyCube and to action targets,
    # SMTP without TLS to another machine), for the local simulator and sink. Declared before the
    # URLs it governs: validators see the fields declared above them.
    allow_insecure_transport: bool = False
    # ComplyCube's API. Keys start test_ (sandbox) or live_; sent raw in Authorization.
    complycube_api_key: SecretStr | None = None
    complycube_base_url: str = "https://api.complycube.com/v1"
    complycube_timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries of one call (429, 5xx, timeouts) inside a job: attempts and total time they may take.
    complycube_max_attempts: int = Field(default=5, ge=1)
    complycube_retry_budget_seconds: float = Field(default=20.0, ge=0)
    # Requests per second for the whole worker fleet, shared through Redis (0: no limit). Unset: as
    # ComplyCube limits the key (complycube_rate()).
    complycube_rate_limit: float | None = Field(default=None, ge=0)
    # Events that cannot decide by themselves (a session's started/processing, a check's while its
    # session is undecided) are looked at this much later, when the session's own final event has
    # usually covered them at no API cost (workers.triggers). 0: at once.
    event_defer_seconds: int = Field(default=20, ge=0)
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
    # A job that fails because Redis, the database or ComplyCube is away is put back, no retry
    # spent, for up to this long since its first put-back (workers.outages): an outage needs no
    # person per job. Past it, its failures spend retries as any other's (one session ComplyCube
    # keeps failing on for a day does need a person). 0: outages spend retries at once.
    outage_patience_seconds: int = Field(default=DAY, ge=0)
    # A backfill also walks the unfiltered session list back to sessions created this long before
    # its window, in case ComplyCube's updatedAfter filter silently fails (workers.backfill).
    backfill_walk_margin_seconds: int = Field(default=DAY, ge=0)
    public_webhook_url: str | None = None
    webhook_auto_enable: bool = False
    # A worker serves its Prometheus metrics on this port (0: not at all).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    # The audit trail and action ledger: a SQLite file by default, PostgreSQL in production
    # (postgresql+psycopg://user:password@host/db).
    database_url: str = "sqlite:///var/cubehook.db"
    # What a snapshot keeps of ComplyCube's JSON (see SnapshotMode).
    snapshot_mode: SnapshotMode = SnapshotMode.MINIMAL
    # Maintenance deletes events and snapshots older than this many days, and decision records
    # older than this and past the legal hold (0: nothing is deleted).
    audit_retention_days: int = Field(default=0, ge=0)
    # AML record keeping: a decision record is kept at least this many days after the decision,
    # whatever a purge or an erasure asks (5 years: the EU AML directives' minimum).
    legal_hold_days: int = Field(default=5 * 365, ge=0)
    # Which actions run for which decisions (TOML); without one, every outcome is logged.
    rules_file: Path | None = None
    # Comma-separated packages (or modules) a python action's function may come from, e.g.
    # mycompany.kyc: nothing else is imported or called. Empty (the default): no python action.
    callable_packages: Annotated[tuple[str, ...], NoDecode] = ()
    # Where the compliance team's console is reached (https://console.example/): alerts link to a
    # session's page there. Unset: alerts link to ComplyCube's portal only.
    console_url: str | None = None
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

    @field_validator("complycube_base_url")
    @classmethod
    def _https(cls, url: str, info: ValidationInfo) -> str:
        # The API key travels in every request's Authorization header.
        if not url.startswith("https://") and not info.data.get("allow_insecure_transport"):
            raise ValueError(
                "not an https:// URL (CUBEHOOK_ALLOW_INSECURE_TRANSPORT=true allows http:// in development)"
            )
        return url

    @field_validator("webhook_secrets", "decision_keys", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("callable_packages", mode="before")
    @classmethod
    def _split_packages(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        dotted = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
        if isinstance(value, tuple) and not all(isinstance(p, str) and dotted.fullmatch(p) for p in value):
            raise ValueError("must be comma-separated package names, e.g. mycompany.kyc")
        return value

    @field_validator("redis_min_replicas", mode="before")
    @classmethod
    def _replicas(cls, value: object) -> object:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit():  # one message, rather than one per member of the union
            raise ValueError("must be auto or a number of replicas (0 or more)")
        return int(text)

    @field_validator("complycube_rate_limit", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

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

    def complycube_rate(self) -> float:
        """The fleet's ComplyCube requests per second (0: no limit): the setting, else what
        ComplyCube allows the key (https://docs.complycube.com/api-reference/rate-limits): 10/s
        for a live_ key, 5/s for a test_ (sandbox) key, and 5/s, the safe one, for any other."""
        if self.complycube_rate_limit is not None:
            return self.complycube_rate_limit
        key = self.complycube_api_key.get_secret_value() if self.complycube_api_key else ""
        return LIVE_RATE if key.startswith("live_") else SANDBOX_RATE

    @model_validator(mode="after")
    def _a_body_fits_the_quarantine(self) -> Settings:
        # Else a body under the limit could not be kept, and its 2xx would be a lie.
        if self.quarantine_max_bytes < self.max_body_bytes:
            raise ValueError("CUBEHOOK_QUARANTINE_MAX_BYTES must be at least CUBEHOOK_MAX_BODY_BYTES")
        return self

    @model_validator(mode="after")
    def _wait_within_the_timeout(self) -> Settings:
        # Else the client would give up on the connection while Redis still waits for replicas.
        if self.redis_wait_timeout_ms >= self.redis_timeout_seconds * 1000:
            raise ValueError("CUBEHOOK_REDIS_WAIT_TIMEOUT_MS must be under CUBEHOOK_REDIS_TIMEOUT_SECONDS")
        return self

    def secret_keys(self) -> tuple[bytes, ...]:
        """The webhook secrets as HMAC keys; refuses when there are none (no skip-verification mode)."""
        if not self.webhook_secrets:
            raise ConfigError(
                "CUBEHOOK_WEBHOOK_SECRETS is empty: set it to the webhook secret ComplyCube showed when "
                "the webhook was created (comma-separated to accept several during a rotation)"
            )
        return tuple(secret.get_secret_value().encode("utf-8") for secret in self.webhook_secrets)

    def decision_seal_keys(self) -> tuple[bytes, ...]:
        """The keys that seal decisions in Redis; refuses when there are none or one is short."""
        if not self.decision_keys:
            raise ConfigError(
                "CUBEHOOK_DECISION_KEYS is empty: the workers and the console seal the decisions they "
                "keep in Redis with it (the web process must not have it); set it to a random value of "
                "32 characters or more, e.g. `openssl rand -hex 32`"
            )
        keys = tuple(key.get_secret_value().encode("utf-8") for key in self.decision_keys)
        if any(len(key) < MIN_DECISION_KEY_BYTES for key in keys):
            raise ConfigError(
                f"CUBEHOOK_DECISION_KEYS: each key must have {MIN_DECISION_KEY_BYTES} characters or more "
                "(e.g. `openssl rand -hex 32`)"
            )
        return keys


def env_file(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The env file the entry points read: the one CUBEHOOK_ENV_FILE names; unset or empty, none."""
    named = environ.get(ENV_FILE_VARIABLE)
    return Path(named) if named else None


def env_file_read(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The env file a process started with ``environ`` reads (None: none), for its start line.
    Raises ConfigError for a named file that is not there, or a development file in production."""
    env_file_values(environ)
    return env_file(environ)


def env_file_values(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables the env file sets ({} when there is none). Raises ConfigError as env_file_read."""
    wanted = environ.get(ENV_VARIABLE, "")
    if wanted not in ("", "production", "development"):
        raise ConfigError(f"{ENV_VARIABLE} is {wanted!r}: production, development, or unset")
    path = env_file(environ)
    if path is None:
        return {}
    if not path.is_file():
        raise ConfigError(f"{ENV_FILE_VARIABLE} names {path}, which is not a file: unset it, or name one")
    found = {name: value for name, value in dotenv_values(path).items() if value is not None}
    written_for_dev = found.get(ENV_VARIABLE) == "development" or any(n.startswith("DEV_") for n in found)
    if wanted == "production" and written_for_dev:
        raise ConfigError(
            f"{ENV_VARIABLE} is production, but {ENV_FILE_VARIABLE} names {path}, written for development "
            f"(by `cubehook dev`): a production process never reads it; unset {ENV_FILE_VARIABLE}"
        )
    return found


def environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment with the env file's variables under it (the environment wins): what the
    rules file's secrets are looked up in, as the settings are."""
    return {**env_file_values(environ), **environ}


def load_settings() -> Settings:
    """Build the settings from the environment and the env file (see the module's docstring),
    turning validation errors into a ConfigError."""
    try:
        return Settings(_env_file=env_file_read())
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {problems(exc, 'CUBEHOOK_')}") from None


def problems(exc: ValidationError, prefix: str) -> str:
    """What is wrong with the settings, each named by its variable (never its value)."""
    return "; ".join(
        f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" if err["loc"] else err["msg"]
        for err in exc.errors()
    )
