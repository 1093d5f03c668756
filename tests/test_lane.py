"""The lane (actors/lane.py) is the actors, faster: the same flow through an engine with the lane
on and with it off gives byte-identical replies, journal, book and risk state, and the same
reports to publishing's listeners; and the lane is really taken (or not) when it should be.

Real engines in process (no sockets: the gateway's session protocol fed one read at a time, as
a socket delivers them), a deterministic engine clock, two symbols, risk engine on, invalid
commands mixed in (risk rejects, book rejects)."""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import signal
import struct
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.base import State
from actors.items import Reports
from actors.lane import Lane
from engine._native import JournalCorrupt, JournalReader
from engine.book import COMMAND_SIZE, CmdKind
from engine.config import AccountConfig, BatchConfig, ClockConfig, Config, SymbolConfig, load
from engine.daemon import Engine
from engine.recovery import JOURNAL_DIR, KIND_COMMANDS
from engine.wire import REPORT_SIZE, decode_replies, encode_requests
from perf.pipeline import SinkTransport, logged_on, record_stream, stop_engine

SYMBOLS = (
    SymbolConfig("AAA", 1, 1, 2, 1, 1 << 40, 0, 0, 1 << 40),
    SymbolConfig("BBB", 1, 1, 2, 1, 1 << 40, 0, 0, 1 << 40),
)
CLIENT_ID_SHIFT = 1 << 40
REJECT_KIND = (
    4  # decode_replies' kind byte of a Reject  # symbol BBB's client order ids, apart from AAA's
)


class RecordingTransport(SinkTransport):
    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        super().write(data)
        self.data += data


