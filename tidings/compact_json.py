"""JSON that Tidings writes itself and reads back: webhook bodies, and what its JSON columns store
(job payloads above all). Compact, UTF-8, written by orjson in C.

The standard library's encoder cost about 6 µs for a status webhook's body and orjson 0.3; a
message's trip through the worker writes such JSON five times (two bodies, the payloads of the
jobs it queues) and reads it four (the payload of each job it claims). Signatures' claims are not
written here: they must be the bytes `jwt.encode` makes, escapes and all (auth/webhook_signing.py).

orjson writes every value the standard encoder writes, with the same meaning; the text may differ
only in how a float is spelled (`1e-7` rather than `1e-07`) and, in the JSON columns, in characters
past ASCII written as themselves rather than escaped, which every JSON reader reads alike.
What orjson refuses (an integer past 64 bits, a key that is not a string, a lone surrogate, which
has no UTF-8) goes to the standard encoder, with everything past ASCII escaped as `\\uXXXX`, so
nothing that was written before fails now.

Reading is narrower. orjson reads an integer past 64 bits as a float, silently, so only text
without a run of 19 digits goes to it (any number that long may not fit); the rest, and whatever
orjson refuses (a lone surrogate's escape, which Python's parser takes), goes to the standard
library's parser. Client input is not read here: strict_json.py reads that.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_MAYBE_PAST_64_BITS = re.compile(r"\d{19}")


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """`dumps` as text, as SQLAlchemy's JSON columns take it."""
    return dumps(value).decode()


def loads(text: str) -> Any:
    if not _MAYBE_PAST_64_BITS.search(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
