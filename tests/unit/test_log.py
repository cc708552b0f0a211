import io
import json
import logging

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
    line = json.loads(stream.getvalue().strip())
    assert line["logger"] == "rq.worker"
    assert "jane@example.com" not in line["event"]
    assert SIGNATURE not in line["event"]


def test_exception_text_is_redacted() -> None:
    stream = _capture()
    try:
        raise RuntimeError(f"boom {SIGNATURE}")
    except RuntimeError:
        get_logger("t").exception("job.failed")
    assert "boom" in stream.getvalue()
    assert SIGNATURE not in stream.getvalue()
