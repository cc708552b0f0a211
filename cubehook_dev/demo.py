"""`cubehook dev` (what `make run` runs): the whole system on one machine, and a short demo.

It starts Redis (embedded unless CUBEHOOK_REDIS_URL is set), the ComplyCube simulator, the web
process and a worker under honcho, wires the simulator's webhooks to the web process, then plays
a clear, an attention and a rejected session and prints what arrives and what the workers make of
it. It keeps running (for `cubehook send-event`) until Ctrl-C, which stops everything it started.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import sys
import tempfile
import time
from pathlib import Path

import click
import httpx2
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from cubehook_console.dev import dev_console
from cubehook_dev.devredis import EmbeddedRedis, free_port
from service.queue import redis_client
from service.rq_jobs import rq_queue
from service.settings import Settings

SIMULATOR_API_KEY = "test_simulator_key"
DEV_RULES = """\
# Written by `cubehook dev`: every decision to the local sink, an alert for the ones to review.
[action.onboarding]
type = "webhook"
url = "{sink}/decisions"
secret_env = "DEV_DECISION_WEBHOOK_SECRET"

[action.compliance-alert]
type = "slack"
url_env = "DEV_ALERT_WEBHOOK_URL"

[action.log]
type = "log"

[[rule]]
name = "onboarding decision and result sync"
actions = ["onboarding", "log"]

