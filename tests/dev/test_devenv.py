"""What `cubehook dev` records in var/dev.env, and that a command told to read it reads it back."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from dotenv import dotenv_values

from cubehook_dev import devenv
from service.errors import ConfigError
from service.settings import environment, load_settings
from workers.judging.rules import load_rules


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout's folder, with none of the developer's settings in the environment."""
    for name in [n for n in os.environ if n.startswith("CUBEHOOK_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(
    environ: dict[str, str], redis: str = "redis://127.0.0.1:7000/0", embedded: bool = True
) -> devenv.DevSystem:
    system = devenv.plan(environ)
    devenv.use_redis(system, redis, embedded)
    devenv.write(system)
    return system


def test_the_settings_of_the_run_are_what_commands_told_to_read_them_read(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = run({})
    assert system.env_file == Path("var/dev.env")
    assert (folder / "var" / "dev.env").stat().st_mode & 0o777 == 0o600
    # Its processes are told where the file is, wherever they start.
    assert system.env["CUBEHOOK_ENV_FILE"] == str(folder.resolve() / "var" / "dev.env")
    assert dotenv_values(folder / "var" / "dev.env")["CUBEHOOK_ENV"] == "development"
    assert load_settings().port == 8000  # a command not told to read it does not
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", "var/dev.env")
    loaded = load_settings()  # what `cubehook status` builds, told to read it
    assert loaded.redis_url == "redis://127.0.0.1:7000/0"
    assert loaded.database_url == f"sqlite:///{folder}/var/dev-audit.db"
    assert [s.get_secret_value() for s in loaded.webhook_secrets] == [system.generated_secret]
    assert loaded.complycube_base_url == f"{system.simulator_url}/v1"
    assert (loaded.port, loaded.admin_port) == (system.port, system.admin_port)
    # The rules of the run validate with the secrets the file holds, as `cubehook rules check --strict`.
    assert loaded.rules_file == folder / "var" / "dev-rules.toml"
    tomllib.loads(loaded.rules_file.read_text())
    rules = load_rules(loaded.rules_file, environment(), loaded.allow_insecure_transport)
    assert rules.unset == ()
    assert dotenv_values(folder / "var" / "dev.env")["DEV_REDIS_EMBEDDED"] == "true"


def test_what_the_user_gave_is_kept_but_never_a_secret(folder: Path) -> None:
    given = {
        "CUBEHOOK_WEBHOOK_SECRETS": "whsec_given",
        "CUBEHOOK_DATABASE_URL": "postgresql+psycopg://cubehook:pw@db/cubehook",
        "CUBEHOOK_PORT": "8123",
    }
    system = run(given, redis="redis://user:redispw@127.0.0.1:7000/0", embedded=False)
    assert system.generated_secret is None
    assert system.env["CUBEHOOK_WEBHOOK_SECRETS"] == "whsec_given"  # the processes have it...
    recorded = (folder / "var" / "dev.env").read_text()
    for secret in ("whsec_given", "pw@", "redispw"):
        assert secret not in recorded  # ...the file does not: it stays in the user's environment
    values = dotenv_values(folder / "var" / "dev.env")
    assert values["CUBEHOOK_PORT"] == "8123"
    assert "CUBEHOOK_REDIS_URL" not in values
    assert "DEV_REDIS_EMBEDDED" not in values


def test_a_redis_given_without_a_password_is_recorded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run({"CUBEHOOK_REDIS_URL": "redis://127.0.0.1:6390/0"}, redis="redis://127.0.0.1:6390/0", embedded=False)
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", "var/dev.env")
    assert load_settings().redis_url == "redis://127.0.0.1:6390/0"


def test_an_empty_cubehook_env_file_writes_none(folder: Path) -> None:
    system = run({"CUBEHOOK_ENV_FILE": ""})
    assert system.env_file is None
    assert not (folder / "var" / "dev.env").exists()
    assert (folder / "var" / "dev-rules.toml").exists()  # the run's processes still need its rules


def test_a_rules_file_the_user_gave_is_theirs(folder: Path) -> None:
    mine = folder / "mine.toml"
    mine.write_text("")
    system = run({"CUBEHOOK_RULES_FILE": str(mine)})
    assert system.env["CUBEHOOK_RULES_FILE"] == str(mine)
    assert not (folder / "var" / "dev-rules.toml").exists()
    assert mine.read_text() == ""


def test_a_port_that_is_not_a_number_is_one_line(folder: Path) -> None:
    with pytest.raises(ConfigError, match="CUBEHOOK_PORT is not a port number: 'http'"):
        devenv.plan({"CUBEHOOK_PORT": "http"})
