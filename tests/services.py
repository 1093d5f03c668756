"""Real servers for the NATS and Redis tests: Debian's `nats-server` (with JetStream) and
`redis-server`, each on a free loopback port, started by the test and stopped by pid.

    with NatsServer(tmp_path / "nats") as nats:   # nats.url = nats://127.0.0.1:PORT
        nats.kill(); nats.start()                 # an outage: same port, same JetStream store
    with RedisServer(tmp_path / "redis") as redis:
        redis.port

stdin is /dev/null and stdout/stderr go to a log file in the server's directory (quoted in
errors). Readiness is polled, never slept for: NATS until its monitoring port answers
`/healthz` (JetStream included), Redis until it answers PING. The servers are installed by
`./dev test` (apt: nats-server, redis-server); `require(name)` skips a test where one is missing.

Fixtures for test modules (import them: `from services import nats_server  # noqa: F401`):
`nats_server`, `redis_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import pytest

__all__ = [
    "EngineRig",
    "NatsServer",
    "RedisServer",
    "Server",
    "free_port",
    "nats_server",
    "redis_server",
    "require",
    "subscribed",
    "wait_for",
]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


async def until(cond: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll a condition, plain or awaitable, until it holds (never a fixed sleep as
    synchronisation); returns its value, raises TimeoutError naming `what` after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = cond()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def subscribed(nc: Any, subject: str, cb: Callable[[Any], Any]) -> Any:
    """`nc.subscribe(subject, cb=cb)` once the server has the subscription. nats-py's flush()
    writes its PING straight to the socket while SUB waits in the pending buffer for the flusher
    task, so one flush() can return before the server has seen SUB; the first flush lets the
    flusher write SUB (it runs while the PONG is awaited), the second PING follows it."""
    sub = await nc.subscribe(subject, cb=cb)
    await nc.flush()
    await nc.flush()
    return sub


def free_port() -> int:
    """A port the OS had free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require(binary: str) -> str:
    """The path of `binary`, or skip the test (the README's `./dev test` installs it)."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.path.exists(p)), None
    )
    if path is None:
        pytest.skip(f"{binary} is not installed (./dev test installs it)")
    return path


def wait_for(cond: Callable[[], object], timeout: float, what: str, step: float = 0.02) -> None:
    """Poll `cond` until it is truthy; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(step)


class Server:
    """One server process: `start()`, `stop()` (SIGTERM, then SIGKILL), `kill()` (SIGKILL)."""

    name = "server"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_file = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> Server:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"{self.name} already running")
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
            return self.ready()

        wait_for(up, START_TIMEOUT_S, f"{self.name} on port {self.port}")
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash of an outage test."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class NatsServer(Server):
    """`nats-server -a 127.0.0.1 -p PORT -js -sd DIR` (+ a monitoring port for /healthz).

    The JetStream store stays in `dir/js` across `kill()` / `start()`."""

    name = "nats-server"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.binary = require("nats-server")
        self.monitor_port = free_port()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            "-a", "127.0.0.1",
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-js",
            "-sd", str(self.dir / "js"),
        ]  # fmt: skip

    def ready(self) -> bool:
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true"
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False


class RedisServer(Server):
    """`redis-server --port P --save '' --daemonize no` (no persistence: a restart is empty)."""

    name = "redis-server"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.binary = require("redis-server")

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.dir),
        ]  # fmt: skip

    def ready(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
        return False


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- an engine on those servers


class EngineRig:
    """The in-process engine (`perf.nats_bench.StubEngine`: real Sequencer, books, command
    log) with `NatsEntry` and `NatsPublisher` on a NATS server, plus a client connection.

        rig = await EngineRig(nats.url, tmp_path / "data").start()
        reports = await rig.request(protocol.new_order("AAPL", "buy", 10, 100), account=1)
        await rig.stop()
    """

    SYMBOLS = ("AAPL", "MSFT")
    ACCOUNTS: ClassVar[dict[int, str]] = {a: f"t{a}" for a in range(1, 5)}

    def __init__(
        self,
        url: str,
        data_dir: Path,
        *,
        crash: Callable[[str, int], bool] | None = None,
        entry_config: Any = None,
        publish_config: Any = None,
        symbols: tuple[str, ...] = SYMBOLS,
    ) -> None:
        from perf.nats_bench import spec

        self.url = url
        self.data_dir = data_dir
        self.crash = crash
        self.entry_config = entry_config
        self.publish_config = publish_config
        self.specs = [spec(s) for s in symbols]
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> EngineRig:
        from engine.nats_entry import NatsEntry
        from engine.nats_publish import NatsPublisher, connect
        from perf.nats_bench import StubEngine

        self.nc = await connect(self.url, "rig-engine")
        self.client = await connect(self.url, "rig-client")
        self.engine = StubEngine(self.specs, self.data_dir, crash=self.crash)
        self.publisher = NatsPublisher(
            self.nc, self.specs, self.ACCOUNTS, self.data_dir, self.publish_config
        )
        self.entry = NatsEntry(
            self.nc,
            self.specs,
            self.ACCOUNTS,
            self.engine.submit,
            self.data_dir,
            self.engine.last_seq,
            self.entry_config,
            on_rejects=self.publisher.publish_rejects,
        )
        self.engine.connect(self.entry, self.publisher)
        self.tasks = [self.engine.start()]
        self.tasks += await self.publisher.start()
        self.tasks += await self.entry.start()
        return self

    async def stop(self, *, graceful: bool = True) -> None:
        """Graceful: replies and acks sent, outboxes emptied. Not: a crash (tasks cancelled)."""
        if graceful:
            await self.entry.close()
            await self.publisher.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.engine.stop()
        self.entry.ties.close()
        self.publisher.outbox.close()
        for nc in (self.nc, self.client):
            with contextlib.suppress(Exception):
                await nc.close()

    def headers(self, account: int, json: bool = False, token: str | None = None) -> dict[str, str]:
        from engine.nats_entry import HEADER_ACCOUNT, HEADER_FORMAT, HEADER_TOKEN

        h = {HEADER_ACCOUNT: str(account), HEADER_TOKEN: token or self.ACCOUNTS.get(account, "")}
        if json:
            h[HEADER_FORMAT] = "json"
        return h

    async def request(
        self,
        payload: bytes,
        account: int = 1,
        *,
        subject: str = "orders.AAPL",
        token: str | None = None,
    ) -> list[Any]:
        """A Cap'n Proto request; the reply's reports (engine.protocol.Report)."""
        from engine.protocol import decode_report, split_frames

        msg = await self.client.request(
            subject, payload, timeout=10, headers=self.headers(account, token=token)
        )
        return [decode_report(b) for b in split_frames(bytearray(msg.data))]

    async def request_json(
        self, doc: Any, account: int = 1, *, subject: str = "orders.AAPL"
    ) -> list[dict[str, Any]]:
        import orjson

        data = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        msg = await self.client.request(
            subject, data, timeout=10, headers=self.headers(account, json=True)
        )
        out: list[dict[str, Any]] = orjson.loads(msg.data)
        return out
