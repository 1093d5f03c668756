"""Persistence actor: the write-ahead journal (group commit) and the snapshots.

Every sequenced batch risk hands over becomes ONE journal record (`engine._native.JournalWriter`:
CRC32C framed, rolling files, docs/durability.md), written in a dedicated worker thread (the Rust
writer releases the GIL) while the event loop goes on; meanwhile the next batches queue up and
are committed together. Under `none` and `interval`, a batch of up to INLINE_BYTES is written
on the event loop itself (a write into the page cache costs less than the thread hop).
Publishing releases a reply only once the command behind it is durable
(`PublishingActor.mark_durable`), and "durable" follows `journal.fsync`:

- `always`: the record is fdatasynced before `mark_durable` (one fsync per batch);
- `interval`: fdatasync at most every `fsync_interval_us` (at batch end when due, else on a
  timer); `mark_durable` only up to what the last completed fsync covered;
- `none`: `mark_durable` once written to the OS (survives a process crash, not the machine).

`Snapshotter` turns a consistent cut (a `SnapshotMark` that went through every book actor's
inbox in sequence order, see `RiskActor.snapshot_barrier`) into a snapshot file once the journal
is durable through the cut, then prunes old snapshots and the journal files they cover.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from actors.base import Actor
from actors.items import JournalBatch, SnapshotMark
from actors.publishing import PublishingActor
from engine._native import JournalWriter
from engine.recovery import (
    JOURNAL_DIR,
    KIND_COMMANDS,
    SNAPSHOT_DIR,
    book_section,
    meta_section,
    prune_journal,
)
from engine.retention import retention_floor, sink_marks
from engine.snapshot import Snapshot, list_snapshots, prune, write_snapshot
from engine.wire import JOURNAL_ENTRY_SIZE

__all__ = ["POLICIES", "PersistenceActor", "Snapshotter"]

log = logging.getLogger(__name__)

POLICIES = ("always", "interval", "none")
# Under `none` / `interval`, appends up to this size are written on the event loop itself.
INLINE_BYTES = 256 << 10


class PersistenceActor(Actor[JournalBatch]):
    """Appends each batch to the journal off the loop; reports durability to publishing."""

    def __init__(
        self,
        data_dir: Path,
        roll_bytes: int,
        next_seq: int,
        policy: str,
        interval_us: int,
        capacity: int,
        batch_max: int,
    ) -> None:
        super().__init__("persistence", capacity, batch_max)
        if policy not in POLICIES:
            raise ValueError(f"unknown fsync policy {policy!r}")
        self.writer = JournalWriter(data_dir / JOURNAL_DIR, roll_bytes, next_seq)
        self.policy = policy
        self.interval = interval_us / 1e6
        self.written_seq = next_seq - 1  # appended to the journal (OS page cache at least)
        self.durable_seq = next_seq - 1  # covered by the policy's durability
        self.publishing: PublishingActor | None = None
        self.bytes = 0
        self.fsyncs = 0
        self.on_fsync: Callable[[float], None] = lambda _s: None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="journal")
        self._io = False  # an append or a sync runs in the worker
        self._last_sync = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._urgent = False
        self._waiters: list[tuple[int, Callable[[], None]]] = []

    def connect(self, publishing: PublishingActor) -> None:
        self.publishing = publishing

    @property
    def last_seq(self) -> int:
        return self.written_seq

    # ---------------------------------------------------------------- appends

    def handle(self, batch: list[JournalBatch]) -> None:
        data = batch[0].entries if len(batch) == 1 else b"".join(b.entries for b in batch)
        count = len(data) // JOURNAL_ENTRY_SIZE
        last = batch[-1].last_seq
        sync = self.policy == "always"
        if not sync and len(data) <= INLINE_BYTES:
            # `none` / `interval`: a small append is a write(2) into the page cache, a few
            # microseconds, where the hop to the worker thread and back costs tens of them.
            # (Never concurrent with the worker: a sync there holds this actor.)
            try:
                self.writer.append(KIND_COMMANDS, last - count + 1, count, data, False)
            except Exception as e:  # an I/O error stops the daemon (fail fast)
                self.fail(e)
                return
            self._written(last, len(data), -1.0)
            return
        self._io = True
        self.hold()  # one journal operation at a time; batches queue meanwhile (group commit)
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._pool, self._append, data, last - count + 1, count, sync)
        job.add_done_callback(partial(self._appended, last, len(data)))

    def _append(self, data: bytes, first: int, count: int, sync: bool) -> float:
        """Worker thread: the append, and with `sync` its fdatasync; returns the fsync time."""
        self.writer.append(KIND_COMMANDS, first, count, data, False)
        if not sync:
            return -1.0
        start = time.perf_counter()
        self.writer.sync()
        return time.perf_counter() - start

    def _appended(self, last: int, nbytes: int, job: asyncio.Future[float]) -> None:
        self._io = False
        err = job.exception()
        if err is not None:
            self.fail(err)
            return
        self._written(last, nbytes, job.result())
        self.release()

    def _written(self, last: int, nbytes: int, fsync_s: float) -> None:
        """Commands through `last` are in the journal; `fsync_s` >= 0: and fdatasynced."""
        self.written_seq = last
        self.bytes += nbytes
        if fsync_s >= 0:
            self._synced(last, fsync_s)
        elif self.policy == "none":
            self._durable(last)
        else:
            self._maybe_sync()

    # ---------------------------------------------------------------- fsync (interval policy)

    def _maybe_sync(self) -> None:
        if self._io or self.written_seq <= self.durable_seq:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_sync + self.interval - time.monotonic()
        if wait > 0 and not self._urgent:
            if self._timer is None:
                self._timer = loop.call_later(wait, self._on_timer)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._io = True
        self.hold()
        target = self.written_seq
        job = loop.run_in_executor(self._pool, self._sync)
        job.add_done_callback(partial(self._sync_done, target))

    def _on_timer(self) -> None:
        self._timer = None
        self._maybe_sync()

    def _sync(self) -> float:
        start = time.perf_counter()
        self.writer.sync()
        return time.perf_counter() - start

    def _sync_done(self, target: int, job: asyncio.Future[float]) -> None:
        self._io = False
        err = job.exception()
        if err is not None:
            self.fail(err)
            return
        self._synced(target, job.result())
        self.release()
        self._maybe_sync()  # more may have been written meanwhile

    def _synced(self, seq: int, seconds: float) -> None:
        self.fsyncs += 1
        self._last_sync = time.monotonic()
        self.on_fsync(seconds)
        self._durable(seq)

    def _durable(self, seq: int) -> None:
        if seq <= self.durable_seq:
            return
        self.durable_seq = seq
        if self.publishing is not None:
            self.publishing.mark_durable(seq)  # the durability gate: replies up to seq may go
        if self._waiters:
            ready = [cb for s, cb in self._waiters if s <= seq]
            self._waiters = [(s, cb) for s, cb in self._waiters if s > seq]
            for cb in ready:
                cb()

    def when_durable(self, seq: int, callback: Callable[[], None]) -> None:
        """Call `callback` once the journal is durable through `seq` (at once if it is)."""
        if seq <= self.durable_seq:
            callback()
        else:
            self._waiters.append((seq, callback))

    # ---------------------------------------------------------------- shutdown

    async def flush(self) -> None:
        """Make everything appended durable (clean shutdown, after `drain`), whatever the
        policy."""
        if self.policy == "interval" and self.written_seq > self.durable_seq:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.when_durable(self.written_seq, partial(_resolve, done))
            self._urgent = True
            self._maybe_sync()
            await done
        elif self.policy == "none":
            await asyncio.get_running_loop().run_in_executor(self._pool, self.writer.sync)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pool.shutdown(wait=True)


def _resolve(f: asyncio.Future[None]) -> None:
    if not f.done():
        f.set_result(None)


class _Cut:
    def __init__(self, seq: int, books: int) -> None:
        self.seq = seq
        self.missing = books
        self.sections: dict[str, bytes] = {}


class Snapshotter:
    """Consistent snapshots: collect every book's state at one cut, write once durable."""

    def __init__(
        self,
        data_dir: Path,
        symbols: Sequence[str],
        keep: int,
        persistence: PersistenceActor,
        last_seq: int,
        prune_journal: bool = True,
        sink_retention_max: int = 0,
        engine_time: Callable[[], int] | None = None,
    ) -> None:
        self.data_dir = data_dir
        # The engine time reached (the sequencer's newest stamp), written in each snapshot's
        # meta so that a restart continues engine time from there.
        self.engine_time = engine_time
        self.sink_retention_max = sink_retention_max
        self.retention_exceeded = 0  # prunes that went past what a sink has applied
        self.dir = data_dir / SNAPSHOT_DIR
        self.journal_dir = data_dir / JOURNAL_DIR
        self.symbols = list(symbols)
        self.keep = keep
        self.prune_journal = prune_journal
        self.persistence = persistence
        self.last_seq = last_seq  # of the newest snapshot written (or recovered from)
        self.last_time = time.monotonic()
        self.written = 0
        self.pending: _Cut | None = None
        self._job: asyncio.Future[None] | None = None
        # Sections every snapshot carries as they are (the daemon's applied risk config).
        self.static_sections: dict[str, bytes] = {}

    def _now(self) -> int:
        return self.engine_time() if self.engine_time is not None else 0

    def mark(self, seq: int) -> SnapshotMark | None:
        """A marker for a new cut at `seq`, or None (one in progress, or nothing new)."""
        if self.pending is not None or seq <= self.last_seq:
            return None
        cut = _Cut(seq, len(self.symbols))
        self.pending = cut
        return SnapshotMark(seq, partial(self._book_done, cut))

    def _book_done(self, cut: _Cut, index: int, data: bytes) -> None:
        cut.sections[book_section(self.symbols[index])] = data
        cut.missing -= 1
        if cut.missing == 0:
            self.persistence.when_durable(cut.seq, partial(self._write, cut))

    def _write(self, cut: _Cut) -> None:
        cut.sections.update(self.static_sections)
        cut.sections["meta"] = meta_section(self.symbols, cut.seq, self._now())
        snap = Snapshot(cut.seq, cut.sections)
        loop = asyncio.get_running_loop()
        self._job = loop.run_in_executor(None, self._store, snap)
        self._job.add_done_callback(partial(self._stored, cut))

    def _store(self, snap: Snapshot) -> None:
        """Worker thread: the file, then what it makes redundant."""
        start = time.perf_counter()
        path = write_snapshot(self.dir, snap)
        floor = self._sink_floor(snap.seq)
        prune(self.dir, self.keep, floor)
        kept = list_snapshots(self.dir)
        removed: list[Path] = []
        if kept and self.prune_journal:
            covered = kept[0][0]
            if floor is not None and covered > floor:
                covered = 0  # no snapshot at or below the slowest sink: keep the whole journal
            removed = prune_journal(self.journal_dir, covered)
        log.info(
            "snapshot %s: seq %d, %d bytes, %.3f s; %d journal files pruned",
            path.name,
            snap.seq,
            sum(len(d) for d in snap.sections.values()),
            time.perf_counter() - start,
            len(removed),
        )

    def _sink_floor(self, head: int) -> int | None:
        """Worker thread: the seq the slowest sink follower has applied (bounded), or None
        without sinks (engine/retention.py)."""
        marks = sink_marks(self.data_dir)
        if not marks:
            return None
        floor, lost = retention_floor(marks, head, self.sink_retention_max)
        if lost:
            self.retention_exceeded += 1
            log.error(
                "journal pruning goes past what sinks have applied (%s): more than "
                "journal.sink_retention_max_commands = %d behind seq %d; they will stop and "
                "must be re-seeded (docs/sinks.md)",
                ", ".join(f"{n} at {marks[n]}" for n in lost),
                self.sink_retention_max,
                head,
            )
        return floor

    def _stored(self, cut: _Cut, job: asyncio.Future[None]) -> None:
        self.pending = None
        self._job = None
        err = job.exception()
        if err is not None:  # the journal still has everything: not fatal, retried next time
            log.error("snapshot at seq %d failed: %s", cut.seq, err)
            return
        self.last_seq = max(self.last_seq, cut.seq)
        self.last_time = time.monotonic()
        self.written += 1

    async def final(self, seq: int, sections: dict[str, bytes]) -> None:
        """Clean shutdown: wait for a snapshot in progress, then write one at `seq` (the books'
        state after the drain, `sections` by book) unless one covers it already."""
        if self._job is not None:
            await asyncio.gather(self._job, return_exceptions=True)
        if seq <= self.last_seq:
            return
        cut = _Cut(seq, 0)
        cut.sections = {**sections, **self.static_sections}
        cut.sections["meta"] = meta_section(self.symbols, seq, self._now())
        self.pending = cut
        job = asyncio.get_running_loop().run_in_executor(
            None, self._store, Snapshot(seq, cut.sections)
        )
        job.add_done_callback(partial(self._stored, cut))
        await asyncio.gather(job, return_exceptions=True)
