"""The `cubehook` command: commands listed by audience, each loaded only when used, so that
`cubehook web` runs the web side alone; the development commands need the dev package."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner

from cubehook_cli import main
from cubehook_dev.devredis import free_port
from tests.conftest import SECRET, event_body, signature
from tests.e2e.conftest import CUBEHOOK, cubehook_env, running


def sections(help_text: str) -> dict[str, list[str]]:
    """``cubehook --help``'s command sections: title -> the commands listed under it."""
    found: dict[str, list[str]] = {}
    for line in help_text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line.split(" ")[0].rstrip(":")
            found[title] = []
        elif line.startswith("  ") and found:
            found[title].append(line.split()[0])
    return found


def test_help_lists_the_commands_by_audience() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert sections(result.output) == {
        "Options": ["--debug", "--help"],
        "Serve": ["web", "worker", "console"],
        "Operate": [
            "status",
            "dlq",
            "quarantine",
            "history",
            "resync",
            "backfill",
            "watchdog",
            "db",
            "audit",
        ],
        "Develop": ["dev", "simulate", "send-event", "rules"],
    }


def test_the_processes_of_cubehook_dev_are_commands_too_though_not_listed() -> None:
    for name in ("sink", "demo"):
        assert CliRunner().invoke(main, [name, "--help"]).exit_code == 0


def test_without_the_dev_package_its_commands_are_gone_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in the production image: importing the dev package fails (None in sys.modules blocks it).
    for name in [n for n in sys.modules if n.split(".")[0] == "cubehook_dev" or n == "cubehook_cli.develop"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cubehook_dev", None)
    listed = CliRunner().invoke(main, ["--help"])
    assert sections(listed.output)["Develop"] == ["rules"]
    refused = CliRunner().invoke(main, ["simulate", "--port", "8100"])
    assert refused.exit_code == 2
    assert "`cubehook simulate` is a development command: it needs the dev extra" in refused.output


SITECUSTOMIZE = """\
import atexit, os, sys
atexit.register(lambda: open(os.environ["MODULES_REPORT"], "w").write("\\n".join(sorted(sys.modules))))
"""


@pytest.mark.e2e
def test_cubehook_web_never_loads_a_worker_or_dev_module(redis_url: str, tmp_path: Path) -> None:
    # The real process, after it served a webhook and a scrape, writes down every module it holds
    # as it exits (a sitecustomize module on its path registers that).
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    report = tmp_path / "modules.txt"
    public = free_port()
    env = cubehook_env(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS=SECRET)
    env.update(PYTHONPATH=str(tmp_path), MODULES_REPORT=str(report))
    admin = f"http://127.0.0.1:{env['CUBEHOOK_ADMIN_PORT']}"
    with running([CUBEHOOK, "web", "--port", str(public)], env, f"{admin}/readyz"):
        body = event_body(event_id="modules-1")
        url = f"http://127.0.0.1:{public}/webhooks/complycube"
        assert httpx2.post(url, content=body, headers=signature(body), timeout=10).status_code == 202
        assert httpx2.get(f"{admin}/metrics", timeout=10).status_code == 200
    modules = report.read_text().split()
    assert {"cubehook_cli.serve", "service.web.serve", "service.intake", "service.queue"} <= set(modules)
    assert [m for m in modules if m.split(".")[0] in ("workers", "cubehook_dev")] == []
