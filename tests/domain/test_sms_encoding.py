from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.domain.sms_encoding import (
    DataCoding,
    SmsEncoding,
    SmsSegmentation,
    decode_gsm7,
    encode_gsm7,
    encode_ucs2,
    gsm7_septets,
    is_gsm7,
    segment,
    to_gsm7,
)

EXTENSION_CHARS = "\f^{}\\[~]|€"
# Every septet except the escape slot decodes to a distinct default-alphabet character.
BASE_CHARS = decode_gsm7(bytes(code for code in range(128) if code != 0x1B))
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair in UTF-16

# Hand-picked entries of the GSM 03.38 tables, written from the standard.
BASE_CODES = [
    ("@", 0x00),
    ("£", 0x01),
    ("$", 0x02),
    ("¥", 0x03),
    ("è", 0x04),
    ("Ç", 0x09),
    ("\n", 0x0A),
    ("\r", 0x0D),
    ("å", 0x0F),
    ("Δ", 0x10),
    ("_", 0x11),
    ("Ξ", 0x1A),
    ("Æ", 0x1C),
    ("É", 0x1F),
    (" ", 0x20),
    ("¤", 0x24),
    ("0", 0x30),
    ("?", 0x3F),
    ("¡", 0x40),
    ("A", 0x41),
    ("Ü", 0x5E),
    ("§", 0x5F),
    ("¿", 0x60),
    ("a", 0x61),
    ("z", 0x7A),
    ("ä", 0x7B),
    ("à", 0x7F),
]
EXTENSION_CODES = [
    ("\f", 0x0A),
    ("^", 0x14),
    ("{", 0x28),
    ("}", 0x29),
    ("\\", 0x2F),
    ("[", 0x3C),
    ("~", 0x3D),
    ("]", 0x3E),
    ("|", 0x40),
    ("€", 0x65),
]

gsm_char = st.sampled_from(BASE_CHARS + EXTENSION_CHARS)
other_char = st.one_of(st.characters(), st.sampled_from([EMOJI, "ł", "\u4e2d"]))


def _runs(char: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Runs of repeated characters reach multi-part lengths far more often than plain st.text().
    return st.lists(st.tuples(char, st.integers(1, 90)), max_size=8).map(
        lambda runs: "".join(c * n for c, n in runs)
    )


gsm_text = _runs(gsm_char)
# Half the examples stay pure GSM so both codings get multi-part coverage.
any_text = st.one_of(gsm_text, _runs(st.one_of(gsm_char, other_char)))


def _part_units(part: str, coding: DataCoding) -> int:
    return gsm7_septets(part) if coding is DataCoding.GSM7 else len(encode_ucs2(part)) // 2


# --- alphabet tables -----------------------------------------------------------------


def test_default_alphabet_has_127_distinct_characters() -> None:
    assert len(set(BASE_CHARS)) == 127
    assert not set(BASE_CHARS) & set(EXTENSION_CHARS)


@pytest.mark.parametrize(("char", "code"), BASE_CODES)
def test_base_alphabet_codes(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes([code])
    assert gsm7_septets(char) == 1
    assert decode_gsm7(bytes([code])) == char


@pytest.mark.parametrize(("char", "code"), EXTENSION_CODES)
def test_extension_codes_cost_two_septets(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes([0x1B, code])
    assert gsm7_septets(char) == 2
    assert decode_gsm7(bytes([0x1B, code])) == char
    assert is_gsm7(char)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("Hello, world!", True),
        ("Grüße ÆØÅ ΔΩ €5 {ok}", True),
        ("ç", False),  # only the capital Ç is in the default alphabet
        ("ł", False),
        ("`", False),
        ("\t", False),
        (EMOJI, False),
        ("\x1b", False),  # the escape slot is not a character
        ("plain text ending in ł", False),
    ],
)
def test_is_gsm7(text: str, expected: bool) -> None:
    assert is_gsm7(text) is expected


def test_gsm7_septets_rejects_non_gsm() -> None:
    with pytest.raises(ValueError, match="GSM"):
        gsm7_septets("abcł")


def test_to_gsm7_replaces_only_unsupported_characters() -> None:
    assert to_gsm7("Paweł płaci €5 ") == "Pawe? p?aci €5 "
    assert to_gsm7(f"hi {EMOJI}") == "hi ?"
    assert to_gsm7("ç`") == "??"


# --- encode / decode -----------------------------------------------------------------


def test_encode_gsm7_mixed_text() -> None:
    assert encode_gsm7("a€@") == b"\x61\x1b\x65\x00"


def test_encode_gsm7_rejects_non_gsm() -> None:
    with pytest.raises(ValueError, match="GSM"):
        encode_gsm7("zł")


@pytest.mark.parametrize(
    "data",
    [b"\x80", b"a\xff", b"\x1b", b"abc\x1b", b"\x1b\x80"],
    ids=["high-byte", "high-byte-late", "lone-esc", "trailing-esc", "esc-high-byte"],
)
def test_decode_gsm7_rejects_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_gsm7(data)


def test_decode_gsm7_unknown_extension_falls_back_to_base() -> None:
    # ESC + 0x41 is undefined in the extension table: 23.038 shows the base 'A'.
    assert decode_gsm7(b"\x1b\x41") == "A"
    assert decode_gsm7(b"\x1b\x1b") == " "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", b""),
        ("A", b"\x00A"),
        ("ł", b"\x01\x42"),
        (EMOJI, b"\xd8\x3d\xde\x00"),
        ("\ud800", b"\xd8\x00"),  # a stray lone surrogate is kept as one code unit, not an error
    ],
)
def test_encode_ucs2(text: str, expected: bytes) -> None:
    assert encode_ucs2(text) == expected