[[rule]]
name = "alert compliance on attention and rejection"
when = {{ outcome = ["attention", "rejected"] }}
actions = ["compliance-alert"]
"""
DEMO_SCENARIOS = (
    {"preset": "clear", "first_name": "Ada", "last_name": "Clear"},
    {"first_name": "Ben", "last_name": "attention"},  # ComplyCube's sandbox convention
    {"preset": "rejected", "first_name": "Cy", "last_name": "Rejected"},
)


def run_dev(procfile: Path) -> int:
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    env = dict(os.environ)
    # Children find the `cubehook` script of this very interpreter, even outside an activated venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # honcho reads pipes: print lines as they happen
    env.setdefault("CUBEHOOK_LOG_FORMAT", "console")
    env.setdefault("PORT", env.get("CUBEHOOK_PORT", "8000"))
    web_url = f"http://127.0.0.1:{env['PORT']}"
    # A free admin port unless one is set: several `cubehook dev` (tests) may run at once.
    env.setdefault("CUBEHOOK_ADMIN_PORT", str(free_port()))
    admin_url = f"http://127.0.0.1:{env['CUBEHOOK_ADMIN_PORT']}"
    simulator_port = free_port()
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    # Everything here talks plain HTTP on loopback (the simulator, the sink): allowed for these
    # processes only, never by default.
    env["CUBEHOOK_ALLOW_INSECURE_TRANSPORT"] = "true"
    # The workers read the simulator, never a real ComplyCube, whatever the environment says.
    env["CUBEHOOK_COMPLYCUBE_BASE_URL"] = f"{simulator_url}/v1"
    env["CUBEHOOK_COMPLYCUBE_API_KEY"] = SIMULATOR_API_KEY
    # Decisions go to a local sink: a decision webhook for every outcome, an alert for the others.
    workdir = tempfile.TemporaryDirectory(prefix="cubehook-dev-")
    sink_port = free_port()
    rules_path = Path(workdir.name) / "rules.toml"
    rules_path.write_text(DEV_RULES.format(sink=f"http://127.0.0.1:{sink_port}"))
    env.setdefault("CUBEHOOK_RULES_FILE", str(rules_path))
    env["DEV_DECISION_WEBHOOK_SECRET"] = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    env["DEV_ALERT_WEBHOOK_URL"] = f"http://127.0.0.1:{sink_port}/alerts"
    env.setdefault("CUBEHOOK_DATABASE_URL", f"sqlite:///{workdir.name}/audit.db")
    embedded = None if env.get("CUBEHOOK_REDIS_URL") else EmbeddedRedis()
    if embedded is not None:
        embedded.start()
        env["CUBEHOOK_REDIS_URL"] = embedded.url
    if env.get("CUBEHOOK_WEBHOOK_SECRETS"):
        shown = "from CUBEHOOK_WEBHOOK_SECRETS (not shown)"
    else:
        env["CUBEHOOK_WEBHOOK_SECRETS"] = shown = "dev_" + secrets.token_hex(16)
        shown += "  (generated for this run; sign test events with it)"
    console = dev_console(env, free_port())  # its key, port and a development login (the Procfile starts it)
    click.echo(
        f"cubehook dev\n"
        f"  redis:     {env['CUBEHOOK_REDIS_URL']}{' (embedded)' if embedded else ''}\n"
        f"  endpoint:  {web_url}/webhooks/complycube\n"
        f"  admin:     {admin_url}  (/readyz, /metrics, /openapi.json)\n"
        f"  simulator: {simulator_url}/v1 (ComplyCube API), {simulator_url}/_sim (control)\n"
        f"  secret:    {shown}\n"
        f"  rules:     {env['CUBEHOOK_RULES_FILE']}\n"
        f"  audit:     {env['CUBEHOOK_DATABASE_URL']}  (cubehook history SESSION_ID)\n"
        f"{console.line}"
        f"  try:       cubehook send-event --session SESSION_ID --url {web_url}/webhooks/complycube\n"
        f"  Ctrl-C stops everything."
    )
    sys.stdout.flush()
    processes = dict(parse_procfile(procfile.read_text()).processes)
    # The simulator signs with the first of CUBEHOOK_WEBHOOK_SECRETS, which it reads from env.
    processes["simulator"] = shlex.join(
        ["cubehook", "simulate", "--port", str(simulator_port), "--step-seconds", "0.5",
         "--api-key", SIMULATOR_API_KEY,
         "--retry-scale", "0.05", "--webhook-url", f"{web_url}/webhooks/complycube"]
    )  # fmt: skip
    processes["sink"] = shlex.join(["cubehook", "sink", "--port", str(sink_port)])
    processes["demo"] = shlex.join(["cubehook", "demo", "--simulator", simulator_url, "--admin", admin_url])
    manager = Manager()
    for name, command in processes.items():
        manager.add_process(name, command, env=env)
    try:
        manager.loop()
    finally:
        if embedded is not None:
            embedded.close()
        workdir.cleanup()
    return int(manager.returncode or 0)


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


def watch(settings: Settings, simulator_url: str, admin_url: str) -> None:
    """Play the demo scenarios, then print deliveries and processed jobs as they happen, forever."""
    wait_ready(f"{admin_url}/readyz")
    wait_ready(f"{simulator_url}/_sim/health")
    for scenario in DEMO_SCENARIOS:
        created = httpx2.post(f"{simulator_url}/_sim/sessions", json=scenario, timeout=5).json()
        click.echo(f"session {created['sessionId']} started: ComplyCube will say {created['sessionOutcome']}")
    redis = redis_client(settings)
    queue = rq_queue(settings.queue_name, redis)
    seen_deliveries = 0
    seen_jobs: set[str] = set()
    while True:
        deliveries = httpx2.get(f"{simulator_url}/_sim/deliveries", timeout=5).json()
        for record in deliveries[seen_deliveries:]:
            click.echo(f"webhook {record['type']} ({record['eventId']}) -> {record['outcome']}")
        seen_deliveries = len(deliveries)
        _print_jobs(queue, seen_jobs)
        time.sleep(0.5)


def _print_jobs(queue: Queue, seen: set[str]) -> None:
    for registry, state in (
        (FinishedJobRegistry(queue=queue), "processed"),
        (FailedJobRegistry(queue=queue), "failed"),
    ):
        for job_id in registry.get_job_ids():
            if job_id in seen:
                continue
            seen.add(job_id)
            job = queue.fetch_job(job_id)
            if job is None:
                continue
            result = job.return_value() if state == "processed" else None
            click.echo(f"worker {state} {job_id} {describe(result)}".rstrip())


def describe(result: object) -> str:
    """``session S: decided rejected (dec_...)``, from a job's result."""
    if not isinstance(result, dict) or "session_id" not in result:
        return ""
    text = f"session {result['session_id']}: {result.get('result')}"
    if result.get("result") in ("decided", "unchanged"):
        text += f" {result.get('outcome') or result.get('status')} ({result.get('decision_id')})"
    elif result.get("status"):
        text += f" ({result['status']})"
    return text
