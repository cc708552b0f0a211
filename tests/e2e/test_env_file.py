"""The env file `cubehook dev` writes (var/dev.env) reaches only the processes it starts, or a
command told to read it (CUBEHOOK_ENV_FILE); a production process never reads it; every process
says which env file it read. Real commands in a folder where `make run` once ran."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cubehook_dev import devenv
from cubehook_dev.devredis import free_port
from tests.conftest import DECISION_KEY
from tests.e2e.conftest import CUBEHOOK

pytestmark = pytest.mark.e2e


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder where `cubehook dev` ran: its var/dev.env, as it writes it (the simulator's key, an
    http:// simulator, plain HTTP allowed, the dev rules)."""
    monkeypatch.chdir(tmp_path)
    system = devenv.plan({})
    devenv.use_redis(system, f"redis://127.0.0.1:{free_port()}/0", embedded=True)
    devenv.write(system)
    monkeypatch.undo()
    assert (tmp_path / "var" / "dev.env").is_file()
    return tmp_path


def production(**extra: str) -> dict[str, str]:
    """An operator's shell: no CUBEHOOK_ setting (no env file named either), and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUBEHOOK_")}
    env.update(
        CUBEHOOK_LOG_FORMAT="json", CUBEHOOK_ADMIN_PORT=str(free_port()), CUBEHOOK_DECISION_KEYS=DECISION_KEY
    )
    env.update(extra)
    return env


def run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CUBEHOOK, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=60)


def logged(stderr: str, event: str) -> dict[str, object]:
    [line] = [line for line in stderr.splitlines() if f'"event": "{event}"' in line]
    found: dict[str, object] = json.loads(line)
    return found


def test_a_worker_started_in_the_checkout_does_not_take_the_dev_settings(
    checkout: Path, redis_url: str
) -> None:
    env = production(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_DATABASE_URL=f"sqlite:///{checkout}/prod.db")
    result = run(checkout, env, "worker", "--burst")
    assert result.returncode == 1, result.stderr  # no API key: refused, not the simulator's
    assert "CUBEHOOK_COMPLYCUBE_API_KEY" in result.stderr
    # Told to read it, the same worker starts, and says which file it read in its start line.
    told = run(checkout, env | {"CUBEHOOK_ENV_FILE": "var/dev.env"}, "worker", "--burst")
    assert told.returncode == 0, told.stderr
    assert logged(told.stderr, "worker.starting")["env_file"] == "var/dev.env"


def test_rules_check_judges_http_targets_the_same_in_the_checkout_and_elsewhere(
    checkout: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rules = checkout / "plain.toml"
    rules.write_text('[action.crm]\ntype = "webhook"\nurl = "http://crm.example/h"\nsecret_env = "CRM"\n')
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    here, there = (
        run(folder, production(), "rules", "check", str(rules)) for folder in (checkout, elsewhere)
    )
    assert here.returncode == there.returncode == 1
    assert "http://" in here.stderr
    assert here.stderr.splitlines()[-1] == there.stderr.splitlines()[-1]


def test_a_production_process_refuses_the_dev_env_file(checkout: Path, redis_url: str) -> None:
    env = production(CUBEHOOK_ENV="production", CUBEHOOK_ENV_FILE="var/dev.env", CUBEHOOK_REDIS_URL=redis_url)
    for command in (["worker", "--burst"], ["web"], ["console"], ["status"], ["rules", "check", "/dev/null"]):
        result = run(checkout, env, *command)
        assert result.returncode == 1, (command, result.stderr)
        [said] = result.stderr.splitlines()
        assert said == (
            "Error: CUBEHOOK_ENV is production, but CUBEHOOK_ENV_FILE names var/dev.env, written for "
            "development (by `cubehook dev`): a production process never reads it; unset CUBEHOOK_ENV_FILE"
        ), command


def test_every_process_says_which_env_file_it_read(checkout: Path, redis_url: str) -> None:
    env = production(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS="whsec_x", CUBEHOOK_PORT="0",
                     CUBEHOOK_DATABASE_URL=f"sqlite:///{checkout}/prod.db", CUBEHOOK_COMPLYCUBE_API_KEY="live_x")  # fmt: skip
    worker = run(checkout, env, "worker", "--burst")
    assert worker.returncode == 0, worker.stderr
    assert logged(worker.stderr, "worker.starting")["env_file"] == "none (CUBEHOOK_ENV_FILE unset)"
    for command, event in ((["web"], "web.starting"), (["console"], "console.start")):
        told = env | {"CUBEHOOK_ENV_FILE": "var/dev.env", "CUBEHOOK_CONSOLE_SECRET_KEY": "k" * 32,
                      "CUBEHOOK_CONSOLE_PORT": "0"}  # fmt: skip
        for given, said in ((env, "none (CUBEHOOK_ENV_FILE unset)"), (told, "var/dev.env")):
            process = subprocess.Popen(
                [CUBEHOOK, *command], cwd=checkout, env=given | {"CUBEHOOK_CONSOLE_SECRET_KEY": "k" * 32},
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            assert process.stderr is not None
            lines = [process.stderr.readline()]
            while lines[-1] and f'"event": "{event}"' not in lines[-1]:
                lines.append(process.stderr.readline())
            process.terminate()
            process.wait(timeout=20)
            assert logged(lines[-1], event)["env_file"] == said, lines
    # A command that reads an env file says so too, on standard error, before its answer.
    status = run(checkout, env | {"CUBEHOOK_ENV_FILE": "var/dev.env"}, "status")
    assert status.returncode == 0, status.stderr
    assert status.stderr == "settings: the environment, and under it var/dev.env (CUBEHOOK_ENV_FILE)\n"
    assert run(checkout, env, "status").stderr == ""


def test_a_web_process_given_the_decision_keys_says_it_should_not_have_them(
    checkout: Path, redis_url: str
) -> None:
    env = production(CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_WEBHOOK_SECRETS="whsec_x", CUBEHOOK_PORT="0")
    for given, warned in (
        (env, True),
        ({k: v for k, v in env.items() if k != "CUBEHOOK_DECISION_KEYS"}, False),
    ):
        process = subprocess.Popen(
            [CUBEHOOK, "web"], cwd=checkout, env=given, stderr=subprocess.PIPE, text=True
        )
        assert process.stderr is not None
        lines = [process.stderr.readline()]
        while lines[-1] and '"event": "web.starting"' not in lines[-1]:
            lines.append(process.stderr.readline())
        lines.append(process.stderr.readline())  # the line after the start line
        process.terminate()
        process.wait(timeout=20)
        assert any('"web.holds_decision_keys"' in line for line in lines) is warned, lines
