"""Issue 11, part 1: every spelling of a workflow-session event, with resourceType in that spelling,
``session``, or none, and every event name, through the real endpoint (a `cubehook web` process)
and a real worker (`cubehook worker`) against the simulator: each session is processed, and
decided when final. One web process and one worker serve the whole table, a simulator session per
case, so the table stays thorough and the test a few seconds long."""

from __future__ import annotations

import itertools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from redis import Redis

from service.rq_jobs import rq_queue
from tests.conftest import SEAL, SIM_API_KEY, SimServer, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env
from workers.audit.store import AuditStore
from workers.sessions import SessionStore

pytestmark = pytest.mark.e2e

SPELLINGS = [
    "workflowSession",
    "workflow.session",
    "workflow_session",
    "workflow-session",
    "WORKFLOW.SESSION",
]
RESOURCE_TYPES = ["as spelled", "session", None]
NAMES = ["started", "processing", "completed", "updated", "cancelled", "abandoned"]
# The check events of both naming generations (confirmed names), with and without resourceType.
CHECK_EVENTS = [("check.completed", "check"), ("check.complete.clear", None), ("check.updated", "CHECK")]


@dataclass
class Case:
    event_type: str
    resource_type: str | None
    resource_id: str  # what the event names: the session, or one of its checks
    session_id: str  # what must be processed
    expected: tuple[str, str | None]  # the job's result, and the decision's outcome or status
    job_id: str = ""


def session_for(sim: SimServer, name: str, n: int) -> tuple[str, tuple[str, str | None]]:
    """A simulator session in the state the event name reports, and what processing it must give."""
    if name in ("started", "processing"):
        sid = sim.create(preset="clear", mode="manual")["sessionId"]
        if name == "processing":
            sim.control("POST", f"/_sim/sessions/{sid}/advance")
        return sid, ("progress", None)
    if name in ("cancelled", "abandoned"):
        return sim.create(preset=name, mode="settled")["sessionId"], ("decided", name)
    outcome = ("clear", "attention", "rejected")[n % 3]
    return sim.create(preset=outcome, mode="settled")["sessionId"], ("decided", outcome)


def post(web: str, case: Case, n: int) -> None:
    document: dict[str, object] = {"id": f"evt-spelling-{n:03d}", "type": case.event_type}
    if case.resource_type is not None:
        document["resourceType"] = case.resource_type
    document["payload"] = {"id": case.resource_id}  # no createdAt either: it is optional
    body = json.dumps(document).encode()
    response = httpx2.post(f"{web}/webhooks/complycube", content=body, headers=signature(body), timeout=10)
    assert response.status_code == 202, (case, response.text)
    case.job_id = response.json()["job_id"]


def test_every_spelling_and_name_is_processed_by_a_real_worker(
    web: str, sim: SimServer, redis_url: str, tmp_path: Path
) -> None:
    cases: list[Case] = []
    for n, (spelling, resource_type, name) in enumerate(itertools.product(SPELLINGS, RESOURCE_TYPES, NAMES)):
        sid, expected = session_for(sim, name, n)
        sent_type = spelling if resource_type == "as spelled" else resource_type
        cases.append(Case(f"{spelling}.{name}", sent_type, sid, sid, expected))
    for event_type, resource_type in CHECK_EVENTS:
        sid = sim.create(preset="rejected", mode="settled")["sessionId"]
        check_id = sim.session(sid)["allRelatedChecks"][0]["checkId"]
        cases.append(Case(event_type, resource_type, check_id, sid, ("decided", "rejected")))
    for n, case in enumerate(cases):
        post(web, case, n)

    database = f"sqlite:///{tmp_path}/audit.db"
    env = cubehook_env(
        CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_DATABASE_URL=database, CUBEHOOK_COMPLYCUBE_API_KEY=SIM_API_KEY,
        CUBEHOOK_COMPLYCUBE_BASE_URL=f"{sim.url}/v1", CUBEHOOK_COMPLYCUBE_RATE_LIMIT="0",
        CUBEHOOK_MAINTENANCE_INTERVAL_SECONDS="0", CUBEHOOK_LOG_LEVEL="WARNING",
        CUBEHOOK_EVENT_DEFER_SECONDS="0",  # every event looked at now: the table is about routing
    )  # fmt: skip
    worker = subprocess.run(
        [CUBEHOOK, "worker", "--burst"], env=env, capture_output=True, text=True, timeout=300
    )
    assert worker.returncode == 0, worker.stderr

    redis = Redis.from_url(redis_url)
    queue = rq_queue("cubehook", redis)
    store = SessionStore(redis, 60, seal=SEAL)
    audit = AuditStore.from_url(database)
    assert queue.failed_job_registry.count == 0
    for case in cases:
        job = queue.fetch_job(case.job_id)
        assert job is not None, case
        result = job.return_value()
        assert isinstance(result, dict), case
        assert (result["session_id"], result["result"]) == (case.session_id, case.expected[0]), case
        decisions = store.history(case.session_id)
        if case.expected[1] is None:
            assert decisions == [], case
        else:
            [decision] = decisions
            assert (decision.outcome or decision.status) == case.expected[1], case
        resource = "check" if case.event_type.startswith("check") else "session"
        [row] = [e for e in audit.history(case.session_id) if e["entry"] == "event"]
        assert (row["event_type"], row["resource_type"]) == (case.event_type, resource), case
    redis.close()
