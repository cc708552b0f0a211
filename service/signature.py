"""ComplyCube webhook signatures. Pure: bytes in, verdict out.

ComplyCube signs the raw request body: ``ComplyCube-Signature`` is the lowercase hex HMAC-SHA256 of
the body bytes under the webhook secret, with no timestamp, prefix or version
(https://docs.complycube.com/documentation/guides/webhooks; the official SDKs' EventVerifier).
So the check runs on the bytes exactly as received, before any parsing, and compares in constant
time against every configured secret (two are valid while a webhook is being rotated).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from service.errors import SignatureError

HEADER = "ComplyCube-Signature"
_HEX64 = re.compile(rb"[0-9a-f]{64}")


def sign(body: bytes, secret: bytes) -> str:
    """The signature ComplyCube sends for ``body`` under ``secret``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def well_formed(header: str | None) -> bytes:
    """The header's signature, stripped of surrounding white space, when it can be one (64 lowercase
    hex digits); else SignatureError ``missing`` or ``malformed``. Needs no body: the endpoint
    checks it before reading one."""
    if not header or not header.strip():
        raise SignatureError("missing")
    # Encode before matching: a str regex would accept non-ASCII digits, and compare_digest
    # refuses non-ASCII str. Latin-1 maps every header byte one to one.
    given = header.strip().encode("latin-1", errors="replace")
    if not _HEX64.fullmatch(given):
        raise SignatureError("malformed")
    return given


def verify(body: bytes, header: str | None, secrets: Sequence[bytes]) -> None:
    """Return when ``header`` is a valid signature of ``body`` under any one secret; raise otherwise.

    Raises SignatureError with reason ``missing``, ``malformed`` (not 64 lowercase hex digits) or
    ``mismatch``. Every secret is tried, so the time taken does not say which one matched.
    """
    if not secrets:
        raise ValueError("verify() needs at least one secret")
    given = well_formed(header)
    matched = False
    for secret in secrets:
        expected = sign(body, secret).encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError("mismatch")
