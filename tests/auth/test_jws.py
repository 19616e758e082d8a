"""Compact JWS parsing: what PyJWT signs parses back to the same header, claims and signature;
anything that is not three unpadded base64url segments of JSON objects is malformed."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tidings.auth.jws import MalformedToken, parse_compact

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_token_signed_by_pyjwt_parses_to_its_parts() -> None:
    claims = {"application_id": "app-1", "iat": 1, "jti": "a/b+c", "acl": {"paths": {"/*/messages": {}}}}
    token = jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"})
    parsed = parse_compact(token)
    assert parsed.claims == claims
    assert parsed.header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    assert parsed.signing_input == token.rpartition(".")[0].encode()
    assert parsed.signature == base64.urlsafe_b64decode(token.rpartition(".")[2] + "==")


HEADER = _segment(b'{"alg":"RS256"}')
CLAIMS = _segment(b'{"application_id":"x"}')
SIGNATURE = _segment(b"signature")


NOT_AN_OBJECT = _segment(b'"text"')
NOT_JSON = _segment(b"{not json")
NOT_UTF8 = _segment(bytes([0xFF, 0xFE]))
TOO_DEEP = _segment(b"[" * 100_000)


@pytest.mark.parametrize(
    "token",
    [
        "",
        HEADER + "." + CLAIMS,
        ".".join([HEADER, CLAIMS, SIGNATURE, SIGNATURE]),
        HEADER + "." + CLAIMS + ".",  # no signature
        HEADER + "=." + CLAIMS + "." + SIGNATURE,  # padding
        ".".join([HEADER, CLAIMS, SIGNATURE + "!"]),  # outside the alphabet
        ".".join([HEADER, CLAIMS, SIGNATURE + "\n"]),
        ".".join([HEADER, "abcde", SIGNATURE]),  # 4n+1 characters cannot be base64
        ".".join([_segment(b"[1, 2]"), CLAIMS, SIGNATURE]),  # header not an object
        ".".join([HEADER, NOT_AN_OBJECT, SIGNATURE]),  # claims not an object
        ".".join([HEADER, NOT_JSON, SIGNATURE]),
        ".".join([HEADER, NOT_UTF8, SIGNATURE]),
        ".".join([HEADER, TOO_DEEP, SIGNATURE]),  # nested past the parser's depth
        # Numbers Python's parser reads and JSON has not: every comparison with NaN is false, so
        # an `iat` of NaN passed each time check.
        ".".join([HEADER, _segment(b'{"iat": NaN, "jti": "x"}'), SIGNATURE]),
        ".".join([HEADER, _segment(b'{"exp": Infinity}'), SIGNATURE]),
        ".".join([HEADER, _segment(b'{"nbf": 1e999}'), SIGNATURE]),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(MalformedToken):
        parse_compact(token)


def test_the_claims_of_an_unpadded_segment_of_any_length_are_read() -> None:
    for extra in range(4):  # every length modulo 4 that base64 can produce
        claims = {"application_id": "x", "pad": "y" * extra}
        parsed = parse_compact(f"{HEADER}.{_segment(json.dumps(claims).encode())}.{SIGNATURE}")
        assert parsed.claims == claims
