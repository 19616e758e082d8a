"""The SQLite writer process, driven over its pipes as the server drives it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tidings.store import sqlite_writer_process
from tidings.store.sqlite_writer_process import encode_frame, read_frame
from tidings.store.statements import Execute, ExecuteMany

INSERT = "INSERT INTO notes (id, body) VALUES (?, ?)"
DEBIT = "UPDATE wallets SET balance = balance - ? WHERE owner = ? AND balance - ? >= 0"


class WriterProcess:
    def __init__(self, database: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", sqlite_writer_process.__name__, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def commit(self, statements: list[Any]) -> tuple[Any, ...]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(encode_frame(statements))
        self.process.stdin.flush()
        answer: tuple[Any, ...] = read_frame(self.process.stdout)
        return answer

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=10)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "writer.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        conn.execute("CREATE TABLE wallets (owner TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
        conn.execute("INSERT INTO wallets VALUES ('ann', 10)")
    return path


@pytest.fixture
def writer(database: Path) -> Iterator[WriterProcess]:
    started = WriterProcess(database)
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


def notes(database: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(database) as conn:
        return list(conn.execute("SELECT id, body FROM notes ORDER BY id"))


def balance(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        value: int = conn.execute("SELECT balance FROM wallets WHERE owner = 'ann'").fetchone()[0]
        return value


def test_a_transaction_is_committed_before_the_answer(database: Path, writer: WriterProcess) -> None:
    answer = writer.commit([ExecuteMany(INSERT, [(1, "a"), (2, "b")]), Execute(DEBIT, (3, "ann", 3), "ann")])
    assert answer == ("committed", [])
    assert notes(database) == [(1, "a"), (2, "b")]
    assert balance(database) == 7


def test_a_debit_that_does_not_fit_rolls_the_whole_transaction_back(
    database: Path, writer: WriterProcess
) -> None:
    answer = writer.commit([ExecuteMany(INSERT, [(1, "a")]), Execute(DEBIT, (11, "ann", 11), "ann")])
    assert answer == ("short", "ann")
    assert notes(database) == [] and balance(database) == 10
    # An unguarded statement that changes nothing is not a refusal.
    assert writer.commit([Execute(DEBIT, (11, "bob", 11))]) == ("committed", [])


def test_a_duplicate_key_is_reported_and_nothing_of_its_transaction_kept(
    database: Path, writer: WriterProcess
) -> None:
    assert writer.commit([ExecuteMany(INSERT, [(1, "a")])]) == ("committed", [])
    answer = writer.commit([Execute(DEBIT, (1, "ann", 1)), ExecuteMany(INSERT, [(2, "b"), (1, "again")])])
    assert answer[0] == "integrity" and answer[1] == INSERT and "UNIQUE" in answer[2]
    assert notes(database) == [(1, "a")] and balance(database) == 10
    assert writer.commit([ExecuteMany(INSERT, [(2, "b")])]) == ("committed", [])  # and it goes on


def test_any_other_error_fails_only_its_transaction(database: Path, writer: WriterProcess) -> None:
    answer = writer.commit([ExecuteMany(INSERT, [(1, "a")]), Execute("UPDATE nowhere SET x = 1", ())])
    assert answer[0] == "failed" and "no such table" in answer[1]
    assert notes(database) == []
    assert writer.commit([ExecuteMany(INSERT, [(1, "a")])]) == ("committed", [])


def test_it_outlives_interrupts_and_stops_when_its_input_closes(
    database: Path, writer: WriterProcess
) -> None:
    # A service manager's SIGTERM reaches every process of the service; the server decides when
    # writing stops.
    assert writer.commit([ExecuteMany(INSERT, [(1, "a")])]) == ("committed", [])  # it is running
    writer.process.send_signal(signal.SIGINT)
    writer.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert writer.process.poll() is None
    assert writer.commit([ExecuteMany(INSERT, [(2, "b")])]) == ("committed", [])
    assert writer.close() == 0
    assert notes(database) == [(1, "a"), (2, "b")]


def test_it_stops_when_the_server_is_killed(database: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "writer.pid"
    # A stand-in server: starts the writer, tells us its pid, then waits to be killed.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time, pathlib\n"
            f"p = subprocess.Popen([sys.executable, '-m', {sqlite_writer_process.__name__!r}, {str(database)!r}],"
            " stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
            f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid))\n"
            "time.sleep(60)\n",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        writer_pid = int(pid_file.read_text())
        server.kill()
        server.wait()
        while _alive(writer_pid):
            assert time.monotonic() < deadline, "the writer outlived its server"
            time.sleep(0.05)
    finally:
        server.kill()
        server.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init in this container) has stopped writing too.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"
