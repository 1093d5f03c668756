"""The process: graceful drain with orders in flight, the second signal, failing stages, start
errors, embedded defaults, CPU affinity, sequence numbers across a restart."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, Daemon, wait_until

from engine import protocol
from engine._native import JournalReader
from engine.client import Client
from engine.wire import JOURNAL_ENTRY_SIZE


def journal_kinds(data_dir: Path) -> list[int]:
    """The command kind of every journaled command."""
    raw = b"".join(p for _, _, _, p in JournalReader(data_dir / "journal"))
    return [raw[i] for i in range(0, len(raw), JOURNAL_ENTRY_SIZE)]


async def test_sigterm_drains_orders_in_flight_then_exits_0(daemon: Daemon) -> None:
    c = await daemon.client(1)
    n = 20_000
    await c.send(
        b"".join(
            protocol.new_order("AAPL", "buy", 1, 5_000 + i % 100, client_order_id=i)
            for i in range(1, n + 1)
        )
    )
    daemon.signal(signal.SIGTERM)
    reports = [r async for r in c.reports()]
    assert daemon.wait() == 0
    assert reports[-1].kind == "logout" and reports[-1].code == 1011
    acked = [r.client_order_id for r in reports if r.kind == "ack"]
    # Whatever the engine read, it finished: a prefix of the orders, each acked once...
    assert acked == list(range(1, len(acked) + 1))
    # ...and each acked order is in the command log (1 = new order).
    assert journal_kinds(daemon.data_dir).count(1) == len(acked)
    assert "stopped cleanly" in daemon.log()


async def test_a_second_signal_exits_at_once(start_daemon: Callable[..., Daemon]) -> None:
    d = start_daemon(
        {"gateway": {"output_buffer_bytes": 256 << 20}, "shutdown": {"drain_timeout_s": 60.0}}
    )
    # A session that never reads holds the drain up (its output cannot be flushed).
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", d.gateway_port))
    _, writer = await asyncio.open_connection(sock=sock)
    writer.write(protocol.logon(1, "t1"))
    chunk = b"".join(protocol.new_order("AAPL", "buy", 1, 5_000 + i % 1000) for i in range(2000))

    def queued_out() -> int:
        sessions = d.json("/status")["sessions"]
        return max((s["bytes_out"] for s in sessions if s["account"] == 1), default=0)

    while queued_out() < 16 << 20:  # well past what the kernel buffers hold
        writer.write(chunk)
        await writer.drain()
    d.signal(signal.SIGTERM)
    wait_until(lambda: "stopping" in d.log(), 10, "the drain to begin")
    d.signal(signal.SIGTERM)
    assert d.wait(10) == 128 + signal.SIGTERM
    assert "second SIGTERM: exiting now" in d.log()
    writer.close()


async def test_a_failing_stage_stops_the_daemon_with_exit_1_and_the_reason(
    start_daemon: Callable[..., Daemon],
) -> None:
    # The command log may not grow past 20 kB: its next append fails (EFBIG).
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    d = start_daemon(preexec_fn=limit_file_size)
    c = await d.client(1)
    await c.send(b"".join(protocol.new_order("AAPL", "buy", 1, 5_000) for _ in range(400)))
    assert d.wait() == 1
    log = d.log()
    assert "stage persistence failed" in log and "File too large" in log


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_a_bad_config_stops_the_start_naming_the_key_and_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway]\nprot = 7001\n")
    r = run_cli("run", "--config", str(bad))
    assert r.returncode == 2
    assert f"{bad}: gateway.prot: unknown key" in r.stderr
    assert "Traceback" not in r.stderr
    bad.write_text('[[symbols]]\nname = "X"\ntick_size = 0\n')
    r = run_cli("check-config", str(bad))
    assert r.returncode == 2 and f"{bad}: symbols[0].tick_size: must be >= 1" in r.stderr


def test_a_port_in_use_fails_the_start_with_a_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "c.toml"
        cfg.write_text(f"[gateway]\nport = {port}\n[http]\nport = 0\n")
        r = run_cli("run", "--config", str(cfg), "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 1
    assert "cannot start: cannot listen" in r.stderr and "Traceback" not in r.stderr


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_runs_on_embedded_defaults_with_no_config(tmp_path: Path) -> None:
    if not (_port_free(7001) and _port_free(9101)):
        pytest.skip("the default ports 7001/9101 are in use on this machine")
    log = (tmp_path / "log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        wait_until(lambda: (tmp_path / "data" / "daemon.json").exists(), 20, "ready")
        c = await Client.connect("127.0.0.1", 7001, 1, "demo")
        assert list(c.symbols) == ["AAPL", "MSFT", "NVDA", "BTC-USD"]
        await c.new_order("AAPL", "buy", 1, 19_000)
        assert (await c.next_report()).kind == "ack"
        await c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        log.close()


def test_cpu_affinity_from_config_is_applied_and_logged(
    start_daemon: Callable[..., Daemon],
) -> None:
    d = start_daemon({"process": {"cpu_affinity": [0]}})
    status = Path(f"/proc/{d.pid}/status").read_text()
    assert "Cpus_allowed_list:\t0\n" in status
    assert "CPU affinity: pinned to CPUs [0]" in d.log()


async def test_sequence_numbers_continue_after_a_restart(
    start_daemon: Callable[..., Daemon],
) -> None:
    first = start_daemon()
    c = await first.client(1)
    await c.new_order("AAPL", "buy", 1, 5_000)
    seq_before = (await c.next_report()).cmd_seq
    await c.close()
    assert first.stop() == 0
    second = start_daemon(
        {"process": {"data_dir": str(first.data_dir)}, "clock": {"advance_interval_ms": 0}}
    )
    c = await second.client(1)
    await c.new_order("NOPE", "buy", 1, 5_000)  # a reject first: nothing new to wait for
    assert (await c.next_report()).code == 2001
    await c.new_order("AAPL", "buy", 1, 5_000)
    assert (await c.next_report()).cmd_seq > seq_before


def test_importing_the_daemon_starts_no_blas_worker_threads() -> None:
    """numpy (loaded by the daemon for replay and sinks) brings OpenBLAS, which starts a polling
    worker thread per extra core beside the event loop; `engine` limits it to none before numpy
    is imported (engine/__init__.py), so the pinned core is the loop's alone."""
    code = (
        "import os, sys, engine.daemon; assert 'numpy' in sys.modules; "
        "print(len(os.listdir('/proc/self/task')))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**env, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"
