"""sd_notify from the real daemon: READY=1 once recovered and listening, WATCHDOG=1 keep-alives
when systemd asks for them, STOPPING=1 on SIGTERM. systemd is played by an AF_UNIX datagram
socket the test listens on."""

from __future__ import annotations

import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Daemon


@pytest.fixture
def notify_socket() -> Iterator[socket.socket]:
    short = Path(tempfile.mkdtemp(prefix="sdn", dir="/tmp"))  # AF_UNIX paths are short
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(short / "notify"))
    sock.settimeout(20)
    yield sock
    sock.close()
    shutil.rmtree(short, ignore_errors=True)


def next_with(sock: socket.socket, key: str) -> dict[str, str]:
    """The next notification carrying `key` (earlier ones are skipped)."""
    while True:
        msg = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in msg.splitlines() if "=" in line)
        if key in fields:
            return fields


def test_ready_watchdog_and_stopping_reach_the_service_manager(
    tmp_path: Path, notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    d = Daemon(tmp_path)
    try:
        ready = next_with(notify_socket, "READY")
        assert ready["READY"] == "1" and "serving 3 symbols" in ready.get("STATUS", "")
        d.wait_ready()
        # READY came after the listener was up: the port takes connections.
        socket.create_connection(("127.0.0.1", d.gateway_port), timeout=5).close()
        assert next_with(notify_socket, "WATCHDOG")["WATCHDOG"] == "1"
        assert next_with(notify_socket, "WATCHDOG")["WATCHDOG"] == "1"  # and again
        d.signal(signal.SIGTERM)
        assert next_with(notify_socket, "STOPPING")["STOPPING"] == "1"
        assert d.wait() == 0
    finally:
        d.stop()


def test_without_a_notify_socket_the_daemon_runs_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    d = Daemon(tmp_path).wait_ready()
    assert d.stop() == 0
    assert "sd_notify" not in d.log_file.read_text()
