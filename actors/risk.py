"""Risk actor: sequencing and the pre-trade checks, one Rust call per batch.

For each batch: `Sequencer.sequence` checks every command against its symbol's rules (tick and
lot multiples, price limits and band, maximum quantity, known symbol) and then, with the risk
engine on (`[risk] enabled`, docs/risk.md), against the `RiskEngine` (account limits, positions,
rate, bands around the last trade, ...), each command stamped with the sequence number and
timestamp it would get. A refused command is a `Rejected` event (2xxx code) and takes no
sequence number: only accepted commands are journaled, so the journal is the whole input of the
books and replay needs no verdicts (docs/durability.md). Accepted ones get the next global
sequence number and the batch timestamp (the engine clock read once per batch) and are split per
symbol. Then, in this order: the journal batch to persistence, each symbol's commands to its
book actor, the rejects to publishing. On all three edges a full inbox makes risk hold (take no
new batch) until it has drained to half: backpressure up to the gateway, which then stops
reading sockets. The book actors feed their events back to the risk engine (actors/book.py).

Snapshots: `snapshot_barrier` puts a marker into every book actor's inbox between two batches
(actors/persistence.py `Snapshotter`); with the risk engine, risk takes no batch until every
book has passed the marker, then adds the risk engine's state to the cut (section "risk").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

import orjson

from actors.base import Actor, State
from actors.book import BookActor
from actors.items import BookBatch, Intake, JournalBatch, Reports, SnapshotMark
from actors.persistence import PersistenceActor
from actors.publishing import PublishingActor
from engine.book import COMMAND_SIZE, EVENT_SIZE
from engine.config import Config, SymbolConfig
from engine.wire import JOURNAL_ENTRY_SIZE, Sequencer

if TYPE_CHECKING:
    from engine._native_risk import AccountLimits, RiskEngine, SymbolRisk
else:
    from engine._native import AccountLimits, RiskEngine, SymbolRisk

__all__ = [
    "RISK_CONFIG_SECTION",
    "RISK_SECTION",
    "RiskActor",
    "changed_risk_config",
    "configure_risk",
    "new_risk_engine",
    "risk_config_items",
    "symbol_risk",
]

RISK_SECTION = "risk"  # the snapshot section holding RiskEngine.snapshot()
# The snapshot section holding the config items (risk_config_items) the risk state was last
# configured with: at start, only the items that changed since are applied again.
RISK_CONFIG_SECTION = "risk_config"


def symbol_risk(index: int, s: SymbolConfig) -> SymbolRisk:
    """A symbol's risk checks from its config (the risk engine's symbol id is the index).
    Without a market band of its own, a market order's protection price is held to the limit
    price band (as the sequencer's basic check did)."""
    own_market_band = bool(s.market_band_bps or s.market_band_ticks)
    market_ticks = s.market_band_ticks if own_market_band else s.price_band_ticks
    market_bps = s.market_band_bps if own_market_band else s.price_band_bps
    return SymbolRisk(
        index,
        tick=s.tick_size,
        lot=s.lot_size,
        min_qty=s.min_qty,
        max_qty=s.max_order_qty,
        max_notional=s.max_notional or None,
        reference_price=s.reference_price,
        band_ticks=s.price_band_ticks or None,
        band_bps=s.price_band_bps or None,
        market_band_ticks=market_ticks or None,
        market_band_bps=market_bps or None,
    )


def new_risk_engine(config: Config) -> RiskEngine:
    """A risk engine with the config's symbols and limits and no state."""
    engine = RiskEngine([symbol_risk(i, s) for i, s in enumerate(config.symbols)])
    configure_risk(engine, config)
    return engine


def risk_config_items(config: Config) -> dict[str, object]:
    """What the config says about risk, by item: "defaults" (the [risk] limits), "symbol:I"
    (symbol I's checks), "account:ID" (an account's own limits and switch). JSON values."""
    items: dict[str, object] = {"defaults": config.risk.limits()}
    for i, s in enumerate(config.symbols):
        r = symbol_risk(i, s)
        items[f"symbol:{i}"] = [
            r.tick, r.lot, r.min_qty, r.max_qty, str(r.max_notional), r.reference_price,
            r.band_ticks, r.band_bps, r.market_band_ticks, r.market_band_bps,
        ]  # fmt: skip
    for a in config.accounts:
        items[f"account:{a.id}"] = {"limits": a.limits(config.risk), "enabled": a.enabled}
    return orjson.loads(orjson.dumps(items))  # type: ignore[no-any-return]


def changed_risk_config(config: Config, applied: bytes | None) -> list[str]:
    """The items of `config` that differ from `applied` (a RISK_CONFIG_SECTION; None: every
    item)."""
    items = risk_config_items(config)
    if applied is None:
        return list(items)
    before = orjson.loads(applied)
    return [k for k, v in items.items() if before.get(k) != v]


def configure_risk(engine: RiskEngine, config: Config, only: Collection[str] | None = None) -> None:
    """Apply the config's symbols, default limits and account settings (`only`: just these
    items of `risk_config_items`) to `engine`. Positions, live orders, last prices, kill
    switches and symbol trading states are kept: those are state and controls, not config."""

    def wanted(item: str) -> bool:
        return only is None or item in only

    if wanted("defaults"):
        engine.set_default_limits(AccountLimits(**config.risk.limits()))
    for i, s in enumerate(config.symbols):
        if wanted(f"symbol:{i}"):
            engine.set_symbol(symbol_risk(i, s))
    for a in config.accounts:
        if not wanted(f"account:{a.id}"):
            continue
        own = a.limits(config.risk)
        if own is None:
            engine.reset_limits(a.id)
        else:
            engine.set_limits(a.id, AccountLimits(**own))
        engine.set_enabled(a.id, a.enabled)


class RiskActor(Actor[Intake]):
    def __init__(
        self,
        sequencer: Sequencer,
        capacity: int,
        batch_max: int,
        clock: Callable[[], int] = time.time_ns,
        risk: RiskEngine | None = None,
    ) -> None:
        super().__init__("risk", capacity, batch_max)
        self.sequencer = sequencer
        self.clock = clock
        self.risk = risk  # None: the sequencer's basic checks only
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

    def snapshot_barrier(
        self,
        make: Callable[[int], SnapshotMark | None],
        add_section: Callable[[str, bytes], None] | None = None,
    ) -> int | None:
        """Send a snapshot marker for seq S = the last sequenced seq through every book actor's
        inbox. Called between two risk batches (never inside `handle`), so every command up to S
        has been handed to its book already: behind the marker, each book's state is exactly
        "commands <= S" (a consistent cut). With the risk engine, risk holds (checks nothing
        more) until every book has passed the marker, i.e. fed back every event of the commands
        <= S; then the risk engine's state is that of the same cut and goes to `add_section`
        ("risk"), before the last book's state completes the cut. Returns S, or None when no
        marker was made."""
        if self.state is not State.RUNNING:
            return None
        seq = self.sequencer.next_seq - 1
        mark = make(seq)
        if mark is None:
            return None
        risk = self.risk
        if risk is not None and add_section is not None:
            waiting = [len(self.books)]
            take = mark.take

            def book_done(index: int, data: bytes) -> None:
                waiting[0] -= 1
                if waiting[0] == 0:
                    add_section(RISK_SECTION, risk.snapshot())
                    self.release()
                take(index, data)

            self.hold()
            mark = SnapshotMark(seq, book_done)
        for book in self.books:
            book.submit(mark, 0)
        return seq

    def handle(self, batch: list[Intake]) -> None:
        """Intakes without `on_sequenced` are merged and sequenced together; one with it (NATS
        entry) is sequenced alone, its hook called before its journal batch goes on."""
        run: list[Intake] = []
        for item in batch:
            if item.on_sequenced is None:
                run.append(item)
                continue
            if run:
                self._sequence(run)
                run = []
            self._sequence([item], item.on_sequenced)
        if run:
            self._sequence(run)

    def _sequence(
        self, batch: list[Intake], on_sequenced: Callable[[bytes, bytes, bytes], None] | None = None
    ) -> None:
        assert self.persistence is not None and self.publishing is not None, "not connected"
        if len(batch) == 1:
            commands, symbols, t_recv, _ = batch[0]
        else:
            commands = b"".join(i.commands for i in batch)
            symbols = b"".join(i.symbols for i in batch)
            t_recv = min(i.t_recv for i in batch)
        journal, per_symbol, rejects, reject_symbols, _first, last = self.sequencer.sequence(
            commands, symbols, self.clock(), self.risk
        )
        if on_sequenced is not None:
            on_sequenced(journal, rejects, reject_symbols)  # before the journal write
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
