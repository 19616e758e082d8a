"""Signed webhooks (spec §13): HS256 tokens the official SDK verifies, bound to the body by payload_hash."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import jwt
import pytest
import vonage_jwt
from hypothesis import given
from hypothesis import strategies as st

from tidings.auth.webhook_signing import WebhookSigner, payload_hash, verify_webhook

SECRET = "sig-" + "k" * 60
OTHER_SECRET = "sig-" + "q" * 60
API_KEY = "abcd1234"
BODY = json.dumps({"message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "status": "delivered"}).encode()


def claims_of(token: str, secret: str = SECRET) -> dict[str, object]:
    return jwt.decode(token, secret, algorithms=["HS256"])


def test_the_official_sdk_verifies_the_token() -> None:
    token = WebhookSigner(SECRET).sign(BODY, api_key=API_KEY)
    assert vonage_jwt.verify_signature(token, SECRET) is True


def test_the_official_sdk_refuses_a_token_signed_with_another_secret() -> None:
    token = WebhookSigner(OTHER_SECRET).sign(BODY, api_key=API_KEY)
    assert vonage_jwt.verify_signature(token, SECRET) is False


def test_the_header_is_hs256_jwt() -> None:
    header = jwt.get_unverified_header(WebhookSigner(SECRET).sign(BODY, api_key=API_KEY))
    assert header["alg"] == "HS256"
    assert header["typ"] == "JWT"


def test_claims_bind_the_token_to_the_body_and_the_account() -> None:
    before = int(time.time())
    claims = claims_of(WebhookSigner(SECRET).sign(BODY, api_key=API_KEY))
    after = int(time.time())
    assert claims["payload_hash"] == hashlib.sha256(BODY).hexdigest()
    assert claims["iss"] == "Vonage"
    assert claims["api_key"] == API_KEY
    assert isinstance(claims["iat"], int)
    assert before <= claims["iat"] <= after
    assert uuid.UUID(str(claims["jti"])).version == 4
    assert "application_id" not in claims


def test_application_id_is_a_claim_when_given() -> None:
    claims = claims_of(WebhookSigner(SECRET).sign(BODY, api_key=API_KEY, application_id="app-1"))
    assert claims["application_id"] == "app-1"


def test_iat_comes_from_the_given_clock() -> None:
    claims = claims_of(WebhookSigner(SECRET).sign(BODY, api_key=API_KEY, now=1_700_000_000.9))
    assert claims["iat"] == 1_700_000_000


def test_every_attempt_gets_a_fresh_jti() -> None:
    tokens = [WebhookSigner(SECRET).sign(BODY, api_key=API_KEY) for _ in range(50)]
    jtis = {claims_of(token)["jti"] for token in tokens}
    assert len(jtis) == 50


@given(
    body=st.binary(max_size=2000),
    api_key=st.text(min_size=1, max_size=20),
    application_id=st.one_of(st.none(), st.text(min_size=1, max_size=40)),
)
def test_the_token_is_the_one_pyjwt_would_make(body: bytes, api_key: str, application_id: str | None) -> None:
    """The signer writes tokens itself (to check its key once, not per token): byte for byte
    what jwt.encode makes of the same claims, non-ASCII ones included."""
    token = WebhookSigner(SECRET).sign(body, api_key=api_key, application_id=application_id)
    assert token == jwt.encode(claims_of(token), SECRET, algorithm="HS256")


_PRINTABLE_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)


@given(
    body=st.binary(max_size=200),
    api_key=_PRINTABLE_ASCII,
    application_id=st.one_of(st.none(), _PRINTABLE_ASCII),
)
def test_claims_in_printable_ascii_are_the_bytes_pyjwt_would_write(
    body: bytes, api_key: str, application_id: str | None
) -> None:
    """Printable ASCII (quotes and backslashes among it) takes the faster encoder: the same bytes."""
    token = WebhookSigner(SECRET).sign(body, api_key=api_key, application_id=application_id)
    assert token == jwt.encode(claims_of(token), SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC",
        '{"kty": "oct", "k": "c2VjcmV0"}',
    ],
)
def test_a_secret_hs256_must_not_use_is_refused_as_pyjwt_refuses_it(secret: str) -> None:
    with pytest.raises(jwt.InvalidKeyError):
        jwt.encode({"a": 1}, secret, algorithm="HS256")
    with pytest.raises(jwt.InvalidKeyError):
        WebhookSigner(secret)


def test_payload_hash_is_sha256_hex_of_the_exact_bytes() -> None:
    assert payload_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert payload_hash(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --- verify_webhook ------------------------------------------------------------------------------


def test_verify_accepts_the_signed_body() -> None:
    token = WebhookSigner(SECRET).sign(BODY, api_key=API_KEY)
    assert verify_webhook(token, BODY, SECRET) is True


def test_verify_refuses_a_changed_body() -> None:
    token = WebhookSigner(SECRET).sign(BODY, api_key=API_KEY)
    assert verify_webhook(token, BODY.replace(b"delivered", b"rejected"), SECRET) is False
    assert verify_webhook(token, BODY + b" ", SECRET) is False
    assert verify_webhook(token, b"", SECRET) is False


def test_verify_refuses_a_wrong_secret() -> None:
    token = WebhookSigner(SECRET).sign(BODY, api_key=API_KEY)
    assert verify_webhook(token, BODY, OTHER_SECRET) is False


def test_verify_refuses_a_token_without_payload_hash() -> None:
    token = jwt.encode({"iat": int(time.time()), "jti": "x", "iss": "Vonage"}, SECRET, algorithm="HS256")
    assert vonage_jwt.verify_signature(token, SECRET) is True  # correctly signed ...
    assert verify_webhook(token, BODY, SECRET) is False  # ... but not bound to any body


@pytest.mark.parametrize("presented", [None, 0, ["x"], {"sha256": "x"}, "", "not-the-hash"])
def test_verify_refuses_a_payload_hash_that_is_not_the_body_hash(presented: object) -> None:
    token = jwt.encode({"iat": int(time.time()), "payload_hash": presented}, SECRET, algorithm="HS256")
    assert verify_webhook(token, BODY, SECRET) is False


def test_verify_refuses_the_upper_case_hex_of_the_right_hash() -> None:
    """The claim is compared as the exact lower-case hex string that was signed."""
    token = jwt.encode({"payload_hash": payload_hash(BODY).upper()}, SECRET, algorithm="HS256")
    assert verify_webhook(token, BODY, SECRET) is False


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_verify_refuses_other_algorithms_even_with_the_right_secret(algorithm: str) -> None:
    token = jwt.encode({"payload_hash": payload_hash(BODY)}, SECRET, algorithm=algorithm)
    assert verify_webhook(token, BODY, SECRET) is False


def test_verify_refuses_an_unsigned_token() -> None:
    token = jwt.encode({"payload_hash": payload_hash(BODY)}, None, algorithm="none")
    assert verify_webhook(token, BODY, SECRET) is False


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "Bearer x.y.z"])
def test_verify_refuses_malformed_tokens_without_raising(token: str) -> None:
    assert verify_webhook(token, BODY, SECRET) is False


def test_verify_refuses_an_expired_token() -> None:
    token = jwt.encode(
        {"payload_hash": payload_hash(BODY), "exp": int(time.time()) - 60}, SECRET, algorithm="HS256"
    )
    assert verify_webhook(token, BODY, SECRET) is False


# --- properties ----------------------------------------------------------------------------------


@given(st.binary(max_size=2048))
def test_any_body_signed_then_verifies(body: bytes) -> None:
    token = WebhookSigner(SECRET).sign(body, api_key=API_KEY)
    assert verify_webhook(token, body, SECRET)
    assert vonage_jwt.verify_signature(token, SECRET) is True
    assert claims_of(token)["payload_hash"] == hashlib.sha256(body).hexdigest()


@given(st.data())
def test_any_one_byte_change_fails_verification(data: st.DataObject) -> None:
    body = data.draw(st.binary(min_size=1, max_size=2048), label="body")
    token = WebhookSigner(SECRET).sign(body, api_key=API_KEY)
    index = data.draw(st.integers(0, len(body) - 1), label="index")
    delta = data.draw(st.integers(1, 255), label="delta")
    changed = bytearray(body)
    changed[index] ^= delta
    assert verify_webhook(token, bytes(changed), SECRET) is False


@given(st.binary(max_size=256), st.binary(min_size=1, max_size=4))
def test_appending_or_dropping_bytes_fails_verification(body: bytes, extra: bytes) -> None:
    token = WebhookSigner(SECRET).sign(body, api_key=API_KEY)
    assert verify_webhook(token, body + extra, SECRET) is False
    if body:
        assert verify_webhook(token, body[:-1], SECRET) is False
