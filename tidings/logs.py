"""Structured logs: one JSON object a line in production, readable lines in a terminal.

Every logger of the process, uvicorn's included, writes through the one handler set up here, so
the stream is never a mix of JSON and plain text. A line's structured fields are passed as
`extra={...}`: the JSON form puts them beside the message, the text form appends them as
key=value. Nothing that calls these loggers passes a secret, a token or a message body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

# What every LogRecord carries of its own; anything else on a record came in through `extra`.
# uvicorn adds `color_message`, its message with terminal colours: not a field.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
# uvicorn's loggers: they must reach the root handler, not handlers of their own.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
# How long an info line may wait in the handler before it is written, and how many may wait.
LOG_FLUSH_SECONDS = 0.1
LOG_LINES_HELD = 512


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_FIELDS}


def log_line(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    """`logger.log(level, message, extra=fields)` for a line written for every request or webhook,
    at about three quarters of its cost (7 against 9 µs for an access line, measured alone).
    The record is made here rather than by `Logger._log` and `makeRecord`, which check each field
    against the record's attributes one by one, and then goes through the logger's filters and
    handlers as any other record does. `message` is final: it is not %-formatted. A field named as
    one of LogRecord's own attributes raises KeyError, as with `extra`."""
    if not logger.isEnabledFor(level):
        return
    if not _RECORD_FIELDS.isdisjoint(fields):
        raise KeyError(
            f"fields {sorted(_RECORD_FIELDS.intersection(fields))} would overwrite the record's own"
        )
    record = logging.LogRecord(logger.name, level, "(unknown file)", 0, message, None, None)
    record.__dict__.update(fields)
    logger.handle(record)


class JsonFormatter(logging.Formatter):
    """A line per request is written on the send path, so the per-line work is kept small: the
    line encoded by orjson (in C; the standard library's encoder was a quarter of what an access
    line cost the event loop), and the timestamp's date and time rendered once per second. What
    orjson refuses (an integer past 64 bits, a lone surrogate, a key that is not a string) goes
    through the standard library's encoder instead: a log line never fails."""

    def __init__(self) -> None:
        super().__init__()
        self._fallback = json.JSONEncoder(ensure_ascii=False, default=str)
        self._second: tuple[int, str] = (-1, "")  # one tuple, replaced whole: safe across threads

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:
            return self._fallback.encode(entry)

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC with milliseconds: 2026-01-01T12:00:00.000+00:00."""
        whole = int(created)
        # Rounded to the microsecond first, as datetime does: .8219998 is .822000.
        micro = round((created - whole) * 1_000_000)
        if micro == 1_000_000:
            whole, micro = whole + 1, 0
        second, text = self._second
        if whole != second:
            text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (whole, text)
        return f"{text}.{micro // 1000:03d}+00:00"


class TextFormatter(logging.Formatter):
    """`2026-01-01 12:00:00,000 INFO    tidings.access: POST /v1/messages 202 method=POST …`:
    the message first, for the eye, then the same fields the JSON form has."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = extra_fields(record)
        if fields:
            line += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return line


class BatchingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes its lines a batch at a time: those of the last LOG_FLUSH_SECONDS in one write, from
    a thread of its own, instead of a write (a system call) for each line as logging's own
    StreamHandler does. Under load the send path logs an access line a request and the worker
    a line a webhook, and those writes cost the event loop about 4% of its time (py-spy, bench/).
    A warning or worse is written at once, with every line before it, so nothing that explains
    a failure waits; so is a full batch. A process killed outright loses at most the info lines
    of its last LOG_FLUSH_SECONDS; one that exits normally writes everything (logging flushes
    every handler at exit). No library does this: logging's MemoryHandler holds records back but
    hands them on one write apiece."""

    def __init__(self, stream: Any, flush_seconds: float = LOG_FLUSH_SECONDS) -> None:
        super().__init__(stream)
        self._held: list[str] = []
        self._closed = threading.Event()
        threading.Thread(
            target=self._flush_every, args=(flush_seconds,), name="tidings-log-flush", daemon=True
        ).start()

    def emit(self, record: logging.LogRecord) -> None:  # called under the handler's lock
        try:
            self._held.append(self.format(record))
            if record.levelno >= logging.WARNING or len(self._held) >= LOG_LINES_HELD:
                self._write_held()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_held()
        finally:
            self.release()

    def close(self) -> None:
        self._closed.set()
        self.flush()
        super().close()

    def _write_held(self) -> None:
        if not self._held:
            return
        text = self.terminator.join(self._held) + self.terminator
        self._held.clear()
        self.stream.write(text)
        self.stream.flush()

    def _flush_every(self, seconds: float) -> None:
        while not self._closed.wait(seconds):
            with contextlib.suppress(OSError, ValueError):  # stderr is gone: nowhere to say so
                self.flush()


def use_json(log_format: str) -> bool:
    return log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())


def configure_logging(level: str, log_format: str) -> None:
    handler = BatchingStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json(log_format) else TextFormatter())
    # The lines carry none of what these fields cost to collect on every record (the caller's
    # file and line, found by walking the stack; thread and process names): the logging docs'
    # own "optimization" switches. An access line a request makes that cost add up.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    for replaced in root.handlers:
        if isinstance(replaced, BatchingStreamHandler):
            replaced.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers[:] = []
        server_logger.propagate = True
    # Tidings writes its own access lines (api/access_log.py), with the account and the latency.
    logging.getLogger("uvicorn.access").disabled = True
    # Python's warnings go through the handler too rather than straight to stderr.
    logging.captureWarnings(True)
    # httpx logs every request URL at INFO; webhook URLs can carry tokens in their query strings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
