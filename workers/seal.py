"""The seal on every decision kept in Redis: what the workers act on is what a worker or the console
decided, never what someone else wrote there.

Redis is shared with the web process, whose user may write the queue (deploy/redis/users.acl). A
decision in a session's state or history is what an action job sends to onboarding, so it carries
an HMAC-SHA256, keyed with CUBEHOOK_DECISION_KEYS (held by the workers and the console, never by
the web process), over its canonical JSON. A decision read back whose seal does not verify, or
that has none, or that belongs to another session, is not acted on: it is read as absent (a
worker's look at the session decides again, from ComplyCube and the audit trail; an action job for
it has no decision and is dead-lettered with the reason), logged as ``decision.refused`` at ERROR
and counted in ``cubehook_forged_decisions_total{reason}``, which an alert watches.

The first key seals; every key verifies, so a key is rotated by putting the new one first, then
removing the old one once the decisions it sealed have left Redis (CUBEHOOK_SESSION_STATE_TTL_SECONDS).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from enum import StrEnum
from typing import Any

from prometheus_client import Counter

from service.log import get_logger
from service.metrics import WORKER
from service.settings import Settings
from workers.judging.judge import Decision

log = get_logger("cubehook.seal")
FIELD = "seal"
VERSION = "v1:"


class Refused(StrEnum):
    UNREADABLE = "unreadable"  # not a JSON object, or not a decision
    UNSEALED = "unsealed"  # no seal: written by something that does not hold the key
    BAD_SEAL = "bad_seal"  # a seal no key makes: forged, or changed after sealing
    WRONG_SESSION = "wrong_session"  # a real decision, copied under another session
    UNKNOWN = "unknown"  # an action's job names a decision no worker or console made


REFUSED = Counter(
    "cubehook_forged_decisions",
    "Decisions read from Redis and refused: their seal did not verify, so nothing acts on them",
    ["reason"],
    registry=WORKER,  # counted by the workers, served on their port (the console serves none)
)


class DecisionSeal:
    """Seals decisions for Redis and opens them again (see the module's docstring)."""

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        if not keys:
            raise ValueError("a decision seal needs at least one key")
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> DecisionSeal:
        return cls(settings.decision_seal_keys())

    @staticmethod
    def _mac(key: bytes, canonical: bytes) -> str:
        return VERSION + hmac.new(key, canonical, hashlib.sha256).hexdigest()

    def sealed(self, decision: Decision) -> str:
        """The decision's JSON as Redis keeps it, with its seal."""
        body = decision.to_dict()
        return json.dumps({**body, FIELD: self._mac(self.keys[0], _canonical(body))}, separators=(",", ":"))

    def opened(self, raw: bytes | str | None, session_id: str) -> Decision | None:
        """The decision ``raw`` holds when its seal verifies and it is ``session_id``'s; else None
        (and the refusal logged and counted). Nothing there: None, and no refusal."""
        if not raw:
            return None
        decision, reason, claimed = self._read(raw, session_id)
        if reason is not None:
            refuse(reason, session_id, claimed)
        return decision

    def _read(self, raw: bytes | str, session_id: str) -> tuple[Decision | None, Refused | None, object]:
        """The decision, or why it is refused; and the decision id it claims."""
        try:
            body = json.loads(raw)
        except ValueError:
            return None, Refused.UNREADABLE, None
        if not isinstance(body, dict):
            return None, Refused.UNREADABLE, None
        seal = body.pop(FIELD, None)
        claimed = body.get("decision_id")
        if not isinstance(seal, str):
            return None, Refused.UNSEALED, claimed
        canonical = _canonical(body)  # once, whatever the number of keys
        if not any(
            hmac.compare_digest(seal.encode(), self._mac(key, canonical).encode()) for key in self.keys
        ):
            return None, Refused.BAD_SEAL, claimed
        try:
            decision = Decision.from_dict(body)
        except (KeyError, TypeError, ValueError):
            return None, Refused.UNREADABLE, claimed
        if decision.session_id != session_id:
            return None, Refused.WRONG_SESSION, claimed
        return decision, None, claimed


def _canonical(body: dict[str, Any]) -> bytes:
    """What a seal covers: the decision's JSON with its keys sorted and no spaces."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def refuse(reason: Refused, session_id: str, claimed: object) -> None:
    """Say that a decision was refused, and why (an ERROR line, the counter the alert watches)."""
    REFUSED.labels(reason=reason.value).inc()
    log.error(
        "decision.refused",
        reason=reason.value,
        session_id=session_id[:64],
        decision_id=claimed[:64] if isinstance(claimed, str) else None,
        hint="a decision in Redis that no worker or console sealed: not acted on (docs/operations.md)",
    )
