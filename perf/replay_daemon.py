"""A fresh daemon subprocess configured for a recorded flow (the `daemon` replay target).

The config holds the flow's symbols (tick, lot, price limits as recorded) and one account per
session (token `perf`), listens on ports the OS picks (0), disconnects idle sessions only after
an hour, and keeps its data directory where it is told (a new temporary one by default). The
daemon runs as `python -m engine run --config FILE` with its output in ROOT/daemon.log; it is
stopped by its pid (SIGTERM, then SIGKILL after a timeout).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from perf.flow import Session, Symbol

__all__ = ["TOKEN", "DaemonError", "DaemonProcess", "daemon_config"]

TOKEN = "perf"
REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class DaemonError(RuntimeError):
    """The daemon did not start, or stopped badly; the message ends with its log."""


def daemon_config(
    symbols: Sequence[Symbol],
    sessions: Sequence[Session],
    data_dir: Path,
    *,
    fsync: str = "none",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "process": {"data_dir": str(data_dir), "log_level": "warning"},
        "gateway": {"host": "127.0.0.1", "port": 0, "idle_timeout_s": 3600.0},
        "http": {"enabled": True, "host": "127.0.0.1", "port": 0},
        "journal": {"fsync": fsync},
        "symbols": [asdict(s) for s in symbols],
        "accounts": [
            {"id": s.account, "token": TOKEN, "cancel_on_disconnect": False} for s in sessions
        ],
    }
    for section, values in (overrides or {}).items():
        config.setdefault(section, {}).update(values)
    return config


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def toml_dumps(config: Mapping[str, Any]) -> str:
    """The TOML subset an engine config needs: tables of scalars and arrays of tables."""
    lines: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        else:
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
        lines.append("")
    return "\n".join(lines)


class DaemonProcess:
    """`with DaemonProcess(symbols, sessions) as d:` -- d.host, d.port, d.http_port."""

    def __init__(
        self,
        symbols: Sequence[Symbol],
        sessions: Sequence[Session],
        *,
        data_dir: str | Path | None = None,
        fsync: str = "none",
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._tmp = None if data_dir is not None else tempfile.mkdtemp(prefix="cift-perf-")
        self.root = Path(data_dir) if data_dir is not None else Path(str(self._tmp))
        self.data_dir = self.root / "data"
        self.config_file = self.root / "engine.toml"
        self.log_file = self.root / "daemon.log"
        self.config = daemon_config(
            symbols, sessions, self.data_dir, fsync=fsync, overrides=overrides
        )
        self.host = "127.0.0.1"
        self.port = 0
        self.http_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s = 0.0  # seconds from spawn to ready (recovery included)

    def start(self) -> DaemonProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(toml_dumps(self.config), encoding="utf-8")
        runtime = self.data_dir / "daemon.json"
        runtime.unlink(missing_ok=True)
        started = time.perf_counter()
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine", "run", "--config", str(self.config_file)],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        deadline = started + READY_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise DaemonError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            try:
                info = orjson.loads(runtime.read_bytes())
                break
            except (OSError, ValueError):
                pass
            if time.perf_counter() > deadline:
                self.stop()
                raise DaemonError(f"daemon not ready after {READY_TIMEOUT_S:.0f} s:\n{self.log()}")
            time.sleep(0.005)
        self.ready_s = time.perf_counter() - started
        self.port = int(info["gateway_port"])
        self.http_port = int(info["http_port"])
        return self

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> int:
        """SIGTERM by pid and wait (SIGKILL after a timeout); returns the exit code."""
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        self.proc = None
        return proc.returncode

    def cleanup(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> DaemonProcess:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self.cleanup()
