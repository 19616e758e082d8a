"""The `acl` claim of Vonage JWTs: {"paths": {"/*/messages/**": {}, ...}}.

In a path pattern `*` stands for one path segment and `**` for any number of segments (none too).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


def _segments(path: str) -> tuple[str, ...]:
    return tuple(part for part in path.split("/") if part)


@lru_cache(maxsize=1024)
def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    # Iterative, O(len(pattern) * len(path)): the claim is caller-controlled, and a recursive
    # matcher hit the recursion limit (a 500, not a 401) on a few hundred `**` segments.
    reachable = {0}  # how many path segments a prefix of the pattern can have consumed
    for head in pattern:
        if head == "**":
            reachable = set(range(min(reachable), len(path) + 1))
        else:
            reachable = {i + 1 for i in reachable if i < len(path) and head in ("*", path[i])}
        if not reachable:
            return False
    return len(path) in reachable


def acl_allows(acl: Any, path: str) -> bool:
    """True when the claim lets the token reach `path`. A malformed claim allows nothing."""
    if not isinstance(acl, dict) or not isinstance(acl.get("paths"), dict):
        return False
    target = _segments(path)
    return any(_matches(_segments(pattern), target) for pattern in acl["paths"] if isinstance(pattern, str))
