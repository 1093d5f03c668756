"""The write-ahead journal as the persistence actor uses it, through engine._native."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine._native import (
    JournalCorrupt,
    JournalReader,
    JournalWriter,
    journal_recover,
    journal_scan,
)


def _write(d: Path, batches: list[bytes], roll_bytes: int = 1 << 20) -> int:
    w = JournalWriter(d, roll_bytes, 1)
    seq = 1
    for payload in batches:
        w.append(1, seq, len(payload), payload, True)
        seq += len(payload)
    assert w.next_seq == seq
    return seq


def test_batches_read_back_exactly_and_in_order(tmp_path: Path) -> None:
    batches = [bytes([i]) * (i + 1) for i in range(40)]
    next_seq = _write(tmp_path, batches, roll_bytes=300)
    got = list(JournalReader(tmp_path))
    assert [p for _, _, _, p in got] == batches
    assert [(k, c) for k, _, c, _ in got] == [(1, len(b)) for b in batches]
    scan = journal_scan(tmp_path)
    assert scan["records"] == 40 and scan["next_seq"] == next_seq and scan["torn"] is None
    assert scan["files"] > 1


def test_reader_starts_at_the_record_holding_from_seq(tmp_path: Path) -> None:
    _write(tmp_path, [b"aaa", b"bb", b"cccc"])  # seqs 1-3, 4-5, 6-9
    assert [fs for _, fs, _, _ in JournalReader(tmp_path, 5)] == [4, 6]


def test_torn_tail_is_reported_then_cut_by_recover(tmp_path: Path) -> None:
    _write(tmp_path, [b"one", b"two", b"three"])
    (path,) = tmp_path.glob("*.cjl")
    path.write_bytes(path.read_bytes()[:-2])
    scan = journal_scan(tmp_path)
    assert scan["records"] == 2 and scan["torn"] is not None
    journal_recover(tmp_path)
    after = journal_scan(tmp_path)
    assert after["torn"] is None and after["records"] == 2 and after["next_seq"] == 7
    # Appending continues the sequence after recovery.
    w = JournalWriter(tmp_path, 1 << 20, after["next_seq"])
    w.append(1, 7, 1, b"x", True)
    assert [fs for _, fs, _, _ in JournalReader(tmp_path)] == [1, 4, 7]


def test_corruption_in_the_middle_raises(tmp_path: Path) -> None:
    _write(tmp_path, [b"first-record", b"second", b"third"])
    (path,) = tmp_path.glob("*.cjl")
    data = bytearray(path.read_bytes())
    data[32 + 24 + 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="not a torn tail"):
        journal_scan(tmp_path)
    with pytest.raises(JournalCorrupt):
        list(JournalReader(tmp_path))


def test_out_of_sequence_append_is_refused(tmp_path: Path) -> None:
    w = JournalWriter(tmp_path, 1 << 20, 10)
    with pytest.raises(JournalCorrupt, match="out of sequence"):
        w.append(1, 11, 1, b"x", False)