def flow(seed: int, commands: int) -> tuple[bytes, bytes]:
    """Two symbols' synthetic flows interleaved (command records, u32 symbol indexes), with
    every 37th command's price made invalid (a risk reject) and every 53rd cancel pointed at an
    order that never existed (a book reject)."""
    a = record_stream(seed, commands, 50)
    b = bytearray(record_stream(seed + 1000, commands, 50))
    for off in range(0, len(b), COMMAND_SIZE):
        if b[off] in (CmdKind.NEW, CmdKind.CANCEL, CmdKind.AMEND):
            (cid,) = struct.unpack_from("<Q", b, off + 40)
            struct.pack_into("<Q", b, off + 40, cid + CLIENT_ID_SHIFT)
    records, symbols = bytearray(), bytearray()
    for i in range(min(len(a), len(b)) // COMMAND_SIZE):
        for sym, src in ((0, a), (1, b)):
            rec = bytearray(src[i * COMMAND_SIZE : (i + 1) * COMMAND_SIZE])
            n = len(records) // COMMAND_SIZE
            if rec[0] == CmdKind.NEW and n % 37 == 0:
                struct.pack_into("<q", rec, 48, 1 << 41)  # above max_price: a risk reject
            if rec[0] == CmdKind.CANCEL and n % 53 == 0:
                struct.pack_into("<Q", rec, 40, (1 << 50) + n)  # unknown client id
            records += rec
            symbols += struct.pack("<I", sym)
    return bytes(records), bytes(symbols)


def config(data_dir: Path, lane: bool, fsync: str = "none") -> Config:
    base = load()
    return dataclasses.replace(
        base.with_data_dir(data_dir),
        symbols=SYMBOLS,
        accounts=(AccountConfig(1, "bench", False),),
        clock=ClockConfig(0),
        batch=BatchConfig(base.batch.max_records, lane),
        journal=dataclasses.replace(
            base.journal, fsync=fsync, snapshot_every_commands=0, snapshot_interval_s=0.0
        ),
    )


def frames_of(records: bytes, symbols: bytes, per_read: int) -> list[bytes]:
    """Request frames, `per_read` to a read."""
    data = encode_requests(records, symbols, [s.name for s in SYMBOLS])
    frames, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        frames.append(data[pos : pos + 4 + n])
        pos += 4 + n
    return [b"".join(frames[i : i + per_read]) for i in range(0, len(frames), per_read)]


def clock_from(eng: Engine, start_ns: int) -> None:
    """The engine clock, deterministic: `start_ns`, then 1 µs more at each reading."""
    ticks = iter(range(start_ns, 1 << 62, 1000))
    eng.risk.clock = lambda: next(ticks)


async def deliver(eng: Engine, transport: RecordingTransport, reads: list[bytes]) -> None:
    """Each read into a session logged on to the started `eng`, then every stage drained and
    the journal flushed."""
    session = logged_on(eng, transport)
    for r in reads:
        session.data_received(r)
        await asyncio.sleep(0)
    for actor in eng.actors():
        await actor.drain()
    await eng.persistence.flush()


async def run(
    data_dir: Path, lane: bool, reads: list[bytes], fsync: str = "none"
) -> dict[str, Any]:
    eng = Engine(config(data_dir, lane, fsync))
    clock_from(eng, 1_000_000_000)
    heard: list[Reports] = []
    watched = eng.start()
    eng.publishing.listeners.append(heard.extend)
    transport = RecordingTransport()
    await deliver(eng, transport, reads)
    await stop_engine(eng, watched)
    journal = b"".join(p.read_bytes() for p in sorted((data_dir / JOURNAL_DIR).iterdir()))
    # the commands journaled, whatever the grouping into records (group commit under `always`
    # and `interval` depends on when each fsync finished)
    entries = b"".join(
        payload
        for kind, _, _, payload in JournalReader(data_dir / JOURNAL_DIR)
        if kind == KIND_COMMANDS
    )
    assert eng.risk_engine is not None
    return {
        "replies": bytes(transport.data),
        "journal": journal,
        "entries": entries,
        "books": [b.book.snapshot() for b in eng.books],
        "risk": eng.risk_engine.snapshot(),
        "heard": [(r.events, r.symbol, r.symbols, r.max_seq) for r in heard],
        "lane_runs": eng.lane.runs if eng.lane is not None else 0,
        "sequenced": eng.sequenced(),
        "reads": len(reads),
    }


@pytest.mark.parametrize(
    ("seed", "per_read", "fsync"),
    [(1, 1, "none"), (2, 3, "none"), (3, 17, "none"), (1, 1, "always"), (6, 4, "interval")],
)
def test_the_lane_and_the_actors_give_identical_bytes(
    tmp_path: Path, seed: int, per_read: int, fsync: str
) -> None:
    """`none`: the lane appends and publishes itself (direct); otherwise it hands the journal
    batch and the reports to persistence and publishing (deferred)."""
    records, symbols = flow(seed, 400)
    reads = frames_of(records, symbols, per_read)
    on = asyncio.run(run(tmp_path / "on", True, reads, fsync))
    off = asyncio.run(run(tmp_path / "off", False, reads, fsync))
    assert on["lane_runs"] == len(reads)  # every read took the lane
    assert off["lane_runs"] == 0
    assert on["sequenced"] == off["sequenced"] > 0
    same = ["replies", "entries", "books", "risk", "heard"]
    if fsync == "none":  # one journal record per read either way: the very same files
        same.append("journal")
    for key in same:
        assert on[key] == off[key], key
    # the flow exercised rejects of both kinds: risk (2xxx) and book (3xxx)
    codes = reject_codes(on["replies"])
    assert any(2000 <= c < 3000 for c in codes) and any(3000 <= c < 4000 for c in codes)


def reject_codes(replies: bytes) -> set[int]:
    used, reports = decode_replies(replies, 1 << 20)
    assert used == len(replies)
    return {
        struct.unpack_from("<H", reports, off + 4)[0]
        for off in range(0, len(reports), REPORT_SIZE)
        if reports[off] == REJECT_KIND
    }


def test_a_journal_append_that_fails_in_the_lane_stops_persistence_and_sends_no_reply(
    tmp_path: Path,
) -> None:
    """A command that did not reach the journal is never answered: the append fails (the file
    may not grow: RLIMIT_FSIZE, EFBIG), persistence fails as it would in the actors, and the
    daemon's supervisor stops (fail fast)."""
    records, symbols = flow(5, 20)
    reads = frames_of(records, symbols, 1)

    async def go() -> None:
        eng = Engine(config(tmp_path, True))
        watched = eng.start()
        transport = RecordingTransport()
        session = logged_on(eng, transport)
        session.data_received(reads[0])
        segment = max((tmp_path / JOURNAL_DIR).iterdir(), key=lambda p: p.stat().st_mtime_ns)
        answered = len(transport.data)
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        xfsz = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            resource.setrlimit(resource.RLIMIT_FSIZE, (segment.stat().st_size, limit[1]))
            session.data_received(reads[1])
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
            signal.signal(signal.SIGXFSZ, xfsz)
        assert eng.lane is not None and eng.lane.runs == 2
        assert eng.persistence.state is State.FAILED
        assert isinstance(eng.persistence.done.exception(), JournalCorrupt)
        assert len(transport.data) == answered  # nothing for the command not journaled
        await stop_engine(eng, watched)

    asyncio.run(go())


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(min_value=1, max_value=10_000),
    per_read=st.integers(min_value=1, max_value=40),
    commands=st.integers(min_value=20, max_value=200),
    fsync=st.sampled_from(["none", "always", "interval"]),
)
def test_any_flow_and_read_size_give_identical_results_with_and_without_the_lane(
    tmp_path_factory: pytest.TempPathFactory, seed: int, per_read: int, commands: int, fsync: str
) -> None:
    records, symbols = flow(seed, commands)
    reads = frames_of(records, symbols, per_read)
    tmp = tmp_path_factory.mktemp("lane")
    on = asyncio.run(run(tmp / "on", True, reads, fsync))
    off = asyncio.run(run(tmp / "off", False, reads, fsync))
    assert on["lane_runs"] == len(reads) and off["lane_runs"] == 0
    for key in ("replies", "entries", "books", "risk", "heard", "sequenced"):
        assert on[key] == off[key], key


