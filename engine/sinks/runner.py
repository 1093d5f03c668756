"""The sink: batches in, large idempotent writes out, never in the way of matching.

Two feeds, one sink:
- **live** (`offer`): the engine hands each book batch over as a `SinkBatch`. `offer` never
  waits: when the bounded inbox is full the batch is dropped and counted, and the sink notices
  the gap (the next batch of that symbol does not follow on from its checkpoint) and catches up;
- **catch-up** (`source(start_after_seq)`): an async iterator of the same batches from the
  journal, yielding None whenever it has nothing more for now (the sink flushes then). A finite
  source (journal replay) ends and the sink goes back to the live inbox; an endless one (tailing
  the journal in a separate process, `tail.py`) makes the sink a follower that never drops.

Run loop: connect (retrying with backoff while the database is down), migrate, load the
committed state (checkpoints, positions), then write what is pending, catch up if there is a gap,
else convert what the inbox holds and write it once `flush_rows` rows are waiting or the inbox is
empty. A failed write is retried as the same flush after reconnecting (or dropped, if the
database shows it committed); meanwhile the inbox fills and then drops, which the catch-up
repairs. Lifecycle: NEW -> RUNNING -> DRAINING (`drain`: no new batches, write what is queued)
-> STOPPED; FAILED on a broken batch contract or migration (a bug, not an outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from actors.base import Inbox, Lifecycle, State
from engine.book import COMMAND_SIZE, EVENT_SIZE
from engine.sinks.backend import Backend
from engine.sinks.convert import BatchError, Converter, Flush, Outcome
from engine.sinks.metrics import SinkMetrics
from engine.sinks.migrations import MigrationError
from engine.sinks.records import SinkBatch
from engine.sinks.tail import JournalPruned

__all__ = ["CatchUp", "Sink"]

log = logging.getLogger(__name__)

CatchUp = Callable[[int], AsyncIterator[SinkBatch | None]]
"""`source(start_after_seq)`: every symbol's batches from start_after_seq on (None = idle)."""


