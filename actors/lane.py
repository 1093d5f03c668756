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

Used only when that is exactly what the actors would do: every stage RUNNING, idle, not held,
with an empty inbox; the journal policy `none` (the append is the whole of durability, so the
replies may go at once) with no journal operation in flight; an intake without a NATS hook and no
larger than what persistence appends inline. Otherwise the intake goes to the risk actor as
before. With `[gateway] lane = false` it is never used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from actors.base import Actor, State
from actors.book import BookActor
from actors.items import Intake, Reports
from actors.persistence import INLINE_BYTES, PersistenceActor
from actors.publishing import PublishingActor
from actors.risk import RiskActor
from engine._native import JournalCorrupt
from engine._native import Lane as NativeLane
from engine.book import EVENT_SIZE
from engine.wire import JOURNAL_ENTRY_SIZE

__all__ = ["INLINE_COMMANDS", "Lane"]

INLINE_COMMANDS = INLINE_BYTES // JOURNAL_ENTRY_SIZE  # the most one lane run takes


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
        self.stages: list[Actor[Any]] = [risk, *books, persistence, publishing]
        self.native = NativeLane(
            risk.sequencer,
            risk.risk,
            persistence.writer,
            kind,
            [b.book for b in books],
            publishing.publisher,
        )
        self.runs = 0  # intakes that took the lane

    def idle(self) -> bool:
        """Every stage would run this intake to completion, and the reply needs no fsync."""
        p = self.persistence
        if p.policy != "none" or p._io:
            return False
        running = State.RUNNING
        for a in self.stages:
            if a._busy or a._held or a.inbox._items or a.state is not running:
                return False
        return True

    def submit(self, item: Intake, records: int) -> None:
        """The gateway's hand-off: through the lane if everything is idle, else to risk."""
        if records <= INLINE_COMMANDS and item.on_sequenced is None and self.idle():
            self.run(item, records)
        else:
            self.risk.submit(item, records)

    def run(self, item: Intake, records: int) -> None:
        risk, persistence, publishing = self.risk, self.persistence, self.publishing
        self.runs += 1
        risk.batches += 1
        risk.items += 1
        risk.on_batch(records)
        keep = bool(publishing.listeners)
        try:
            first, last, touched, rejects, reject_symbols = self.native.run(
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
        books = self.books
        for index, commands, out in touched:
            book = books[index]
            book.batches += 1
            book.items += 1
            book.on_batch(commands)
            book.commands += commands
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
