"""What flows along each edge of the pipeline: batches of fixed-size records, never one object
per order. Each item says which stage fills it."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["BookBatch", "Intake", "JournalBatch", "Reports", "SnapshotMark"]


class Intake(NamedTuple):
    """gateway -> risk: what one read of one session decoded to (or a command the engine itself
    issues: AdvanceTime, cancel-on-disconnect)."""

    commands: bytes  # command records, account filled in by the gateway (COMMAND_SIZE each)
    symbols: bytes  # one u32 symbol index per command
    t_recv: float  # time.perf_counter() at receive
    # NATS entry (docs/nats.md): sequenced alone; called with (journal, rejects, reject symbols)
    # right after sequencing, before the journal batch goes to persistence.
    on_sequenced: Callable[[bytes, bytes, bytes], None] | None = None


class BookBatch(NamedTuple):
    """risk -> one book actor: sequenced commands of that symbol."""

    commands: bytes  # command records with seq, ts (and the engine order id of new orders)
    last_seq: int  # the last seq the risk batch gave (the durability mark to wait for)
    t_recv: float  # earliest receive time in the risk batch


class SnapshotMark(NamedTuple):
    """risk -> every book actor, between two batches: the snapshot barrier. A book actor that
    reaches it has applied exactly the commands with seq <= `seq` and hands over its state."""

    seq: int
    take: Callable[[int, bytes], None]  # (symbol index, Book.snapshot())


class JournalBatch(NamedTuple):
    """risk -> persistence: every sequenced command of one risk batch, in seq order."""

    entries: bytes  # JOURNAL_ENTRY_SIZE entries: command record + u32 symbol index + 4 zero bytes
    last_seq: int


class Reports(NamedTuple):
    """book / risk -> publishing: event records to turn into execution reports."""

    events: bytes  # event records (EVENT_SIZE each)
    symbol: int  # the symbol index of every event, or -1: see `symbols`
    symbols: bytes  # one u32 symbol index per event when `symbol` is -1 (risk rejects)
    max_seq: int  # released once the journal has every seq up to this one
    t_recv: float  # earliest receive time of the commands behind these events
