"""engine.sdnotify against a real AF_UNIX datagram socket standing in for systemd's socket."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import sdnotify

RECV_TIMEOUT_S = 5.0


class NotifySocket:
    """The receiving end, as systemd binds it: a datagram socket at a path or an abstract name."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def recv(self) -> str:
        self.sock.settimeout(RECV_TIMEOUT_S)
        return self.sock.recv(4096).decode()

    async def recv_async(self) -> str:
        loop = asyncio.get_running_loop()
        self.sock.setblocking(False)
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), RECV_TIMEOUT_S)
        return data.decode()


@pytest.fixture
def path_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    # AF_UNIX paths are limited to 108 bytes: keep it short rather than under pytest's tmp_path.
    with tempfile.TemporaryDirectory(prefix="sdn") as tmp:
        path = str(Path(tmp) / "notify")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(path)
            monkeypatch.setenv("NOTIFY_SOCKET", path)
            yield NotifySocket(sock, path)


@pytest.fixture
def abstract_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    name = f"cift-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        yield NotifySocket(sock, "@" + name)


def test_ready_sends_ready_1(path_socket: NotifySocket) -> None:
    assert sdnotify.ready()
    assert path_socket.recv() == "READY=1\n"


def test_ready_with_status_sends_both_fields_in_one_datagram(path_socket: NotifySocket) -> None:
    assert sdnotify.ready(status="serving 3 symbols")
    assert path_socket.recv() == "READY=1\nSTATUS=serving 3 symbols\n"


def test_stopping_and_watchdog_ping(path_socket: NotifySocket) -> None:
    assert sdnotify.watchdog_ping()
    assert sdnotify.stopping()
    assert path_socket.recv() == "WATCHDOG=1\n"
    assert path_socket.recv() == "STOPPING=1\n"


def test_abstract_namespace_socket_receives_notifications(abstract_socket: NotifySocket) -> None:
    assert sdnotify.enabled()
    assert sdnotify.ready()
    assert sdnotify.stopping()
    assert abstract_socket.recv() == "READY=1\n"
    assert abstract_socket.recv() == "STOPPING=1\n"


def test_notify_renders_fields_in_order(path_socket: NotifySocket) -> None:
    assert sdnotify.notify(STATUS="replaying journal", EXTEND_TIMEOUT_USEC=30_000_000, READY=True)
    assert path_socket.recv() == "STATUS=replaying journal\nEXTEND_TIMEOUT_USEC=30000000\nREADY=1\n"


def test_extend_timeout_is_sent_in_microseconds(path_socket: NotifySocket) -> None:
    assert sdnotify.extend_timeout(2.5)
    assert path_socket.recv() == "EXTEND_TIMEOUT_USEC=2500000\n"


def test_everything_is_a_no_op_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.enabled()
    assert not sdnotify.ready()
    assert not sdnotify.stopping()
    assert not sdnotify.watchdog_ping()
    assert not sdnotify.notify(STATUS="x")


def test_unreachable_socket_returns_false_instead_of_raising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory(prefix="sdn") as tmp:
        monkeypatch.setenv("NOTIFY_SOCKET", str(Path(tmp) / "nobody-listens"))
        assert not sdnotify.ready()


@pytest.mark.parametrize(
    "fields",
    [{"ready": 1}, {"STATUS": "two\nlines"}, {"9X": 1}],
    ids=["lower-case-key", "multi-line-value", "key-starts-with-digit"],
)
def test_malformed_fields_are_programming_errors(
    path_socket: NotifySocket, fields: dict[str, str | int]
) -> None:
    with pytest.raises(ValueError):
        sdnotify.notify(**fields)


def test_watchdog_interval_reads_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() == 10.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 10.0


@pytest.mark.parametrize(
    ("usec", "pid"),
    [(None, None), ("0", None), ("abc", None), ("-5", None), ("1000000", "1")],
    ids=["unset", "zero", "garbage", "negative", "other-process"],
)
def test_watchdog_interval_is_none_when_not_ours(
    monkeypatch: pytest.MonkeyPatch, usec: str | None, pid: str | None
) -> None:
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert sdnotify.watchdog_interval() is None


async def test_watchdog_task_pings_while_loop_is_responsive(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000")  # pings every 10 ms
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    task = sdnotify.watchdog_task()
    try:
        assert [await path_socket.recv_async() for _ in range(3)] == ["WATCHDOG=1\n"] * 3
    finally:
        await sdnotify.stop_watchdog(task)
    assert task.cancelled()


async def test_watchdog_task_withholds_pings_while_stall_check_reports_a_stall(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "20000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    checks = 0

    def stall_check() -> str | None:
        nonlocal checks
        checks += 1
        return "risk actor: 512 commands queued, no progress for 3.0s" if checks <= 4 else None

    task = sdnotify.watchdog_task(stall_check)
    try:
        received: list[str] = []
        while not received or received[-1] != "WATCHDOG=1\n":
            received.append(await path_socket.recv_async())
    finally:
        await sdnotify.stop_watchdog(task)
    # One STATUS when the stall starts, one when it clears, then the first ping: four ticks without.
    assert received == [
        "STATUS=stalled: risk actor: 512 commands queued, no progress for 3.0s\n",
        "STATUS=running\n",
        "WATCHDOG=1\n",
    ]
    assert checks >= 5


async def test_watchdog_task_finishes_at_once_without_watchdog(
    path_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    task = sdnotify.watchdog_task()
    await asyncio.wait_for(task, RECV_TIMEOUT_S)
    assert task.done() and not task.cancelled()


async def test_watchdog_task_finishes_at_once_without_notify_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "20000")
    task = sdnotify.watchdog_task()
    await asyncio.wait_for(task, RECV_TIMEOUT_S)
    assert task.done() and not task.cancelled()
