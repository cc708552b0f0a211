"""The settings of the system `cubehook dev` runs: chosen once, given to each of its processes, and
written to the env file that every command started in the same folder reads (service.settings:
``var/dev.env``, git-ignored). So `cubehook status`, `cubehook dlq list` or `cubehook history ID`
find the system `make run` started, with nothing to set, during the run and after it: the audit
trail (a SQLite file under var/) and the env file outlive Ctrl-C.

A secret the user gave (CUBEHOOK_WEBHOOK_SECRETS, a URL with a password) is never copied to the
file: it stays in their environment, which every command reads too.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cubehook_dev.devredis import free_port
from service.errors import ConfigError
from service.settings import env_file

SIMULATOR_API_KEY = "test_simulator_key"
# Not a setting: tells a command that cannot reach the Redis the file names that it was the
# embedded one, which stopped with its run (cubehook_cli.errors).
REDIS_EMBEDDED = "DEV_REDIS_EMBEDDED"
VAR = Path("var")
DATABASE_FILE = "dev-audit.db"
RULES_FILE = "dev-rules.toml"
DEFAULT_PORT = 8000
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
HEADER = """\
# Written by `cubehook dev` at {when}: the settings of the system it runs (or ran) from this folder.
# Every cubehook command started in this folder reads them; a variable set in the environment wins.
# Delete this file to stop that.
"""


@dataclass
class DevSystem:
    """Where everything of one `cubehook dev` run is, and the environment of its processes."""

    env: dict[str, str]
    port: int
    admin_port: int
    simulator_port: int
    sink_port: int
    generated_secret: str | None  # None: the user's CUBEHOOK_WEBHOOK_SECRETS, never shown
    recorded: dict[str, str] = field(default_factory=dict)  # what the env file holds
    env_file: Path | None = None

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.web_url}/webhooks/complycube"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{self.simulator_port}"

    @property
    def sink_url(self) -> str:
        return f"http://127.0.0.1:{self.sink_port}"


def plan(environ: Mapping[str, str]) -> DevSystem:
    """Choose ports, paths and secrets, honouring what ``environ`` sets. Writes nothing yet.
    Raises ConfigError for a port that is not a number."""
    env = dict(environ)
    port = _port(env, "CUBEHOOK_PORT", env.get("PORT") or DEFAULT_PORT)
    # A free admin port unless one is set: several `cubehook dev` (tests) may run at once.
    admin_port = _port(env, "CUBEHOOK_ADMIN_PORT", free_port())
    generated = None if env.get("CUBEHOOK_WEBHOOK_SECRETS") else "dev_" + secrets.token_hex(16)
    system = DevSystem(env, port, admin_port, free_port(), free_port(), generated)
    var = VAR.resolve()
    chosen = {
        "CUBEHOOK_PORT": str(port),
        "CUBEHOOK_ADMIN_PORT": str(admin_port),
        # The workers read the simulator, never a real ComplyCube, whatever the environment says;
        # everything here talks plain HTTP on loopback (the simulator, the sink): allowed for this
        # system only, never by default.
        "CUBEHOOK_COMPLYCUBE_BASE_URL": f"{system.simulator_url}/v1",
        "CUBEHOOK_COMPLYCUBE_API_KEY": SIMULATOR_API_KEY,
        "CUBEHOOK_ALLOW_INSECURE_TRANSPORT": "true",
        # Decisions go to a local sink: a decision webhook for every outcome, an alert for the others.
        "DEV_DECISION_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "DEV_ALERT_WEBHOOK_URL": f"{system.sink_url}/alerts",
    }
    if not env.get("CUBEHOOK_DECISION_KEYS"):  # the workers' and console's seal (workers/seal.py)
        chosen["CUBEHOOK_DECISION_KEYS"] = "dev_" + secrets.token_hex(32)
    env.update(chosen)
    env["PORT"] = str(port)  # the Procfile's web line reads PORT
    env.setdefault("CUBEHOOK_RULES_FILE", str(var / RULES_FILE))
    env.setdefault("CUBEHOOK_DATABASE_URL", f"sqlite:///{var / DATABASE_FILE}")
    if generated is not None:
        env["CUBEHOOK_WEBHOOK_SECRETS"] = generated
    kept = ("CUBEHOOK_RULES_FILE", "CUBEHOOK_DATABASE_URL", "CUBEHOOK_WEBHOOK_SECRETS")
    system.recorded = chosen | {name: env[name] for name in kept if _recordable(name, environ, env)}
    return system


def use_redis(system: DevSystem, url: str, embedded: bool) -> None:
    """The Redis of the run: the one given (CUBEHOOK_REDIS_URL), or the embedded one just started."""
    system.env["CUBEHOOK_REDIS_URL"] = url
    if embedded:
        system.recorded[REDIS_EMBEDDED] = "true"
    if embedded or not _has_password(url):
        system.recorded["CUBEHOOK_REDIS_URL"] = url


def write(system: DevSystem) -> None:
    """Write the rules file of the run and the env file (owner only: it holds the dev secrets)."""
    VAR.mkdir(exist_ok=True)
    rules = Path(system.env["CUBEHOOK_RULES_FILE"])
    if rules == (VAR / RULES_FILE).resolve():
        rules.write_text(DEV_RULES.format(sink=system.sink_url))
    target = env_file(system.env)
    if target is None:  # CUBEHOOK_ENV_FILE="": the user wants none
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER.format(when=datetime.now(UTC).isoformat(timespec="seconds"))]
    lines += [f"{name}='{value}'\n" for name, value in sorted(system.recorded.items()) if "'" not in value]
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.writelines(lines)
    system.env_file = target if target.is_absolute() else Path(os.path.relpath(target.resolve()))


def _port(env: Mapping[str, str], name: str, default: str | int) -> int:
    value = env.get(name) or default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} is not a port number: {value!r}") from None


def _recordable(name: str, given: Mapping[str, str], env: Mapping[str, str]) -> bool:
    """What the run chose is written down; what the user gave, unless it holds a secret."""
    if name not in given:
        return True
    return name != "CUBEHOOK_WEBHOOK_SECRETS" and not _has_password(env[name])


def _has_password(url: str) -> bool:
    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return True  # unreadable: keep it out
