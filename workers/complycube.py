"""ComplyCubeClient: the one adapter to ComplyCube's REST API.

One long-lived httpx client (connection reuse), explicit timeouts, ``Authorization: <api key>`` as
ComplyCube wants it (the raw key, no "Bearer": https://docs.complycube.com/api-reference), and one
place, ``_get``, that maps answers to errors:

- 2xx that parses: the resource (pydantic model) and its raw JSON, kept for the audit trail;
- 429, 5xx, timeouts, connection errors: retried with exponential back-off and full jitter,
  honouring ``Retry-After`` when present (ComplyCube does not document whether it sends one),
  within ``max_attempts`` and ``budget_seconds``; then UpstreamUnavailable (transient);
- 2xx that does not parse: UpstreamMalformed (transient: the job is retried later);
- 404: UpstreamNotFound; other 4xx: UpstreamRejected (permanent).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, TypeVar

import httpx2
from pydantic import BaseModel, SecretStr, ValidationError

from service.complycube_models import Check, Client, Page, Webhook, WorkflowSession
from service.errors import (
    ConfigError,
    UpstreamMalformed,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from service.metrics import API_CALLS
from service.settings import Settings
from workers.http_limits import COMPLYCUBE_ANSWER_MAX_BYTES, bounded_request
from workers.ratelimit import RateLimiter

M = TypeVar("M", bound=BaseModel)
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0


@dataclass(frozen=True, slots=True)
class Fetched(Generic[M]):
    """A resource as parsed, beside the JSON it came from."""

    model: M
    raw: dict[str, Any]


class ComplyCubeClient:
    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        timeout: float = 10.0,
        max_attempts: int = 5,
        budget_seconds: float = 20.0,
        limiter: RateLimiter | None = None,
        transport: httpx2.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        pool_size: int = 16,
    ) -> None:
        self._http = httpx2.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": api_key.get_secret_value(), "Accept": "application/json"},
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx2.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            transport=transport,
        )
        self._max_attempts = max_attempts
        self._budget = budget_seconds
        self._limiter = limiter
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    @classmethod
    def from_settings(
        cls, settings: Settings, limiter: RateLimiter | None, transport: httpx2.BaseTransport | None = None
    ) -> ComplyCubeClient:
        if settings.complycube_api_key is None:
            raise ConfigError("CUBEHOOK_COMPLYCUBE_API_KEY is not set: workers cannot read ComplyCube's API")
        return cls(
            settings.complycube_base_url,
            settings.complycube_api_key,
            timeout=settings.complycube_timeout_seconds,
            max_attempts=settings.complycube_max_attempts,
            budget_seconds=settings.complycube_retry_budget_seconds,
            limiter=limiter,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # --- resources -------------------------------------------------------------------------------

    def get_session(self, session_id: str) -> Fetched[WorkflowSession]:
        return self._get(f"workflowSessions/{session_id}", WorkflowSession)

    def get_check(self, check_id: str) -> Fetched[Check]:
        return self._get(f"checks/{check_id}", Check)

    def get_client(self, client_id: str) -> Fetched[Client]:
        return self._get(f"clients/{client_id}", Client)

    def list_sessions(self, **filters: str | int) -> Fetched[Page[WorkflowSession]]:
        return self._get("workflowSessions", Page[WorkflowSession], params=filters)

    def list_webhooks(self) -> Fetched[Page[Webhook]]:
        return self._get("webhooks", Page[Webhook])

    def enable_webhook(self, webhook_id: str) -> Fetched[Webhook]:
        """Updates use POST at ComplyCube (https://docs.complycube.com/api-reference)."""
        return self._call("POST", f"webhooks/{webhook_id}", Webhook, body={"enabled": True})

    # --- the one place answers become errors ----------------------------------------------------

    def _get(self, path: str, model: type[M], params: dict[str, str | int] | None = None) -> Fetched[M]:
        return self._call("GET", path, model, params=params)

    def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        params: dict[str, str | int] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Fetched[M]:
        started = time.monotonic()
        for attempt in range(1, self._max_attempts + 1):
            if self._limiter is not None:
                self._limiter.acquire()
            try:
                response = bounded_request(self._http, method, path, COMPLYCUBE_ANSWER_MAX_BYTES,
                                           UpstreamMalformed, params=params, json=body)  # fmt: skip
            except httpx2.TransportError as exc:  # timeouts, refused and reset connections
                API_CALLS.labels(status="error").inc()
                failure = UpstreamUnavailable(f"{method} {path}: {type(exc).__name__}")
                retry_after = None
            else:
                API_CALLS.labels(status=str(response.status_code)).inc()
                if response.is_success:
                    return _parse(f"{method} {path}", response, model)
                if response.status_code == 429 or response.status_code >= 500:
                    failure = UpstreamUnavailable(
                        f"{method} {path}: HTTP {response.status_code}", response.status_code
                    )
                    retry_after = _retry_after(response.headers.get("retry-after"))
                elif response.status_code == 404:
                    raise UpstreamNotFound(f"{method} {path}: not found", 404)
                else:
                    raise UpstreamRejected(
                        f"{method} {path}: HTTP {response.status_code}", response.status_code
                    )
            if attempt == self._max_attempts:
                break
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if time.monotonic() - started + delay > self._budget:
                break
            self._sleep(delay)
        raise failure

    def _backoff(self, attempt: int) -> float:
        """Exponential back-off with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter")."""
        return self._rng.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))


def _parse(call: str, response: httpx2.Response, model: type[M]) -> Fetched[M]:
    unreadable = f"{call}: unreadable answer"
    try:
        raw = response.json()
    except ValueError:
        raise UpstreamMalformed(f"{unreadable} (not JSON)", response.status_code) from None
    if not isinstance(raw, dict):
        raise UpstreamMalformed(f"{unreadable} (not a JSON object)", response.status_code)
    try:
        return Fetched(model.model_validate(raw), raw)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors(include_input=False)[:3])
        raise UpstreamMalformed(f"{unreadable} (fields: {fields})", response.status_code) from None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
