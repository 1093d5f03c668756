"""Event records -> table rows, in columns (numpy arrays over native buffers), with the state
rows depend on.

`Converter.add(batch)` turns one `SinkBatch` into rows of every table (see `tables.py`) and moves
the symbol's checkpoint to `batch.through_seq`; `take()` hands over everything added since the
last `take()` as one `Flush`, with the checkpoint rows that go in the same write. The per-row
work is native (`engine._native.SymbolRows`, native/src/sinks/): one object per symbol keeps the
L2 book rebuilt from Level events, the open interval of `book_top`, the last trade price, each
account's position and each live order's acceptance, and builds the orders/trades/book_top/
order_ends rows as little-endian column buffers (which ClickHouse's Native format and
PostgreSQL's binary COPY are built from without Python per row). The state is exactly what the
written rows say, so a sink restarted from its database (`restore`: checkpoints, positions, the
live orders) continues identically.

Idempotency starts here: events with seq <= the symbol's checkpoint are dropped (re-delivery is
a no-op), and a batch that does not follow on from the checkpoint is refused as a gap.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import orjson

from engine._native import SymbolRows
from engine.sinks.records import SinkBatch
from engine.sinks.tables import DTYPES, TABLES

__all__ = [
    "BatchError",
    "CheckpointRow",
    "Chunk",
    "Converter",
    "Flush",
    "OpenOrder",
    "Outcome",
    "PositionRow",
]

Column = np.ndarray | list[int]

_STATE_VERSION = 1
_NATIVE_TABLES = ("orders", "trades", "book_top", "order_ends")  # SymbolRows.take()


class BatchError(ValueError):
    """A batch that breaks the contract of `records.SinkBatch` (a bug upstream)."""


class Outcome(enum.Enum):
    APPLIED = "applied"
    STALE = "stale"  # everything in it was applied before
    GAP = "gap"  # it does not follow on from the checkpoint: catch up first


@dataclass(frozen=True)
class Chunk:
    """Rows of one table for one symbol, as columns in table order (without `symbol`)."""

    symbol: str
    columns: dict[str, Column]
    rows: int


@dataclass(frozen=True)
class CheckpointRow:
    symbol: str
    last_seq: int
    ts: int
    state: bytes


@dataclass(frozen=True)
class PositionRow:
    symbol: str
    account: int
    seq: int
    ts: int
    position: int
    buy_qty: int
    sell_qty: int
    buy_notional: int
    sell_notional: int
    trades: int


@dataclass(frozen=True)
class OpenOrder:
    """A live order at the checkpoint: its acceptance (for its `order_ends` row)."""

    symbol: str
    order_id: int
    seq: int
    ts: int
    account: int


@dataclass
class Flush:
    """One write: rows per table and the checkpoints they bring the sink to."""

    tables: dict[str, list[Chunk]]
    checkpoints: list[CheckpointRow]

    def rows(self, table: str) -> int:
        return sum(c.rows for c in self.tables.get(table, ()))

    @property
    def total_rows(self) -> int:
        return sum(self.rows(t) for t in self.tables)


@dataclass
class _Symbol:
    last_seq: int
    ts: int


def _dump(rows: SymbolRows) -> bytes:
    bucket, bucket_seq, bucket_ts, last_price, bids, asks = rows.top_state()
    return orjson.dumps(
        {
            "v": _STATE_VERSION,
            "bucket": bucket,
            "bucket_seq": bucket_seq,
            "bucket_ts": bucket_ts,
            "last_price": last_price,
            "bids": [list(lv) for lv in bids],
            "asks": [list(lv) for lv in asks],
        }
    )


def _load(rows: SymbolRows, state: bytes) -> None:
    if not state:
        return
    d = orjson.loads(state)
    if d.get("v") != _STATE_VERSION:
        raise ValueError(f"sink state version {d.get('v')} is not {_STATE_VERSION}")
    levels = [[(int(p), int(q), int(c)) for p, q, c in d[k]] for k in ("bids", "asks")]
    rows.restore_top(
        (d["bucket"], d["bucket_seq"], d["bucket_ts"], d["last_price"], levels[0], levels[1])
    )


def _chunk(table: str, symbol: str, buffers: list[bytes], rows: int) -> Chunk:
    spec = TABLES[table][1:]
    cols: dict[str, Column] = {
        n: np.frombuffer(b, DTYPES[k]) for (n, k), b in zip(spec, buffers, strict=True)
    }
    return Chunk(symbol, cols, rows)


class Converter:
    def __init__(self, top_interval_ns: int = 1_000_000_000) -> None:
        if top_interval_ns < 1:
            raise ValueError("top_interval_ns must be >= 1")
        self.interval = top_interval_ns
        self._reset()

    def _reset(self) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self._rows: dict[str, SymbolRows] = {}
        self._dirty_symbols: set[str] = set()
        self.pending_rows = 0

    def _rows_of(self, symbol: str) -> SymbolRows:
        r = self._rows.get(symbol)
        if r is None:
            r = self._rows[symbol] = SymbolRows(self.interval)
        return r

    # -- state ---------------------------------------------------------------------------------

    def restore(
        self,
        checkpoints: Iterable[CheckpointRow],
        positions: Iterable[PositionRow],
        open_orders: Iterable[OpenOrder] = (),
    ) -> None:
        """Start from what the database holds (its checkpoints, latest positions and the orders
        live at the checkpoints)."""
        self._reset()
        for c in checkpoints:
            self._symbols[c.symbol] = _Symbol(c.last_seq, c.ts)
            _load(self._rows_of(c.symbol), c.state)
        for p in positions:
            self._rows_of(p.symbol).restore_position(
                p.account, p.position, p.buy_qty, p.sell_qty, p.buy_notional, p.sell_notional,
                p.trades,
            )  # fmt: skip
        for o in open_orders:
            self._rows_of(o.symbol).restore_open(o.order_id, o.seq, o.ts, o.account)

    def last_seq(self, symbol: str) -> int:
        s = self._symbols.get(symbol)
        return s.last_seq if s is not None else 0

    def last_ts(self, symbol: str) -> int:
        s = self._symbols.get(symbol)
        return s.ts if s is not None else 0

    def symbols(self) -> list[str]:
        return list(self._symbols)

    # -- batches -------------------------------------------------------------------------------

    def add(self, batch: SinkBatch) -> Outcome:
        st = self._symbols.get(batch.symbol)
        if st is None:
            st = self._symbols[batch.symbol] = _Symbol(0, 0)
        if batch.through_seq <= st.last_seq:
            return Outcome.STALE
        if batch.after_seq > st.last_seq:
            return Outcome.GAP
        rows = self._rows_of(batch.symbol)
        before = rows.rows()
        try:
            ts = rows.apply(batch.commands, batch.events, st.last_seq, batch.through_seq)
        except ValueError as e:
            raise BatchError(f"{batch.symbol}: {e}") from None
        if ts is not None:
            st.ts = ts
        self.pending_rows += rows.rows() - before
        st.last_seq = batch.through_seq
        self._dirty_symbols.add(batch.symbol)
        return Outcome.APPLIED

    # -- flushes -------------------------------------------------------------------------------

    def take(self) -> Flush | None:
        """Everything added since the last `take()` (None if nothing was)."""
        if not self._dirty_symbols:
            return None
        tables: dict[str, list[Chunk]] = {}
        checkpoints = []
        for symbol in sorted(self._dirty_symbols):
            rows = self._rows[symbol]
            for table, (buffers, n) in zip(_NATIVE_TABLES, rows.take(), strict=True):
                if n:
                    tables.setdefault(table, []).append(_chunk(table, symbol, buffers, n))
            pos = rows.take_positions()
            if pos:
                names = [c for c, _ in TABLES["positions"][1:]]
                cols: dict[str, Column] = {
                    n: list(c) for n, c in zip(names, zip(*pos, strict=True), strict=True)
                }
                tables.setdefault("positions", []).append(Chunk(symbol, cols, len(pos)))
            st = self._symbols[symbol]
            checkpoints.append(CheckpointRow(symbol, st.last_seq, st.ts, _dump(rows)))
        self._dirty_symbols = set()
        self.pending_rows = 0
        return Flush(tables, checkpoints)
