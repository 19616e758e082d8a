"""SMS character encoding and segmentation (GSM 03.38 / 3GPP TS 23.038).

Decides whether a text travels as GSM 7-bit or UCS-2, counts the units it costs and
splits it into the parts a handset receives, so billing and the Vonage-compatible
``sms.encoding_type`` field agree with what the network actually sends.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "DataCoding",
    "SmsEncoding",
    "SmsSegmentation",
    "decode_gsm7",
    "encode_gsm7",
    "encode_ucs2",
    "gsm7_septets",
    "is_gsm7",
    "segment",
    "to_gsm7",
]


class SmsEncoding(StrEnum):
    """Wire values of the Vonage ``sms.encoding_type`` field."""

    TEXT = "text"
    UNICODE = "unicode"
    AUTO = "auto"


class DataCoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class SmsSegmentation:
    data_coding: DataCoding
    units: int
    segments: int
    unit_limit: int
    parts: tuple[str, ...]


_ESC = 0x1B
_REPLACEMENT = "?"

# Default alphabet, indexed by septet value. 0x1B is the escape into the extension
# table, not a character, so its slot holds a placeholder that is never mapped.
_BASE_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x00ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

_GSM7_BASE: dict[str, int] = {ch: code for code, ch in enumerate(_BASE_TABLE) if code != _ESC}
_GSM7_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
# Whole-text scans run in the regex engine, not a Python loop per character: every message is
# counted when it is accepted (its price depends on its parts).
_NOT_GSM7 = re.compile("[^" + re.escape("".join(_GSM7_BASE) + "".join(_GSM7_EXTENSION)) + "]")
_EXTENSION_CHARACTER = re.compile("[" + re.escape("".join(_GSM7_EXTENSION)) + "]")
_GSM7_DECODE_BASE: dict[int, str] = {code: ch for ch, code in _GSM7_BASE.items()}
_GSM7_DECODE_EXTENSION: dict[int, str] = {code: ch for ch, code in _GSM7_EXTENSION.items()}

_GSM7_SINGLE_LIMIT = 160
_GSM7_MULTI_LIMIT = 153
_UCS2_SINGLE_LIMIT = 70
_UCS2_MULTI_LIMIT = 67


def _septet_cost(ch: str) -> int:
    # Extension characters cost the ESC septet plus their own code.
    if ch in _GSM7_BASE:
        return 1
    if ch in _GSM7_EXTENSION:
        return 2
    raise ValueError(f"character {ch!r} is not in the GSM 03.38 alphabet")


def _ucs2_cost(ch: str) -> int:
    # Astral code points need a surrogate pair, i.e. two UTF-16 code units.
    return 2 if ord(ch) > 0xFFFF else 1


def is_gsm7(text: str) -> bool:
    """True when every character is in the default alphabet or its extension table."""
    return _NOT_GSM7.search(text) is None


def gsm7_septets(text: str) -> int:
    """Septets needed for ``text``; raises ValueError on a character outside GSM-7."""
    outside = _NOT_GSM7.search(text)
    if outside is not None:
        raise ValueError(f"character {outside.group()!r} is not in the GSM 03.38 alphabet")
    return len(text) + len(_EXTENSION_CHARACTER.findall(text))


def to_gsm7(text: str) -> str:
    """Replace every character GSM-7 cannot carry with '?', as ``encoding_type=text`` does."""
    return "".join(ch if ch in _GSM7_BASE or ch in _GSM7_EXTENSION else _REPLACEMENT for ch in text)


def encode_gsm7(text: str) -> bytes:
    """Unpacked septets, one per byte; extension characters become ESC followed by their code."""
    out = bytearray()
    for ch in text:
        code = _GSM7_BASE.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = _GSM7_EXTENSION.get(ch)
        if ext is None:
            raise ValueError(f"character {ch!r} is not in the GSM 03.38 alphabet")
        out += bytes((_ESC, ext))
    return bytes(out)


def decode_gsm7(data: bytes) -> str:
    """Inverse of :func:`encode_gsm7`."""
    chars: list[str] = []
    i = 0
    while i < len(data):
        code = data[i]
        if code > 0x7F:
            raise ValueError(f"byte 0x{code:02X} at offset {i} is not a septet")
        if code != _ESC:
            chars.append(_GSM7_DECODE_BASE[code])
            i += 1
            continue
        if i + 1 >= len(data):
            raise ValueError("data ends with a dangling escape septet")
        ext = data[i + 1]
        if ext > 0x7F:
            raise ValueError(f"byte 0x{ext:02X} at offset {i + 1} is not a septet")
        if ext in _GSM7_DECODE_EXTENSION:
            chars.append(_GSM7_DECODE_EXTENSION[ext])
        elif ext == _ESC:
            # Reserved for a further extension table; 23.038 says to show a space.
            chars.append(" ")
        else:
            # Undefined extension code: 23.038 falls back to the default-alphabet character.
            chars.append(_GSM7_DECODE_BASE[ext])
        i += 2
    return "".join(chars)


def encode_ucs2(text: str) -> bytes:
    """UTF-16-BE; astral characters become a surrogate pair (two code units)."""
    # surrogatepass keeps a stray lone surrogate as its single code unit instead of failing.
    return text.encode("utf-16-be", "surrogatepass")


def _pack(text: str, limit: int, cost: Callable[[str], int]) -> tuple[str, ...]:
    # Greedy fill, one whole character at a time: a character whose units would overflow
    # the part starts the next one, so ESC+code and surrogate pairs never straddle parts.
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for ch in text:
        units = cost(ch)
        if current and used + units > limit:
            parts.append("".join(current))
            current, used = [], 0
        current.append(ch)
        used += units
    parts.append("".join(current))
    return tuple(parts)


def segment(text: str, encoding: SmsEncoding = SmsEncoding.AUTO) -> SmsSegmentation:
    """Pick the data coding for ``encoding`` and split ``text`` into SMS parts."""
    # Validates plain strings coming from the API; an unknown value raises ValueError.
    encoding = SmsEncoding(encoding)
    if encoding is SmsEncoding.TEXT:
        text = to_gsm7(text)
        coding = DataCoding.GSM7
    elif encoding is SmsEncoding.UNICODE or not is_gsm7(text):
        coding = DataCoding.UCS2
    else:
        coding = DataCoding.GSM7

    if coding is DataCoding.GSM7:
        units = gsm7_septets(text)
        single, multi, cost = _GSM7_SINGLE_LIMIT, _GSM7_MULTI_LIMIT, _septet_cost
    else:
        units = len(encode_ucs2(text)) // 2
        single, multi, cost = _UCS2_SINGLE_LIMIT, _UCS2_MULTI_LIMIT, _ucs2_cost

    if units <= single:
        # Fits one SMS: no concatenation header, so the full payload is available.
        return SmsSegmentation(coding, units, 1, single, (text,))
    parts = _pack(text, multi, cost)
    return SmsSegmentation(coding, units, len(parts), multi, parts)
