"""A real PostgreSQL server for the tests (and perf/sinks.py): Debian's `postgresql` binaries,
initdb + pg_ctl into a fresh temp directory as the `postgres` user (via `runuser` when we are
root), listening on 127.0.0.1 on a free port, its log in the data directory, stopped by
`pg_ctl stop` (and by pid if that fails) in a finalizer.

    server = PgServer.start()      # or the `pg_server` fixture in the sink tests
    server.dsn                     # postgresql://postgres@127.0.0.1:PORT/postgres
    server.stop(); server.restart()  # an outage, for the catch-up tests
    server.destroy()

Fixtures for the sink tests (import them into the test module): `pg_server` (one per session),
`pg_dsn` (a fresh database on it), `ch_dsn` (a fresh embedded ClickHouse directory), `db_dsn`
(each of those in turn).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.sinks.clickhouse import ClickHouseBackend
from engine.sinks.postgres import PostgresBackend

__all__ = [
    "PG_BIN",
    "PgServer",
    "backend_for",
    "ch_dsn",
    "db_dsn",
    "pg_available",
    "pg_dsn",
    "pg_server",
]

PG_BIN = Path(os.environ.get("CIFT_PG_BIN", "/usr/lib/postgresql/15/bin"))
_USER = "postgres"
_START_TIMEOUT_S = 60


def pg_available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", _USER, "--", *cmd]
    return cmd


class PgServer:
    """One throwaway cluster. `fsync` off by default: the tests need crash-safety of our sink
    (transactions), not of the disk."""

    def __init__(self, root: Path, port: int, fsync: bool) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        self.fsync = fsync

    @property
    def dsn(self) -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, *, fsync: bool = False) -> PgServer:
        if not pg_available():
            raise RuntimeError(f"no PostgreSQL binaries in {PG_BIN} (apt-get install postgresql)")
        root = Path(tempfile.mkdtemp(prefix="cift-pg-"))
        server = cls(root, _free_port(), fsync)
        try:
            if os.geteuid() == 0:
                shutil.chown(root, _USER, _USER)
            server._run(
                [str(PG_BIN / "initdb"), "-D", str(server.data), "-U", _USER, "--auth=trust",
                 "--encoding=UTF8", "--locale=C", "--no-sync"],
            )  # fmt: skip
            server.restart()
        except BaseException:
            server.destroy()
            raise
        return server

    def _run(self, cmd: list[str]) -> None:
        out = self.root / "ctl.log"
        with out.open("ab") as f:
            if os.geteuid() == 0:
                with contextlib.suppress(OSError):
                    shutil.chown(out, _USER, _USER)
            r = subprocess.run(
                _as_postgres(cmd), stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT
            )
        if r.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({r.returncode}):\n{out.read_text()[-4000:]}")

    def restart(self) -> None:
        """Start (again) on the same port and data; returns once it accepts connections."""
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            f" -c fsync={'on' if self.fsync else 'off'} -c max_connections=50"
            " -c shared_buffers=256MB -c max_wal_size=4GB"
        )
        self._run(
            [str(PG_BIN / "pg_ctl"), "start", "-w", "-t", str(_START_TIMEOUT_S), "-D",
             str(self.data), "-l", str(self.log), "-o", opts],
        )  # fmt: skip

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        return self.pid() is not None

    def stop(self) -> None:
        """Fast shutdown (clients are disconnected); a no-op if it is not running."""
        if not self.running():
            return
        try:
            self._run([str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)])
        except RuntimeError:
            pid = self.pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- fixtures (imported by the sink tests) ----------------------------------------------------


def _admin(server: PgServer, sql: str) -> None:
    """Run one statement as the superuser, from a thread with its own event loop."""
    import asyncio
    import threading

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    errors: list[BaseException] = []
    t = threading.Thread(target=lambda: _capture(errors, lambda: asyncio.run(run())))
    t.start()
    t.join()
    if errors:
        raise errors[0]


def _capture(errors: list[BaseException], fn: Callable[[], object]) -> None:
    try:
        fn()
    except BaseException as e:
        errors.append(e)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer.start()
    yield server
    server.destroy()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """A fresh database on the session's server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    _admin(pg_server, f"CREATE DATABASE {name}")
    yield pg_server.dsn.rsplit("/", 1)[0] + "/" + name
    _admin(pg_server, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def ch_dsn(tmp_path: Path) -> str:
    """A fresh embedded ClickHouse (chDB) directory. chDB hosts one engine path per process:
    every client on it must be closed by the end of the test."""
    return f"chdb://{tmp_path / 'clickhouse'}"


@pytest.fixture(params=["postgres", "clickhouse"])
def db_dsn(request: pytest.FixtureRequest) -> str:
    """A fresh database of each kind in turn."""
    dsn: str = request.getfixturevalue("pg_dsn" if request.param == "postgres" else "ch_dsn")
    return dsn


def backend_for(dsn: str) -> PostgresBackend | ClickHouseBackend:
    if dsn.startswith("chdb:"):
        return ClickHouseBackend(dsn)
    return PostgresBackend(dsn)
