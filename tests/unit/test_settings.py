import pytest

from service.errors import ConfigError
from service.settings import Settings, load_settings


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


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CUBEHOOK_MAX_BODY_BYTES", "0"),
        ("CUBEHOOK_MAX_BODY_BYTES", "lots"),
        ("CUBEHOOK_JOB_RETRY_INTERVALS", "1,-5"),
        ("CUBEHOOK_QUEUE_NAME", "has:colon"),
        ("CUBEHOOK_LOG_FORMAT", "xml"),
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


def test_defaults() -> None:
    settings = Settings()
    assert settings.max_body_bytes == 64 * 1024
    assert settings.dedup_retention_seconds == 30 * 24 * 3600
