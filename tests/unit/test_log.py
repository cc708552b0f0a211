import io
import json
import logging

import pytest
from pydantic import SecretStr

from service.log import MASK, configure_logging, get_logger, redact
from service.settings import Settings

SIGNATURE = "bc00414fa4d54277a3ed01e5ee258d9800a918a7791c7cda16d38b82f38f2150"


def test_sensitive_keys_are_masked_at_any_depth() -> None:
    event = {
        "event": "x",
        "session_id": "s1",
        "client": {"firstName": "John", "last_name": "Doe", "email": "j@d.io", "clientId": "c1"},
        "people": [{"Date-Of-Birth": "1990-01-01", "entityName": "John Doe"}],
        "webhook_secrets": ["a", "b"],
        "authorization": "live_key",
    }
    out = redact(None, "info", event)
    assert out["session_id"] == "s1"
    assert out["client"] == {"firstName": MASK, "last_name": MASK, "email": MASK, "clientId": "c1"}
    assert out["people"] == [{"Date-Of-Birth": MASK, "entityName": MASK}]
    assert out["webhook_secrets"] == MASK
    assert out["authorization"] == MASK


def test_free_text_loses_emails_digests_and_secret_values() -> None:
    out = redact(
        None,
        "info",
        {"event": f"sent to john.doe+kyc@example.co.uk with {SIGNATURE}", "key": SecretStr("s3cr3t")},
    )
    assert out["event"] == f"sent to {MASK} with {MASK}"
    assert out["key"] == MASK


def test_identity_document_fields_and_credentials_are_masked() -> None:
    document = {
        "holderDetails": {
            "surname": "Doe",
            "givenName": "Jane",
            "nationality": "GB",
            "placeOfBirth": "Leeds",
        },
        "documentNumber": "123456789",
        "passport_number": "987654321",
        "issuingCountry": "GB",
    }
    out = redact(
        None,
        "info",
        {"event": "check.read", "document": document, "POSTGRES_PASSWORD": "pw", "slack_token": "t"},
    )
    assert out["document"] == {
        "holderDetails": {"surname": MASK, "givenName": MASK, "nationality": MASK, "placeOfBirth": MASK},
        "documentNumber": MASK,
        "passport_number": MASK,
        "issuingCountry": "GB",
    }
    assert out["POSTGRES_PASSWORD"] == out["slack_token"] == MASK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("decision signed with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ok", f"decision signed with {MASK} ok"),
        (
            "POST https://hooks.slack.com/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX failed: 404",
            f"POST https://hooks.slack.com/{MASK} failed: 404",
        ),
        (
            "Error connecting to redis://:hunter2@redis.internal:6379/0.",
            f"Error connecting to redis://:{MASK}@redis.internal:6379/0.",
        ),
        (
            "rediss://default:s3cr%40t!@cache.example.com:6380/1",
            f"rediss://default:{MASK}@cache.example.com:6380/1",
        ),
        (
            "database postgresql+psycopg://cubehook:p4ss@db.internal.example.com:5432/cubehook down",
            f"database postgresql+psycopg://cubehook:{MASK}@db.internal.example.com:5432/cubehook down",
        ),
        # Nothing secret: left as it is.
        ("redis://redis.internal:6379/0", "redis://redis.internal:6379/0"),
        (
            "postgresql+psycopg://cubehook@postgres.internal:5432/cubehook",
            "postgresql+psycopg://cubehook@postgres.internal:5432/cubehook",
        ),
        ("https://example.com:8443/webhooks/complycube", "https://example.com:8443/webhooks/complycube"),
    ],
)
def test_free_text_loses_webhook_secrets_slack_urls_and_url_passwords(text: str, expected: str) -> None:
    assert redact(None, "info", {"event": text})["event"] == expected


def _capture() -> io.StringIO:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=stream)
    return stream


def test_structlog_lines_are_json_and_redacted() -> None:
    stream = _capture()
    get_logger("t").info("webhook.rejected", reason="mismatch", signature=SIGNATURE, email="a@b.cd")
    line = json.loads(stream.getvalue().strip())
    assert line["event"] == "webhook.rejected"
    assert line["signature"] == MASK
    assert SIGNATURE not in stream.getvalue()
    assert "a@b.cd" not in stream.getvalue()


def test_standard_library_records_go_through_the_same_redaction() -> None:
    stream = _capture()
    logging.getLogger("rq.worker").warning("job for jane@example.com failed: %s", SIGNATURE)
    logging.getLogger("rq.worker").error("Error 111 connecting to redis://:hunter2@redis.internal:6379/0")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["logger"] == "rq.worker"
    assert "jane@example.com" not in first["event"]
    assert SIGNATURE not in first["event"]
    assert "hunter2" not in second["event"]
    assert "redis.internal:6379" in second["event"]


def test_exception_text_is_redacted() -> None:
    stream = _capture()
    try:
        raise RuntimeError(f"boom {SIGNATURE}")
    except RuntimeError:
        get_logger("t").exception("job.failed")
    assert "boom" in stream.getvalue()
    assert SIGNATURE not in stream.getvalue()
