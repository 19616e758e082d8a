"""configure_logging: every logger of the process, uvicorn's and Python's warnings included,
writes one format through one handler."""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tidings.logs import BatchingStreamHandler, JsonFormatter, TextFormatter, configure_logging, log_line


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uvicorn = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    kept = [(lg, list(lg.handlers), lg.propagate, lg.disabled) for lg in uvicorn]
    yield
    for handler in root.handlers:
        if isinstance(handler, BatchingStreamHandler):
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    for lg, lg_handlers, propagate, disabled in kept:
        lg.handlers[:], lg.propagate, lg.disabled = lg_handlers, propagate, disabled
    logging.captureWarnings(False)


def _configure(log_format: str) -> None:
    # A handler of uvicorn's own, as its default logging config would install: taken away.
    logging.getLogger("uvicorn.error").addHandler(logging.StreamHandler())
    configure_logging("INFO", log_format)


def _emit_a_bit_of_everything() -> None:
    logging.getLogger("uvicorn.error").info(
        "Started server process [1]", extra={"color_message": "Started server process [\x1b[36m1\x1b[0m]"}
    )
    logging.getLogger("uvicorn.access").info("127.0.0.1 - GET / 200")  # ours replace these
    logging.getLogger("tidings.webhooks").info(
        "webhook delivered", extra={"message_uuid": "m-1", "host": "example.com", "status": 200}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("something old", DeprecationWarning, stacklevel=1)
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("tidings.api").exception("it broke")


def test_json_lines_only(restored_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    _configure("json")
    _emit_a_bit_of_everything()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["logger"] for line in lines] == [
        "uvicorn.error",
        "tidings.webhooks",
        "py.warnings",
        "tidings.api",
    ]
    webhook = lines[1]
    assert (webhook["message_uuid"], webhook["host"], webhook["status"]) == ("m-1", "example.com", 200)
    assert webhook["level"] == "info" and webhook["message"] == "webhook delivered"
    assert "ValueError: bad" in lines[3]["exception"]
    assert "color_message" not in lines[0]  # uvicorn's coloured copy of its message


def test_text_lines_for_a_terminal(restored_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    _configure("text")
    _emit_a_bit_of_everything()
    err = capsys.readouterr().err
    assert "INFO    tidings.webhooks: webhook delivered message_uuid=m-1 host=example.com status=200" in err
    assert "INFO    uvicorn.error: Started server process [1]" in err
    assert not any(line.startswith("{") for line in err.splitlines())


@pytest.mark.parametrize(
    "created", [0.0, 1764381935.0, 1764381935.4189, 1764381939.8219998, 1764381935.9999996, 1764381936.0005]
)
def test_json_time_is_utc_with_milliseconds_as_datetime_renders_it(created: float) -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("tidings", logging.INFO, __file__, 1, "m", None, None)
    for _ in range(2):  # the second time from the formatter's per-second cache
        record.created = created
        line = json.loads(formatter.format(record))
        assert line["time"] == datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


@pytest.mark.parametrize(
    "value",
    [2**70, "lone \ud800 surrogate", {1: "a key that is not a string"}, {"nested": [1.5, None, True]}],
    ids=["integer_past_64_bits", "lone_surrogate", "non_string_key", "plain"],
)
def test_a_field_the_fast_encoder_refuses_still_makes_a_json_line(value: object) -> None:
    record = logging.LogRecord("tidings", logging.INFO, __file__, 1, "m", None, None)
    record.field = value
    line = json.loads(JsonFormatter().format(record))
    assert line["field"] == json.loads(json.dumps(value))
    assert line["message"] == "m"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    logger = logging.getLogger("tidings.test_log_line")
    handler = _Records()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)
    logger.propagate = True
    logger.filters.clear()


def test_log_line_writes_what_extra_would(records: _Records) -> None:
    logger = logging.getLogger("tidings.test_log_line")
    fields = {"method": "POST", "path": "/v1/messages", "status": 202, "latency_ms": 1.5, "api_key": None}
    logger.info("POST /v1/messages 202", extra=fields)
    log_line(logger, logging.INFO, "POST /v1/messages 202", fields)
    through_extra, direct = records.records
    for formatter in (JsonFormatter(), TextFormatter()):
        expected, got = formatter.format(through_extra), formatter.format(direct)
        if isinstance(formatter, JsonFormatter):  # the same but for the time each was made
            expected, got = (dict(json.loads(line), time=None) for line in (expected, got))
        else:
            expected, got = (line.split(" ", 2)[2] for line in (expected, got))
        assert got == expected
    assert (direct.levelno, direct.status) == (logging.INFO, 202)  # type: ignore[attr-defined]


def test_log_line_is_not_percent_formatted(records: _Records) -> None:
    log_line(logging.getLogger("tidings.test_log_line"), logging.INFO, "GET /a%20b %s", {})
    (record,) = records.records
    assert record.getMessage() == "GET /a%20b %s"
    assert json.loads(JsonFormatter().format(record))["message"] == "GET /a%20b %s"


def test_log_line_honours_the_level_and_the_filters(records: _Records) -> None:
    logger = logging.getLogger("tidings.test_log_line")
    log_line(logger, logging.DEBUG, "below the level", {})
    logger.addFilter(lambda record: record.getMessage() != "filtered out")
    log_line(logger, logging.INFO, "filtered out", {})
    log_line(logger, logging.INFO, "kept", {"n": 1})
    assert [record.getMessage() for record in records.records] == ["kept"]


def test_a_field_a_filter_adds_to_a_log_line_is_written_too(records: _Records) -> None:
    logger = logging.getLogger("tidings.test_log_line")

    def add_request_id(record: logging.LogRecord) -> bool:
        record.request_id = "r-1"
        return True

    logger.addFilter(add_request_id)
    log_line(logger, logging.INFO, "GET / 200", {"status": 200})
    (record,) = records.records
    line = json.loads(JsonFormatter().format(record))
    assert (line["status"], line["request_id"]) == (200, "r-1")


def test_log_line_refuses_a_field_that_would_overwrite_the_record(records: _Records) -> None:
    with pytest.raises(KeyError, match="levelname"):
        log_line(logging.getLogger("tidings.test_log_line"), logging.INFO, "m", {"levelname": "x"})
    assert records.records == []


class _Stream:
    """A stream that keeps each write apart, and says when one arrives."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.wrote = threading.Event()

    def write(self, text: str) -> None:
        self.writes.append(text)
        self.wrote.set()

    def flush(self) -> None:
        pass


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("tidings", level, __file__, 1, message, None, None)


def test_info_lines_wait_for_a_warning_and_go_out_with_it_in_one_write() -> None:
    stream = _Stream()
    handler = BatchingStreamHandler(stream, flush_seconds=3600)
    try:
        for message in ("one", "two", "three"):
            handler.handle(_record(logging.INFO, message))
        assert stream.writes == []
        handler.handle(_record(logging.WARNING, "four"))
        assert stream.writes == ["one\ntwo\nthree\nfour\n"]
    finally:
        handler.close()


def test_held_lines_are_written_by_the_flush_thread_and_at_close() -> None:
    stream = _Stream()
    handler = BatchingStreamHandler(stream, flush_seconds=0.01)
    try:
        handler.handle(_record(logging.INFO, "soon"))
        assert stream.wrote.wait(10)
        assert stream.writes == ["soon\n"]
    finally:
        handler.close()
    closing = _Stream()
    handler = BatchingStreamHandler(closing, flush_seconds=3600)
    handler.handle(_record(logging.INFO, "last words"))
    handler.close()
    assert closing.writes == ["last words\n"]


def test_a_full_batch_is_written_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tidings.logs.LOG_LINES_HELD", 2)
    stream = _Stream()
    handler = BatchingStreamHandler(stream, flush_seconds=3600)
    try:
        handler.handle(_record(logging.INFO, "a"))
        handler.handle(_record(logging.INFO, "b"))
        assert stream.writes == ["a\nb\n"]
    finally:
        handler.close()
