from pathlib import Path

import pytest

from service.errors import ConfigError
from service.settings import Settings, env_file_read, env_file_values, environment, load_settings


def test_secrets_are_comma_separated_and_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUBEHOOK_WEBHOOK_SECRETS", " first , second,,")
    settings = load_settings()
    assert settings.secret_keys() == (b"first", b"second")
    assert "first" not in repr(settings)


def test_no_secret_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBEHOOK_WEBHOOK_SECRETS", raising=False)
    with pytest.raises(ConfigError, match="CUBEHOOK_WEBHOOK_SECRETS"):
        load_settings().secret_keys()
    monkeypatch.setenv("CUBEHOOK_WEBHOOK_SECRETS", " , ")
    with pytest.raises(ConfigError):
        load_settings().secret_keys()


def test_retry_intervals_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUBEHOOK_JOB_RETRY_INTERVALS", "1, 2,30")
    assert load_settings().job_retry_intervals == (1, 2, 30)


def test_callable_packages_are_comma_separated_and_none_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().callable_packages == ()
    monkeypatch.setenv("CUBEHOOK_CALLABLE_PACKAGES", " mycompany.kyc, tests.jobs ,")
    assert load_settings().callable_packages == ("mycompany.kyc", "tests.jobs")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CUBEHOOK_MAX_BODY_BYTES", "0"),
        ("CUBEHOOK_MAX_BODY_BYTES", "lots"),
        ("CUBEHOOK_JOB_RETRY_INTERVALS", "1,-5"),
        ("CUBEHOOK_QUEUE_NAME", "has:colon"),
        ("CUBEHOOK_LOG_FORMAT", "xml"),
        ("CUBEHOOK_QUARANTINE_MAX_ITEMS", "0"),
        ("CUBEHOOK_QUARANTINE_MAX_BYTES", "1000"),  # under the body limit: a body might not fit
        ("CUBEHOOK_CALLABLE_PACKAGES", "mycompany.kyc, ../evil"),
        ("CUBEHOOK_CALLABLE_PACKAGES", "os:system"),
    ],
)
def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert name in str(caught.value)


def test_invalid_settings_never_echo_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUBEHOOK_PORT", "not-a-port-secret-looking-value")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "not-a-port-secret-looking-value" not in str(caught.value)


def test_complycube_must_be_reached_over_https_unless_development_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUBEHOOK_COMPLYCUBE_BASE_URL", "http://api.complycube.example/v1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "CUBEHOOK_COMPLYCUBE_BASE_URL: Value error, not an https:// URL" in str(caught.value)
    assert "CUBEHOOK_ALLOW_INSECURE_TRANSPORT=true" in str(caught.value)
    monkeypatch.setenv("CUBEHOOK_ALLOW_INSECURE_TRANSPORT", "true")
    assert load_settings().complycube_base_url == "http://api.complycube.example/v1"


def test_defaults() -> None:
    settings = Settings()
    assert settings.max_body_bytes == 64 * 1024
    assert settings.dedup_retention_seconds == 30 * 24 * 3600
    assert (settings.quarantine_max_items, settings.quarantine_max_bytes) == (10_000, 64 * 1024 * 1024)
    assert settings.quarantine_retention_seconds == 30 * 24 * 3600


@pytest.mark.parametrize(
    ("key", "rate"),
    [("live_abc", 10.0), ("test_abc", 5.0), ("sk_other", 5.0), (None, 5.0)],
)
def test_the_rate_limit_defaults_to_what_complycube_allows_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str | None, rate: float
) -> None:
    monkeypatch.delenv("CUBEHOOK_COMPLYCUBE_RATE_LIMIT", raising=False)
    if key is None:
        monkeypatch.delenv("CUBEHOOK_COMPLYCUBE_API_KEY", raising=False)
    else:
        monkeypatch.setenv("CUBEHOOK_COMPLYCUBE_API_KEY", key)
    assert load_settings().complycube_rate() == rate
    monkeypatch.setenv("CUBEHOOK_COMPLYCUBE_RATE_LIMIT", "")  # as deploy/env.example leaves it
    assert load_settings().complycube_rate() == rate