class Sink(Lifecycle):
    def __init__(
        self,
        backend: Backend,
        *,
        name: str = "main",
        symbols: Sequence[str] = (),
        source: CatchUp | None = None,
        head: Callable[[], tuple[int, int]] | None = None,
        capacity: int = 1_000_000,
        flush_rows: int = 200_000,
        top_interval_ns: int = 1_000_000_000,
        metrics: SinkMetrics | None = None,
        migrate: bool = True,
        retry_s: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        """`capacity`: inbox size in records (commands + events); `head()`: the engine's last
        (seq, ts), for the lag; `migrate`: apply migrations on connect."""
        super().__init__(f"sink:{backend.name}")
        self.backend = backend
        self.sink = name
        self.symbols = list(symbols)
        self.source = source
        self.head = head
        self.flush_rows = flush_rows
        self.metrics = metrics if metrics is not None else SinkMetrics()
        self.auto_migrate = migrate
        self.retry_s = retry_s
        self.inbox: Inbox[SinkBatch] = Inbox(self.name, capacity)
        self.converter = Converter(top_interval_ns)
        self.committed: dict[str, tuple[int, int]] = {}  # symbol -> (last_seq, ts) in the db
        self.head_seen = (0, 0)
        self._seen: dict[str, int] = {}  # symbol -> highest through_seq offered (even dropped)
        self._pending: Flush | None = None
        self._connected = False
        self._loaded = False
        self._gap = source is not None
        self._fruitless = False  # the last catch-up did not reach what live batches showed
        self._task: asyncio.Task[None] | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-convert")

    # -- the feed ------------------------------------------------------------------------------

    def offer(self, batch: SinkBatch) -> bool:
        """Queue a live batch without waiting; False if it was dropped (caught up later)."""
        self._see(batch)
        if self.inbox.closed or self.inbox.full():
            self.metrics.dropped.labels(self.backend.name).inc()
            return False
        records = len(batch.commands) // COMMAND_SIZE + len(batch.events) // EVENT_SIZE
        self.inbox.put_nowait(batch, records + 1)
        return True

    def _see(self, batch: SinkBatch) -> None:
        if batch.through_seq > self._seen.get(batch.symbol, 0):
            self._seen[batch.symbol] = batch.through_seq
        if batch.through_seq > self.head_seen[0]:
            ts = int.from_bytes(batch.commands[-80:-72], "little") if batch.commands else 0
            self.head_seen = (batch.through_seq, max(ts, self.head_seen[1]))

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self.state is not State.NEW:
            raise RuntimeError(f"{self.name}: start in state {self.state.value}")
        self.state = State.RUNNING
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return self._task

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def drain(self) -> None:
        """Take no more batches, write what is queued, then stop (bound it with a timeout)."""
        if self._task is None:
            self.state = State.STOPPED
            return
        if self.state is State.RUNNING:
            self.state = State.DRAINING
        self.inbox.close()
        await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop now; what was not written stays for the catch-up of the next start."""
        self.inbox.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.backend.close()
        if self.state is not State.FAILED:
            self.state = State.STOPPED

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.retry_s[0]
        try:
            while True:
                try:
                    if not self._connected:
                        await self._connect()
                    if self._pending is not None:
                        await self._write()
                    if self._gap and self.source is not None:
                        await self._catch_up(self.source)
                    elif not await self._step():
                        break
                    delay = self.retry_s[0]
                except (BatchError, MigrationError):
                    raise
                except JournalPruned:
                    self.metrics.retention_exceeded.labels(self.backend.name).set(1)
                    raise
                except Exception as e:  # the database or its driver: reconnect and retry
                    await self._failed(e, delay)
                    delay = min(delay * 2, self.retry_s[1])
        except asyncio.CancelledError:
            raise
        except BaseException:
            self.state = State.FAILED
            log.exception("%s failed", self.name)
            raise
        finally:
            await self.backend.close()
            self._worker.shutdown(wait=False)
        self.state = State.STOPPED

    async def _failed(self, e: Exception, delay: float) -> None:
        self.metrics.errors.labels(self.backend.name).inc()
        log.warning("%s: %s: %s (retrying in %.2fs)", self.name, type(e).__name__, e, delay)
        self._connected = False
        with contextlib.suppress(Exception):
            await self.backend.close()
        self._update_lag()
        await asyncio.sleep(delay)

    async def _connect(self) -> None:
        await self.backend.connect()
        if self.auto_migrate:
            await self.backend.migrate()
        state = await self.backend.load(self.sink)
        db = {c.symbol: (c.last_seq, c.ts) for c in state.checkpoints}
        self._connected = True
        if self._loaded:
            target = (
                {c.symbol: (c.last_seq, c.ts) for c in self._pending.checkpoints}
                if self._pending is not None
                else {}
            )
            if target and all(db.get(s) == v for s, v in target.items()):
                self.committed.update(target)  # the lost acknowledgement: it did commit
                self._pending = None
            if db == self.committed:
                await self._end_of_day()
                return  # exactly where we left it: retry the pending flush, if any
            log.warning("%s: the database is not where this sink left it; reloading", self.name)
        live = await self.backend.open_orders([c.symbol for c in state.checkpoints])
        self.converter.restore(state.checkpoints, state.positions, live)
        self.committed = db
        self._pending = None
        self._loaded = True
        self._gap = self.source is not None
        self._update_lag()
        await self._end_of_day()  # days closed before a crash

    async def _step(self) -> bool:
        """Convert what the inbox holds; write when enough waits. False once drained."""
        batches = self.inbox.take(self.flush_rows)
        if not batches:
            if self.inbox.closed:
                self._take()
                if self._pending is not None:
                    await self._write()
                return False
            if self.source is not None and self._behind():
                if self._fruitless:  # the journal does not have them yet: not in a busy loop
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.inbox.wait(), self.retry_s[1])
                self._gap = True  # batches were dropped after the last one queued
                return True
            await self.inbox.wait()
            return True
        # Conversion on the sink's own thread: the native part releases the GIL, so on a
        # second core it does not take time from matching on the event loop's thread.
        await asyncio.get_running_loop().run_in_executor(self._worker, self._add_live, batches)
        if self.converter.pending_rows >= self.flush_rows or not len(self.inbox) or self._gap:
            self._take()
            if self._pending is not None:
                await self._write()
        return True

    def _add_live(self, batches: list[SinkBatch]) -> None:
        for b in batches:
            outcome = self.converter.add(b)
            if outcome is Outcome.GAP:
                self.metrics.gaps.labels(self.backend.name).inc()
                if self.source is not None:
                    self._gap = True  # the rest comes again with the catch-up
                    break
                log.error(
                    "%s: %s has a gap after seq %d and there is no catch-up source: rows lost",
                    self.name, b.symbol, self.converter.last_seq(b.symbol),
                )  # fmt: skip
                self.converter.add(b._replace(after_seq=self.converter.last_seq(b.symbol)))

    async def _catch_up(self, source: CatchUp) -> None:
        start = min((self.converter.last_seq(s) for s in self._all_symbols()), default=0)
        self.metrics.catchups.labels(self.backend.name).inc()
        log.info("%s: catching up after seq %d", self.name, start)
        async for b in source(start):
            if b is not None:
                outcome = self.converter.add(b)
                if outcome is Outcome.GAP:
                    raise BatchError(f"catch-up source skipped seqs of {b.symbol} after {start}")
                if self.converter.pending_rows < self.flush_rows:
                    continue
            elif self.inbox.closed and self.state is State.DRAINING:
                break  # a follower being drained: write what it has and stop
            self._take()
            if self._pending is not None:
                await self._write()
        self._take()
        if self._pending is not None:
            await self._write()
        self._gap = False
        self._fruitless = self._behind()

    def _checkpoint_floor(self) -> int:
        """The engine time every symbol's committed checkpoint is at or past (0 while some
        symbol has none): no fill at an earlier engine time can still arrive, so the UTC days
        before its day are closed. The symbols: the configured ones (the engine's books; a
        symbol dropped from the configuration keeps its old checkpoint and would hold every
        day open) or, without a list, every symbol with a checkpoint; and any seen in a batch."""
        symbols = set(self.symbols or self.converter.symbols()) | set(self._seen)
        if not symbols:
            return 0
        return min(self.committed.get(s, (0, 0))[1] for s in symbols)

    def _behind(self) -> bool:
        return any(self.converter.last_seq(s) < seen for s, seen in self._seen.items())

    def _all_symbols(self) -> list[str]:
        return list(dict.fromkeys([*self.symbols, *self.converter.symbols()]))

    def _take(self) -> None:
        if self._pending is None:
            self._pending = self.converter.take()

    async def _write(self) -> None:
        flush = self._pending
        assert flush is not None
        await self.backend.write(self.sink, flush)
        self._pending = None
        self.committed.update({c.symbol: (c.last_seq, c.ts) for c in flush.checkpoints})
        m, sink = self.metrics, self.backend.name
        m.flushes.labels(sink).inc()
        for table in flush.tables:
            m.rows.labels(sink, table).inc(flush.rows(table))
        self._update_lag()
        log.debug(
            "%s: wrote %d rows; applied through seq %d",
            self.name, flush.total_rows, self.applied()[0],
        )  # fmt: skip
        # rows, checkpoints, THEN the end-of-day equity of the days they close (a crash in
        # between: recomputed on start, after `load`)
        await self._end_of_day()

    async def _end_of_day(self) -> None:
        """The backend's end-of-day step for the days the committed checkpoints close. A
        failure is logged and counted, never in the way of the rows: the days stay open in
        the backend and the step runs again after the next write (or reconnect)."""
        try:
            await self.backend.end_of_day(self._checkpoint_floor())
        except Exception as e:  # the database or its driver; the rows are committed already
            self.metrics.errors.labels(self.backend.name).inc()
            log.warning("%s: end of day: %s: %s (again after the next write)",
                        self.name, type(e).__name__, e)  # fmt: skip

    # -- lag -----------------------------------------------------------------------------------

    def applied(self) -> tuple[int, int]:
        """(seq, ts): every symbol's rows are in the database through seq (ts: engine time of
        the most-behind symbol's last command)."""
        symbols = self._all_symbols()
        if not symbols:
            return 0, 0
        return min((self.committed.get(s, (0, 0)) for s in symbols), key=lambda v: v[0])

    def lag(self) -> tuple[int, float]:
        """(sequences, seconds) the database is behind the engine's head."""
        head_seq, head_ts = self.head_seen
        if self.head is not None:
            head_seq, head_ts = max((head_seq, head_ts), self.head())
        seq, ts = self.applied()
        behind = max(0, head_seq - seq)
        return behind, (max(0, head_ts - ts) / 1e9 if behind and ts else 0.0)

    def _update_lag(self) -> None:
        behind, seconds = self.lag()
        sink = self.backend.name
        self.metrics.lag_sequences.labels(sink).set(behind)
        self.metrics.lag_seconds.labels(sink).set(seconds)
        self.metrics.applied_seq.labels(sink).set(self.applied()[0])
