"""Private keys that sign the tests' JWTs, each parsed once.

Loading a PEM private key checks the RSA key, which costs about 0.17 s for 2048 bits (cryptography
50) where signing with the loaded key costs under a millisecond; PyJWT and the Vonage SDK load the
PEM they are given on every token, and the suite mints thousands of tokens.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey


@functools.cache
def signing_key(private_pem: str) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise TypeError(f"an RSA private key was expected, not {type(key).__name__}")
    return key
