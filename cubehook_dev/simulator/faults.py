"""Injected faults, decided deterministically under a seed. Pure.

Each decision is a function of (seed, what is asked, how many times it was asked before), not of
a shared random stream, so the faults a client meets do not depend on how concurrent requests
happen to interleave: the same run with the same seed meets the same faults.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Share = Field(default=0.0, ge=0.0, le=1.0)


class FaultConfig(BaseModel):
    """Which faults to inject, in what share. Changeable at run time (``PUT /_sim/faults``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    latency_ms: float = Field(default=0.0, ge=0)  # added to every API answer
    latency_jitter_ms: float = Field(default=0.0, ge=0)  # plus a uniform random share of this
    rate_429: float = Share
    retry_after_share: float = Field(default=0.5, ge=0.0, le=1.0)  # of the 429s, how many say Retry-After
    retry_after_seconds: int = Field(default=1, ge=0)
    rate_500: float = Share
    # The status of those server errors: 503 plays an outage announced as one (maintenance, an
    # overloaded edge), 502/504 a gateway's failure; any 5xx is retried by a client the same way.
    status_5xx: int = Field(default=500, ge=500, le=599)
    rate_timeout: float = Share  # the answer is held back timeout_seconds, then a 504
    timeout_seconds: float = Field(default=30.0, ge=0)
    duplicate_rate: float = Share  # webhook deliveries sent twice
    reorder_rate: float = Share  # webhook deliveries held back and sent after the next one
    # How the session list reads updatedAfter: "empty" answers as ComplyCube does to a filter it
    # cannot read (a page with no items), "ignored" lists as if it were not there.
    updated_filter: Literal["honoured", "ignored", "empty"] = "honoured"

    @model_validator(mode="after")
    def _shares_fit(self) -> FaultConfig:
        if self.rate_429 + self.rate_500 + self.rate_timeout > 1.0:
            raise ValueError("rate_429 + rate_500 + rate_timeout must not exceed 1")
        return self


# The {"type", "message"} of an injected 5xx, by status; others get a generic pair.
SERVER_ERRORS = {
    500: ("internal_server_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service unavailable"),
    504: ("gateway_timeout", "Upstream timed out"),
}


class Fault(StrEnum):
    NONE = "none"
    TOO_MANY_REQUESTS = "429"
    SERVER_ERROR = "500"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Injection:
    fault: Fault
    delay_seconds: float
    retry_after: int | None = None
    status: int | None = None  # the HTTP status of a SERVER_ERROR


def draw(seed: int, *key: object) -> float:
    """A uniform number in [0, 1) fixed by the seed and the key."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class FaultInjector:
    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._asked: Counter[str] = Counter()

    def reconfigure(self, config: FaultConfig) -> None:
        self.config = config
        self._asked.clear()

    def for_request(self, method: str, path: str) -> Injection:
        """The fault for the n-th request to ``method path``."""
        c = self.config
        if not (c.rate_timeout or c.rate_429 or c.rate_500 or c.latency_jitter_ms):
            return Injection(Fault.NONE, c.latency_ms / 1000)  # nothing random: nothing to count
        key = f"{method} {path}"
        n = self._asked[key]
        self._asked[key] = n + 1
        delay = (c.latency_ms + c.latency_jitter_ms * draw(c.seed, "jitter", key, n)) / 1000
        u = draw(c.seed, "fault", key, n)
        if u < c.rate_timeout:
            return Injection(Fault.TIMEOUT, delay + c.timeout_seconds)
        u -= c.rate_timeout
        if u < c.rate_429:
            says = draw(c.seed, "retry-after", key, n) < c.retry_after_share
            return Injection(Fault.TOO_MANY_REQUESTS, delay, c.retry_after_seconds if says else None)
        u -= c.rate_429
        if u < c.rate_500:
            return Injection(Fault.SERVER_ERROR, delay, status=c.status_5xx)
        return Injection(Fault.NONE, delay)

    def session_list_query(self, query: Mapping[str, str]) -> Mapping[str, str] | None:
        """The query the session list is to answer, as the ``updated_filter`` fault reads it;
        None for a page with no items."""
        if "updatedAfter" not in query or self.config.updated_filter == "honoured":
            return query
        if self.config.updated_filter == "empty":
            return None
        return {name: value for name, value in query.items() if name != "updatedAfter"}

    def duplicate(self, event_id: str) -> bool:
        return draw(self.config.seed, "duplicate", event_id) < self.config.duplicate_rate

    def reorder(self, event_id: str) -> bool:
        return draw(self.config.seed, "reorder", event_id) < self.config.reorder_rate
