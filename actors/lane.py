"""The lane: a read through the whole pipeline in one native call, when every stage is idle.

When the gateway hands risk a read and nothing is queued, held or running anywhere, the actors
would run to completion on this call stack (actors/base.py `submit`): risk sequences, persistence
appends, each touched book matches and feeds the risk engine, publishing encodes and the gateway
writes. `engine._native.Lane` does those steps on the actors' own native objects in one call, in
the same order, so state, journal and reply bytes are the same (tests/test_lane.py checks them
byte for byte against the actors); here the actors' own accounting is kept: batch counters and
metrics, the journal's written and durable marks (which open the publishing gate), the books'
command counts, publishing's listeners (NATS, Redis: given the same `Reports` items) and its
latency figure.

Two ways, both only when that is exactly what the actors would do (risk and every book RUNNING,
idle, not held, with an empty inbox; an intake without a NATS hook and no larger than what
persistence appends inline):
- direct, journal policy `none` with persistence and publishing idle too: the append is the
  whole of durability, so the lane appends and the replies go at once;
- deferred, any other policy (a reply waits for an fsync): the lane sequences, checks and
  matches; the journal entries go to the persistence actor and the reports to the publishing
  actor behind whatever they already hold (FIFO), exactly as `RiskActor._sequence` and
  `BookActor._apply` send them, and those actors append, fsync and publish as before.
Otherwise the intake goes to the risk actor. With `[batch] lane = false` it is never used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from actors.base import Actor, State
from actors.book import BookActor
from actors.items import Intake, JournalBatch, Reports
from actors.persistence import INLINE_BYTES, PersistenceActor
from actors.publishing import PublishingActor
from actors.risk import RiskActor
from engine._native import JournalCorrupt
from engine._native import Lane as NativeLane
from engine.book import EVENT_SIZE
from engine.wire import JOURNAL_ENTRY_SIZE

__all__ = ["INLINE_COMMANDS", "Lane"]

INLINE_COMMANDS = INLINE_BYTES // JOURNAL_ENTRY_SIZE  # the most one lane run takes
NO, DIRECT, DEFERRED = 0, 1, 2  # Lane.mode()


class Lane:
    def __init__(
        self,
        risk: RiskActor,
        books: Sequence[BookActor],
        persistence: PersistenceActor,
        publishing: PublishingActor,
        kind: int,
    ) -> None:
        self.risk = risk
        self.books = list(books)
        self.persistence = persistence
        self.publishing = publishing
        self.native = NativeLane(
            risk.sequencer,
            risk.risk,
            persistence.writer,
            kind,
            [b.book for b in books],
            publishing.publisher,
        )
        self.runs = 0  # intakes that took the lane

    def mode(self, symbols: bytes) -> int:
        """NO (0): the intake goes to the risk actor. DIRECT (1): risk and the books it goes to
        idle, the journal policy `none` with persistence and publishing idle too: the lane
        appends and the replies go at once. DEFERRED (2): risk and the books it goes to idle, a
        reply must wait for an fsync: the lane sequences and matches, the journal entries go to
        persistence and the reports to publishing behind whatever they hold (FIFO, as the
        actors would). A book the intake does not go to is not looked at (the actors would
        not wait for it either): with many symbols a read costs the same as with one."""
        running = State.RUNNING
        front: list[Actor[Any]] = [self.risk, *self._books_of(symbols)]
        for a in front:
            if a._busy or a._held or a.inbox._items or a.state is not running:
                return NO
        p, pub = self.persistence, self.publishing
        if p.state is not running or pub.state is not running:
            return NO
        if p.policy != "none":
            return DEFERRED
        if p._io or p._busy or p._held or p.inbox._items:
            return NO
        if pub._busy or pub._held or pub.inbox._items:
            return NO
        return DIRECT

    def _books_of(self, symbols: bytes) -> Sequence[BookActor]:
        """The book actors an intake's commands go to: the one book when every command has
        the same symbol index (the usual read), else every book (mixed symbols, a mass cancel
        of every symbol, an admin command)."""
        first = symbols[:4]
        if len(symbols) == 4 or symbols == first * (len(symbols) >> 2):
            index = int.from_bytes(first, "little")
            if index < len(self.books):
                return (self.books[index],)
        return self.books

    def submit(self, item: Intake, records: int) -> None:
        """The gateway's hand-off: through the lane if the stages allow, else to risk."""
        mode = NO
        if records <= INLINE_COMMANDS and item.on_sequenced is None:
            mode = self.mode(item.symbols)
        if mode == DIRECT:
            self.run(item, records)
        elif mode == DEFERRED:
            self.run_deferred(item, records)
        else:
            self.risk.submit(item, records)

    def _start(self, records: int) -> None:
        risk = self.risk
        self.runs += 1
        risk.batches += 1
        risk.items += 1
        risk.on_batch(records)

    def _books(self, touched: list[tuple[int, int, bytes | int]]) -> None:
        books = self.books
        for index, commands, _ in touched:
            book = books[index]
            book.batches += 1
            book.items += 1
            book.on_batch(commands)
            book.commands += commands

    def run_deferred(self, item: Intake, records: int) -> None:
        """Risk and books in one call; the journal batch to persistence and the reports to
        publishing, as `RiskActor._sequence` and `BookActor._apply` send them."""
        risk = self.risk
        self._start(records)
        try:
            _, last, touched, rejects, reject_symbols, journal = self.native.run(
                item.commands, item.symbols, risk.clock(), True, False
            )
        except Exception as e:  # a sequencing error: as risk would
            risk.fail(e)
            return
        if journal:
            risk.send(
                self.persistence, JournalBatch(journal, last), len(journal) // JOURNAL_ENTRY_SIZE
            )
        self._books(touched)
        books, publishing = self.books, self.publishing
        for index, _, events in touched:
            if isinstance(events, bytes) and events:
                books[index].send(
                    publishing,
                    Reports(events, index, b"", last, item.t_recv),
                    len(events) // EVENT_SIZE,
                )
        if isinstance(rejects, bytes) and rejects:
            held_until = risk.sequencer.next_seq - 1
            risk.send(
                publishing,
                Reports(rejects, -1, reject_symbols or b"", held_until, item.t_recv),
                len(rejects) // EVENT_SIZE,
            )

    def run(self, item: Intake, records: int) -> None:
        risk, persistence, publishing = self.risk, self.persistence, self.publishing
        self._start(records)
        keep = bool(publishing.listeners)
        try:
            first, last, touched, rejects, reject_symbols, _ = self.native.run(
                item.commands, item.symbols, risk.clock(), keep
            )
        except JournalCorrupt as e:  # the append failed: as persistence would
            persistence.fail(e)
            return
        except Exception as e:  # a sequencing error: as risk would
            risk.fail(e)
            return
        if last:
            count = last - first + 1
            persistence.batches += 1
            persistence.items += 1
            persistence.on_batch(count)
            persistence._written(last, count * JOURNAL_ENTRY_SIZE, -1.0)  # -> mark_durable(last)
        items: list[Reports] = []
        events = 0
        self._books(touched)
        for index, _, out in touched:
            if isinstance(out, bytes):
                events += len(out) // EVENT_SIZE
                items.append(Reports(out, index, b"", last, item.t_recv))
            else:
                events += out
        if isinstance(rejects, bytes):
            if rejects:
                held_until = risk.sequencer.next_seq - 1
                items.append(Reports(rejects, -1, reject_symbols or b"", held_until, item.t_recv))
                events += len(rejects) // EVENT_SIZE
        else:
            events += rejects
        if not events:
            return
        publishing.batches += 1
        publishing.items += max(1, len(items))
        publishing.on_batch(events)
        outlet = publishing.outlet
        assert outlet is not None, "publishing not connected"
        outlet.flush()
        for listener in publishing.listeners:
            listener(items)
        publishing.on_latency(time.perf_counter() - item.t_recv)
