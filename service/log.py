"""structlog, configured once per process, with redaction done by a processor.

Secrets, signatures and customers' personal data never reach a log line, whatever a call site
passes: the ``redact`` processor masks values under sensitive keys (at any depth), SecretStr
values, and in free text anything that looks like an e-mail address, an HMAC-SHA256 hex digest, a
``whsec_`` secret, a Slack webhook URL's secret path, or the password in a URL
(``redis://user:password@...``, ``postgresql+psycopg://user:password@...``). It runs last before
rendering, after exceptions are formatted, and on the standard library's records too (uvicorn,
RQ), so every line leaves through it.

It runs for every line, the intake's included: each pattern is looked for only after a cheap
substring test, and a key's verdict is remembered.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Mapping
from typing import TextIO

import structlog
from pydantic import SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

from service.settings import LogFormat, Settings

MASK = "[redacted]"

# Compared after lower-casing and dropping "_" and "-", so firstName, first_name and First-Name match.
SENSITIVE_KEYS = frozenset(
    {
        # secrets and credentials
        "secret", "secrets", "webhooksecret", "webhooksecrets", "signature", "complycubesignature",
        "apikey", "complycubeapikey", "authorization", "password", "token", "idempotencykey",
        # customers' personal data (ComplyCube client, check and document fields)
        "name", "entityname", "fullname", "firstname", "middlename", "lastname", "maidenname",
        "surname", "givenname", "givennames", "familyname",
        "email", "mobile", "telephone", "phone", "dob", "dateofbirth", "birthdate", "placeofbirth",
        "nationality", "documentnumber", "passportnumber", "personalnumber",
        "address", "line", "line1", "line2", "postalcode", "ssn", "nationalidentitynumber",
        "extracteddata", "persondetails",
    }
)  # fmt: skip
# Any key ending so is a credential too (POSTGRES_PASSWORD, slack_token, client_secret, ...).
SENSITIVE_SUFFIXES = ("password", "secret", "secrets", "token", "apikey")
_KEYS_REMEMBERED = 4096  # a bound: keys may come from data that is logged

# Not right after "//": that is a URL's user name (redis://cubehook@redis.internal:6379).
_EMAIL = re.compile(r"(?<![\w.+/-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HEX_DIGEST = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=_-]*")
_SLACK_HOOK = re.compile(r"(hooks\.slack\.com/)[^\s\"'<>]+")
# scheme://[user]:password@ : the password alone is masked, the user and host stay readable.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:)[^\s@/]+@")

_verdicts: dict[str, bool] = {}


def _sensitive(key: object) -> bool:
    if not isinstance(key, str):
        return False
    verdict = _verdicts.get(key)
    if verdict is None:
        normal = key.lower().replace("_", "").replace("-", "")
        verdict = normal in SENSITIVE_KEYS or normal.endswith(SENSITIVE_SUFFIXES)
        if len(_verdicts) < _KEYS_REMEMBERED:
            _verdicts[key] = verdict
    return verdict


def scrub_text(value: str) -> str:
    """Free text with what looks like a secret or an e-mail address masked (also for messages
    outside the log, such as the CLI's, that show a URL)."""
    # The cheap tests first: most values are short identifiers with none of these.
    if "@" in value:
        if "://" in value:  # before the e-mail pattern, which would take "password@host.tld"
            value = _URL_PASSWORD.sub(rf"\1{MASK}@", value)
        value = _EMAIL.sub(MASK, value)
    if "whsec_" in value:
        value = _WHSEC.sub(MASK, value)
    if "hooks.slack.com/" in value:
        value = _SLACK_HOOK.sub(rf"\1{MASK}", value)
    return _HEX_DIGEST.sub(MASK, value) if len(value) >= 64 else value


def _scrub(value: object) -> object:
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {k: MASK if _sensitive(k) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask sensitive keys and scrub free text, at any depth."""
    return {k: MASK if _sensitive(k) else _scrub(v) for k, v in event_dict.items()}


def _renderer(fmt: LogFormat, stream: TextIO) -> Processor:
    console = fmt is LogFormat.CONSOLE or (fmt is LogFormat.AUTO and stream.isatty())
    if console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer()


class RQChatter(logging.Filter):
    """RQ's per-job INFO lines, demoted to DEBUG (and so left out unless DEBUG is on)."""

    TEMPLATES = (
        "Worker %s: %s: %s (%s)",  # taken: its queue, description, id
        "Worker %s: %s: %s",
        "Successfully completed",
        "result is kept for",
        "result discarded immediately",
        "cleaning registries",
        "cleaning group registries",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and any(t in str(record.msg) for t in self.TEMPLATES):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


class CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is when a line is written, not when logging was configured: a
    harness that swaps it (pytest's capture, per test) would otherwise leave the loggers writing
    to a stream it has closed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


STDERR: TextIO = CurrentStderr()  # type: ignore[assignment]  # a TextIOBase: writes, flushes, isatty


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's logging to write through the same chain."""
    out = stream if stream is not None else STDERR
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer = _renderer(settings.log_format, out)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # A captured stream (tests) may be swapped between runs; caching would pin the first one.
        cache_logger_on_first_use=stream is None,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn and RQ install handlers of their own; route them through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rq", "rq.worker"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # RQ's lines for every job (taken, done, "result is kept for 600 seconds", registries cleaned)
    # say what cubehook's own summary line says: DEBUG, so that INFO reads as a story.
    logging.getLogger("rq.worker").filters[:] = [RQChatter()]
    # One INFO line per HTTP request made, or per migration step checked, is noise; their
    # failures still show as warnings.
    for name in ("httpx2", "httpcore2", "alembic"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
