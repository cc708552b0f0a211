"""The demo `cubehook dev` runs beside the system: it plays a clear, an attention and a rejected
session through the simulator and tells what happens, in order (cubehook_dev.timeline): each webhook
the simulator delivers, each decision the workers make and the actions it caused. Once the three
are decided it prints commands to try, ready to paste. It keeps watching until stopped.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx2
from redis.exceptions import RedisError
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from cubehook_dev.timeline import Line, Story, delivery_line, job_line, person_line
from service.redis import redis_client
from service.rq_jobs import JobFunction, rq_queue
from service.settings import ENV_FILE_VARIABLE, Settings, env_file
from workers.sessions import SessionStore

DEMO_SCENARIOS = (
    {"preset": "clear", "first_name": "Ada", "last_name": "Clear"},
    {"first_name": "Ben", "last_name": "attention"},  # ComplyCube's sandbox convention
    {"preset": "rejected", "first_name": "Cy", "last_name": "Rejected"},
)
POLL_SECONDS = 0.5


def cubehook_path() -> str:
    """The `cubehook` script of this very interpreter, for lines a user pastes anywhere."""
    script = Path(sys.executable).parent / "cubehook"
    return str(script) if script.exists() else "cubehook"


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """Return once ``url`` answers 200; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(url, timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            raise click.ClickException(f"{url} did not become ready")
        time.sleep(0.2)


def watch(settings: Settings, simulator_url: str, admin_url: str, show_secret: bool) -> None:
    """Play the demo scenarios, then tell what happens, for ever."""
    wait_ready(f"{admin_url}/readyz")
    wait_ready(f"{simulator_url}/_sim/health")
    sessions = []
    for scenario in DEMO_SCENARIOS:
        created = httpx2.post(f"{simulator_url}/_sim/sessions", json=scenario, timeout=5).json()
        sessions.append(created["sessionId"])
        click.echo(f"session {created['sessionId']} started: ComplyCube will say {created['sessionOutcome']}")
    queue = rq_queue(settings.queue_name, redis_client(settings))
    store = SessionStore.from_settings(settings, queue.connection)  # reads people's decisions
    story, seen_jobs, delivered = Story(), set[str](), 0
    undecided, unreachable = set(sessions), False
    while True:
        try:
            # Idle before this poll's reading: every job done by then is among those read below.
            idle = queue.count == 0 and queue.started_job_registry.count == 0
            deliveries = httpx2.get(f"{simulator_url}/_sim/deliveries", timeout=5).json()
            lines = [delivery_line(record) for record in deliveries[delivered:]]
            delivered = len(deliveries)
            lines += _finished(queue, store, seen_jobs, undecided)
        except (httpx2.TransportError, RedisError) as exc:
            if not unreachable:  # once: the system may be stopping, or be back soon
                click.echo(f"demo: cannot read the simulator or Redis ({type(exc).__name__}); trying again")
            unreachable = True
        else:
            unreachable = False
            for text in story.tell(lines):
                click.echo(text)
            if not undecided and sessions and idle:  # decided, and the actions they caused told
                click.echo("\n".join(try_lines(settings, sessions[-1], show_secret)))
                sessions = []
        time.sleep(POLL_SECONDS)


def try_lines(settings: Settings, session_id: str, show_secret: bool) -> list[str]:
    """Commands to paste, from this folder or any other: the env file of the run (which a command
    reads only when told to), the full path, a real session id, and the secret when it was made for
    this run (a secret the user gave is in their environment)."""
    cubehook = cubehook_path()
    secret = f" --secret {settings.webhook_secrets[0].get_secret_value()}" if show_secret else ""
    endpoint = f"http://127.0.0.1:{settings.port}/webhooks/complycube"
    recorded = env_file()  # `cubehook dev` names the file it wrote to its processes
    return [
        "the demo's sessions are decided; try, in another terminal:",
        *([f"  export {ENV_FILE_VARIABLE}={recorded}"] if recorded else []),
        f"  {cubehook} history {session_id}",
        f"  {cubehook} simulate play --preset attention",
        f"  {cubehook} send-event --session {session_id}{secret} --url {endpoint}",
        f"  {cubehook} status",
    ]


def _finished(queue: Queue, store: SessionStore, seen: set[str], undecided: set[str]) -> list[Line]:
    """Lines for the jobs finished or failed since the last call; ``undecided`` loses the sessions
    decided meanwhile."""
    lines = []
    for registry in (FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)):
        for job_id in registry.get_job_ids():
            if job_id in seen:
                continue
            seen.add(job_id)
            job = queue.fetch_job(job_id)
            if job is None:
                continue
            failed = isinstance(registry, FailedJobRegistry)
            result: Any = None if failed else job.return_value()
            latest = job.latest_result() if failed else None
            error = (latest.exc_string or "").strip().splitlines()[-1:] if latest else []
            at = job.ended_at.timestamp() if job.ended_at else time.time()
            line = job_line(
                job.func_name or "", job.kwargs, result, (error or ["?"])[0] if failed else None, at
            )
            if line is not None:
                lines.append(line)
            if isinstance(result, dict) and result.get("result") == "decided":
                undecided.discard(str(result.get("session_id")))
            if job.func_name == JobFunction.RUN_ACTION:
                lines += _person(store, job.kwargs, seen)
    return lines


def _person(store: SessionStore, action: dict[str, Any], seen: set[str]) -> list[Line]:
    """The line of the decision an action job carried out, when a person made it in the console
    (no job made it, so no job's line tells it); looked up once per decision (``seen`` keeps
    ``decision:ID`` beside the job ids)."""
    decision_id, session_id = str(action.get("decision_id")), str(action.get("session_id"))
    if f"decision:{decision_id}" in seen:
        return []
    seen.add(f"decision:{decision_id}")
    found = store.find(session_id, decision_id)
    line = person_line(found.to_dict()) if found is not None else None
    return [line] if line is not None else []
