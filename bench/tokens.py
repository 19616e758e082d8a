"""Bearer JWTs for the benchmark: an application per Tidings target, and a pool of one-use tokens.

Tidings accepts each token's `jti` once (the replay cache), so wrk cannot repeat one static
token. Before each JWT run, `mint_pool` signs enough tokens for the warm-up and the measured run
into a file, one per line; bench/post.lua reads the file and takes every token once (with
several wrk threads, thread k of T takes lines k, k+T, k+2T, ...). The pool's cursor moves past
every line any thread took (including the one wrk's request check consumes at start), so the
measured run never sees a token the warm-up used. When a thread runs out of lines, it sends an
invalid token instead: those requests are 401s, counted as errors, and the run is flagged.

Tokens are built the way the official SDK's `vonage_jwt.JwtClient.generate_application_jwt`
builds them: PyJWT, RS256, header {"alg":"RS256","typ":"JWT"}, claims `application_id`, `iat`
(now), `jti` (uuid4) and `exp` (iat + 900). The one difference is speed: the private key is
loaded once per minting process and PyJWT is handed the key object, not the PEM (loading the PEM
again for every token, as passing the string does, costs ~40 ms each).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOKEN_SECONDS = 15 * 60  # the SDK's default lifetime
_CHUNK = 2000  # tokens per task handed to a minting process

_key: Any = None  # the loaded private key, per minting process
_application_id = ""


def _load(private_key_pem: str, application_id: str) -> None:
    global _key, _application_id
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    _key = load_pem_private_key(private_key_pem.encode(), password=None)
    _application_id = application_id


def _mint(count: int) -> str:
    import jwt

    headers = {"alg": "RS256", "typ": "JWT"}
    lines = []
    for _ in range(count):
        iat = int(time.time())
        claims = {
            "application_id": _application_id,
            "iat": iat,
            "jti": str(uuid.uuid4()),
            "exp": iat + TOKEN_SECONDS,
        }
        lines.append(jwt.encode(claims, _key, algorithm="RS256", headers=headers))
    return "\n".join(lines) + "\n"


def _mint_in(processes: int, private_key_pem: str, application_id: str, count: int, out: Any) -> None:
    chunks = [_CHUNK] * (count // _CHUNK) + ([count % _CHUNK] if count % _CHUNK else [])
    if processes <= 1:
        _load(private_key_pem, application_id)
        for chunk in chunks:
            out.write(_mint(chunk))
        return
    with ProcessPoolExecutor(
        max_workers=processes, initializer=_load, initargs=(private_key_pem, application_id)
    ) as pool:
        for text in pool.map(_mint, chunks):
            out.write(text)


@dataclass
class TokenPool:
    """A file of one-use tokens and how far wrk has read into it."""

    path: Path
    size: int
    mint_seconds: float
    processes: int
    cursor: int = 0  # the first line no wrk thread has taken yet
    used: dict[str, int] = field(default_factory=dict)  # tokens taken per phase (warm-up, measured)
    exhausted: dict[str, int] = field(default_factory=dict)  # requests sent without a token, per phase

    @property
    def left(self) -> int:
        return self.size - self.cursor

    def advance(self, phase: str, *, used: int, next_line: int, exhausted: int) -> None:
        """After one wrk run that started at `cursor`: `next_line` is relative to that start."""
        self.used[phase] = used
        self.exhausted[phase] = exhausted
        self.cursor = min(self.size, self.cursor + next_line)

    def as_dict(self) -> dict[str, Any]:
        return {
            "minted": self.size,
            "mint_seconds": round(self.mint_seconds, 2),
            "mint_processes": self.processes,
            "tokens_per_second": round(self.size / self.mint_seconds) if self.mint_seconds else None,
            "used": self.used,
            "left": self.left,
            "requests_without_token": self.exhausted,
            "ran_out": any(self.exhausted.values()),
        }


def pool_size(expected_rps: float, seconds: float, margin: float, connections: int) -> int:
    """Enough for `seconds` at `expected_rps` times `margin`, plus one in flight per connection."""
    return math.ceil(expected_rps * seconds * margin) + connections + 100


def mint_pool(
    path: Path, *, application_id: str, private_key_pem: str, count: int, processes: int | None = None
) -> TokenPool:
    processes = processes or os.cpu_count() or 1
    started = time.perf_counter()
    with path.open("w") as out:
        _mint_in(processes, private_key_pem, application_id, count, out)
    return TokenPool(path=path, size=count, mint_seconds=time.perf_counter() - started, processes=processes)
