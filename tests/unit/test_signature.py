import json

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize("header", ["€" * 64, "\u0100" * 64, VECTOR_SIGNATURE[:63] + "€"])
def test_a_header_beyond_latin_1_is_malformed_not_a_crash(header: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify(VECTOR_BODY, header, [VECTOR_SECRET])
    assert caught.value.reason == "malformed"


def test_without_secrets_the_error_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^verify\(\) needs at least one secret$"):
        verify(VECTOR_BODY, VECTOR_SIGNATURE, ())


@pytest.mark.parametrize("position", [0, 1])
def test_the_matching_secret_may_be_anywhere_in_the_list(position: int) -> None:
    secrets = [b"other"]
    secrets.insert(position, VECTOR_SECRET)
    verify(VECTOR_BODY, VECTOR_SIGNATURE, secrets)
    with pytest.raises(SignatureError):
        verify(VECTOR_BODY, VECTOR_SIGNATURE, [b"other", b"another"])


@hypothesis_settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(body=st.binary(max_size=200), secret=st.binary(min_size=1, max_size=40), flip=st.integers(0, 10**6))
def test_a_signature_verifies_its_own_body_and_no_other(body: bytes, secret: bytes, flip: int) -> None:
    verify(body, sign(body, secret), [secret])
    tampered = bytearray(body or b"x")
    tampered[flip % len(tampered)] ^= 1 if body else 0  # one bit of one byte; or a byte more
    with pytest.raises(SignatureError) as caught:
        verify(bytes(tampered), sign(body, secret), [secret])
    assert caught.value.reason == "mismatch"
