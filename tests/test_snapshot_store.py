"""Snapshot files: atomic, checksummed, newest valid one wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.snapshot import (
    Snapshot,
    SnapshotError,
    list_snapshots,
    load_latest,
    prune,
    write_snapshot,
)

sections = st.dictionaries(st.text(min_size=1, max_size=12), st.binary(max_size=64), max_size=5)


@given(seq=st.integers(min_value=0, max_value=2**63), secs=sections)
def test_snapshot_encoding_round_trips(seq: int, secs: dict[str, bytes]) -> None:
    snap = Snapshot(seq=seq, sections=secs)
    assert Snapshot.decode(snap.encode()) == snap


def test_equal_states_encode_to_equal_bytes_whatever_the_section_order() -> None:
    a = Snapshot(seq=5, sections={"book:AAPL": b"1", "risk": b"2"})
    b = Snapshot(seq=5, sections={"risk": b"2", "book:AAPL": b"1"})
    assert a.encode() == b.encode()


def test_every_single_byte_flip_is_detected() -> None:
    data = Snapshot(seq=9, sections={"book": b"abcdef", "risk": b"xyz"}).encode()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(SnapshotError):
            Snapshot.decode(bytes(bad))


def test_every_truncation_is_detected() -> None:
    data = Snapshot(seq=9, sections={"book": b"abcdef"}).encode()
    for n in range(len(data)):
        with pytest.raises(SnapshotError):
            Snapshot.decode(data[:n])


def test_load_latest_skips_a_corrupt_newest_snapshot(tmp_path: Path) -> None:
    write_snapshot(tmp_path, Snapshot(seq=10, sections={"s": b"old"}))
    newest = write_snapshot(tmp_path, Snapshot(seq=20, sections={"s": b"new"}))
    newest.write_bytes(newest.read_bytes()[:-3])
    snap, problems = load_latest(tmp_path)
    assert snap is not None and snap.seq == 10 and snap.sections["s"] == b"old"
    assert len(problems) == 1 and newest.name in problems[0]


def test_no_snapshot_means_none(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "missing") == (None, [])


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    for seq in (1, 5, 9, 13):
        write_snapshot(tmp_path, Snapshot(seq=seq))
    (tmp_path / "snapshot-00000000000000000099.tmp").write_bytes(b"partial")
    prune(tmp_path, keep=2)
    assert [s for s, _ in list_snapshots(tmp_path)] == [9, 13]
    assert not list(tmp_path.glob("*.tmp"))
