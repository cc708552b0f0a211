import json

import pytest

from service.errors import SignatureError
from service.signature import sign, verify

# From ComplyCube's PHP SDK unit test (see shared/complycube-api.md).
VECTOR_SECRET = b"a_webhook_signature"
VECTOR_BODY = b'{"id":"value"}'
VECTOR_SIGNATURE = "bc00414fa4d54277a3ed01e5ee258d9800a918a7791c7cda16d38b82f38f2150"


def test_sign_matches_complycube_test_vector() -> None:
    assert sign(VECTOR_BODY, VECTOR_SECRET) == VECTOR_SIGNATURE


def test_verify_accepts_the_test_vector() -> None:
    verify(VECTOR_BODY, VECTOR_SIGNATURE, [VECTOR_SECRET])


def test_any_one_of_several_secrets_is_enough() -> None:
    old, new = b"old-secret", b"new-secret"
    verify(VECTOR_BODY, sign(VECTOR_BODY, old), [old, new])
    verify(VECTOR_BODY, sign(VECTOR_BODY, new), [old, new])
    with pytest.raises(SignatureError) as caught:
        verify(VECTOR_BODY, sign(VECTOR_BODY, b"third"), [old, new])
    assert caught.value.reason == "mismatch"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        (VECTOR_SIGNATURE.upper(), "malformed"),
        (VECTOR_SIGNATURE[:-1], "malformed"),
        (VECTOR_SIGNATURE + "0", "malformed"),
        ("z" * 64, "malformed"),
        ("sha256=" + VECTOR_SIGNATURE, "malformed"),
        ("é" * 64, "malformed"),
        ("   ", "missing"),
        (VECTOR_SIGNATURE[:32] + " " + VECTOR_SIGNATURE[32:], "malformed"),
        ("0" * 64, "mismatch"),
    ],
)
def test_bad_headers_are_refused_with_their_reason(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(VECTOR_BODY, header, [VECTOR_SECRET])
    assert caught.value.reason == reason
    assert VECTOR_SIGNATURE not in str(caught.value)


def test_signature_is_over_raw_bytes_not_reserialised_json() -> None:
    body = b'{"id": "value",  "type":"x"}'
    header = sign(body, VECTOR_SECRET)
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert reserialised != body
    with pytest.raises(SignatureError):
        verify(reserialised, header, [VECTOR_SECRET])


def test_one_changed_byte_is_a_mismatch() -> None:
    tampered = VECTOR_BODY.replace(b"value", b"valuf")
    with pytest.raises(SignatureError):
        verify(tampered, VECTOR_SIGNATURE, [VECTOR_SECRET])


def test_verify_refuses_to_run_without_secrets() -> None:
    with pytest.raises(ValueError, match="secret"):
        verify(VECTOR_BODY, VECTOR_SIGNATURE, [])


@pytest.mark.parametrize(
    "padded", [" " + VECTOR_SIGNATURE, VECTOR_SIGNATURE + "\t", f"  {VECTOR_SIGNATURE} \r"]
)
def test_white_space_around_the_signature_is_stripped(padded: str) -> None:
    verify(VECTOR_BODY, padded, [VECTOR_SECRET])  # does not raise
