"""Recovery (engine/recovery.py): snapshot + journal replay rebuilds exactly the books that applied
the commands live; torn tails are cut, corruption is refused, pruning keeps what recovery needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine._native import Book, JournalWriter, synthetic_flow
from engine.recovery import (
    ENTRY_DTYPE,
    JOURNAL_DIR,
    SNAPSHOT_DIR,
    RecoveryError,
    journal_files,
    prune_journal,
    recover,
    snapshot_of,
    split_by_symbol,
    state_digest,
)
from engine.snapshot import write_snapshot

SYMBOLS = ["AAA", "BBB", "CCC"]
MAX_PRICE = 1 << 40


def fresh() -> list[Book]:
    return [Book(1, MAX_PRICE, 1 << 40) for _ in SYMBOLS]


def entries(n_per_symbol: int, seed: int = 7) -> bytes:
    """Journal entries for every symbol, interleaved, seq 1.. stamped as the sequencer does."""
    per = [
        np.frombuffer(synthetic_flow(seed + i, n_per_symbol, 50), dtype="V96")
        for i in range(len(SYMBOLS))
    ]
    n = min(len(p) for p in per)
    out = np.zeros(n * len(per), dtype=ENTRY_DTYPE)
    for i, p in enumerate(per):
        out["cmd"][i :: len(per)] = p[:n]
        out["symbol"][i :: len(per)] = i
    seqs = out.view("<u8").reshape(len(out), -1)
    seqs[:, 1] = np.arange(1, len(out) + 1)
    return out.tobytes()


def write_journal(data_dir: Path, payload: bytes, batch: int, roll_bytes: int = 1 << 20) -> None:
    w = JournalWriter(data_dir / JOURNAL_DIR, roll_bytes, 1)
    size = ENTRY_DTYPE.itemsize
    for off in range(0, len(payload), batch * size):
        part = payload[off : off + batch * size]
        w.append(1, off // size + 1, len(part) // size, part, False)
    w.sync()


def live(payload: bytes, upto: int | None = None) -> list[Book]:
    """The books as the daemon's book actors leave them after applying `payload` live."""
    books = fresh()
    arr = np.frombuffer(payload, dtype=ENTRY_DTYPE)
    if upto is not None:
        arr = arr[:upto]
    for sym, records in split_by_symbol(arr.tobytes(), len(books)):
        books[sym].apply(records)
    return books


def test_journal_replay_rebuilds_the_live_books_and_continues_the_sequence(
    tmp_path: Path,
) -> None:
    payload = entries(3000)
    n = len(payload) // ENTRY_DTYPE.itemsize
    write_journal(tmp_path, payload, batch=97, roll_bytes=1 << 16)
    assert len(journal_files(tmp_path / JOURNAL_DIR)) > 1
    books = fresh()
    r = recover(tmp_path, SYMBOLS, books)
    assert (r.snapshot_seq, r.replayed, r.next_seq, r.torn_bytes) == (0, n, n + 1, 0)
    assert state_digest(books) == state_digest(live(payload))
    assert state_digest(books) != state_digest(fresh())


def test_snapshot_plus_tail_equals_the_whole_journal(tmp_path: Path) -> None:
    payload = entries(2000)
    n = len(payload) // ENTRY_DTYPE.itemsize
    write_journal(tmp_path, payload, batch=50)
    cut = n // 2 + 7  # not on a record boundary: recovery skips the covered part of a record
    write_snapshot(tmp_path / SNAPSHOT_DIR, snapshot_of(SYMBOLS, live(payload, cut), cut))
    books = fresh()
    r = recover(tmp_path, SYMBOLS, books)
    assert (r.snapshot_seq, r.replayed, r.next_seq) == (cut, n - cut, n + 1)
    scratch = fresh()
    recover(tmp_path, SYMBOLS, scratch, use_snapshot=False)
    assert state_digest(books) == state_digest(scratch) == state_digest(live(payload))


def test_events_of_a_replay_are_identical_each_time(tmp_path: Path) -> None:
    write_journal(tmp_path, entries(1000), batch=64)
    runs = []
    for _ in range(2):
        got: list[bytes] = []

        def keep(_sym: int, ev: bytes, into: list[bytes] = got) -> None:
            into.append(ev)

        recover(tmp_path, SYMBOLS, fresh(), events=keep)
        runs.append(b"".join(got))
    assert runs[0] == runs[1] and len(runs[0]) > 0


def test_a_torn_tail_is_cut_and_reported(tmp_path: Path) -> None:
    payload = entries(500)
    n = len(payload) // ENTRY_DTYPE.itemsize
    write_journal(tmp_path, payload, batch=100)
    (path,) = journal_files(tmp_path / JOURNAL_DIR)
    last_record = (n - 1) // 100 * 100  # commands in every record but the last
    raw = path[1].read_bytes()
    path[1].write_bytes(raw[:-10])
    books = fresh()
    r = recover(tmp_path, SYMBOLS, books)
    assert r.torn_bytes > 0 and r.next_seq == last_record + 1 and r.replayed == last_record
    assert state_digest(books) == state_digest(live(payload, last_record))
    again = recover(tmp_path, SYMBOLS, fresh())
    assert again.torn_bytes == 0 and again.next_seq == last_record + 1


def test_corruption_before_the_last_record_stops_with_the_runbook(tmp_path: Path) -> None:
    write_journal(tmp_path, entries(500), batch=100)
    (path,) = journal_files(tmp_path / JOURNAL_DIR)
    data = bytearray(path[1].read_bytes())
    data[32 + 24 + 500] ^= 0x55  # inside the first record's payload
    path[1].write_bytes(bytes(data))
    with pytest.raises(RecoveryError, match="journal verify"):
        recover(tmp_path, SYMBOLS, fresh())


def test_snapshot_with_other_symbols_is_refused_appending_is_fine(tmp_path: Path) -> None:
    payload = entries(300)
    write_journal(tmp_path, payload, batch=100)
    write_snapshot(tmp_path / SNAPSHOT_DIR, snapshot_of(SYMBOLS[:2], live(payload, 0)[:2], 0))
    with pytest.raises(RecoveryError, match=r"never\s+removed or reordered"):
        recover(tmp_path, ["BBB", "AAA", "CCC"], fresh())
    books = fresh()
    recover(tmp_path, SYMBOLS, books)  # AAA, BBB from the snapshot, CCC appended
    assert state_digest(books) == state_digest(live(payload))


def test_pruning_keeps_every_file_a_kept_snapshot_needs(tmp_path: Path) -> None:
    payload = entries(3000)
    n = len(payload) // ENTRY_DTYPE.itemsize
    write_journal(tmp_path, payload, batch=40, roll_bytes=1 << 16)
    jdir = tmp_path / JOURNAL_DIR
    files = journal_files(jdir)
    assert len(files) >= 4
    cut = files[2][0] + 3  # inside the third file
    removed = prune_journal(jdir, cut)
    assert removed == [files[0][1], files[1][1]]
    write_snapshot(tmp_path / SNAPSHOT_DIR, snapshot_of(SYMBOLS, live(payload, cut), cut))
    books = fresh()
    r = recover(tmp_path, SYMBOLS, books)
    assert r.replayed == n - cut and state_digest(books) == state_digest(live(payload))
    assert prune_journal(jdir, n + 10)[-1] == files[-2][1]  # the newest file always stays
    assert journal_files(jdir) == [files[-1]]
