"""Shared fixtures: a real daemon subprocess on free ports, and clients for it.

The daemon runs `python -m engine run --config FILE` with stdin/stdout/stderr redirected (its
log goes to a file in the test's tmp dir), listens on ports chosen by the OS (port 0; the daemon
writes the ports it bound to DATA_DIR/daemon.json, which is how the fixture knows it is ready),
and is stopped by pid at the end of the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.client import Client
from engine.protocol import Report

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0


def symbol(name: str, **kw: int) -> dict[str, Any]:
    s: dict[str, Any] = {
        "name": name,
        "tick_size": 1,
        "lot_size": 1,
        "price_precision": 2,
        "min_price": 1,
        "max_price": 1_000_000,
        "reference_price": 10_000,
        "price_band_bps": 0,
        "max_order_qty": 1_000_000,
    }
    s.update(kw)
    return s


def base_config(data_dir: Path) -> dict[str, Any]:
    return {
        "process": {"data_dir": str(data_dir)},
        "gateway": {"port": 0},
        "http": {"port": 0},
        "clock": {"advance_interval_ms": 50},
        "symbols": [
            symbol("AAPL"),
            symbol("MSFT"),
            # A symbol with every basic risk check on: tick 5, lot 10, band 10% around 10000.
            symbol(
                "LOT",
                tick_size=5,
                lot_size=10,
                min_price=100,
                max_price=100_000,
                price_band_bps=1000,
                max_order_qty=1000,
            ),
        ],
        # Accounts 1..8 with token "t<id>"; account 9 cancels its orders when its session ends.
        "accounts": [
            {"id": i, "token": f"t{i}", "cancel_on_disconnect": i == 9} for i in range(1, 10)
        ],
    }


async def place(c: Client, *args: object, **kw: object) -> Report:
    """Send a new order; its ack or reject."""
    cid = await c.new_order(*args, **kw)  # type: ignore[arg-type]
    return await c.wait_for(lambda r: r.client_order_id == cid and r.kind in ("ack", "reject"))


async def code_of(c: Client, *args: object, **kw: object) -> int:
    """0 for an ack, else the reject code."""
    r = await place(c, *args, **kw)
    return 0 if r.kind == "ack" else r.code


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def toml_dumps(d: dict[str, Any]) -> str:
    """The small TOML subset configs use: tables of scalars/lists, arrays of tables."""
    lines: list[str] = []
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"[[{k}]]")
                lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in item.items()]
        else:
            lines.insert(0, f"{k} = {_toml_value(v)}")
        lines.append("")
    return "\n".join(lines)


def wait_until(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> Any:
    """Poll `cond` until it returns something truthy (a condition, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(step)


class Daemon:
    def __init__(
        self,
        tmp: Path,
        overrides: dict[str, Any] | None = None,
        *,
        preexec_fn: Callable[[], None] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.tmp = tmp
        self.config = merge(base_config(tmp / "data"), overrides or {})
        self.data_dir = Path(self.config["process"]["data_dir"])
        self.config_file = tmp / "engine.toml"
        self.config_file.write_text(toml_dumps(self.config))
        self.log_file = tmp / "daemon.log"
        self._log = self.log_file.open("ab")
        cmd = [sys.executable, "-m", "engine", "run", "--config", str(self.config_file)]
        self.proc = subprocess.Popen(
            cmd + (args or []),
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            preexec_fn=preexec_fn,
        )
        self.pid = self.proc.pid
        self.gateway_port = 0
        self.http_port = 0

    def wait_ready(self) -> Daemon:
        runtime = self.data_dir / "daemon.json"

        def ready() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            try:
                info: dict[str, Any] = orjson.loads(runtime.read_bytes())
                return info
            except (OSError, ValueError):
                return None

        info = wait_until(ready, READY_TIMEOUT_S, "the daemon to be ready")
        self.gateway_port = info["gateway_port"]
        self.http_port = info["http_port"]
        return self

    def log(self) -> str:
        self._log.flush()
        return self.log_file.read_text(errors="replace")

    async def client(self, account: int = 1, token: str | None = None) -> Client:
        """A logged-on client (closed at the end of the test)."""
        c = await Client.connect(
            "127.0.0.1", self.gateway_port, account, token if token is not None else f"t{account}"
        )
        _OPEN_CLIENTS.append(c)
        return c

    async def raw(self) -> Client:
        """A connection that has not logged on (closed at the end of the test)."""
        c = await Client.open("127.0.0.1", self.gateway_port)
        _OPEN_CLIENTS.append(c)
        return c

    def http(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            body: bytes = r.read()
            return body

    def json(self, path: str) -> Any:
        return orjson.loads(self.http(path))

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of /metrics (0 if absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.http("/metrics").decode()):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> int:
        """SIGTERM, wait; SIGKILL if it does not go. Returns the exit code."""
        self.signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            code = self.proc.wait()
        self._log.close()
        return code


_OPEN_CLIENTS: list[Client] = []


@pytest.fixture
async def _close_clients() -> AsyncIterator[None]:
    # Clients a test opened without this fixture belong to an event loop that is gone: a test
    # must not inherit them (closing them here would fail). Tests that use `Daemon.client`
    # request this fixture (directly or through `start_daemon` / `daemon`).
    _OPEN_CLIENTS.clear()
    yield
    while _OPEN_CLIENTS:
        await _OPEN_CLIENTS.pop().close()


@pytest.fixture
def start_daemon(tmp_path: Path, _close_clients: None) -> Iterator[Callable[..., Daemon]]:
    """Start a daemon with config overrides: `start_daemon({"gateway": {...}})`."""
    started: list[Daemon] = []

    def start(overrides: dict[str, Any] | None = None, **kw: Any) -> Daemon:
        sub = tmp_path / f"d{len(started)}"
        sub.mkdir()
        d = Daemon(sub, overrides, **kw)
        started.append(d)
        return d.wait_ready()

    yield start
    for d in started:
        d.stop()


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon()
