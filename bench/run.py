"""`python -m bench.run`: measure the send path (POST /v1/messages → 202) and print one table.

In one run, on this machine, with wrk as the load generator: the bare FastAPI baseline, then
Tidings on SQLite and on PostgreSQL, then the baseline again, each in role `all` (worker in the same process, as shipped)
and role `api` (accepts alone), each with Basic auth and with a fresh Bearer JWT per request.
Every (backend, role, auth) is a fresh server on fresh data, so no row inherits another's queue
backlog or table size; the JWT row follows its Basic twin. Each row gets a warm-up, then the
measured run; for Tidings the rows in `messages` are counted afterwards against the 202s wrk saw.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu, targets
from bench.bodies import PAYLOADS, bodies_file
from bench.tokens import TokenPool, mint_pool, pool_size
from bench.wrk import WrkMissing, WrkResult, find_wrk, run_wrk, wrk_version

RESULTS = Path(__file__).with_name("results")
BACKENDS = ("sqlite", "postgresql")
ROLES = ("all", "api")
AUTHS = ("basic", "jwt")
ROLE_LABELS = {"all": "all (+worker)", "api": "api (no worker)"}
FALLBACK_RPS = 5000.0  # pool sizing when neither a Basic nor a bare rate was measured


def _comma_list(
    parser: argparse.ArgumentParser, option: str, value: str, allowed: tuple[str, ...]
) -> list[str]:
    chosen = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = set(chosen) - set(allowed)
    if unknown or not chosen:
        parser.error(f"{option}: choose from {', '.join(allowed)} (got {value!r})")
    return [a for a in allowed if a in chosen]  # always in the table's order


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds of each measured run (10)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of warm-up before each run (3)")
    parser.add_argument(
        "--connections", default="32", help="concurrent connections; a comma list runs each (32)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1; the machine has few cores)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="Tidings backends, comma list (sqlite,postgresql)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a server to create (and drop) a fresh benchmark database on",
    )
    parser.add_argument(
        "--role",
        default=",".join(ROLES),
        help="`tidings serve --role`, comma list (all,api): all = worker in the same process, as "
        "shipped; api = accepts alone, worker off",
    )
    parser.add_argument(
        "--auth",
        default=",".join(AUTHS),
        help="comma list (basic,jwt): basic = the account's key and secret; jwt = a fresh RS256 "
        "Bearer token per request, signed with a benchmark application's key",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="TIDINGS_REDIS_URL for Tidings when jwt is measured: the replay cache, as in production",
    )
    parser.add_argument(
        "--token-margin",
        type=float,
        default=1.5,
        help="JWT pool = Basic requests/s (same server) x (warm-up + duration) x this (1.5)",
    )
    parser.add_argument(
        "--mint-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="processes signing the JWT pool before each JWT row (CPU count)",
    )
    parser.add_argument(
        "--payloads",
        default=",".join(PAYLOADS),
        help="comma list (sms,mixed): sms = one SMS body; mixed = one request of each channel, rotated "
        "(measured on the bare app and the Basic rows)",
    )
    parser.add_argument(
        "--delivery-delay",
        type=float,
        default=3600,
        help="TIDINGS_SIMULATOR_DELIVERY_DELAY_SECONDS: keeps delivery reports out of the run (3600)",
    )
    parser.add_argument(
        "--count-status",
        action="store_true",
        help="count every non-202 exactly with wrk's response() hook (slows wrk)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json", help="JSON results")
    args = parser.parse_args(argv)
    args.connections = [int(c) for c in str(args.connections).split(",") if c.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; choose from {', '.join(BACKENDS)}")
    args.roles = _comma_list(parser, "--role", args.role, ROLES)
    args.auths = _comma_list(parser, "--auth", args.auth, AUTHS)
    args.payloads = _comma_list(parser, "--payloads", args.payloads, tuple(PAYLOADS))
    if not args.connections or min(args.connections) < 1:
        parser.error("--connections must be positive")
    if args.token_margin < 1:
        parser.error("--token-margin must be at least 1")
    return args


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _settled_count(server: targets.Server) -> int:
    """wrk stops the clock with requests still in flight; let the server finish them first."""
    assert server.count_messages is not None
    previous = -1
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.5)
        current = server.count_messages()
        if current == previous or time.monotonic() > deadline:
            return current
        previous = current


def _row_key(row: dict[str, Any]) -> str:
    if row["target"] == "bare":
        return f"bare {row['payload']} c={row['connections']}"
    return f"{row['backend']}/{row['role']}/{row['auth']} {row['payload']} c={row['connections']}"


def _smoke_jwt(server: targets.Server, pool: TokenPool) -> None:
    """One send with the pool's first token, so a refused JWT fails loudly, not as 10 s of 401s."""
    token = pool.path.open().readline().strip()
    request = urllib.request.Request(
        server.url,
        data=targets.SMOKE_BODY,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    pool.advance("smoke check", used=1, next_line=1, exhausted=0)
    if status != 202:
        raise RuntimeError(f"Tidings answered the first JWT send with {status}: {answer!r}")


def _measure(
    server: targets.Server,
    wrk: str,
    args: argparse.Namespace,
    connections: int,
    *,
    role: str | None,
    auth: str | None,
    payload: str,
    workdir: Path,
    pool: TokenPool | None = None,
) -> dict[str, Any]:
    label = (
        f"{server.target}/{server.backend}"
        + (f"/{role}/{auth}" if role else "")
        + f" {payload} c={connections}"
    )
    bodies = bodies_file(payload, workdir)

    def load(phase: str, seconds: float) -> WrkResult:
        result = run_wrk(
            wrk,
            server.url,
            authorization=server.authorization,
            connections=connections,
            threads=args.threads,
            duration_s=seconds,
            count_status=args.count_status,
            tokens_file=pool.path if pool else None,
            tokens_start=pool.cursor if pool else 0,
            bodies_file=bodies,
        )
        if pool:
            assert result.tokens_used is not None and result.tokens_next is not None
            pool.advance(
                phase,
                used=result.tokens_used,
                next_line=result.tokens_next,
                exhausted=result.tokens_exhausted or 0,
            )
        return result

    idle = server.memory()
    if args.warmup > 0:
        _say(f"  {label}: warm-up {args.warmup:g}s")
        load("warm-up", args.warmup)
    before = _settled_count(server) if server.count_messages else None
    _say(f"  {label}: measuring {args.duration:g}s")
    cpu_before = cpu.sample([server.process.pid])
    result = load("measured", args.duration)
    cpu_after = cpu.sample([server.process.pid])
    row: dict[str, Any] = {
        "target": server.target,
        "backend": server.backend,
        "role": role,
        "auth": auth,
        "payload": payload,
        "connections": connections,
        **result.as_dict(),
        # Resident memory before this row's load, and the most it reached (since start).
        "memory_mb": {"idle": round(idle.rss_mb, 1), "peak": round(server.memory().peak_mb, 1)},
        "cpu_us_per_request": _cpu_per_request(cpu_before, cpu_after, result.requests),
    }
    if pool:
        row["tokens"] = pool.as_dict()
    if server.count_messages and before is not None:
        written = _settled_count(server) - before
        # Rows beyond the 202s are requests wrk abandoned when its clock ran out (at most one per
        # connection); a 202 without a row would be a lost write.
        row["durability"] = {
            "rows_written": written,
            "accepted_by_wrk": result.accepted,
            "rows_without_answer": max(0, written - result.accepted),
            "answers_without_row": max(0, result.accepted - written),
            "ok": result.accepted <= written <= result.accepted + connections,
        }
        assert server.count_pending_deliveries is not None
        row["deliveries_pending_after_run"] = server.count_pending_deliveries()
    return row


def _cpu_per_request(
    before: cpu.Sample | None, after: cpu.Sample | None, requests: int
) -> dict[str, float] | None:
    """CPU microseconds a request cost the server's processes, and PostgreSQL's, over the measured
    stretch. How the machine shared its cores between the server and the load generator during the
    run moves this far less than it moves requests/s, which swings the bare app's rate by as much
    as two to one between its two runs on a small shared machine."""
    if before is None or after is None or not requests:
        return None
    return {
        "server": round((after.tidings - before.tidings) / requests * 1e6, 1),
        "postgres": round((after.postgres - before.postgres) / requests * 1e6, 1),
    }


@contextlib.contextmanager
def _target(
    backend: str, role: str | None, workdir: Path, args: argparse.Namespace
) -> Iterator[targets.Server]:
    redis_url = args.redis_url if "jwt" in args.auths else None
    if backend == "bare":
        with targets.bare(workdir) as server:
            yield server
    elif backend == "sqlite":
        assert role is not None
        with targets.tidings_sqlite(
            workdir, role=role, delivery_delay_s=args.delivery_delay, redis_url=redis_url
        ) as server:
            yield server
    else:
        assert role is not None
        with targets.tidings_postgresql(
            workdir,
            admin_url=args.postgres_url,
            role=role,
            delivery_delay_s=args.delivery_delay,
            redis_url=redis_url,
        ) as server:
            yield server


def _expected_rps(rows: list[dict[str, Any]], backend: str, role: str, connections: int) -> tuple[float, str]:
    """What to size a JWT pool by: the Basic rate just measured (same backend, role), else bare's."""
    twin = (backend, role, "basic", "sms", connections)
    for row in reversed(rows):
        if (row["backend"], row["role"], row["auth"], row["payload"], row["connections"]) == twin:
            return row["requests_per_second"], "the Basic row"
    for row in rows:
        if row["target"] == "bare" and row["payload"] == "sms" and row["connections"] == connections:
            return row["requests_per_second"], "the bare app"
    return FALLBACK_RPS, "a fixed guess"


def _jwt_pool(
    server: targets.Server,
    application: tuple[str, str],
    workdir: Path,
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    role: str,
    connections: int,
) -> TokenPool:
    rps, basis = _expected_rps(rows, server.backend, role, connections)
    seconds = args.warmup + args.duration
    count = pool_size(rps, seconds, args.token_margin, connections) + 1  # +1: the smoke check
    _say(
        f"  {server.backend}/{role}/jwt c={connections}: minting {count} tokens "
        f"({rps:.0f}/s from {basis} x {seconds:g}s x {args.token_margin:g}) in {args.mint_processes} process(es)"
    )
    pool = mint_pool(
        workdir / f"tokens-c{connections}.txt",
        application_id=application[0],
        private_key_pem=application[1],
        count=count,
        processes=args.mint_processes,
    )
    _say(f"  minted in {pool.mint_seconds:.1f}s ({pool.size / pool.mint_seconds:.0f} tokens/s)")
    _smoke_jwt(server, pool)
    return pool


def _measure_tidings(
    server: targets.Server,
    wrk: str,
    args: argparse.Namespace,
    workdir: Path,
    role: str,
    auth: str,
    rows: list[dict[str, Any]],
) -> None:
    application = targets.create_application(server) if auth == "jwt" else None
    for connections in args.connections:
        pool = None
        if application is not None:
            pool = _jwt_pool(server, application, workdir, args, rows, role, connections)
            rows.append(
                _measure(
                    server,
                    wrk,
                    args,
                    connections,
                    role=role,
                    auth=auth,
                    payload="sms",
                    workdir=workdir,
                    pool=pool,
                )
            )
            continue
        for payload in args.payloads:  # the mixed payload on the Basic rows, after the SMS one
            rows.append(
                _measure(
                    server, wrk, args, connections, role=role, auth=auth, payload=payload, workdir=workdir
                )
            )


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    runs: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        if row["target"] == "bare":
            runs.setdefault((row["payload"], row["connections"]), []).append(row["requests_per_second"])
    bare = {key: statistics.fmean(rates) for key, rates in runs.items()}
    basic = {
        (row["backend"], row["role"], row["connections"]): row["requests_per_second"]
        for row in rows
        if row["auth"] == "basic" and row["payload"] == "sms"
    }
    bare_cpu: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        if row["target"] == "bare" and row.get("cpu_us_per_request"):
            bare_cpu.setdefault((row["payload"], row["connections"]), []).append(_cpu_cost(row))
    for row in rows:
        base = bare.get((row["payload"], row["connections"]))
        row["ratio_vs_bare"] = round(row["requests_per_second"] / base, 3) if base else None
        costs = bare_cpu.get((row["payload"], row["connections"]))
        row["cpu_ratio_vs_bare"] = (
            round(statistics.fmean(costs) / _cpu_cost(row), 3)
            if costs and row.get("cpu_us_per_request")
            else None
        )
        same_server = basic.get((row["backend"], row["role"], row["connections"]))
        row["ratio_jwt_vs_basic"] = (
            round(row["requests_per_second"] / same_server, 3)
            if row["auth"] == "jwt" and same_server
            else None
        )


def _cpu_cost(row: dict[str, Any]) -> float:
    """CPU microseconds per request, the server's and PostgreSQL's together (the bare app's has
    no PostgreSQL in it)."""
    use = row["cpu_us_per_request"]
    return float(use["server"] + (use["postgres"] if row["backend"] == "postgresql" else 0.0))


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cpu_cell(row: dict[str, Any]) -> str:
    use = row.get("cpu_us_per_request")
    if not use:
        return "-"
    if row["backend"] == "postgresql":
        return f"{use['server']:.0f}+{use['postgres']:.0f}"  # Tidings + PostgreSQL
    return f"{use['server']:.0f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "target",
        "backend",
        "role",
        "auth",
        "payload",
        "connections",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ratio vs bare",
        "CPU µs/req",
        "CPU ratio vs bare",
        "ratio JWT/Basic",
        "RSS idle MB",
        "RSS peak MB",
    ]
    lines = [
        [
            row["target"],
            row["backend"],
            ROLE_LABELS.get(row["role"] or "", "-"),
            row["auth"] or "-",
            row["payload"],
            str(row["connections"]),
            f"{row['requests_per_second']:.0f}",
            f"{row['latency_ms']['p50']:.2f}",
            f"{row['latency_ms']['p99']:.2f}",
            str(row["errors"]["total"]) + (" (!)" if row.get("tokens", {}).get("ran_out") else ""),
            _ratio(row.get("ratio_vs_bare")),
            _cpu_cell(row),
            _ratio(row.get("cpu_ratio_vs_bare")),
            _ratio(row.get("ratio_jwt_vs_basic")),
            f"{row['memory_mb']['idle']:.0f}",
            f"{row['memory_mb']['peak']:.0f}",
        ]
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    left = {0, 1, 2, 3, 4}

    def render(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(cells) for cells in lines)])