# --- segmentation: concrete boundaries ----------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "unit_limit", "part_lengths"),
    [
        (0, 1, 160, (0,)),
        (1, 1, 160, (1,)),
        (160, 1, 160, (160,)),
        (161, 2, 153, (153, 8)),
        (306, 2, 153, (153, 153)),
        (307, 3, 153, (153, 153, 1)),
    ],
)
def test_gsm7_boundaries(length: int, segments: int, unit_limit: int, part_lengths: tuple[int, ...]) -> None:
    text = "a" * length
    result = segment(text)
    assert result == SmsSegmentation(
        data_coding=DataCoding.GSM7,
        units=length,
        segments=segments,
        unit_limit=unit_limit,
        parts=tuple("a" * n for n in part_lengths),
    )


@pytest.mark.parametrize(
    ("length", "segments", "unit_limit", "part_lengths"),
    [
        (1, 1, 70, (1,)),
        (70, 1, 70, (70,)),
        (71, 2, 67, (67, 4)),
        (134, 2, 67, (67, 67)),
        (135, 3, 67, (67, 67, 1)),
    ],
)
def test_ucs2_boundaries(length: int, segments: int, unit_limit: int, part_lengths: tuple[int, ...]) -> None:
    text = "ł" * length
    result = segment(text)
    assert result == SmsSegmentation(
        data_coding=DataCoding.UCS2,
        units=length,
        segments=segments,
        unit_limit=unit_limit,
        parts=tuple("ł" * n for n in part_lengths),
    )


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        ("€" * 80, 160, 1),
        ("€" * 81, 162, 2),
        ("a" * 159 + "€", 161, 2),
        ("a" * 158 + "{", 160, 1),
    ],
)
def test_extension_chars_count_double(text: str, units: int, segments: int) -> None:
    result = segment(text)
    assert result.data_coding is DataCoding.GSM7
    assert (result.units, result.segments) == (units, segments)


def test_extension_char_at_part_boundary_moves_to_next_part() -> None:
    # 152 septets leave one free in a 153-septet part: ESC+code must not be split.
    result = segment("a" * 152 + "€" + "b" * 10)
    assert result.parts == ("a" * 152, "€" + "b" * 10)
    assert result.units == 164
    assert result.unit_limit == 153


