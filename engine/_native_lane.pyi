"""Type stubs for the lane part of engine._native (native/src/python/lane.rs)."""

from typing import final

from engine._native import Book
from engine._native_journal import JournalWriter
from engine._native_risk import RiskEngine
from engine._native_wire import Publisher, Sequencer

@final
class Lane:
    """A read's whole pipeline in one call on the stages' own native objects (actors/lane.py)."""

    def __new__(
        cls,
        sequencer: Sequencer,
        risk: RiskEngine | None,
        journal: JournalWriter,
        journal_kind: int,
        books: list[Book],
        publisher: Publisher,
    ) -> Lane: ...
    def run(
        self, commands: bytes, symbols: bytes, now_ns: int, keep: bool, direct: bool = True
    ) -> tuple[
        int, int, list[tuple[int, int, bytes | int]], bytes | int, bytes | None, bytes | None
    ]:
        """Sequence, journal, match (events to the risk engine) and add every report to the
        publisher, as the actors do. Returns (first_seq, last_seq, [(symbol index, commands,
        event records if keep else their count)], risk rejects if keep else their count, their
        u32 symbol indexes if keep and any else None, None). With `direct` False nothing is
        appended or published: the events come back as with `keep` and the journal entries as
        the last item, for the persistence and publishing actors."""
