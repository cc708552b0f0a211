"""Every Redis key cubehook reads or writes, built here and nowhere else (RQ's own keys are RQ's).

Each says what it holds and how long it lives; `tests/workers/test_pipeline.py` checks that a whole
session leaves no key without a time to live but the few fixed ones marked "fixed" here.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

PREFIX = "cubehook:"

# --- the intake (service.queue, service.intake, service.quarantine) ------------------------------
SEEN = PREFIX + "seen:"  # + job id: when the event was accepted (µs); CUBEHOOK_DEDUP_RETENTION_SECONDS
COPIES = PREFIX + "copies:"  # + job id: copies of the event in the replay window
COPIES_BY_TYPE = PREFIX + "copies_by_type"  # HASH type -> copies in the replay window
LAST_EVENT = PREFIX + "last_event_at"  # fixed: when the last event was accepted (s)
IGNORED_TYPES = PREFIX + "ignored_types"  # fixed, at most 100 fields: type -> deliveries ignored
QUARANTINE_INDEX = PREFIX + "quarantine:index"  # ZSET item id -> when kept (µs); entries expire
QUARANTINE_SIZES = PREFIX + "quarantine:sizes"  # HASH item id -> bytes of its body
QUARANTINE_BYTES = PREFIX + "quarantine:bytes"  # fixed: bytes of the bodies held
QUARANTINE_EVICTED = PREFIX + "quarantine:evicted"  # fixed: items evicted to keep within bounds
QUARANTINE_ITEM = PREFIX + "quarantine:item:"  # + id, HASH body, signature, flaw, reason, at

# --- the workers' session state (workers.sessions) ---------------------------------------------


class SessionPart(StrEnum):
    LOCK = "lock"  # the holder's token; its lease
    DIRTY = "dirty"  # a request for another look (µs asked); outlives any lease
    FENCE = "fence"  # the last lock acquisition's number
    COVERED = "covered"  # when the last completed look started (µs)
    STATE = "state"  # HASH: the current decision, its fingerprint, the fence that wrote it
    HISTORY = "history"  # LIST: every decision, in order
    PENDING_SINCE = "pending_since"  # when first seen complete with checks pending (s)


def session(session_id: str, part: SessionPart) -> str:
    return f"{PREFIX}session:{session_id}:{part.value}"


def check(check_id: str) -> str:
    """Which session a check belongs to."""
    return f"{PREFIX}check:{check_id}"


# --- the fleet (workers.ratelimit, workers.recovery, workers.worker, workers.runtime) ----------------
RATE_LIMIT = PREFIX + "ratelimit:complycube"  # GCRA: when the next ComplyCube request may go (µs)
SWEEP_LOCK = PREFIX + "recovery:sweep"  # one recovery sweep per interval, fleet-wide
LIMBO = PREFIX + "recovery:limbo"  # HASH job id -> seen dequeued and unclaimed by a sweep
MAINTENANCE_NEXT = PREFIX + "maintenance:next_at"  # fixed: when the next maintenance run is due (s)
MAINTENANCE_LAST_RUN = PREFIX + "maintenance:last_run"  # fixed: when maintenance last ran (s)
MIGRATE_LOCK = PREFIX + "lock:migrate"  # one worker migrates the audit trail at a time
EPOCH = PREFIX + "epoch"  # fixed: this Redis's data set, also kept in the audit trail (workers.epoch)
WORKERS_ALIVE = PREFIX + "workers:alive"  # ZSET worker name -> until when it is alive (ms); pruned
WATCHDOG_ENABLED = PREFIX + "watchdog:enabled"  # fixed: HASH webhook id -> 1|0, as last seen
WATCHDOG_ALERTED = PREFIX + "watchdog:alerted:"  # + webhook id: alerted once for this outage


def job_alive(job_id: str) -> str:
    """A running job's lease, held by its worker (workers.leases, workers.recovery)."""
    return f"{PREFIX}job:alive:{job_id}"


def watchdog_alerted(webhook_id: str) -> str:
    return WATCHDOG_ALERTED + webhook_id


# --- the console (cubehook_console) -------------------------------------------------------------
CONSOLE_LOGIN_FAILURES = PREFIX + "console:login_failures:"  # + user|address:<digest>; the window
CONSOLE_SESSION = PREFIX + "console:session:"  # + the cookie's session id -> the user; its expiry


def console_login_failures(kind: str, subject: str) -> str:
    """Failed logins in the current window, for one user name or one client address (``kind``).
    The subject is hashed: a name typed in the wrong field may be a password, and never a key."""
    return f"{CONSOLE_LOGIN_FAILURES}{kind}:{hashlib.sha256(subject.encode()).hexdigest()[:32]}"


def console_session(session_id: str) -> str:
    """A logged-in console session: the user's name, until logout or the session's expiry. A cookie
    whose session is not here is not logged in, however well it is signed."""
    return CONSOLE_SESSION + session_id
