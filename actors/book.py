"""Book actor: one per symbol, owns that symbol's native order book.

Each batch of sequenced commands goes through `Book.apply` in one call (GIL released while
matching); the events go on to publishing as one item (publishing full: the book holds).
A `SnapshotMark` in the inbox (the snapshot barrier) splits the batch: the commands before it are
applied, then the book's state goes to the snapshotter, then the commands after it.
With the risk engine on, every event record the book produces is fed back to it
(`RiskEngine.on_events`, this symbol, in the book's order) before it goes on: positions, live
orders, last price; engine/recovery.py feeds replayed events the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.base import Actor
from actors.items import BookBatch, Reports, SnapshotMark
from actors.publishing import PublishingActor
from engine.book import COMMAND_SIZE, EVENT_SIZE, Book

if TYPE_CHECKING:
    from engine._native_risk import RiskEngine

__all__ = ["BookActor"]


class BookActor(Actor[BookBatch | SnapshotMark]):
    def __init__(self, symbol: str, index: int, book: Book, capacity: int, batch_max: int) -> None:
        super().__init__(f"book:{symbol}", capacity, batch_max)
        self.symbol = symbol
        self.index = index
        self.book = book
        self.publishing: PublishingActor | None = None
        self.risk: RiskEngine | None = None
        self.commands = 0

    def connect(self, publishing: PublishingActor, risk: RiskEngine | None = None) -> None:
        self.publishing = publishing
        self.risk = risk

    def handle(self, batch: list[BookBatch | SnapshotMark]) -> None:
        run: list[BookBatch] = []
        for item in batch:
            if isinstance(item, SnapshotMark):
                if run:
                    self._apply(run)
                    run = []
                item.take(self.index, self.book.snapshot())
            else:
                run.append(item)
        if run:
            self._apply(run)

    def _apply(self, batch: list[BookBatch]) -> None:
        assert self.publishing is not None, "not connected"
        commands = batch[0].commands if len(batch) == 1 else b"".join(b.commands for b in batch)
        self.commands += len(commands) // COMMAND_SIZE
        events = self.book.apply(commands)
        if events:
            if self.risk is not None:
                self.risk.on_events(self.index, events)
            last = batch[-1]
            self.send(
                self.publishing,
                Reports(events, self.index, b"", last.last_seq, batch[0].t_recv),
                len(events) // EVENT_SIZE,
            )
