"""The one exception tree. Each branch says what the caller must do::

    CubehookError
    ├── ConfigError                  refuse to start: the settings cannot work
    │   └── NoAuditTrail             a command that reads the audit trail found none at the URL
    ├── RejectedRequest              answer 4xx, keep nothing (status_code on each class)
    │   ├── PayloadTooLarge          413  body over the configured limit
    │   ├── BodyTimeout              408  body not received in time (a stalled or trickling client)
    │   └── SignatureError           401  missing, malformed or wrong ComplyCube-Signature
    ├── TransientError               retry later: nothing was lost, nothing was done
    │   ├── QueueUnavailable         503  the event (or an unreadable body) could not be kept in Redis
    │   ├── UpstreamUnavailable      ComplyCube answered 429/5xx, timed out or was unreachable
    │   │   └── UpstreamRateLimited  429 beyond the in-job retries: reschedule the job, not fail it
    │   ├── UpstreamMalformed        ComplyCube answered 2xx with a body that does not parse
    │   └── ActionFailed             an action's target failed (5xx, 429, timeout, refused)
    └── PermanentError               give up: the same call will fail the same way
        ├── UpstreamRejected         ComplyCube answered 4xx (not 429): bad key, bad request...
        │   └── UpstreamNotFound     404 resource_not_found
        ├── InvalidId                an id (an event's, an API answer's) is not a ComplyCube id:
        │                            never put in a request (service.ids)
        ├── ActionRejected           an action's target refused it (4xx): dead-lettered at once
        └── ForeignJob               a job in Redis names a function or callback cubehook never queues

Outcomes that are not failures (duplicate, ignored type, a signed body that cannot be read and is
quarantined) are return values, not exceptions: a signed delivery is never refused, since a 4xx
makes ComplyCube retry and, after the 10th failed retry, disable the webhook.
"""

from __future__ import annotations


class CubehookError(Exception):
    """Base of every error cubehook raises on purpose."""


class ConfigError(CubehookError):
    """The settings cannot work; the process must not start."""


class NoAuditTrail(ConfigError):
    """The database has no audit trail (no such SQLite file, no tables, or a schema behind its
    migrations): a command that only reads it creates nothing and says what to do."""


class RejectedRequest(CubehookError):
    """The request is refused with a 4xx; the sender must not expect it to be processed."""

    status_code = 400
    code = "bad_request"
    public = "the request was refused"  # what the answer says; the exception's text is for the log


class PayloadTooLarge(RejectedRequest):
    status_code = 413
    code = "payload_too_large"
    public = "the body is over the size limit"


class BodyTimeout(RejectedRequest):
    """The client stopped sending its body (a slow or stalled client): its connection is freed."""

    status_code = 408
    code = "body_timeout"
    public = "the body did not arrive in time"


class SignatureError(RejectedRequest):
    """The reason (``missing``, ``malformed``, ``mismatch``) is for logs; it never holds the signature."""

    status_code = 401
    code = "invalid_signature"

    def __init__(self, reason: str) -> None:
        super().__init__(f"signature {reason}")
        self.reason = reason


class TransientError(CubehookError):
    """A dependency failed for now; the same request should succeed later."""


class QueueUnavailable(TransientError):
    status_code = 503
    code = "queue_unavailable"


class UpstreamError(CubehookError):
    """A call to ComplyCube failed. ``status`` is the HTTP status, or None when none came back."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UpstreamUnavailable(UpstreamError, TransientError):
    pass


class UpstreamRateLimited(UpstreamUnavailable):
    """ComplyCube's rate limit outlasted the retries a job may wait for: the job is rescheduled
    (not failed, no retry spent) ``retry_after`` seconds on when ComplyCube said so."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message, 429)
        self.retry_after = retry_after


class UpstreamMalformed(UpstreamError, TransientError):
    pass


class PermanentError(CubehookError):
    """Retrying cannot help; an operator must look."""


class UpstreamRejected(UpstreamError, PermanentError):
    pass


class UpstreamNotFound(UpstreamRejected):
    pass


class InvalidId(PermanentError, ValueError):
    """Not a ComplyCube id (service.ids): nothing was requested. Names what it is, never the value."""

    def __init__(self, what: str, shape: str) -> None:
        super().__init__(f"{what}: not a ComplyCube id ({shape}); nothing was requested")
        self.what = what


class ActionFailed(TransientError):
    """An action's target failed for now; the action is retried, then dead-lettered."""


class ActionRejected(PermanentError):
    """An action's target refused the request itself; retrying would not help."""


class ForeignJob(PermanentError):
    """A job in the queue names a function or a callback cubehook did not queue (written to Redis
    by someone else): it is never run."""
