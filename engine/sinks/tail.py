"""Catch-up sources: the journal's commands re-applied through fresh books give the exact events
the engine's books gave (the book is deterministic), as `SinkBatch`es.

`ReplayBooks` turns journal entries (JOURNAL_ENTRY_SIZE: the sequenced command record, the u32
symbol index — `ALL_SYMBOLS` for every book — and 4 zero bytes) into one batch per symbol per
chunk, every symbol getting a watermark even when it had no command. `replay(chunks, ...)` is a
finite source over chunks of entries; `tail_command_log(path, ...)` follows the persistence
actor's `commands.log` (actors/persistence.py: a 16-byte header, then entries) and never ends:
the source of a sink run as a follower in its own process (`cift-engine sink run`), which
reads the journal at its own pace and so needs no inbox and never drops.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import numpy as np

from engine.book import COMMAND_SIZE, Book
from engine.sinks.records import SinkBatch
from engine.wire import ALL_SYMBOLS, JOURNAL_ENTRY_SIZE

__all__ = ["ENTRY_DTYPE", "ReplayBooks", "SymbolSpec", "log_head", "replay", "tail_command_log"]

ENTRY_DTYPE = np.dtype([("command", f"V{COMMAND_SIZE}"), ("symbol", "<u4"), ("_pad", "<u4")])
assert ENTRY_DTYPE.itemsize == JOURNAL_ENTRY_SIZE

SymbolSpec = tuple[str, int, int]
"""(name, min_price, max_price): a book exactly as the engine configures it."""

_LOG_HEADER = struct.Struct("<8sII")
_LOG_MAGIC = b"CIFTSEQ1"
_SEQ_TS = struct.Struct("<QQ")  # seq, ts at offset 8 of a command record


class ReplayBooks:
    def __init__(self, symbols: Sequence[SymbolSpec]) -> None:
        self.names = [s[0] for s in symbols]
        self.books = [Book(lo, hi) for _, lo, hi in symbols]
        self.through = [0] * len(symbols)

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


def log_head(path: Path) -> tuple[int, int]:
    """(seq, ts) of the last whole entry of a command log; (0, 0) if it has none."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            whole = (size - _LOG_HEADER.size) // JOURNAL_ENTRY_SIZE
            if whole <= 0:
                return 0, 0
            f.seek(_LOG_HEADER.size + (whole - 1) * JOURNAL_ENTRY_SIZE + 8)
            seq, ts = _SEQ_TS.unpack(f.read(_SEQ_TS.size))
            return seq, ts
    except OSError:
        return 0, 0


async def tail_command_log(
    path: Path,
    symbols: Sequence[SymbolSpec],
    start_after: int,
    *,
    follow: bool = True,
    poll_s: float = 0.05,
    chunk_entries: int = 65_536,
) -> AsyncIterator[SinkBatch | None]:
    """Batches of every command in the log (replayed from its start), then, with `follow`,
    of every command appended later: None each time it has read all there is."""
    while not path.exists():
        if not follow:
            return
        yield None
        await asyncio.sleep(poll_s)
    books = ReplayBooks(symbols)
    with path.open("rb") as f:
        header = f.read(_LOG_HEADER.size)
        while len(header) < _LOG_HEADER.size and follow:
            yield None
            await asyncio.sleep(poll_s)
            header += f.read(_LOG_HEADER.size - len(header))
        magic, entry, _ = _LOG_HEADER.unpack(header)
        if magic != _LOG_MAGIC or entry != JOURNAL_ENTRY_SIZE:
            raise ValueError(f"{path}: not a command log of this version")
        want = chunk_entries * JOURNAL_ENTRY_SIZE
        while True:
            data = f.read(want)
            whole = len(data) - len(data) % JOURNAL_ENTRY_SIZE
            if whole < len(data):
                f.seek(whole - len(data), os.SEEK_CUR)  # a torn entry: read it again later
            if whole:
                batches = await asyncio.to_thread(books.apply, data[:whole], start_after)
                for b in batches:
                    yield b
            if len(data) < want:
                yield None
                if not follow:
                    return
                await asyncio.sleep(poll_s)
