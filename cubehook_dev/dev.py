"""`cubehook dev` (what `make run` runs): the whole system on one machine, and a short demo.

It starts Redis (embedded unless CUBEHOOK_REDIS_URL is set), the ComplyCube simulator, the web
process, a worker, the sink and the demo, with the simulator's webhooks wired to the web process,
records where everything is in var/dev.env (cubehook_dev.devenv), which its processes read and
other commands do with CUBEHOOK_ENV_FILE=var/dev.env, and runs until Ctrl-C, which
stops everything in order (cubehook_dev.processes), the embedded Redis last, and exits 0.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from cubehook_console.dev import dev_console
from cubehook_dev import devenv
from cubehook_dev.devredis import EmbeddedRedis, free_port
from cubehook_dev.processes import OrderedManager, terminal_foreground
from service.log import scrub_text
from service.ports import ensure_free
from workers import scriptload

# Stopped in this order (then the embedded Redis): nothing new comes in, then the worker finishes
# the job in hand, then what that job may still need.
STAGES = (("demo", "web", "console"), ("worker",), ("simulator", "sink"))


def run_dev(procfile: Path) -> int:
    """Run the system until Ctrl-C; the exit status (0 when stopped so). Raises ConfigError for a
    port that is taken, before anything starts."""
    from honcho.environ import parse_procfile

    system = devenv.plan(_environ())
    ensure_free(system.env.get("CUBEHOOK_HOST") or "127.0.0.1", system.port, "CUBEHOOK_PORT")
    ensure_free("127.0.0.1", system.admin_port, "CUBEHOOK_ADMIN_PORT")
    given = system.env.get("CUBEHOOK_REDIS_URL")
    embedded = None if given else EmbeddedRedis()
    if embedded is not None:
        embedded.start()
    try:
        devenv.use_redis(system, embedded.url if embedded else str(given), embedded is not None)
        # Before the web takes its first event, what a worker's first tick does: the web only
        # runs the intake's scripts, never loads them (workers.scriptload).
        scriptload.load_at(system.env["CUBEHOOK_REDIS_URL"])
        console = dev_console(system.env, free_port())  # its key, port and a development login
        devenv.write(system)
        click.echo(_banner(system, embedded is not None, console.line.rstrip()))
        sys.stdout.flush()
        manager = OrderedManager(STAGES)
        for name, command in _processes(system, dict(parse_procfile(procfile.read_text()).processes)).items():
            manager.add_process(name, command, env=system.env)
        with terminal_foreground():
            manager.loop()
    finally:
        if embedded is not None:
            embedded.close()
    return int(manager.returncode or 0)


def _environ() -> dict[str, str]:
    env = dict(os.environ)
    # Children find the `cubehook` script of this very interpreter, even outside an activated venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # honcho reads pipes: print lines as they happen
    env.setdefault("CUBEHOOK_LOG_FORMAT", "console")
    # The demo tells the story; the processes' own lines are for what goes wrong.
    env.setdefault("CUBEHOOK_LOG_LEVEL", "WARNING")
    return env


def _processes(system: devenv.DevSystem, procfile: dict[str, str]) -> dict[str, str]:
    """The Procfile's processes, and the simulator, the sink and the demo."""
    processes = dict(procfile)
    # The simulator signs with the first of CUBEHOOK_WEBHOOK_SECRETS, which it reads from env.
    processes["simulator"] = shlex.join(
        ["cubehook", "simulate", "--port", str(system.simulator_port), "--step-seconds", "0.5",
         "--api-key", devenv.SIMULATOR_API_KEY, "--retry-scale", "0.05", "--webhook-url", system.endpoint]
    )  # fmt: skip
    processes["sink"] = shlex.join(["cubehook", "sink", "--port", str(system.sink_port)])
    demo = ["cubehook", "demo", "--simulator", system.simulator_url, "--admin", system.admin_url]
    processes["demo"] = shlex.join(demo + (["--show-secret"] if system.generated_secret else []))
    return processes


def _banner(system: devenv.DevSystem, embedded: bool, console: str) -> str:
    env = system.env
    secret = (
        f"{system.generated_secret}  (generated for this run; sign test events with it)"
        if system.generated_secret
        else "from CUBEHOOK_WEBHOOK_SECRETS (not shown)"
    )
    settings = (
        f"{system.env_file} (kept after the run); in another terminal, "
        f"`export CUBEHOOK_ENV_FILE={system.env_file}` and the cubehook commands find this system"
        if system.env_file
        else "not written (CUBEHOOK_ENV_FILE is empty)"
    )
    redis = scrub_text(env["CUBEHOOK_REDIS_URL"]) + (" (embedded: stops with this run)" if embedded else "")
    level = env["CUBEHOOK_LOG_LEVEL"]
    return "\n".join(
        [
            "cubehook dev",
            f"  redis:     {redis}",
            f"  endpoint:  {system.endpoint}",
            f"  admin:     {system.admin_url}  (/readyz, /metrics, /openapi.json)",
            f"  simulator: {system.simulator_url}/v1 (ComplyCube API), {system.simulator_url}/_sim (control)",
            f"  secret:    {secret}",
            f"  rules:     {env['CUBEHOOK_RULES_FILE']}",
            f"  audit:     {scrub_text(env['CUBEHOOK_DATABASE_URL'])}  (kept after the run)",
            f"  settings:  {settings}",
            console,
            f"  logs:      {level} and above from the processes (CUBEHOOK_LOG_LEVEL=INFO: every step)",
            "  Ctrl-C stops everything.",
        ]
    )
