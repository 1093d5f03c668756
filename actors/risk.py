"""Risk actor: sequencing and the basic pre-trade checks, one Rust call per batch.

For each batch: `Sequencer.sequence` checks every command against its symbol's rules (tick and
lot multiples, price limits and band, maximum quantity, known symbol), gives each accepted one
the next global sequence number and the batch timestamp (the engine clock read once per batch),
and splits them per symbol. Then, in this order: the journal batch to persistence, each symbol's
commands to its book actor, the rejects to publishing. On all three edges a full inbox makes
risk hold (take no new batch) until it has drained to half: backpressure up to the gateway,
which then stops reading sockets.

Snapshots: `snapshot_barrier` puts a marker into every book actor's inbox between two batches
(actors/persistence.py `Snapshotter`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from actors.base import Actor, State
from actors.book import BookActor
from actors.items import BookBatch, Intake, JournalBatch, Reports, SnapshotMark
from actors.persistence import PersistenceActor
from actors.publishing import PublishingActor
from engine.book import COMMAND_SIZE, EVENT_SIZE
from engine.wire import JOURNAL_ENTRY_SIZE, Sequencer

__all__ = ["RiskActor"]


class RiskActor(Actor[Intake]):
    def __init__(
        self,
        sequencer: Sequencer,
        capacity: int,
        batch_max: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__("risk", capacity, batch_max)
        self.sequencer = sequencer
        self.clock = clock
        self.books: Sequence[BookActor] = ()
        self.persistence: PersistenceActor | None = None
        self.publishing: PublishingActor | None = None

    def connect(
        self,
        books: Sequence[BookActor],
        persistence: PersistenceActor,
        publishing: PublishingActor,
    ) -> None:
        self.books = books
        self.persistence = persistence
        self.publishing = publishing

    def snapshot_barrier(self, make: Callable[[int], SnapshotMark | None]) -> int | None:
        """Send a snapshot marker for seq S = the last sequenced seq through every book actor's
        inbox. Called between two risk batches (never inside `handle`), so every command up to S
        has been handed to its book already: behind the marker, each book's state is exactly
        "commands <= S" (a consistent cut). Returns S, or None when no marker was made."""
        if self.state is not State.RUNNING:
            return None
        seq = self.sequencer.next_seq - 1
        mark = make(seq)
        if mark is None:
            return None
        for book in self.books:
            book.submit(mark, 0)
        return seq

    def handle(self, batch: list[Intake]) -> None:
        assert self.persistence is not None and self.publishing is not None, "not connected"
        if len(batch) == 1:
            commands, symbols, t_recv = batch[0]
        else:
            commands = b"".join(i.commands for i in batch)
            symbols = b"".join(i.symbols for i in batch)
            t_recv = min(i.t_recv for i in batch)
        journal, per_symbol, rejects, reject_symbols, _first, last = self.sequencer.sequence(
            commands, symbols, self.clock()
        )
        if journal:
            self.send(
                self.persistence, JournalBatch(journal, last), len(journal) // JOURNAL_ENTRY_SIZE
            )
            for book, records in zip(self.books, per_symbol, strict=True):
                if records is not None:
                    self.send(book, BookBatch(records, last, t_recv), len(records) // COMMAND_SIZE)
        if rejects:
            # Held behind every command sequenced so far, so a session's reports keep their order.
            held_until = self.sequencer.next_seq - 1
            self.send(
                self.publishing,
                Reports(rejects, -1, reject_symbols, held_until, t_recv),
                len(rejects) // EVENT_SIZE,
            )
