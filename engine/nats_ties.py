"""Tying JetStream order messages to the journal (docs/nats.md, "Tying the stream to the
journal"): the tie log `DATA_DIR/nats-entry.tie` of `(stream seq, engine seq)` records, written
before the journal has the command, and the match of a batch's commands to the journal entries
risk made of them.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterable
from pathlib import Path

from engine.book import COMMAND_SIZE, CmdKind
from engine.wire import JOURNAL_ENTRY_SIZE

__all__ = ["TieLog", "match_seqs"]

_SEQ = struct.Struct("<Q")
_NEW = int(CmdKind.NEW)


class TieLog:
    """The tie between JetStream and the journal: `(stream seq, engine seq)` records appended
    before the journal has the command. `load(last_seq)` keeps the ties the journal confirms."""

    REC = struct.Struct("<QQ")

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        self.size = 0
        self._fd = -1

    def load(self, last_seq: int, floor: int = 0) -> dict[int, int]:
        """Ties with engine seq <= `last_seq` (applied) and stream seq > `floor` (maybe still
        in the stream), as stream seq -> engine seq; the file is rewritten to hold just them."""
        applied: dict[int, int] = {}
        with contextlib.suppress(FileNotFoundError):
            data = self.path.read_bytes()
            whole = len(data) - len(data) % self.REC.size
            for stream_seq, engine_seq in self.REC.iter_unpack(data[:whole]):
                if engine_seq <= last_seq and stream_seq > floor:
                    applied[stream_seq] = engine_seq
        self._rewrite(applied.items())
        return applied

    def _rewrite(self, ties: Iterable[tuple[int, int]]) -> None:
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        data = b"".join(self.REC.pack(s, e) for s, e in ties)
        tmp.write_bytes(data)
        if self.fsync:
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
        tmp.replace(self.path)
        if self.fsync:
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.size = len(data)

    def append(self, ties: list[tuple[int, int]]) -> None:
        data = b"".join(self.REC.pack(s, e) for s, e in ties)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        if self.fsync:
            os.fsync(self._fd)
        self.size += len(data)

    def compact(self, keep: Iterable[tuple[int, int]]) -> None:
        self._rewrite(keep)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def match_seqs(commands: bytes, symbols: bytes, journal: bytes, n: int) -> list[int]:
    """The engine seq of each of `n` commands (0: rejected by risk). The journal holds the
    accepted ones in order, as sequenced: equal but for seq, ts and a new order's id (and the
    risk checks are a function of exactly the compared fields, so the match is exact)."""
    if len(journal) == n * JOURNAL_ENTRY_SIZE:
        return [_SEQ.unpack_from(journal, k * JOURNAL_ENTRY_SIZE + 8)[0] for k in range(n)]
    seqs = [0] * n
    entries = len(journal) // JOURNAL_ENTRY_SIZE
    j = 0
    for i in range(n):
        c = commands[i * COMMAND_SIZE : (i + 1) * COMMAND_SIZE]
        sym = symbols[i * 4 : i * 4 + 4]
        for k in range(j, entries):
            e = journal[k * JOURNAL_ENTRY_SIZE : k * JOURNAL_ENTRY_SIZE + COMMAND_SIZE + 4]
            if (
                c[:8] == e[:8]
                and c[32:] == e[32:COMMAND_SIZE]
                and (c[0] == _NEW or c[24:32] == e[24:32])
                and sym == e[COMMAND_SIZE:]
            ):
                seqs[i] = _SEQ.unpack_from(e, 8)[0]
                j = k + 1
                break
    return seqs
