"""Persistence actor: appends every sequenced command to the command log, one write per batch.

This is the write-ahead step of the pipeline: publishing releases a reply only once the command
behind it is here (`PublishingActor.mark_durable`), so no client ever sees the effect of a command
the log does not have. `journal.fsync` picks how durable "here" is: "none" = written to the OS
(survives a crash of the process), "batch" = fsynced after every batch (survives the machine).

File `DATA_DIR/commands.log`: a 16-byte header (magic "CIFTSEQ1", u32 entry size, u32 zero),
then fixed-size entries (JOURNAL_ENTRY_SIZE: the sequenced command record, the u32 symbol index,
4 zero bytes) in sequence order. On open, a torn last entry (a crash mid-write) is cut off, and
the sequencer continues after the last sequence number in the file. Replay from this log, CRCs
and snapshots come with the journal (native/src/journal).
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

from actors.base import Actor
from actors.items import JournalBatch
from actors.publishing import PublishingActor
from engine.wire import JOURNAL_ENTRY_SIZE

__all__ = ["LOG_NAME", "CommandLog", "PersistenceActor"]

LOG_NAME = "commands.log"
_HEADER = struct.Struct("<8sII")
_MAGIC = b"CIFTSEQ1"
_SEQ = struct.Struct("<Q")
_SEQ_OFFSET = 8  # of the command record's seq field


class CommandLog:
    """The append-only file of sequenced commands."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_seq = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._recover()
        except BaseException:
            os.close(self.fd)
            raise

    def _recover(self) -> None:
        size = os.fstat(self.fd).st_size
        if size == 0:
            self._write(_HEADER.pack(_MAGIC, JOURNAL_ENTRY_SIZE, 0))
            return
        header = os.pread(self.fd, _HEADER.size, 0)
        if len(header) < _HEADER.size:
            raise ValueError(f"{self.path}: truncated header; not a command log")
        magic, entry, _ = _HEADER.unpack(header)
        if magic != _MAGIC or entry != JOURNAL_ENTRY_SIZE:
            raise ValueError(f"{self.path}: not a command log of this version")
        whole = (size - _HEADER.size) // JOURNAL_ENTRY_SIZE
        end = _HEADER.size + whole * JOURNAL_ENTRY_SIZE
        if end != size:
            os.ftruncate(self.fd, end)
        if whole:
            last = os.pread(self.fd, _SEQ.size, end - JOURNAL_ENTRY_SIZE + _SEQ_OFFSET)
            (self.last_seq,) = _SEQ.unpack(last)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def append(self, data: bytes, last_seq: int) -> None:
        self._write(data)
        self.last_seq = last_seq

    def fsync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class PersistenceActor(Actor[JournalBatch]):
    def __init__(
        self,
        log: CommandLog,
        fsync: bool,
        capacity: int,
        batch_max: int,
    ) -> None:
        super().__init__("persistence", capacity, batch_max)
        self.log = log
        self.fsync = fsync
        self.publishing: PublishingActor | None = None
        self.bytes = 0
        self.on_fsync: Callable[[float], None] = lambda _s: None

    def connect(self, publishing: PublishingActor) -> None:
        self.publishing = publishing

    def handle(self, batch: list[JournalBatch]) -> None:
        assert self.publishing is not None, "not connected"
        data = batch[0].entries if len(batch) == 1 else b"".join(b.entries for b in batch)
        last_seq = batch[-1].last_seq
        self.log.append(data, last_seq)
        self.bytes += len(data)
        if not self.fsync:
            # The durability gate: replies up to last_seq may go out now.
            self.publishing.mark_durable(last_seq)
            return
        # fsync in a worker thread; meanwhile the next batches queue up (group commit).
        self.hold()
        start = time.perf_counter()
        done = asyncio.get_running_loop().run_in_executor(None, self.log.fsync)
        done.add_done_callback(lambda f: self._synced(f, last_seq, start))

    def _synced(self, f: asyncio.Future[None], last_seq: int, start: float) -> None:
        assert self.publishing is not None, "not connected"
        err = f.exception()
        if err is not None:
            self.fail(err)
            return
        self.on_fsync(time.perf_counter() - start)
        self.publishing.mark_durable(last_seq)
        self.release()
