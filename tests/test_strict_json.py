"""strict_json.loads: json.loads for everything JSON is, and a refusal for what only Python reads."""

from __future__ import annotations

import json

import pytest

from tidings import strict_json
from tidings.strict_json import NotStrictJson

VALID = [
    b'{"a": [1, -2.5, 1e300, 123456789012345678901234567890, true, null, "\\u00e9\\ud83d\\ude00"]}',
    '{"text": "caf\u00e9", "n": 0.1}',
    "\ufeff".encode() + b'{"bom": 1}',  # bytes with a UTF-8 byte order mark, as json.loads takes them
    '{"wide": 1}'.encode("utf-16"),
    '{"wide": 1}'.encode("utf-32-le"),
    b"[]",
    b'"lone \\ud800 surrogate"',
]


@pytest.mark.parametrize("text", VALID)
def test_what_is_json_reads_as_json_loads_reads_it(text: str | bytes) -> None:
    assert strict_json.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["\ufeff{}", b"{", b"\xff\xfe\xfa", "[1,]"])
def test_what_is_not_json_fails_as_json_loads_fails(text: str | bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(type(expected.value)):
        strict_json.loads(text)


@pytest.mark.parametrize(
    "text",
    [b'{"v": NaN}', b"[Infinity]", b'{"a": {"b": [-Infinity]}}', b"1e999", b'{"v": -1E400}', "[1.5e309]"],
)
def test_what_only_python_reads_is_refused(text: str | bytes) -> None:
    json.loads(text)  # Python's parser takes it
    with pytest.raises(NotStrictJson):
        strict_json.loads(text)
