"""Catch-up sources: the journal's commands re-applied through fresh books give the exact events
the engine's books gave (the book is deterministic), as `SinkBatch`es.

`ReplayBooks` turns journal entries (JOURNAL_ENTRY_SIZE: the sequenced command record, the u32
symbol index — `ALL_SYMBOLS` for every book — and 4 zero bytes) into one batch per symbol per
chunk, every symbol getting a watermark even when it had no command. `replay(chunks, ...)` is a
finite source over chunks of entries; `tail_journal(data_dir, ...)` follows the persistence
actor's CRC32C journal (DATA_DIR/journal, docs/durability.md) and never ends: the source of a
sink run as a follower in its own process (`cift-engine sink run`), which reads the journal at
its own pace and so needs no inbox and never drops.

The follower's books start from the newest snapshot at or before its checkpoint (else empty, with
the journal read from seq 1) and re-apply the journal from there; when the journal runs dry the
reader is re-opened from the next seq once a file grew or a new one appeared (file rolls).
A re-open reads and checks the newest file again from its start, so the poll interval stretches
to twice what the last scan took (~0.15 s for a full 64 MiB file on the development VM).
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import numpy as np
import orjson

from engine._native import JournalReader
from engine.book import COMMAND_SIZE, Book
from engine.recovery import JOURNAL_DIR, KIND_COMMANDS, SNAPSHOT_DIR, book_section
from engine.sinks.records import SinkBatch
from engine.snapshot import Snapshot, SnapshotError, list_snapshots
from engine.wire import ALL_SYMBOLS, JOURNAL_ENTRY_SIZE

__all__ = [
    "ENTRY_DTYPE",
    "JournalHead",
    "JournalPruned",
    "ReplayBooks",
    "SymbolSpec",
    "replay",
    "start_books",
    "tail_journal",
]

ENTRY_DTYPE = np.dtype([("command", f"V{COMMAND_SIZE}"), ("symbol", "<u4"), ("_pad", "<u4")])
assert ENTRY_DTYPE.itemsize == JOURNAL_ENTRY_SIZE

SymbolSpec = tuple[str, int, int]
"""(name, min_price, max_price): a book exactly as the engine configures it."""

_SEQ_TS = struct.Struct("<QQ")  # seq, ts at offset 8 of a command record
_FILE_HEADER = 32  # journal file header (docs/durability.md)
_RECORD = struct.Struct("<IHHQII")  # payload_len, kind, flags, first_seq, count, crc32c


class ReplayBooks:
    def __init__(
        self, symbols: Sequence[SymbolSpec], books: Sequence[Book] = (), through: int = 0
    ) -> None:
        """Fresh books for `symbols`, or `books` (restored, covering seqs <= `through`)."""
        self.names = [s[0] for s in symbols]
        self.books = list(books) if books else [Book(lo, hi) for _, lo, hi in symbols]
        self.through = [through] * len(symbols)

    def apply(self, entries: bytes, start_after: int = 0) -> list[SinkBatch]:
        """Apply whole entries (seq order); the batches that reach past `start_after`."""
        arr = np.frombuffer(entries, ENTRY_DTYPE)
        if not len(arr):
            return []
        last = _SEQ_TS.unpack_from(entries, len(entries) - JOURNAL_ENTRY_SIZE + 8)[0]
        sym = arr["symbol"]
        out = []
        for i, (name, book) in enumerate(zip(self.names, self.books, strict=True)):
            m = (sym == i) | (sym == ALL_SYMBOLS)
            commands = arr["command"][m].tobytes() if m.any() else b""
            events = book.apply(commands) if commands else b""
            after, self.through[i] = self.through[i], last
            if last > start_after:
                out.append(SinkBatch(name, commands, events, after, last))
        return out


async def replay(
    chunks: Iterable[bytes], symbols: Sequence[SymbolSpec], start_after: int
) -> AsyncIterator[SinkBatch | None]:
    """A finite catch-up source over chunks of journal entries (from the first one on)."""
    books = ReplayBooks(symbols)
    for chunk in chunks:
        for b in books.apply(chunk, start_after):
            yield b
        yield None


# -- following the journal ---------------------------------------------------------------------


def _journal_files(jdir: Path) -> list[tuple[int, Path]]:
    try:
        found = [(int(p.stem), p) for p in jdir.glob("*.cjl") if p.stem.isdigit()]
    except OSError:
        return []
    return sorted(found)


class JournalPruned(ValueError):
    """The journal no longer holds what the sink needs (pruned past its checkpoint, beyond
    journal.sink_retention_max_commands): the sink stops; re-seed it (docs/sinks.md)."""


def start_books(data_dir: Path, symbols: Sequence[SymbolSpec], start_after: int) -> ReplayBooks:
    """Books at the newest readable snapshot covering at most `start_after` (empty books at
    seq 0 without one); raises ValueError when the journal no longer holds the commands after
    that point (pruned past the follower's checkpoint)."""
    names = [s[0] for s in symbols]
    books = ReplayBooks(symbols)
    for seq, path in reversed(list_snapshots(data_dir / SNAPSHOT_DIR)):
        if seq > start_after:
            continue
        try:
            snap = Snapshot.decode(path.read_bytes())
            had = orjson.loads(snap.sections.get("meta", b"{}")).get("symbols")
            if not isinstance(had, list) or had != names[: len(had)]:
                continue
            restored = [
                Book.restore(snap.sections[book_section(n)]) if i < len(had) else books.books[i]
                for i, n in enumerate(names)
            ]
        except (OSError, SnapshotError, KeyError, ValueError, orjson.JSONDecodeError):
            continue  # unreadable or from another config: an older one may do
        books = ReplayBooks(symbols, restored, snap.seq)
        break
    base = books.through[0] if books.through else 0
    files = _journal_files(data_dir / JOURNAL_DIR)
    if files and files[0][0] > base + 1:
        raise JournalPruned(
            f"{data_dir / JOURNAL_DIR}: the journal starts at seq {files[0][0]}, but the sink "
            f"needs seq {base + 1} on (its checkpoint is seq {start_after}, no snapshot covers "
            "the gap): the journal was pruned past it"
        )
    return books


class _Cursor:
    """Kind-1 journal entries from `next_seq` on, re-opening a `JournalReader` from the next seq
    after it ran dry once the journal changed (a file grew, or a new one appeared)."""

    def __init__(self, jdir: Path, next_seq: int) -> None:
        self.jdir = jdir
        self.next_seq = next_seq
        self.reader: JournalReader | None = None
        self.dry_at: tuple[int, int, int] | None = None
        self.busy = 0.0  # time spent reading with the current reader
        self.scan_s = 0.0  # with the last one: a re-open reads the newest file again

    def _stamp(self) -> tuple[int, int, int]:
        files = _journal_files(self.jdir)
        if not files:
            return (0, 0, -1)
        first, newest = files[-1]
        try:
            size = newest.stat().st_size
        except OSError:
            size = -1
        return (len(files), first, size)

    def take(self, want: int) -> tuple[bytes, bool]:
        """Up to about `want` entries (whole records) and whether the journal ran dry."""
        start = time.perf_counter()
        parts: list[bytes] = []
        n = 0
        if self.reader is None:
            stamp = self._stamp()
            if stamp == self.dry_at or stamp[0] == 0:
                return b"", True
            self.busy = 0.0
            self.reader = JournalReader(self.jdir, self.next_seq)
            self.dry_at = stamp  # what this reader covers at least
        for kind, first, count, payload in self.reader:
            end = first + count
            if end <= self.next_seq:
                continue
            if first > self.next_seq:
                raise JournalPruned(
                    f"{self.jdir}: the journal has no seq {self.next_seq} (next record starts "
                    f"at {first}): pruned past the sink's position"
                )
            if kind == KIND_COMMANDS:
                skip = self.next_seq - first
                parts.append(payload[skip * JOURNAL_ENTRY_SIZE :] if skip else payload)
                n += count - skip
            self.next_seq = end
            if n >= want:
                self.busy += time.perf_counter() - start
                return b"".join(parts), False
        self.reader = None
        self.scan_s = self.busy + time.perf_counter() - start
        return b"".join(parts), True


async def tail_journal(
    data_dir: Path,
    symbols: Sequence[SymbolSpec],
    start_after: int,
    *,
    follow: bool = True,
    poll_s: float = 0.05,
    chunk_entries: int = 65_536,
) -> AsyncIterator[SinkBatch | None]:
    """Batches of every journaled command after `start_after` (books rebuilt from the newest
    snapshot before it, or from seq 1), then, with `follow`, of every command journaled later:
    None each time it has read all there is."""
    jdir = data_dir / JOURNAL_DIR
    while not _journal_files(jdir):
        if not follow:
            return
        yield None
        await asyncio.sleep(poll_s)
    books = await asyncio.to_thread(start_books, data_dir, symbols, start_after)
    cursor = _Cursor(jdir, (books.through[0] if books.through else 0) + 1)

    def step() -> tuple[list[SinkBatch], bool]:
        data, dry = cursor.take(chunk_entries)
        return (books.apply(data, start_after) if data else []), dry

    while True:
        batches, dry = await asyncio.to_thread(step)
        for b in batches:
            yield b
        if dry:
            yield None
            if not follow:
                return
            # A re-open scans the newest file from its start (up to roll_bytes): poll no more
            # often than twice what reading took, so following costs at most a third of a core
            # (at most 1 s: after a long catch-up the figure covers more than one file).
            await asyncio.sleep(max(poll_s, min(1.0, 2 * cursor.scan_s)))


class JournalHead:
    """`head()` for a follower's lag: (seq, ts) of the journal's last whole record, read from
    the newest file's record headers (incrementally; no checksums: a figure, not a replay)."""

    def __init__(self, data_dir: Path) -> None:
        self.jdir = data_dir / JOURNAL_DIR
        self.path: Path | None = None
        self.offset = _FILE_HEADER
        self.last = (0, 0)

    def __call__(self) -> tuple[int, int]:
        files = _journal_files(self.jdir)
        if not files:
            return self.last
        path = files[-1][1]
        if path != self.path:
            self.path, self.offset = path, _FILE_HEADER
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                while self.offset + _RECORD.size <= size:
                    f.seek(self.offset)
                    header = f.read(_RECORD.size)
                    if len(header) < _RECORD.size:
                        break
                    length, kind, _flags, _first, count, _crc = _RECORD.unpack(header)
                    end = self.offset + _RECORD.size + length
                    if end > size:
                        break  # being written
                    if kind == KIND_COMMANDS and count and length >= count * JOURNAL_ENTRY_SIZE:
                        f.seek(self.offset + _RECORD.size + (count - 1) * JOURNAL_ENTRY_SIZE + 8)
                        raw = f.read(_SEQ_TS.size)
                        if len(raw) == _SEQ_TS.size:
                            self.last = max(self.last, _SEQ_TS.unpack(raw))
                    self.offset = end
        except OSError:
            pass
        return self.last
