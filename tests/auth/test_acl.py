"""The `acl` claim: `*` is one path segment, `**` any number of them (none too), everything else
is an exact segment; a malformed claim allows nothing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.auth.acl import acl_allows

PATTERNS: list[tuple[str, str, bool]] = [
    # the Vonage SDK's documented example
    ("/*/messages/**", "/v1/messages", True),
    ("/*/messages/**", "/v0.1/messages", True),
    ("/*/messages/**", "/v1/messages/abc", True),
    ("/*/messages/**", "/v1/messages/a/b/c", True),
    ("/*/messages/**", "/messages", False),  # `*` needs exactly one segment
    ("/*/messages/**", "/v1/beta/messages", False),
    ("/*/messages/**", "/v1/message", False),
    ("/*/users/**", "/v1/messages", False),
    # exact paths and trailing slashes (empty segments do not count)
    ("/v1/messages", "/v1/messages", True),
    ("/v1/messages/", "/v1/messages", True),
    ("/v1/messages", "/v1/messages/", True),
    ("v1/messages", "/v1/messages", True),
    ("//v1//messages//", "/v1/messages", True),
    ("/v1/messages", "/v1/messages/extra", False),
    ("/v1/messages/extra", "/v1/messages", False),
    ("/v1/messages", "/v0.1/messages", False),
    ("/V1/Messages", "/v1/messages", False),  # case matters
    ("/v1/messages ", "/v1/messages", False),
    # `*` is a whole segment, never part of one
    ("/v1/mess*", "/v1/messages", False),
    ("/v1/*ages", "/v1/messages", False),
    ("/v1/messages*", "/v1/messages", False),
    ("/*", "/v1/messages", False),
    ("/*/*", "/v1/messages", True),
    ("/*/*/*", "/v1/messages", False),
    ("*", "/v1", True),
    # `**` any number of segments, none included
    ("/**", "/v1/messages", True),
    ("**", "/v1/messages", True),
    ("/**", "/", True),
    ("/**/messages", "/v1/messages", True),
    ("/**/messages", "/messages", True),
    ("/v1/**/messages", "/v1/messages", True),
    ("/v1/**/messages", "/v1/a/b/messages", True),
    ("/v1/**/messages", "/v2/a/messages", False),
    ("/**/v1/**/messages/**", "/v1/messages", True),
    ("/**/users", "/v1/messages", False),
    ("/v1/**", "/v1", True),
    ("/**/**/**", "/", True),
    ("/*/**", "/", False),
    # empty pattern: only the root
    ("", "/", True),
    ("/", "/", True),
    ("", "/v1/messages", False),
    ("/", "/v1/messages", False),
]


@pytest.mark.parametrize(("pattern", "path", "allowed"), PATTERNS)
def test_pattern(pattern: str, path: str, allowed: bool) -> None:
    assert acl_allows({"paths": {pattern: {}}}, path) is allowed


MALFORMED: list[Any] = [
    None,
    "x",
    "/*/messages/**",
    1,
    True,
    [],
    ["/*/messages/**"],
    {},
    {"paths": None},
    {"paths": "/*/messages/**"},
    {"paths": []},
    {"paths": ["/*/messages/**"]},
    {"paths": {}},
    {"paths": {1: {}}},
    {"paths": {None: {}}},
    {"path": {"/**": {}}},
    {"PATHS": {"/**": {}}},
]


@pytest.mark.parametrize("acl", MALFORMED, ids=repr)
def test_malformed_claim_allows_nothing(acl: Any) -> None:
    assert acl_allows(acl, "/v1/messages") is False
    assert acl_allows(acl, "/") is False


def test_any_one_covering_pattern_is_enough() -> None:
    acl = {"paths": {"/*/users/**": {}, 7: {}, "/*/messages/**": {"methods": ["POST"]}}}
    assert acl_allows(acl, "/v1/messages")
    assert not acl_allows(acl, "/v1/applications")


def test_extra_keys_beside_paths_are_ignored() -> None:
    assert acl_allows({"paths": {"/v1/messages": {}}, "other": 1}, "/v1/messages")


@pytest.mark.parametrize("repeat", [400, 5000, 50_000])
def test_long_globstar_runs_neither_crash_nor_crawl(repeat: int) -> None:
    """The claim is attacker-shaped: hundreds of `**` once hit the recursion limit (a 500)."""
    assert acl_allows({"paths": {"/**" * repeat + "/messages": {}}}, "/v1/messages")
    assert not acl_allows({"paths": {"/**" * repeat + "/users": {}}}, "/v1/messages")
    assert not acl_allows({"paths": {"/*" * repeat: {}}}, "/v1/messages")
    long_path = "/" + "/".join(["a"] * 2000)
    assert acl_allows({"paths": {"/**/a" * 1000 + "/**": {}}}, long_path)
    assert not acl_allows({"paths": {"/**/a" * 1000 + "/**/b": {}}}, long_path)


# ---------------------------------------------------------------- property

segment_text = st.text(
    alphabet=st.characters(blacklist_characters="/", blacklist_categories=("Cs",)), min_size=1, max_size=8
)


@st.composite
def path_and_covering_pattern(draw: st.DrawFn) -> tuple[str, str]:
    """A path, and a pattern made from its own segments: each kept, replaced by `*`, or a run of
    any length (none too) replaced by `**`; `**` may also be slipped in between segments."""
    segments = draw(st.lists(segment_text, max_size=8))
    pattern: list[str] = []
    i = 0
    while i <= len(segments):
        if draw(st.booleans()) and draw(st.booleans()):
            run = draw(st.integers(min_value=0, max_value=len(segments) - i))
            pattern.append("**")
            i += run
            continue
        if i == len(segments):
            break
        pattern.append(draw(st.sampled_from([segments[i], "*"])))
        i += 1
    trailing = draw(st.sampled_from(["", "/"]))
    return "/" + "/".join(segments), "/" + "/".join(pattern) + trailing


@given(path_and_covering_pattern())
def test_pattern_from_a_paths_own_segments_matches_it(case: tuple[str, str]) -> None:
    path, pattern = case
    assert acl_allows({"paths": {pattern: {}}}, path), (pattern, path)


@given(st.lists(segment_text.filter(lambda s: s not in ("*", "**")), max_size=6), segment_text)
def test_exact_pattern_with_one_more_segment_never_matches(segments: list[str], extra: str) -> None:
    path = "/" + "/".join(segments)
    assert acl_allows({"paths": {path: {}}}, path)
    assert not acl_allows({"paths": {path + "/" + extra: {}}}, path)
