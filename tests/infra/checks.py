"""What the suite reads back after a run, and the promise checked against it: every session decided
once, every decision delivered once, no process stopped, no dead letter, no event lost."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx2
from redis import Redis
from sqlalchemy import select

from service.rq_jobs import rq_queue
from tests.conftest import SEAL
from tests.infra.stack import Stack
from workers.audit.schema import action_ledger, decisions, events, make_engine
from workers.sessions import SessionStore

QUEUE = "cubehook"


@dataclass
class Seen:
    """The state of a run, as read at one moment."""

    decisions: dict[str, list[tuple[str, str | None]]] = field(
        default_factory=dict
    )  # session -> (id, outcome)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    recorded_events: set[str] = field(default_factory=set)  # event ids a worker put on the trail
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # the simulator's webhook deliveries
    webhook_ids: list[str] = field(default_factory=list)  # at the action target, one per request

    def delivered(self) -> set[str]:
        """The decision ids the target received (webhook-id is ``<decision id>.<action>``)."""
        return {wid.split(".")[0] for wid in self.webhook_ids}

    def decision_ids(self) -> set[str]:
        return {d for found in self.decisions.values() for d, _ in found}


def read(stack: Stack, sessions: dict[str, str]) -> Seen:
    """The audit trail, the ledger, the simulator's delivery log and the target's requests."""
    engine = make_engine(stack.database_url)
    try:
        with engine.connect() as db:
            rows = db.execute(
                select(decisions.c.session_id, decisions.c.decision_id, decisions.c.outcome).where(
                    decisions.c.session_id.in_(list(sessions))
                )
            ).all()
            ledger = [dict(r._mapping) for r in db.execute(select(action_ledger))]
            recorded = {str(r.event_id) for r in db.execute(select(events.c.event_id))}
    finally:
        engine.dispose()
    found: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for session_id, decision_id, outcome in rows:
        found[session_id].append((decision_id, outcome))
    deliveries = httpx2.get(f"{stack.sim_url}/_sim/deliveries", timeout=10).json()
    return Seen(dict(found), ledger, recorded, deliveries, stack.receiver.webhook_ids())


def queue_busy(redis: Redis) -> bool:
    """Jobs waiting, running or scheduled (deferred looks, retries) in cubehook's queue."""
    queue = rq_queue(QUEUE, redis)
    started = queue.started_job_registry.get_job_ids(cleanup=False)
    return bool(queue.count or started or queue.scheduled_job_registry.get_job_ids(cleanup=False))


def settled(stack: Stack, sessions: dict[str, str], expected_sessions: int) -> bool:
    """Everything is over: every session started, played and delivered (retries included), decided,
    its decision at the target, the queue idle. False while anything cannot be read."""
    if len(sessions) < expected_sessions:
        return False
    try:
        if httpx2.get(f"{stack.sim_url}/_sim/idle", params={"timeout": 0}, timeout=5).status_code != 200:
            return False
        seen = read(stack, sessions)
        if set(seen.decisions) != set(sessions) or not seen.decision_ids() <= seen.delivered():
            return False
        with stack.redis() as redis:
            return not queue_busy(redis)
    except Exception:
        return False


def lost_events(deliveries: list[dict[str, Any]]) -> list[str]:
    """Events that no delivery got a 2xx for (from any of the three subscriptions)."""
    accepted = {d["eventId"] for d in deliveries if d["outcome"][:1] == "2"}
    return sorted({d["eventId"] for d in deliveries} - accepted)


def forgotten_events(seen: Seen) -> list[str]:
    """Events answered 202 (accepted: their job written to Redis) that no worker ever put on the
    audit trail: their job was lost with Redis's data. ComplyCube sends none of them again; what
    they would have triggered is found again only by the backfill."""
    accepted = {d["eventId"] for d in seen.deliveries if d["outcome"] == "202"}
    return sorted(accepted - seen.recorded_events)


