"""A command that fails says so in one line, with what to do; `--debug` shows the traceback. The
real command in its own process, against real peers: a closed port, a real Redis, SQLite and
PostgreSQL, the ComplyCube simulator."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cubehook_dev.devredis import free_port
from tests.conftest import ROOT, SECRET, SIM_API_KEY, SimServer
from tests.e2e.conftest import CUBEHOOK, cubehook_env

pytestmark = pytest.mark.e2e


def cubehook(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return cubehook_in(None, *args, **env)


def cubehook_in(folder: Path | None, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CUBEHOOK, *args], env=cubehook_env(**env), cwd=folder, capture_output=True, text=True, timeout=60
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error a command printed: exit status 1, one line on stderr, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: ")
    return line.removeprefix("Error: ")


@pytest.fixture
def closed_port() -> int:
    return free_port()


def test_redis_unreachable_is_one_line_and_debug_shows_the_traceback(closed_port: int) -> None:
    url = f"redis://127.0.0.1:{closed_port}/0"
    for command in (["status"], ["dlq", "list"], ["quarantine", "list"]):
        said = one_line(cubehook(*command, CUBEHOOK_REDIS_URL=url))
        assert said.startswith(f"cannot reach Redis at {url} (")
        assert said.endswith("is it running? Set CUBEHOOK_REDIS_URL to it")
    debug = cubehook("--debug", "status", CUBEHOOK_REDIS_URL=url)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "redis.exceptions.ConnectionError" in debug.stderr


def test_the_password_in_a_redis_url_is_not_shown(closed_port: int) -> None:
    said = one_line(
        cubehook("status", CUBEHOOK_REDIS_URL=f"redis://cubehook:s3cret@127.0.0.1:{closed_port}/0")
    )
    assert "s3cret" not in said
    assert f"redis://cubehook:[redacted]@127.0.0.1:{closed_port}/0" in said


def test_the_embedded_redis_of_a_stopped_dev_run_is_named_so(tmp_path: Path, closed_port: int) -> None:
    url = f"redis://127.0.0.1:{closed_port}/0"
    (tmp_path / "dev.env").write_text(f"CUBEHOOK_REDIS_URL='{url}'\nDEV_REDIS_EMBEDDED='true'\n")
    result = cubehook("status", CUBEHOOK_ENV_FILE=str(tmp_path / "dev.env"))
    told, error = result.stderr.splitlines()  # the env file it read, then the error
    assert told == f"settings: the environment, and under it {tmp_path / 'dev.env'} (CUBEHOOK_ENV_FILE)"
    said = one_line(subprocess.CompletedProcess(result.args, result.returncode, result.stdout, error))
    assert said.startswith(f"Redis is not running at {url}: it was the embedded one of `cubehook dev`")
    assert "`cubehook history` reads the audit trail without it" in said


@pytest.mark.parametrize("state", ["missing", "empty file"])
def test_history_without_an_audit_trail_creates_nothing(tmp_path: Path, state: str) -> None:
    db = tmp_path / "audit.db"
    if state == "empty file":
        db.touch()
    url = f"sqlite:///{db}"
    said = one_line(cubehook("history", "sess1", CUBEHOOK_DATABASE_URL=url))
    assert said == f"no audit trail at {url}; run `cubehook db upgrade` or set CUBEHOOK_DATABASE_URL"
    assert db.exists() == (state == "empty file")
    if state == "empty file":
        assert db.stat().st_size == 0


def test_a_postgresql_database_that_is_not_there(closed_port: int) -> None:
    url = f"postgresql+psycopg://cubehook:pw@127.0.0.1:{closed_port}/cubehook"
    said = one_line(cubehook("history", "sess1", CUBEHOOK_DATABASE_URL=url))
    assert said.startswith("cannot use the database at postgresql+psycopg://cubehook:[redacted]@127.0.0.1:")
    assert said.endswith("set CUBEHOOK_DATABASE_URL to a reachable one")


def test_read_only_commands_need_no_complycube_key_nor_rules_secrets(redis_url: str, tmp_path: Path) -> None:
    # A deployment's rules file, whose secrets only the workers have; no API key at all.
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[action.a]\ntype = "webhook"\nurl = "https://crm.example/h"\nsecret_env = "CRM_SECRET"\n'
    )
    url = f"sqlite:///{tmp_path}/audit.db"
    assert cubehook("db", "upgrade", CUBEHOOK_DATABASE_URL=url).returncode == 0
    env = {"CUBEHOOK_REDIS_URL": redis_url, "CUBEHOOK_DATABASE_URL": url, "CUBEHOOK_RULES_FILE": str(rules)}
    for command, said in (
        (["status"], "queued:"),
        (["dlq", "list"], "the dead-letter queue is empty"),
        (["quarantine", "list"], "the quarantine is empty"),
    ):
        result = cubehook(*command, **env)
        assert result.returncode == 0, result.stderr
        assert said in result.stdout
    assert one_line(cubehook("dlq", "show", "nope", **env)) == "no failed job nope"
    assert one_line(cubehook("quarantine", "show", "q-nope", **env)) == "no quarantined delivery q-nope"
    assert one_line(cubehook("history", "sess1", **env)).startswith("nothing on record for session sess1")


def test_status_before_anything_was_processed_says_so(redis_url: str, tmp_path: Path) -> None:
    result = cubehook(
        "status", CUBEHOOK_REDIS_URL=redis_url, CUBEHOOK_DATABASE_URL=f"sqlite:///{tmp_path}/a.db"
    )
    assert result.returncode == 0, result.stderr
    assert "dead_actions:           unknown (no audit trail yet)" in result.stdout
    assert not (tmp_path / "a.db").exists()


def _resync_env(redis_url: str, tmp_path: Path, base_url: str, key: str = SIM_API_KEY) -> dict[str, str]:
    return {
        "CUBEHOOK_REDIS_URL": redis_url, "CUBEHOOK_DATABASE_URL": f"sqlite:///{tmp_path}/audit.db",
        "CUBEHOOK_COMPLYCUBE_BASE_URL": base_url, "CUBEHOOK_COMPLYCUBE_API_KEY": key,
        "CUBEHOOK_COMPLYCUBE_MAX_ATTEMPTS": "1", "CUBEHOOK_COMPLYCUBE_RATE_LIMIT": "0",
    }  # fmt: skip


def test_resync_when_complycube_is_unreachable(redis_url: str, tmp_path: Path, closed_port: int) -> None:
    base = f"http://127.0.0.1:{closed_port}/v1"
    said = one_line(cubehook("resync", "sess1", **_resync_env(redis_url, tmp_path, base)))
    assert said.startswith(f"cannot reach ComplyCube at {base} (GET workflowSessions/sess1: ConnectError)")
    assert said.endswith("check CUBEHOOK_COMPLYCUBE_BASE_URL and the network")


def test_resync_with_a_key_complycube_refuses(redis_url: str, tmp_path: Path, sim: SimServer) -> None:
    env = _resync_env(redis_url, tmp_path, f"{sim.url}/v1", key="test_wrong_key")
    said = one_line(cubehook("resync", "sess1", **env))
    assert said.startswith(
        f"ComplyCube at {sim.url}/v1 refused the API key (401): check CUBEHOOK_COMPLYCUBE_API_KEY"
    )
    assert "test_wrong_key" not in said


def test_resync_of_a_session_complycube_does_not_know(redis_url: str, tmp_path: Path, sim: SimServer) -> None:
    said = one_line(cubehook("resync", "sess1", **_resync_env(redis_url, tmp_path, f"{sim.url}/v1")))
    assert said.startswith("ComplyCube knows no session sess1 (404): check the id")


def test_resync_of_a_known_session_still_works(redis_url: str, tmp_path: Path, sim: SimServer) -> None:
    sid = sim.create(preset="rejected", mode="settled")["sessionId"]
    result = cubehook("resync", sid, **_resync_env(redis_url, tmp_path, f"{sim.url}/v1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"session {sid}: decided rejected"


def test_web_on_a_taken_port_names_the_setting(redis_url: str, taken_port: int) -> None:
    env = {"CUBEHOOK_REDIS_URL": redis_url, "CUBEHOOK_WEBHOOK_SECRETS": SECRET}
    said = one_line(cubehook("web", CUBEHOOK_PORT=str(taken_port), **env))
    assert said == (
        f"port {taken_port} on 127.0.0.1 is taken by another process: stop what holds it, "
        "or set CUBEHOOK_PORT to a free port"
    )
    admin = one_line(
        cubehook("web", CUBEHOOK_PORT=str(free_port()), CUBEHOOK_ADMIN_PORT=str(taken_port), **env)
    )
    assert admin.endswith("or set CUBEHOOK_ADMIN_PORT to a free port")


def test_dev_on_a_taken_port_names_the_setting_and_starts_nothing(tmp_path: Path, taken_port: int) -> None:
    said = one_line(
        cubehook_in(tmp_path, "dev", CUBEHOOK_PORT=str(taken_port), CUBEHOOK_ENV_FILE="var/dev.env")
    )
    assert said.startswith(f"port {taken_port} on 127.0.0.1 is taken by another process")
    assert said.endswith("set CUBEHOOK_PORT to a free port")
    assert not (tmp_path / "var").exists()  # nothing started, nothing written


def test_a_reader_that_stops_early_gets_no_error(tmp_path: Path) -> None:
    """`cubehook ... | head -1`: the pipe closes before the command has written all it had; it
    stops quietly, as a Unix tool does, instead of an 'unexpected BrokenPipeError'."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first line
    try:
        result = subprocess.run(
            [CUBEHOOK, "rules", "check", str(ROOT / "deploy" / "rules.example.toml")],
            env=cubehook_env(), stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write)
    assert result.returncode == 1
    assert result.stderr.startswith("warning: ")  # the rules' unset secrets: said before the first write
    for noise in ("Error", "Traceback", "Exception ignored", "BrokenPipe"):
        assert noise not in result.stderr


def test_resync_of_an_id_that_is_not_a_complycube_id_requests_nothing(
    redis_url: str, tmp_path: Path, closed_port: int
) -> None:
    env = _resync_env(redis_url, tmp_path, f"http://127.0.0.1:{closed_port}/v1")  # a request: "cannot reach"
    result = cubehook("resync", "../clients/cl1", **env)
    assert result.returncode == 2, result.stderr
    assert "Invalid value for SESSION_ID: not a ComplyCube id (1-64 letters, digits, _ or -)" in result.stderr
    assert "cannot reach" not in result.stderr
