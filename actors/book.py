"""Book actor: one per symbol, owns that symbol's native order book.

Each batch of sequenced commands goes through `Book.apply` in one call (GIL released while
matching); the events go on to publishing as one item (publishing full: the book holds).
A `SnapshotMark` in the inbox (the snapshot barrier) splits the batch: the commands before it are
applied, then the book's state goes to the snapshotter, then the commands after it.
"""

from __future__ import annotations

from actors.base import Actor
from actors.items import BookBatch, Reports, SnapshotMark
from actors.publishing import PublishingActor
from engine.book import COMMAND_SIZE, EVENT_SIZE, Book

__all__ = ["BookActor"]


class BookActor(Actor[BookBatch | SnapshotMark]):
    def __init__(self, symbol: str, index: int, book: Book, capacity: int, batch_max: int) -> None:
        super().__init__(f"book:{symbol}", capacity, batch_max)
        self.symbol = symbol
        self.index = index
        self.book = book
        self.publishing: PublishingActor | None = None
        self.commands = 0

    def connect(self, publishing: PublishingActor) -> None:
        self.publishing = publishing

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
            last = batch[-1]
            self.send(
                self.publishing,
                Reports(events, self.index, b"", last.last_seq, batch[0].t_recv),
                len(events) // EVENT_SIZE,
            )
