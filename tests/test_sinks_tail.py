"""The sink follower's source: the CRC32C journal (DATA_DIR/journal) re-applied through fresh
books gives exactly the events of one replay of every command: while the journal is being
written and rolls files, after a torn tail is cut at a restart, and from a snapshot when the
journal before the follower's checkpoint was pruned."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine._native import JournalWriter, journal_recover
from engine.recovery import JOURNAL_DIR, KIND_COMMANDS, SNAPSHOT_DIR, prune_journal, snapshot_of
from engine.sinks.records import SinkBatch
from engine.sinks.synth import synthetic_journal
from engine.sinks.tail import ENTRY_DTYPE, JournalHead, ReplayBooks, tail_journal
from engine.snapshot import write_snapshot

SYMBOLS = [("AAA", 1, 10**9), ("BBB", 1, 10**9)]
SIZE = ENTRY_DTYPE.itemsize
ROLL = 1 << 16  # the smallest roll: a new file every ~600 commands
TIMEOUT_S = 60.0


def seq_of(entries: bytes, index: int) -> int:
    return int.from_bytes(entries[index * SIZE + 8 : index * SIZE + 16], "little")


def ts_of(entries: bytes, index: int) -> int:
    return int.from_bytes(entries[index * SIZE + 16 : index * SIZE + 24], "little")


def events_by_symbol(batches: list[SinkBatch]) -> dict[str, bytes]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for b in batches:
        out[b.symbol].append(b.events)
    return {s: b"".join(e) for s, e in out.items()}


def expected_events(entries: bytes, after: int = 0) -> dict[str, bytes]:
    """Every symbol's events of the commands after entry `after`, from one replay of all."""
    books = ReplayBooks(SYMBOLS)
    if after:
        books.apply(entries[: after * SIZE])
    return events_by_symbol(books.apply(entries[after * SIZE :]))


def append(writer: JournalWriter, entries: bytes) -> None:
    writer.append(KIND_COMMANDS, writer.next_seq, len(entries) // SIZE, entries, False)


def follower(data_dir: Path, start_after: int = 0) -> AsyncIterator[SinkBatch | None]:
    return tail_journal(data_dir, SYMBOLS, start_after, poll_s=0.001, chunk_entries=700)


async def follow_until(
    data_dir: Path,
    last_seq: int,
    start_after: int = 0,
    source: AsyncIterator[SinkBatch | None] | None = None,
) -> list[SinkBatch]:
    """Every batch the follower yields until every symbol is through `last_seq`."""
    got: list[SinkBatch] = []
    through = {s: 0 for s, _, _ in SYMBOLS}
    source = source if source is not None else follower(data_dir, start_after)
    async for b in source:
        if b is not None:
            got.append(b)
            through[b.symbol] = b.through_seq
        if min(through.values()) >= last_seq:
            break
    return got


async def test_a_follower_reads_a_journal_being_written_across_file_rolls(tmp_path: Path) -> None:
    entries = synthetic_journal(2, 3_000, seed=11)
    n = len(entries) // SIZE
    writer = JournalWriter(tmp_path / JOURNAL_DIR, ROLL, 1)

    async def engine() -> None:
        off, step = 0, 1
        while off < n:
            append(writer, entries[off * SIZE : (off + step) * SIZE])
            off += step
            step = step % 97 + 1  # records of 1 .. 97 commands
            await asyncio.sleep(0)  # the follower runs in between

    task = asyncio.create_task(engine())
    got = await asyncio.wait_for(follow_until(tmp_path, seq_of(entries, n - 1)), TIMEOUT_S)
    await task
    assert len(list((tmp_path / JOURNAL_DIR).glob("*.cjl"))) > 5  # it did roll
    assert events_by_symbol(got) == expected_events(entries)
    through = {s: 0 for s, _, _ in SYMBOLS}
    for b in got:
        assert b.after_seq == through[b.symbol]  # contiguous, nothing twice
        through[b.symbol] = b.through_seq
    assert JournalHead(tmp_path)() == (seq_of(entries, n - 1), ts_of(entries, n - 1))


async def test_a_torn_tail_is_not_read_and_the_journal_after_the_restart_is(
    tmp_path: Path,
) -> None:
    entries = synthetic_journal(2, 1_000, seed=5)
    n = len(entries) // SIZE
    half = n // 2
    jdir = tmp_path / JOURNAL_DIR
    writer = JournalWriter(jdir, ROLL, 1)
    append(writer, entries[: half * SIZE])
    writer.sync()
    del writer
    newest = max(jdir.glob("*.cjl"))
    with newest.open("ab") as f:  # a crash in the middle of the next record
        f.write(bytes(24) + entries[half * SIZE : (half + 3) * SIZE][:150])
    source = follower(tmp_path)
    got = await asyncio.wait_for(
        follow_until(tmp_path, seq_of(entries, half - 1), source=source), TIMEOUT_S
    )
    assert max(b.through_seq for b in got) == seq_of(entries, half - 1)
    assert await asyncio.wait_for(anext(source), TIMEOUT_S) is None  # dry at the torn record

    assert journal_recover(jdir)["torn"] is not None  # the daemon's restart cuts it
    writer = JournalWriter(jdir, ROLL, seq_of(entries, half))
    append(writer, entries[half * SIZE :])
    got += await asyncio.wait_for(
        follow_until(tmp_path, seq_of(entries, n - 1), source=source), TIMEOUT_S
    )
    assert events_by_symbol(got) == expected_events(entries)


async def test_a_follower_behind_a_pruned_journal_starts_from_a_snapshot(tmp_path: Path) -> None:
    entries = synthetic_journal(2, 2_000, seed=9)
    n = len(entries) // SIZE
    cut = n // 2
    writer = JournalWriter(tmp_path / JOURNAL_DIR, ROLL, 1)
    for off in range(0, n, 50):
        append(writer, entries[off * SIZE : min(off + 50, n) * SIZE])
    writer.sync()
    books = ReplayBooks(SYMBOLS)
    books.apply(entries[: cut * SIZE])
    snap_seq = seq_of(entries, cut - 1)
    names = [s for s, _, _ in SYMBOLS]
    write_snapshot(tmp_path / SNAPSHOT_DIR, snapshot_of(names, books.books, snap_seq))
    assert prune_journal(tmp_path / JOURNAL_DIR, snap_seq)  # the commands before it are gone

    got = await asyncio.wait_for(
        follow_until(tmp_path, seq_of(entries, n - 1), start_after=snap_seq), TIMEOUT_S
    )
    assert min(b.after_seq for b in got) == snap_seq
    assert events_by_symbol(got) == expected_events(entries, after=cut)


async def test_a_follower_behind_a_pruned_journal_without_a_snapshot_says_so(
    tmp_path: Path,
) -> None:
    entries = synthetic_journal(2, 1_000, seed=9)
    n = len(entries) // SIZE
    writer = JournalWriter(tmp_path / JOURNAL_DIR, ROLL, 1)
    for off in range(0, n, 50):
        append(writer, entries[off * SIZE : min(off + 50, n) * SIZE])
    writer.sync()
    assert prune_journal(tmp_path / JOURNAL_DIR, seq_of(entries, n // 2))
    with pytest.raises(ValueError, match="pruned past"):
        await follow_until(tmp_path, seq_of(entries, n - 1))
