"""Standard Webhooks signatures (https://www.standardwebhooks.com). Pure.

``webhook-signature`` is ``v1,`` + base64 HMAC-SHA256 of ``{webhook-id}.{webhook-timestamp}.{body}``
under the secret: the base64 after ``whsec_``; under several secrets (a rotation), every signature,
space-separated, and a receiver accepts the message when any one verifies. Used to sign cubehook's
decision webhooks and, by the development sink, to check them as a receiver would.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ValueError when it is not one."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise ValueError("not a whsec_<base64> secret") from None


def sign_message(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` of a Standard Webhooks message (not ComplyCube's: service.signature)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


def secrets_in(value: str) -> list[str]:
    """The secrets a variable holds: one, or several comma-separated (a rotation), as
    CUBEHOOK_WEBHOOK_SECRETS holds the webhook's."""
    return [part.strip() for part in value.split(",") if part.strip()]


def sign_with_each(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` under every secret, space-separated, as the spec writes several."""
    return " ".join(sign_message(secret, message_id, timestamp, body) for secret in secrets)


def verify(secret: str, message_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """True when any ``v1,`` signature in the (space-separated) header matches, in constant time."""
    if not timestamp.isdigit():
        return False
    expected = sign_message(secret, message_id, int(timestamp), body).encode()
    return any(hmac.compare_digest(expected, given.encode()) for given in header.split())
