"""Execution reports a previous run journaled but may not have got to NATS (docs/nats.md,
"Re-publishing after a restart").

The publisher keeps a durable mark, `DATA_DIR/nats-exec.published`: the engine seq P such that
JetStream has acknowledged the execution reports of every command with seq <= P. It advances
once a window of exec messages is acknowledged (and, when nothing is pending, to the last
batch published), and is written in place without fsync: a mark that lags only means reports
are sent twice, never that one is missed.

At start (after recovery, before any intake), the reports of the journaled commands with seq in
(P, last seq] are made again: the books are rebuilt as of P from the newest snapshot at or
before P (or from empty books when the journal starts at seq 1), the journal is replayed
through the last seq, and the events of the commands after P go to the publisher's exec path
(`NatsPublisher.republish`) — the same events the first run had, since the books are a
function of the sequenced command log. Delivery is therefore at-least-once across restarts;
subscribers drop repeats by `cmdSeq` (every report carries it; all reports one command caused
for an account are in one message).

Not covered: rejects of commands that were never journaled (gateway and risk rejects), and
commands older than the oldest kept snapshot when the journal before it is pruned (logged).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine._native import Book, JournalReader
from engine.recovery import (
    ENTRY_DTYPE,
    JOURNAL_DIR,
    KIND_COMMANDS,
    SNAPSHOT_DIR,
    book_section,
    journal_entries,
    journal_files,
    split_entries,
)
from engine.snapshot import Snapshot, SnapshotError, list_snapshots

__all__ = ["MARK_FILE", "PublishedMark", "Replayed", "replay_reports"]

log = logging.getLogger(__name__)

MARK_FILE = "nats-exec.published"
_SEQ_WORD = 1  # the seq field's u64 index inside a journal entry (offset 8)


class Replayed(NamedTuple):
    """One symbol's events of a replayed journal record (fits `ReportsLike`)."""

    events: bytes
    symbol: int
    symbols: bytes


class PublishedMark:
    """The published-through engine seq, 16 bytes (magic, seq) rewritten in place."""

    REC = struct.Struct("<QQ")
    MAGIC = 0x4C42_5550_5446_4943  # "CIFTPUBL"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seq = -1
        self._fd = -1

    def load(self) -> int | None:
        """The stored mark, or None (no file yet, or not a mark)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if len(data) != self.REC.size:
            return None
        magic, seq = self.REC.unpack(data)
        return seq if magic == self.MAGIC else None

    def store(self, seq: int) -> None:
        """Write `seq` if it moved (no fsync: see the module docstring)."""
        if seq == self.seq:
            return
        if self._fd < 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.pwrite(self._fd, self.REC.pack(self.MAGIC, seq), 0)
        self.seq = seq

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _base(data_dir: Path, names: Sequence[str], books: list[Book], after: int) -> int:
    """Restore `books` to the newest state at or before seq `after` that the snapshots and the
    journal allow; returns the seq that state covers (> `after` when the journal before it is
    pruned; -1: nothing usable)."""
    jfiles = journal_files(data_dir / JOURNAL_DIR)
    journal_from = jfiles[0][0] if jfiles else after + 1
    snaps = list_snapshots(data_dir / SNAPSHOT_DIR)
    # newest at or before `after` first, then the empty start, then the oldest after `after`
    order: list[tuple[int, Path | None]] = [s for s in reversed(snaps) if s[0] <= after]
    order += [(0, None)] + [s for s in snaps if s[0] > after]
    for seq, path in order:
        if journal_from > seq + 1:
            continue  # the journal right after it is pruned
        if path is None:
            return 0
        try:
            snap = Snapshot.decode(path.read_bytes())
            restored = {
                i: Book.restore(snap.sections[book_section(name)])
                for i, name in enumerate(names)
                if book_section(name) in snap.sections
            }
        except (OSError, SnapshotError, ValueError) as e:
            log.warning("re-publishing: snapshot %s unusable: %s", path.name, e)
            continue
        for i, book in restored.items():
            books[i] = book
        return seq
    return -1


def replay_reports(
    data_dir: Path,
    names: Sequence[str],
    books: list[Book],
    after: int,
    emit: Callable[[list[Replayed]], None],
) -> tuple[int, int]:
    """Replay the journal into `books` (fresh, one per symbol) and hand `emit` the events of
    every command with seq > `after`, one batch per journal record. Returns (the seq the
    re-published reports start after, commands re-published); the first is > `after` when the
    reports in between can no longer be made (logged)."""
    base = _base(data_dir, names, books, after)
    if base < 0:
        log.warning("re-publishing: no snapshot and journal to rebuild seq %d from", after)
        return after, 0
    if base > after:
        log.warning(
            "re-publishing: the journal before seq %d is pruned; the reports of seq %d..%d "
            "cannot be made again (they are in the previous run's exec stream or lost)",
            base + 1,
            after + 1,
            base,
        )
    start = max(base, after)
    replayed = 0
    words = ENTRY_DTYPE.itemsize // 8
    for kind, _first, _count, payload in JournalReader(data_dir / JOURNAL_DIR, base + 1):
        if kind != KIND_COMMANDS:
            continue
        entries = journal_entries(payload, base)
        if len(entries) == 0:
            continue
        seqs = np.frombuffer(entries.tobytes(), dtype="<u8")[_SEQ_WORD::words]
        cut = int(np.searchsorted(seqs, start, side="right"))
        for sym, records in split_entries(entries[:cut], len(books)):
            books[sym].apply(records)
        batch = [
            Replayed(out, sym, b"")
            for sym, records in split_entries(entries[cut:], len(books))
            if (out := books[sym].apply(records))
        ]
        replayed += len(entries) - cut
        if batch:
            emit(batch)
    return start, replayed