def format_notes(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    notes = []
    for row in rows:
        if "durability" not in row:
            continue
        d = row["durability"]
        verdict = "ok" if d["ok"] else "FAILED"
        notes.append(
            f"durability {_row_key(row)}: {d['rows_written']} rows written, "
            f"{d['accepted_by_wrk']} 202s counted by wrk, {d['rows_without_answer']} rows whose answer wrk "
            f"abandoned at the end, {d['answers_without_row']} answers without a row: {verdict}; "
            f"{row['deliveries_pending_after_run']} deliveries still queued after the run"
        )
    for row in rows:
        if "tokens" not in row:
            continue
        t = row["tokens"]
        used = t["used"]
        ran_out = (
            f"RAN OUT: {sum(t['requests_without_token'].values())} requests went without a token "
            "(401s, counted as errors; the row is not valid, raise --token-margin)"
            if t["ran_out"]
            else "never ran out"
        )
        notes.append(
            f"tokens {_row_key(row)}: {t['minted']} minted in {t['mint_seconds']:g}s "
            f"({t['tokens_per_second']}/s, {t['mint_processes']} processes, before the warm-up); "
            f"taken: {used.get('smoke check', 0)} smoke check + {used.get('warm-up', 0)} warm-up + "
            f"{used.get('measured', 0)} measured, each once; {t['left']} left; {ran_out}"
        )
    roles = {
        "all": "all (+worker) = `tidings serve --role all`, as shipped: the worker runs in the same "
        "process; accepts come first, so its writes hold back while requests are pending",
        "api": "api (no worker) = `tidings serve --role api`: accepts alone, messages queue up for a worker",
    }
    for role in args.roles:
        notes.append(f"role {roles[role]}")
    notes.append(
        f"delivery reports held back {args.delivery_delay:g}s; each (backend, role, auth) is a fresh "
        "server on fresh data (no row inherits another's queue backlog)"
    )
    if "jwt" in args.auths:
        notes.append(
            f"Tidings ran with TIDINGS_REDIS_URL={args.redis_url} (Basic and JWT rows alike): the JWT "
            "replay cache (one script call per accept batch) in Redis, as in production; Basic requests do not touch it"
        )
        notes.append(
            "jwt = `Authorization: Bearer <token>`, a fresh RS256 token per request (claims application_id, "
            "iat, exp = iat + 900, jti uuid4, as vonage_jwt builds them), signed with the key of an "
            "application created through POST /v2/applications; minted before the row, so signing "
            "is not in the measured time"
        )
        notes.append(
            "ratio JWT/Basic = a JWT row's requests/s / the Basic row's with the same backend, role and "
            "connections in this run (Basic measured just before, on its own fresh server); target >= 0.80"
        )
    notes.append(
        "ratio vs bare = requests/s / the mean of the bare app's two runs (first and last) at the same "
        "connections and payload (bare gets the Basic header); payload mixed = one request of each channel in turn (bench/bodies.py)"
    )
    notes.append(
        "CPU µs/req = CPU time of the server's processes (and, after a +, of PostgreSQL's) over the "
        "measured stretch / requests; CPU ratio vs bare = the bare app's mean µs/req / the row's "
        "(PostgreSQL's included): what a request costs, which the way the machine shared its cores "
        "between the server and wrk moves far less than it moves a rate"
    )
    status = "exact non-202 (response hook)" if args.count_status else "wrk's status >= 400 count"
    notes.append(f"errors = socket errors + timeouts + {status}")
    return "\n".join(notes)


def _plan(args: argparse.Namespace) -> list[tuple[str, str | None, str | None]]:
    """The bare app first and again last: on a small shared machine its rate can move by half
    within the quarter hour a run takes, so Tidings' rows are read against the mean of both."""
    tidings: list[tuple[str, str | None, str | None]] = [
        (backend, role, auth) for backend in args.backends for role in args.roles for auth in args.auths
    ]
    return [("bare", None, None), *tidings, ("bare", None, None)]


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        wrk = find_wrk()
    except WrkMissing as missing:
        _say(str(missing))
        return 2
    if "jwt" in args.auths:
        try:
            targets.check_redis(args.redis_url)
        except RuntimeError as error:
            _say(str(error))
            return 2
    plan = _plan(args)
    per_run = args.warmup + args.duration + 2
    mint = 8 * len(args.connections)  # about 40k tokens at about 5k/s on two cores
    estimate = sum(
        len(args.connections) * per_run * (1 if auth == "jwt" else len(args.payloads))
        + (3 if backend == "bare" else 6)
        + (mint if auth == "jwt" else 0)
        for backend, _, auth in plan
    )
    _say(
        f"bench: bare, then {', '.join('/'.join(str(p) for p in step) for step in plan[1:-1])}, bare again (a fresh "
        f"server each), at connections {args.connections}, {args.duration:g}s each after "
        f"{args.warmup:g}s warm-up, wrk -t{args.threads} (about {estimate:.0f}s)"
    )
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as tmp:
        for step, (backend, role, auth) in enumerate(plan):
            name = backend if role is None else f"{backend}-{role}-{auth}"
            workdir = Path(tmp) / f"{step}-{name}"
            workdir.mkdir()
            try:
                with _target(backend, role, workdir, args) as server:
                    _say(f"{name}: listening on {server.url}")
                    if role is None:
                        for connections in args.connections:
                            for payload in args.payloads:
                                rows.append(
                                    _measure(
                                        server,
                                        wrk,
                                        args,
                                        connections,
                                        role=None,
                                        auth=None,
                                        payload=payload,
                                        workdir=workdir,
                                    )
                                )
                    else:
                        assert auth is not None
                        _measure_tidings(server, wrk, args, workdir, role, auth, rows)
            except Exception as error:  # one target failing should not hide the others' numbers
                failures.append(f"{name}: {error}")
                _say(f"{name}: FAILED: {error}")
    elapsed = time.monotonic() - started
    _add_ratios(rows)
    print()
    print(format_table(rows))
    print()
    print(format_notes(rows, args))
    for failure in failures:
        print(f"FAILED {failure}")
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "wrk": wrk_version(wrk),
        },
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "wrk_threads": args.threads,
            "tidings_roles": args.roles,
            "auths": args.auths,
            "redis_url": args.redis_url if "jwt" in args.auths else None,
            "token_margin": args.token_margin,
            "mint_processes": args.mint_processes,
            "simulator_delivery_delay_s": args.delivery_delay,
            "count_status": args.count_status,
            "tidings_env": sorted(k for k in os.environ if k.startswith("TIDINGS_")),
        },
        "results": rows,
        "failures": failures,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output} (whole run {elapsed:.0f}s)")
    lost = any(not row["durability"]["ok"] for row in rows if "durability" in row)
    ran_out = any(row["tokens"]["ran_out"] for row in rows if "tokens" in row)
    return 1 if failures or lost or ran_out else 0


if __name__ == "__main__":
    sys.exit(main())
