"""Application key pairs: the RSA keys whose private half signs an application's JWTs.

Tidings keeps only the public half. A generated private key is handed to the caller once and
then forgotten, as Vonage does.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GENERATED_KEY_BITS = 2048
MIN_KEY_BITS = 2048


@dataclass(frozen=True)
class KeyPair:
    public_pem: str
    private_pem: str


def generate_key_pair() -> KeyPair:
    """A fresh RSA key pair in the PEM forms Vonage returns (SPKI public, PKCS#8 private).

    CPU-bound (tens of milliseconds): call it off the event loop.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_KEY_BITS)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(public_pem=public_pem.decode(), private_pem=private_pem.decode())


def public_key_problem(pem: str) -> str | None:
    """Why `pem` cannot verify RS256 JWTs, or None when it is a usable RSA public key."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm):
        return "must be a PEM encoded RSA public key."
    if not isinstance(key, rsa.RSAPublicKey):
        return "must be an RSA public key (JWTs are signed with RS256)."
    if key.key_size < MIN_KEY_BITS:
        return f"must be an RSA key of at least {MIN_KEY_BITS} bits."
    return None
