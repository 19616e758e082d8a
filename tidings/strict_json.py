"""JSON from clients, parsed as RFC 8259 defines it.

Python's parser also reads `NaN`, `Infinity` and `-Infinity`, and turns a number too large for a
double (`1e999`) into infinity. None of them is JSON: a send whose WhatsApp `custom` object held
one was accepted (PostgreSQL's JSON documents then stored it as null, SQLite the bare word), and a
signed token whose `iat` was NaN passed every time check, since every comparison with NaN is false.
"""

from __future__ import annotations

import json
import math
from typing import Any


class NotStrictJson(ValueError):
    """The text is JSON to Python's parser, but not to RFC 8259."""


def _constant(name: str) -> float:
    raise NotStrictJson(f"{name} is not a JSON number.")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise NotStrictJson(f"The number {literal[:40]} is too large.")
    return value


# One decoder for the process, as json.loads keeps one for its defaults: making one per call (as
# json.loads does when given hooks) would cost every send a few microseconds.
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_finite)


def loads(text: str | bytes) -> Any:
    """`json.loads`, refusing NaN, Infinity, -Infinity and numbers past a double's range with
    NotStrictJson. Bytes are decoded as json.loads decodes them; its other errors are its own."""
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    elif text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)
