"""Helpers of the fault tests: real worker processes sending decisions to a receiver, and the
check that every session was decided once and every decision delivered once."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from tests.conftest import SEAL, SIM_API_KEY, Receiver, SimServer
from tests.e2e.conftest import cubehook_env
from workers.audit.store import AuditStore
from workers.sessions import SessionStore

HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def setup(
    sim: SimServer, redis_url: str, receiver: Receiver, tmp_path: Path, short_leases: bool = True
) -> dict[str, str]:
    """Workers' settings against ``sim`` and ``receiver``; with ``short_leases`` the session lock
    lasts 2 s, else the defaults hold (what the recovery guarantee is stated for)."""
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f'[action.hook]\ntype = "webhook"\nurl = "{receiver.url}/decisions"\nsecret_env = "HOOK_SECRET"\n'
        '[[rule]]\nname = "all"\nactions = ["hook"]\n'
    )
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/audit.db",
        CUBEHOOK_COMPLYCUBE_BASE_URL=f"{sim.url}/v1", CUBEHOOK_COMPLYCUBE_API_KEY=SIM_API_KEY,
        CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0", CUBEHOOK_RULES_FILE=str(rules),
        HOOK_SECRET=HOOK_SECRET, CUBEHOOK_ACTION_RETRY_INTERVALS="0,0", CUBEHOOK_LOG_LEVEL="WARNING",
        CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS="0",
    )  # fmt: skip
    if short_leases:
        env["CUBEHOOK_SESSION_LOCK_SECONDS"] = "2"
    return env


def check_once(redis_url: str, env: dict[str, str], sessions: dict[str, str], receiver: Receiver) -> None:
    redis = Redis.from_url(redis_url)
    store = SessionStore(redis, 2, seal=SEAL)
    for sid, outcome in sessions.items():
        assert [d.outcome for d in store.history(sid)] == [outcome], sid  # decided once, rightly
    decisions = {store.history(sid)[0].decision_id for sid in sessions}
    delivered = [headers["webhook-id"] for _, headers, _ in receiver.requests]
    assert {d.split(".")[0] for d in delivered} == decisions  # every decision reached the target...
    audit = AuditStore.from_url(env["CUBEHOOK_DATABASE_URL"])
    for decision_id in decisions:
        [entry] = audit.ledger(decision_id)
        assert entry["state"] == "sent"  # ...and is recorded sent once; copies share one webhook-id
    redis.close()