def problems(stack: Stack, sessions: dict[str, str], seen: Seen, redis_kept: bool) -> list[str]:
    """Every way the run broke the promise, each a line naming what."""
    found = [
        f"{p.name} exited with status {p.process.poll()}; last lines:\n{p.tail()}"
        for p in stack.cubehook
        if not p.alive()
    ]
    lost = lost_events(seen.deliveries)
    if lost:
        found.append(f"{len(lost)} events never got a 2xx from the web process: {lost[:5]}")
    missing = sorted(s for s in sessions if s not in seen.decisions)
    doubled = {s: len(d) for s, d in seen.decisions.items() if len(d) > 1}
    wrong = {
        s: [o for _, o in d]
        for s, d in seen.decisions.items()
        if [o for _, o in d] != [sessions[s]] and s not in doubled
    }
    if missing:
        found.append(f"{len(missing)} of {len(sessions)} sessions never decided: {missing[:5]}")
    if doubled:
        found.append(
            f"{len(doubled)} sessions decided more than once (decisions each): {dict(list(doubled.items())[:5])}"
        )
    if wrong:
        found.append(f"{len(wrong)} sessions decided wrongly: {dict(list(wrong.items())[:5])}")
    if redis_kept:
        found += _redis_history(stack, sessions)
    found += _deliveries(seen)
    found += _dead_letters(stack, seen)
    return found


def _redis_history(stack: Stack, sessions: dict[str, str]) -> list[str]:
    """Where Redis kept its data, the session store's history: one decision per session."""
    with stack.redis() as redis:
        store = SessionStore(redis, 15, seal=SEAL)
        off = {s: [d.outcome for d in store.history(s)] for s in sessions}
    off = {s: h for s, h in off.items() if h != [sessions[s]]}
    return (
        [f"{len(off)} sessions' decision history in Redis is not one decision: {dict(list(off.items())[:5])}"]
        if off
        else []
    )


def _deliveries(seen: Seen) -> list[str]:
    """One distinct webhook-id per decision at the target, for every decision and no other."""
    ids = seen.decision_ids()
    per_decision = Counter(wid.split(".")[0] for wid in set(seen.webhook_ids))
    found = []
    undelivered = sorted(ids - set(per_decision))
    if undelivered:
        found.append(f"{len(undelivered)} decisions never reached the action target: {undelivered[:5]}")
    doubled = {d: n for d, n in per_decision.items() if n > 1}
    if doubled:
        found.append(
            f"{len(doubled)} decisions delivered under several webhook-ids: {dict(list(doubled.items())[:5])}"
        )
    stray = sorted(set(per_decision) - ids)
    if stray:
        found.append(f"{len(stray)} deliveries of decisions the audit trail does not hold: {stray[:5]}")
    return found


def _dead_letters(stack: Stack, seen: Seen) -> list[str]:
    """No dead letter: the failed registry empty, every ledger row of the run's decisions sent once."""
    found = []
    with stack.redis() as redis:
        queue = rq_queue(QUEUE, redis)
        failed = queue.failed_job_registry.get_job_ids(cleanup=False)
        reasons = []
        for job_id in failed[:3]:
            job = queue.fetch_job(job_id)
            result = job.latest_result() if job is not None else None
            reasons.append(f"{job_id}: {_exception_line(result.exc_string if result is not None else None)}")
    if failed:
        found.append(f"{len(failed)} jobs in RQ's failed registry, e.g. {reasons}")
    dead = [r for r in seen.ledger if r["state"] == "dead"]
    if dead:
        found.append(
            f"{len(dead)} action ledger rows dead, e.g. {[(r['decision_id'], r['last_error']) for r in dead[:3]]}"
        )
    rows = Counter(r["decision_id"] for r in seen.ledger)
    unsent = sorted(
        d
        for d in seen.decision_ids()
        if rows[d] != 1 or not any(r["decision_id"] == d and r["state"] == "sent" for r in seen.ledger)
    )
    if unsent:
        found.append(f"{len(unsent)} decisions without exactly one 'sent' ledger row: {unsent[:5]}")
    return found


def _exception_line(trace: str | None) -> str:
    """The line of a traceback that names the exception (SQLAlchemy adds a link line after it)."""
    lines = [line for line in (trace or "").splitlines() if line.strip() and not line.startswith((" ", "("))]
    return lines[-1][:300] if lines else "?"
