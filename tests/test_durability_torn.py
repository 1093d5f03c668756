"""Torn writes: the journal's last record cut at every byte offset, or followed by random garbage,
and damage before the last record. Each start recovers exactly the complete records, or stops
with a clear message; never a traceback, never a silently different book."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Daemon

from engine import config as cfg
from engine import protocol
from engine._native import Book
from engine.client import Client
from engine.recovery import RecoveryError, journal_files, recover, state_digest

FILE_HEADER = 32
RECORD_HEADER = struct.Struct("<IHHQII")  # payload_len, kind, flags, first_seq, count, crc32c
OVERRIDES = {
    "journal": {"snapshot_every_commands": 0, "snapshot_interval_s": 0.0},
    "clock": {"advance_interval_ms": 0},
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def records(path: Path) -> Iterator[tuple[int, int]]:
    """(offset, total length) of every record of one journal file."""
    data = path.read_bytes()
    off = FILE_HEADER
    while off + RECORD_HEADER.size <= len(data):
        n = RECORD_HEADER.unpack_from(data, off)[0]
        yield off, RECORD_HEADER.size + n
        off += RECORD_HEADER.size + n


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data directory written by a real daemon (SIGKILLed: no final snapshot) whose last
    journal record holds exactly one order; and its config file."""
    tmp = tmp_path_factory.mktemp("torn")
    d = Daemon(tmp, OVERRIDES).wait_ready()

    async def trade() -> None:
        c = await Client.connect("127.0.0.1", d.gateway_port, 1, "t1")
        await c.send(
            b"".join(
                protocol.new_order(
                    "AAPL" if i % 2 else "MSFT",
                    "buy" if i % 3 else "sell",
                    1 + i % 7,
                    9_990 + i % 20,
                    client_order_id=i,
                )
                for i in range(1, 400)
            )
        )
        await c.wait_until(lambda r: r.kind == "ack" and r.client_order_id == 399, 20)
        await c.new_order("AAPL", "sell", 3, 9_995, client_order_id=1000)
        await c.wait_until(lambda r: r.kind == "ack" and r.client_order_id == 1000, 20)
        await c.close()

    asyncio.run(trade())
    d.signal(signal.SIGKILL)
    d.wait()
    d.stop()
    return d.data_dir, d.config_file


def replay(data_dir: Path, config_file: Path) -> str:
    c = cfg.load(config_file)
    books = [Book(s.min_price, s.max_price, s.max_order_qty) for s in c.symbols]
    recover(data_dir, [s.name for s in c.symbols], books)
    return state_digest(books)


def copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("daemon.json"))
    return dst


def test_every_cut_of_the_last_record_recovers_the_complete_prefix(
    journal: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, config_file = journal
    (*_, (_, last_file)) = journal_files(data_dir / "journal")
    *_, (start, length) = records(last_file)
    assert length == RECORD_HEADER.size + 104  # the lone last order
    full = replay(copy(data_dir, tmp_path / "full"), config_file)
    prefix_dir = copy(data_dir, tmp_path / "prefix")
    target = prefix_dir / "journal" / last_file.name
    os.truncate(target, start)
    prefix = replay(prefix_dir, config_file)
    assert prefix != full
    for cut in range(start, start + length):
        work = copy(data_dir, tmp_path / "cut")
        os.truncate(work / "journal" / last_file.name, cut)
        assert replay(work, config_file) == prefix, f"cut at byte {cut}"
        # Recovery cut the torn bytes: the directory is now exactly the prefix.
        assert (work / "journal" / last_file.name).stat().st_size == start


def test_random_garbage_after_a_cut_recovers_the_prefix_or_stops_clearly(
    journal: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, config_file = journal
    (*_, (_, last_file)) = journal_files(data_dir / "journal")
    *_, (start, length) = records(last_file)
    prefix_dir = copy(data_dir, tmp_path / "prefix")
    os.truncate(prefix_dir / "journal" / last_file.name, start)
    prefix = replay(prefix_dir, config_file)
    full = replay(copy(data_dir, tmp_path / "full"), config_file)
    rng = random.Random(4)
    outcomes = {"recovered": 0, "refused": 0}
    for _ in range(150):
        work = copy(data_dir, tmp_path / "garbage")
        path = work / "journal" / last_file.name
        cut = rng.randrange(start, start + length + 1)
        os.truncate(path, cut)
        with path.open("ab") as f:
            f.write(rng.randbytes(rng.randint(1, 300)))
        try:
            got = replay(work, config_file)
        except RecoveryError as e:
            assert "journal verify" in str(e)
            outcomes["refused"] += 1
            continue
        # Garbage after the complete last record leaves that record; any cut inside loses it.
        want = full if cut == start + length else prefix
        assert got == want, f"garbage after byte {cut}: a silently different book"
        outcomes["recovered"] += 1
    assert outcomes["recovered"] > 0


def test_offline_replay_and_a_start_agree_on_a_torn_journal(
    journal: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, config_file = journal
    (*_, (_, last_file)) = journal_files(data_dir / "journal")
    *_, (start, length) = records(last_file)
    prefix_dir = copy(data_dir, tmp_path / "prefix")
    os.truncate(prefix_dir / "journal" / last_file.name, start)
    prefix = replay(prefix_dir, config_file)
    work = copy(data_dir, tmp_path / "d" / "data")
    os.truncate(work / "journal" / last_file.name, start + length // 2)
    # Offline replay reads the complete records and changes nothing.
    r = cli("journal", "replay", str(work), "--config", str(config_file), "--digest")
    assert r.returncode == 0 and r.stdout.strip() == prefix, r.stderr
    assert (work / "journal" / last_file.name).stat().st_size == start + length // 2
    r = cli("journal", "verify", str(work))
    assert r.returncode == 0 and "torn tail" in r.stdout
    # A start cuts the tail, logs it, serves the prefix state and stops cleanly.
    d = Daemon(tmp_path / "d", {**OVERRIDES, "process": {"data_dir": str(work)}}).wait_ready()
    assert d.json("/status")["state_digest"] == prefix
    assert d.stop() == 0
    log = d.log_file.read_text()
    assert "torn tail" in log and "Traceback" not in log


def test_damage_before_the_last_record_stops_the_start_with_the_runbook(
    journal: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, config_file = journal
    (*_, (_, last_file)) = journal_files(data_dir / "journal")
    (first, flen), *_ = records(last_file)
    work = copy(data_dir, tmp_path / "d" / "data")
    path = work / "journal" / last_file.name
    raw = bytearray(path.read_bytes())
    raw[first + RECORD_HEADER.size + flen // 3] ^= 0x40  # inside the first record's payload
    path.write_bytes(bytes(raw))
    r = cli("journal", "verify", str(work))
    assert r.returncode == 1 and "journal damaged" in r.stderr and "Traceback" not in r.stderr
    r = cli("journal", "replay", str(work), "--config", str(config_file), "--digest")
    assert r.returncode == 1 and "journal verify" in r.stderr and "Traceback" not in r.stderr
    d = Daemon(tmp_path / "d", {**OVERRIDES, "process": {"data_dir": str(work)}})
    assert d.wait(30) == 1
    log = d.log()
    assert "cannot start" in log and f"journal verify {work}" in log
    assert "Traceback" not in log
    assert not (work / "daemon.json").exists()
    d.stop()