def test_extension_only_text_packs_76_per_part() -> None:
    result = segment("|" * 81)
    assert result.parts == ("|" * 76, "|" * 5)


def test_emoji_at_ucs2_boundary_moves_to_next_part() -> None:
    # 66 units leave one free in a 67-unit part: the surrogate pair must not be split.
    result = segment("ł" * 66 + EMOJI + "ł" * 10)
    assert result.data_coding is DataCoding.UCS2
    assert result.units == 78
    assert result.parts == ("ł" * 66, EMOJI + "ł" * 10)


@pytest.mark.parametrize(
    ("count", "segments", "part_lengths"),
    [(35, 1, (35,)), (36, 2, (33, 3))],
)
def test_emoji_count_as_two_units(count: int, segments: int, part_lengths: tuple[int, ...]) -> None:
    result = segment(EMOJI * count)
    assert result.units == 2 * count
    assert result.segments == segments
    assert tuple(len(p) for p in result.parts) == part_lengths


def test_forced_unicode_on_ascii() -> None:
    assert segment("hello", SmsEncoding.UNICODE) == SmsSegmentation(DataCoding.UCS2, 5, 1, 70, ("hello",))
    # The same 71 characters fit one GSM-7 SMS but need two UCS-2 parts.
    assert segment("a" * 71).segments == 1
    assert segment("a" * 71, SmsEncoding.UNICODE).segments == 2


def test_forced_text_replaces_unsupported_characters() -> None:
    result = segment("Paweł €", SmsEncoding.TEXT)
    assert result == SmsSegmentation(DataCoding.GSM7, 8, 1, 160, ("Pawe? €",))


def test_auto_switches_to_ucs2_on_single_non_gsm_char() -> None:
    assert segment("a" * 100 + "ł").data_coding is DataCoding.UCS2
    assert segment("a" * 100 + "é€").data_coding is DataCoding.GSM7


def test_encoding_accepts_wire_strings_and_rejects_unknown() -> None:
    assert segment("hi", SmsEncoding("unicode")).data_coding is DataCoding.UCS2
    with pytest.raises(ValueError):
        segment("hi", "binary")  # type: ignore[arg-type]


def test_segmentation_is_frozen() -> None:
    result = segment("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.segments = 2  # type: ignore[misc]


# --- properties ----------------------------------------------------------------------


@given(gsm_text)
def test_gsm7_round_trip(text: str) -> None:
    encoded = encode_gsm7(text)
    assert decode_gsm7(encoded) == text
    assert len(encoded) == gsm7_septets(text)
    assert all(b <= 0x7F for b in encoded)


@given(any_text)
def test_to_gsm7_output_is_gsm_and_length_preserving(text: str) -> None:
    converted = to_gsm7(text)
    assert is_gsm7(converted)
    assert len(converted) == len(text)
    if is_gsm7(text):
        assert converted == text


@settings(max_examples=300)
@given(any_text, st.sampled_from(list(SmsEncoding)))
def test_segmentation_invariants(text: str, encoding: SmsEncoding) -> None:
    result = segment(text, encoding)
    expected_text = to_gsm7(text) if encoding is SmsEncoding.TEXT else text

    assert "".join(result.parts) == expected_text
    assert result.segments == len(result.parts)
    assert all(_part_units(p, result.data_coding) <= result.unit_limit for p in result.parts)

    if result.data_coding is DataCoding.GSM7:
        assert encoding is not SmsEncoding.UNICODE
        assert result.units == gsm7_septets(expected_text)
        single, multi = 160, 153
    else:
        assert encoding is SmsEncoding.UNICODE or not is_gsm7(text)
        assert result.units == len(encode_ucs2(text)) // 2
        single, multi = 70, 67

    if result.units <= single:
        assert (result.segments, result.unit_limit) == (1, single)
    else:
        assert result.unit_limit == multi
        assert result.segments >= 2
        assert all(result.parts)
        # Greedy packing: a part only closes early when the next character would not fit.
        for part, nxt in zip(result.parts, result.parts[1:], strict=False):
            assert _part_units(part + nxt[0], result.data_coding) > multi
