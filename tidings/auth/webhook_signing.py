"""Signed webhooks, as Vonage signs them: a HS256 JWT in the Authorization header whose
`payload_hash` claim is the SHA-256 of the exact body bytes, keyed by the account's signature secret.

Tokens are made by PyJWT's HMAC algorithm, but not through `jwt.encode`: that checks the key's
form on every call (not a PEM, SSH or JWK key, which would make HS256 unsafe), and under load the
check cost more than the rest of signing together. A WebhookSigner checks its secret once, with
PyJWT's own check, and then writes each token exactly as `jwt.encode` would: the same header, the
claims as compact JSON, base64url without padding, the HMAC of the two. `jwt.encode` writes the
claims with the standard library's encoder, escaping everything outside printable ASCII; orjson
writes the same bytes for printable ASCII, four times faster, so it writes the claims whenever
the caller's strings are printable ASCII (as API keys and application ids are).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import jwt
import orjson
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_encode

from tidings.domain.ids import new_uuid

_HS256 = HMACAlgorithm(HMACAlgorithm.SHA256)
_HEADER = base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class WebhookSigner:
    """Signs with one signature secret; raises InvalidKeyError for a secret HS256 must not use."""

    def __init__(self, signature_secret: str) -> None:
        self._key = _HS256.prepare_key(signature_secret)

    def sign(
        self, body: bytes, *, api_key: str, application_id: str | None = None, now: float | None = None
    ) -> str:
        """The Bearer token for one delivery attempt; a fresh iat and jti every attempt."""
        claims: dict[str, object] = {
            "iat": int(now if now is not None else time.time()),
            "jti": new_uuid(),
            "iss": "Vonage",
            "payload_hash": payload_hash(body),
            "api_key": api_key,
        }
        if application_id:
            claims["application_id"] = application_id
        signing_input = _HEADER + b"." + base64url_encode(_claims_json(claims, api_key, application_id))
        return (signing_input + b"." + base64url_encode(_HS256.sign(signing_input, self._key))).decode()


def _claims_json(claims: dict[str, object], *given: str | None) -> bytes:
    if all(text is None or (text.isascii() and text.isprintable()) for text in given):
        return orjson.dumps(claims)
    return json.dumps(claims, separators=(",", ":")).encode()


def verify_webhook(token: str, body: bytes, signature_secret: str) -> bool:
    """What a receiver does: check the signature, then that the token belongs to these bytes."""
    try:
        claims = jwt.decode(token, signature_secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return False
    expected = payload_hash(body)
    presented = claims.get("payload_hash")
    return isinstance(presented, str) and hmac.compare_digest(presented, expected)
