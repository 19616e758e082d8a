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

Reading is narrower. orjson reads an integer past 64 bits as a float, silently, so whatever it
reads that holds a float is read again by the standard library's parser, which keeps such an
integer exact (a float in what Tidings stores is rare: its payloads carry ids, text and times).
What orjson refuses (a lone surrogate's escape, `NaN`, which Python's parser takes) goes there
too. Looking for a float costs well under a microsecond for a job's payload; the search for a
long run of digits tried first cost 6-8 µs on a webhook job's text, more than the parse saved.
Client input is not read here: strict_json.py reads that.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def dumps_text(value: Any) -> str:
    """`dumps` as text, as SQLAlchemy's JSON columns take it."""
    return dumps(value).decode()


def loads(text: str | bytes) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    return json.loads(text) if _holds_float(value) else value


def _holds_float(value: Any) -> bool:
    """Walked with a list, not by recursion: orjson reads nesting deeper than Python's stack."""
    waiting = [value]
    while waiting:
        item = waiting.pop()
        kind = type(item)
        if kind is float:
            return True
        if kind is dict:
            waiting.extend(item.values())
        elif kind is list:
            waiting.extend(item)
    return False
