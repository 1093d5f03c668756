"""engine.jsonlog: what a log shipper reading the daemon's stderr gets."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from engine import jsonlog


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_fixed_fields_first_then_extras() -> None:
    out = io.StringIO()
    jsonlog.configure("INFO", json=True, stream=out)
    logging.getLogger("engine.daemon").info("ready in %.1fs", 0.84, extra={"symbols": 12})
    [doc] = lines(out)
    assert list(doc)[:4] == ["ts", "level", "logger", "msg"]
    assert doc["level"] == "INFO"
    assert doc["logger"] == "engine.daemon"
    assert doc["msg"] == "ready in 0.8s"
    assert doc["symbols"] == 12
    assert isinstance(doc["ts"], str) and doc["ts"].endswith("Z")


def test_level_filters_records() -> None:
    out = io.StringIO()
    jsonlog.configure("warning", json=True, stream=out)
    log = logging.getLogger("engine.test")
    log.info("hidden")
    log.warning("shown")
    assert [doc["msg"] for doc in lines(out)] == ["shown"]


def test_exception_traceback_is_one_field_of_one_line() -> None:
    out = io.StringIO()
    jsonlog.configure(logging.INFO, json=True, stream=out)
    try:
        raise RuntimeError("journal write failed")
    except RuntimeError:
        logging.getLogger("actors.persistence").exception("stage failed", extra={"seq": 42})
    [doc] = lines(out)
    assert doc["seq"] == 42
    assert isinstance(doc["exc"], str)
    assert "RuntimeError: journal write failed" in doc["exc"]


def test_values_json_cannot_encode_are_written_as_text() -> None:
    out = io.StringIO()
    jsonlog.configure(logging.INFO, json=True, stream=out)
    logging.getLogger("x").info("m", extra={"path": Path("/var/lib/cift"), "huge": 2**70, "n": 3})
    [doc] = lines(out)
    assert doc["path"] == "/var/lib/cift"
    assert doc["huge"] == str(2**70)
    assert doc["n"] == 3


def test_configure_twice_does_not_duplicate_lines() -> None:
    out = io.StringIO()
    jsonlog.configure(logging.INFO, json=True, stream=out)
    jsonlog.configure(logging.INFO, json=True, stream=out)
    logging.getLogger("x").info("once")
    assert len(lines(out)) == 1


def test_text_format_appends_extras_as_key_value() -> None:
    out = io.StringIO()
    jsonlog.configure(logging.INFO, json=False, stream=out)
    logging.getLogger("engine.gateway").info("session closed", extra={"reason": "slow consumer"})
    line = out.getvalue().rstrip()
    assert line.endswith("INFO engine.gateway: session closed reason=slow consumer")


def test_unknown_level_is_rejected_before_anything_changes() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    with pytest.raises(ValueError, match="LOUD"):
        jsonlog.configure("LOUD")
    assert root.handlers == before


def test_configure_from_env_reads_format_level_and_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFT_LOG_FORMAT", "json")
    monkeypatch.setenv("CIFT_LOG_LEVEL", "debug")
    monkeypatch.setenv("CIFT_SHARD", "eq-a")
    out = io.StringIO()
    jsonlog.configure_from_env(stream=out)
    logging.getLogger("x").debug("visible at debug")
    [doc] = lines(out)
    assert doc["shard"] == "eq-a"
    assert doc["msg"] == "visible at debug"


def test_configure_from_env_rejects_unknown_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFT_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="CIFT_LOG_FORMAT"):
        jsonlog.configure_from_env(stream=io.StringIO())
