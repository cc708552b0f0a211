"""ComplyCubeClient: the one adapter to ComplyCube's REST API.

One long-lived httpx client (connection reuse), explicit timeouts, ``Authorization: <api key>`` as
ComplyCube wants it (the raw key, no "Bearer": https://docs.complycube.com/api-reference), and one
place, ``_get``, that maps answers to errors:

- 2xx that parses: the resource (pydantic model) and its raw JSON, kept for the audit trail;
- 429, 5xx, timeouts, connection errors: retried with exponential back-off and full jitter,
  honouring ``Retry-After`` when present (ComplyCube does not document whether it sends one),
  within ``max_attempts`` and ``budget_seconds``; then UpstreamUnavailable (transient), or for a
  429 UpstreamRateLimited, which reschedules the job (workers.reschedule). A 429 also pauses the
  fleet's shared rate limiter for as long as this call waits, so every worker holds back;
- 2xx that does not parse: UpstreamMalformed (transient: the job is retried later);
- 404: UpstreamNotFound; other 4xx: UpstreamRejected (permanent).

A session's checks are read with one list call, not one call per check (``session_checks``):
ComplyCube's rate limit (10 requests/s live, 5/s sandbox) caps the whole fleet, so calls per
session are its throughput.

Every id put in a path is checked and quoted (service.ids.path_segment): one that is not a
ComplyCube id raises InvalidId and nothing is requested. Query parameters are httpx's to encode.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
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
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from service.ids import is_complycube_id, path_segment
from service.metrics import API_CALLS
from service.settings import Settings
from workers.complycube.bounded_reads import COMPLYCUBE_ANSWER_MAX_BYTES, bounded_request
from workers.complycube.ratelimit import FleetPaused, RateLimiter
from workers.outages import HEALTH, Dependency

M = TypeVar("M", bound=BaseModel)
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
# ComplyCube's largest page (https://docs.complycube.com/api-reference/pagination).
CHECK_PAGE_SIZE = 1000
# A client's checks past this many pages are fetched one by one instead: a filter ComplyCube
# ignored must not turn a session's look into a walk through the whole account.
MAX_CHECK_PAGES = 5


@dataclass(frozen=True, slots=True)
class Fetched(Generic[M]):
    """A resource as parsed, beside the JSON it came from."""

    model: M
    raw: dict[str, Any]


# How ``session_checks`` runs the one-by-one fetches: ``map``, or an executor's ``map`` for all at once.
Mapper = Callable[[Callable[[str], Fetched[Check] | None], list[str]], Iterable[Fetched[Check] | None]]


class ComplyCubeClient:
    """The one adapter to ComplyCube's API: one connection pool, explicit timeouts, the fleet's
    rate limit, retries within a budget, and one place (``_call``) where answers become errors."""

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
        check_page_size: int = CHECK_PAGE_SIZE,
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
        self._check_page_size = check_page_size

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
        return self._get(f"workflowSessions/{path_segment(session_id, 'session id')}", WorkflowSession)

    def get_check(self, check_id: str) -> Fetched[Check]:
        return self._get(f"checks/{path_segment(check_id, 'check id')}", Check)

    def get_client(self, client_id: str) -> Fetched[Client]:
        return self._get(f"clients/{path_segment(client_id, 'client id')}", Client)

    def list_sessions(self, **filters: str | int) -> Fetched[Page[WorkflowSession]]:
        return self._get("workflowSessions", Page[WorkflowSession], params=filters)

    def list_checks(self, **filters: str | int) -> Fetched[Page[Check]]:
        """``GET /v1/checks``, newest created first; filters ``clientId``, ``type``, ``status``, ...
        and ``page``, ``pageSize`` (1-1000) (https://docs.complycube.com/api-reference/check-api)."""
        return self._get("checks", Page[Check], params=filters)

    def session_checks(
        self, session: WorkflowSession, map_each: Mapper = map
    ) -> dict[str, Fetched[Check] | None]:
        """The checks a session lists in ``allRelatedChecks``, in its order: None for one the API
        does not know (404), and for one whose id is not a ComplyCube id, never requested
        (reconcile reports it unreadable).

        The client's checks are listed newest first, page after page until every listed check is
        found, usually on the first: with the session's own GET, two calls whatever its number
        of checks. Only a listed check the walk did not return is fetched alone, as is every
        check of a session without a client id, or with one that is not a ComplyCube id
        (``map_each`` may run those at once).
        """
        listed = list(dict.fromkeys(ref.check_id for ref in session.all_related_checks))
        wanted = [check_id for check_id in listed if is_complycube_id(check_id)]
        client_id = session.client_id if is_complycube_id(session.client_id) else None
        found = self._listed_checks(client_id, set(wanted)) if client_id and wanted else {}
        missing = [check_id for check_id in wanted if check_id not in found]
        fetched = dict(zip(missing, map_each(self._check_or_none, missing), strict=True))
        return {check_id: found.get(check_id) or fetched.get(check_id) for check_id in listed}

    def _listed_checks(self, client_id: str, wanted: set[str]) -> dict[str, Fetched[Check]]:
        found: dict[str, Fetched[Check]] = {}
        for page in range(1, MAX_CHECK_PAGES + 1):
            listing = self.list_checks(clientId=client_id, page=page, pageSize=self._check_page_size)
            for check, raw in zip(listing.model.items, listing.raw["items"], strict=True):
                if check.id in wanted:
                    found[check.id] = Fetched(check, raw)  # its own JSON, for the audit trail
            if len(found) == len(wanted) or page >= listing.model.pages:
                break
        return found

    def _check_or_none(self, check_id: str) -> Fetched[Check] | None:
        try:
            return self.get_check(check_id)
        except UpstreamNotFound:
            return None  # listed but gone: reconcile reports it

    def list_webhooks(self) -> Fetched[Page[Webhook]]:
        return self._get("webhooks", Page[Webhook])

    def enable_webhook(self, webhook_id: str) -> Fetched[Webhook]:
        """Updates use POST at ComplyCube (https://docs.complycube.com/api-reference)."""
        path = f"webhooks/{path_segment(webhook_id, 'webhook id')}"
        return self._call("POST", path, Webhook, body={"enabled": True})

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
        call = f"{method} {path}"
        for attempt in range(1, self._max_attempts + 1):
            self._wait_turn(call, started)
            try:
                response = bounded_request(self._http, method, path, COMPLYCUBE_ANSWER_MAX_BYTES,
                                           UpstreamMalformed, params=params, json=body)  # fmt: skip
            except httpx2.TransportError as exc:  # timeouts, refused and reset connections
                API_CALLS.labels(status="error").inc()
                failure = UpstreamUnavailable(f"{call}: {type(exc).__name__}")
                HEALTH.saw(Dependency.COMPLYCUBE, up=False, error=str(failure))
                retry_after = None
            else:
                status = response.status_code
                API_CALLS.labels(status=str(status)).inc()
                HEALTH.saw(Dependency.COMPLYCUBE, up=status < 500, error=f"{call}: HTTP {status}")
                if response.is_success:
                    return _parse(call, response, model)
                if status == 404:
                    raise UpstreamNotFound(f"{call}: not found", 404)
                if status != 429 and status < 500:
                    raise UpstreamRejected(f"{call}: HTTP {status}", status)
                retry_after = _retry_after(response.headers.get("retry-after"))
                failure = (
                    UpstreamRateLimited(f"{call}: HTTP 429", retry_after)
                    if status == 429
                    else UpstreamUnavailable(f"{call}: HTTP {status}", status)
                )
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if isinstance(failure, UpstreamRateLimited) and self._limiter is not None:
                self._limiter.pause(delay)  # the key's limit is the fleet's: every worker waits
            if attempt == self._max_attempts or time.monotonic() - started + delay > self._budget:
                break
            self._sleep(delay)
        raise failure

    def _wait_turn(self, call: str, started: float) -> None:
        """The fleet's rate limit: wait for this request's turn, unless that outlasts the budget
        (a pause after a 429): then the job is rescheduled rather than holding its worker."""
        if self._limiter is None:
            return
        try:
            self._limiter.acquire(max_wait=max(0.0, self._budget - (time.monotonic() - started)))
        except FleetPaused as paused:
            raise UpstreamRateLimited(f"{call}: paused after a 429", paused.wait) from None

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
