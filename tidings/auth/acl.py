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
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(rest, path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return (head == "*" or head == path[0]) and _matches(rest, path[1:])


def acl_allows(acl: Any, path: str) -> bool:
    """True when the claim lets the token reach `path`. A malformed claim allows nothing."""
    if not isinstance(acl, dict) or not isinstance(acl.get("paths"), dict):
        return False
    target = _segments(path)
    return any(_matches(_segments(pattern), target) for pattern in acl["paths"] if isinstance(pattern, str))
