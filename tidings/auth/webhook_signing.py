"""Signed webhooks, as Vonage signs them: a HS256 JWT in the Authorization header whose
`payload_hash` claim is the SHA-256 of the exact body bytes, keyed by the account's signature secret."""

from __future__ import annotations

import hashlib
import hmac
import time

import jwt

from tidings.domain.ids import new_uuid


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign_webhook(
    body: bytes,
    *,
    signature_secret: str,
    api_key: str,
    application_id: str | None = None,
    now: float | None = None,
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
    return jwt.encode(claims, signature_secret, algorithm="HS256")


def verify_webhook(token: str, body: bytes, signature_secret: str) -> bool:
    """What a receiver does: check the signature, then that the token belongs to these bytes."""
    try:
        claims = jwt.decode(token, signature_secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return False
    expected = payload_hash(body)
    presented = claims.get("payload_hash")
    return isinstance(presented, str) and hmac.compare_digest(presented, expected)
