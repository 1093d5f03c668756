"""Structured logging: one JSON object per line (orjson), or plain text for a terminal.

Every JSON line has the same leading fields, then whatever the call site passed in ``extra=``::

    {"ts":"2025-01-07T09:30:00.123456Z","level":"INFO","logger":"engine.daemon",
     "msg":"ready","symbols":12,"recovery_s":0.84}

``exc`` (formatted traceback) and ``stack`` appear when the record carries them. Values orjson
cannot encode natively are written with ``str()``, so a log call never fails on its arguments.

Entry points: ``configure(level, json)`` for the config's ``[process] log_level``/``log_format``
(and the CLI), and ``configure_from_env()`` where only the environment is at hand
(``CIFT_LOG_LEVEL``, ``CIFT_LOG_FORMAT=json|text``; ``CIFT_SHARD``, which the systemd unit sets to
the instance name, becomes a ``"shard"`` field on every line).
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

__all__ = ["JsonFormatter", "TextFormatter", "configure", "configure_from_env"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RESERVED = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)
_ORDER = ("ts", "level", "logger", "msg")


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RESERVED and not key.startswith("_") and key not in _ORDER
    }


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ts, level, logger, msg, extra fields, exc, stack."""

    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(self._static)
        doc.update(_extras(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(doc, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except orjson.JSONEncodeError:
            # An int beyond 64 bits (``default`` never sees those) or a nested oddity: fall back
            # to text for every value that is not already a plain JSON scalar.
            safe = {key: _plain(value) for key, value in doc.items()}
            return orjson.dumps(safe).decode()


def _plain(value: Any) -> Any:
    if isinstance(value, bool | float | str) or value is None:
        return value
    if isinstance(value, int) and -(2**63) <= value < 2**64:
        return value
    return str(value)


class TextFormatter(logging.Formatter):
    """Human-readable: ``ts LEVEL logger: msg key=value ...`` (extras appended as key=value)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        head, sep, tail = line.partition("\n")
        fields = " ".join(f"{key}={value}" for key, value in extras.items())
        return f"{head} {fields}{sep}{tail}"


def configure(
    level: int | str = logging.INFO,
    json: bool = True,
    *,
    stream: IO[str] | None = None,
    static: dict[str, Any] | None = None,
) -> logging.Handler:
    """Route all logging to one stream handler (stderr by default) in JSON or text.

    Replaces the root logger's handlers, so calling it again (tests, a reload) does not duplicate
    lines. ``static`` fields are added to every JSON line (e.g. ``{"shard": "a"}``). Returns the
    handler it installed. An unknown level name raises ValueError.
    """
    if isinstance(level, str):
        level = level.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(static) if json else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def configure_from_env(
    default_level: int | str = logging.INFO, *, stream: IO[str] | None = None
) -> logging.Handler:
    """``configure`` from ``CIFT_LOG_LEVEL`` and ``CIFT_LOG_FORMAT`` (``json`` or ``text``).

    Without ``CIFT_LOG_FORMAT`` the format is JSON unless the stream is a terminal. With
    ``CIFT_SHARD`` set (the systemd unit sets it to the instance name) every JSON line carries
    ``"shard"``. A bad value raises ValueError naming the variable.
    """
    out = stream if stream is not None else sys.stderr
    fmt = os.environ.get("CIFT_LOG_FORMAT", "").strip().lower()
    if fmt not in ("", "json", "text"):
        raise ValueError(f"CIFT_LOG_FORMAT must be 'json' or 'text', got {fmt!r}")
    as_json = fmt == "json" or (fmt == "" and not out.isatty())
    level: int | str = os.environ.get("CIFT_LOG_LEVEL", "").strip().upper() or default_level
    if isinstance(level, str) and level not in logging.getLevelNamesMapping():
        raise ValueError(f"CIFT_LOG_LEVEL must be a logging level name, got {level!r}")
    shard = os.environ.get("CIFT_SHARD", "").strip()
    return configure(level, as_json, stream=out, static={"shard": shard} if shard else None)
