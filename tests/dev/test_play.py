"""`cubehook simulate play`: a session in the simulator the settings name, never a real ComplyCube;
one line when there is none, or when no decision comes in time. (The whole way, with the decision:
tests/dev/test_quickstart.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from starlette.applications import Starlette

from cubehook_cli import main
from cubehook_dev.devredis import free_port
from tests.conftest import SimServer, serving


def play(*args: str, base_url: str, tmp_path: Path) -> Result:
    env = {
        "CUBEHOOK_COMPLYCUBE_BASE_URL": base_url,
        "CUBEHOOK_ALLOW_INSECURE_TRANSPORT": "true",
        "CUBEHOOK_DATABASE_URL": f"sqlite:///{tmp_path}/audit.db",
    }
    return CliRunner().invoke(main, ["simulate", "play", *args], env=env)


@pytest.fixture(autouse=True)
def _no_settings_of_the_developer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("CUBEHOOK_") and n != "CUBEHOOK_ENV_FILE"]:
        monkeypatch.delenv(name)


def test_without_wait_it_prints_the_session_and_how_to_see_it(sim: SimServer, tmp_path: Path) -> None:
    result = play("--preset", "rejected", "--no-wait", base_url=f"{sim.url}/v1", tmp_path=tmp_path)
    assert result.exit_code == 0, result.output
    first, last = result.output.splitlines()
    session_id = first.split()[1].rstrip(":")
    assert first == f"session {session_id}: playing; ComplyCube's webhooks follow, and it will say rejected"
    assert last.endswith(f"cubehook history {session_id}")
    assert sim.session(session_id)["id"] == session_id  # it is the simulator's own


def test_no_decision_in_time_is_one_line(sim: SimServer, tmp_path: Path) -> None:
    # Nothing processes the simulator's sessions here: no web process, no worker.
    result = play("--timeout", "0.5", base_url=f"{sim.url}/v1", tmp_path=tmp_path)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: no decision for session ")
    assert "within 0.5 s: are the workers running?" in result.output
    assert not (tmp_path / "audit.db").exists()  # waiting read the audit trail, created nothing


def test_a_real_complycube_is_never_played_in(tmp_path: Path) -> None:
    result = play(base_url="https://api.complycube.com/v1", tmp_path=tmp_path)
    assert result.exit_code == 1
    assert (
        "Error: no simulator to play in: the ComplyCube API here is https://api.complycube.com/v1."
        in result.output
    )


def test_a_simulator_that_is_not_running(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = play(base_url=f"{url}/v1", tmp_path=tmp_path)
    assert result.exit_code == 1
    assert (
        f"Error: the simulator at {url} does not answer (ConnectError): is `make run` still running?"
        in result.output
    )


def test_an_api_that_is_not_the_simulator(tmp_path: Path) -> None:
    with serving(Starlette()) as port:
        result = play(base_url=f"http://127.0.0.1:{port}/v1", tmp_path=tmp_path)
    assert result.exit_code == 1
    assert f"Error: http://127.0.0.1:{port} is not the simulator (no /_sim control API)" in result.output