def test_a_held_book_keeps_only_its_own_reads_out_of_the_lane(tmp_path: Path) -> None:
    """The lane waits for the books a read goes to, not for the others."""
    records, symbols = flow(7, 20)
    per_symbol: dict[int, list[bytes]] = {0: [], 1: []}
    for i, r in enumerate(frames_of(records, symbols, 1)):
        per_symbol[i % 2].append(r)  # flow() alternates AAA, BBB

    async def go() -> None:
        eng = Engine(config(tmp_path, True))
        watched = eng.start()
        session = logged_on(eng, RecordingTransport())
        assert eng.lane is not None
        eng.books[1].hold()  # BBB busy (as when publishing is full behind it)
        session.data_received(per_symbol[0][0])
        assert eng.lane.runs == 1  # AAA's read took the lane
        session.data_received(per_symbol[1][0])
        assert eng.lane.runs == 1  # BBB's did not: it waits in BBB's inbox
        assert len(eng.books[1].inbox) == 1
        eng.books[1].release()
        for actor in eng.actors():
            await actor.drain()
        assert eng.books[1].commands == 1
        await stop_engine(eng, watched)

    asyncio.run(go())


def test_a_lane_may_be_freed_on_another_thread(tmp_path: Path) -> None:
    """Python frees an object on whichever thread drops its last reference or runs the garbage
    collection that finds it (the daemon has other threads: the sinks' converter, chDB's), so
    the native lane must not be tied to the thread that made it (it holds only references to
    the actors' native objects)."""
    eng = Engine(config(tmp_path, lane=True))
    box = [Lane(eng.risk, eng.books, eng.persistence, eng.publishing, KIND_COMMANDS)]
    unraisable: list[Any] = []
    hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        freer = threading.Thread(target=box.clear)
        freer.start()
        freer.join()
    finally:
        sys.unraisablehook = hook
    assert box == []
    assert [u.exc_value for u in unraisable] == []