@pytest.mark.parametrize(("value", "rate"), [("0", 0.0), ("2.5", 2.5), ("20", 20.0)])
def test_a_rate_limit_set_wins_over_the_key(monkeypatch: pytest.MonkeyPatch, value: str, rate: float) -> None:
    monkeypatch.setenv("CUBEHOOK_COMPLYCUBE_API_KEY", "live_abc")
    monkeypatch.setenv("CUBEHOOK_COMPLYCUBE_RATE_LIMIT", value)
    assert load_settings().complycube_rate() == rate


def test_the_dev_env_file_is_read_only_when_named_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CUBEHOOK_ENV_FILE")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUBEHOOK_REDIS_URL", raising=False)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev.env").write_text(
        "# written by cubehook dev\nCUBEHOOK_REDIS_URL='redis://127.0.0.1:7000/0'\n"
        "CUBEHOOK_PORT='8123'\nDEV_DECISION_WEBHOOK_SECRET='whsec_x'\n"
    )
    monkeypatch.setenv("CUBEHOOK_PORT", "8200")
    # Unnamed, the file of the folder a command starts in is not read (`cubehook dev` names it).
    assert load_settings().redis_url == "redis://127.0.0.1:6379/0"
    assert env_file_read() is None
    assert "DEV_DECISION_WEBHOOK_SECRET" not in environment()
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", "var/dev.env")
    loaded = load_settings()
    assert env_file_read() == Path("var/dev.env")
    assert loaded.redis_url == "redis://127.0.0.1:7000/0"  # from the file
    assert loaded.port == 8200  # the environment wins
    assert environment()["DEV_DECISION_WEBHOOK_SECRET"] == "whsec_x"  # for the rules' secrets
    assert Settings().redis_url == "redis://127.0.0.1:6379/0"  # only the entry points read the file


@pytest.mark.parametrize("marker", ["CUBEHOOK_ENV='development'", "DEV_REDIS_EMBEDDED='true'"])
def test_a_production_process_refuses_an_env_file_written_for_development(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, marker: str
) -> None:
    (tmp_path / "dev.env").write_text(f"CUBEHOOK_REDIS_URL='redis://127.0.0.1:7000/0'\n{marker}\n")
    (tmp_path / "prod.env").write_text("CUBEHOOK_REDIS_URL='redis://redis.internal:6379/0'\n")
    monkeypatch.setenv("CUBEHOOK_ENV", "production")
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", str(tmp_path / "dev.env"))
    with pytest.raises(
        ConfigError, match=r"CUBEHOOK_ENV is production, but CUBEHOOK_ENV_FILE names .*dev\.env"
    ):
        load_settings()
    with pytest.raises(ConfigError, match="a production process never reads it"):
        environment()
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", str(tmp_path / "prod.env"))  # a file of its own: read
    assert load_settings().redis_url == "redis://redis.internal:6379/0"
    monkeypatch.setenv("CUBEHOOK_ENV", "development")
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", str(tmp_path / "dev.env"))
    assert load_settings().redis_url == "redis://127.0.0.1:7000/0"


def test_a_named_env_file_that_is_not_there_or_an_unknown_env_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(ConfigError, match=r"CUBEHOOK_ENV_FILE names .*missing\.env, which is not a file"):
        load_settings()
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", "")
    monkeypatch.setenv("CUBEHOOK_ENV", "prod")
    with pytest.raises(ConfigError, match="CUBEHOOK_ENV is 'prod': production, development, or unset"):
        load_settings()


def test_cubehook_env_file_names_another_file_or_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUBEHOOK_REDIS_URL", raising=False)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dev.env").write_text("CUBEHOOK_REDIS_URL='redis://127.0.0.1:7000/0'\n")
    (tmp_path / "other.env").write_text("CUBEHOOK_REDIS_URL='redis://127.0.0.1:7001/0'\n")
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", "other.env")
    assert load_settings().redis_url == "redis://127.0.0.1:7001/0"
    monkeypatch.setenv("CUBEHOOK_ENV_FILE", "")
    assert load_settings().redis_url == "redis://127.0.0.1:6379/0"
    assert env_file_values() == {}
