"""Event records -> table rows, in columns (numpy arrays), with the state rows depend on.

`Converter.add(batch)` turns one `SinkBatch` into rows of every table (see `tables.py`) and moves
the symbol's checkpoint to `batch.through_seq`; `take()` hands over everything added since the
last `take()` as one `Flush`, with the checkpoint rows that go in the same write. The state it
keeps (per symbol: last applied seq, the L2 book rebuilt from Level events, the open interval of
`book_top`, the last trade price; per (symbol, account): the position) is exactly what the
written rows say, so a sink restarted from its database (`restore`) continues identically.

Idempotency starts here: events with seq <= the symbol's checkpoint are dropped (re-delivery is
a no-op), and a batch that does not follow on from the checkpoint is refused as a gap.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import orjson

from engine.book import CmdKind, EventKind, Side
from engine.sinks.records import SinkBatch, commands_of, events_of
from engine.sinks.tables import TABLES

__all__ = [
    "BatchError",
    "CheckpointRow",
    "Chunk",
    "Converter",
    "Flush",
    "Outcome",
    "PositionRow",
]

Column = np.ndarray | list[int]

_ACCEPTED, _REJECTED = int(EventKind.ACCEPTED), int(EventKind.REJECTED)
_TRADE, _TRIGGERED, _LEVEL = int(EventKind.TRADE), int(EventKind.TRIGGERED), int(EventKind.LEVEL)
_BUY = int(Side.BUY)
_STATE_VERSION = 1
_NO_BUCKET = -1


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
    last_seq: int = 0
    ts: int = 0
    bids: dict[int, tuple[int, int]] = field(default_factory=dict)
    asks: dict[int, tuple[int, int]] = field(default_factory=dict)
    bucket: int = _NO_BUCKET
    bucket_seq: int = 0
    bucket_ts: int = 0
    last_price: int = 0

    def dump(self) -> bytes:
        return orjson.dumps(
            {
                "v": _STATE_VERSION,
                "bucket": self.bucket,
                "bucket_seq": self.bucket_seq,
                "bucket_ts": self.bucket_ts,
                "last_price": self.last_price,
                "bids": [[p, q, c] for p, (q, c) in self.bids.items()],
                "asks": [[p, q, c] for p, (q, c) in self.asks.items()],
            }
        )

    @classmethod
    def load(cls, last_seq: int, ts: int, state: bytes) -> _Symbol:
        s = cls(last_seq, ts)
        if not state:
            return s
        d = orjson.loads(state)
        if d.get("v") != _STATE_VERSION:
            raise ValueError(f"sink state version {d.get('v')} is not {_STATE_VERSION}")
        s.bucket, s.bucket_seq, s.bucket_ts = d["bucket"], d["bucket_seq"], d["bucket_ts"]
        s.last_price = d["last_price"]
        s.bids = {p: (q, c) for p, q, c in d["bids"]}
        s.asks = {p: (q, c) for p, q, c in d["asks"]}
        return s


def _top(levels: dict[int, tuple[int, int]], best: int) -> tuple[int, int, int]:
    if not levels:
        return 0, 0, 0
    price = max(levels) if best > 0 else min(levels)
    qty, count = levels[price]
    return price, qty, count


def _index_in_seq(seq: np.ndarray) -> np.ndarray:
    """Each event's index among the events of its command (runs of equal seq)."""
    n = len(seq)
    brk = np.ones(n, dtype=bool)
    brk[1:] = seq[1:] != seq[:-1]
    starts = np.flatnonzero(brk)
    idx: np.ndarray = (np.arange(n) - starts[np.cumsum(brk) - 1]).astype(np.uint32)
    return idx


def _notional(price: np.ndarray, qty: np.ndarray) -> np.ndarray:
    """price * qty, exact: int64 when it cannot overflow, else Python ints."""
    out: np.ndarray
    if len(price) and int(np.abs(price).max()) * int(np.abs(qty).max()) * len(price) >= 1 << 62:
        out = price.astype(object) * qty.astype(object)
    else:
        out = price * qty
    return out


class Converter:
    def __init__(self, top_interval_ns: int = 1_000_000_000) -> None:
        if top_interval_ns < 1:
            raise ValueError("top_interval_ns must be >= 1")
        self.interval = top_interval_ns
        self._reset()

    def _reset(self) -> None:
        self._symbols: dict[str, _Symbol] = {}
        self._positions: dict[tuple[str, int], list[int]] = {}
        self._chunks: dict[str, list[Chunk]] = {t: [] for t in TABLES}
        self._top_rows: dict[str, list[list[int]]] = {}
        self._dirty_symbols: set[str] = set()
        self._dirty_positions: dict[tuple[str, int], tuple[int, int]] = {}
        self.pending_rows = 0

    # -- state ---------------------------------------------------------------------------------

    def restore(
        self, checkpoints: Iterable[CheckpointRow], positions: Iterable[PositionRow]
    ) -> None:
        """Start from what the database holds (its checkpoints and latest positions)."""
        self._reset()
        for c in checkpoints:
            self._symbols[c.symbol] = _Symbol.load(c.last_seq, c.ts, c.state)
        for p in positions:
            self._positions[(p.symbol, p.account)] = [
                p.position, p.buy_qty, p.sell_qty, p.buy_notional, p.sell_notional, p.trades,
            ]  # fmt: skip

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
            st = self._symbols[batch.symbol] = _Symbol()
        if batch.through_seq <= st.last_seq:
            return Outcome.STALE
        if batch.after_seq > st.last_seq:
            return Outcome.GAP
        cmds = commands_of(batch.commands)
        evs = events_of(batch.events)
        if len(cmds) and int(cmds["seq"][0]) <= st.last_seq:
            cmds = cmds[cmds["seq"] > st.last_seq]
            evs = evs[evs["seq"] > st.last_seq]
        self._check(batch, cmds, evs)
        if len(evs):
            ci = np.searchsorted(cmds["seq"], evs["seq"])
            self._orders(batch.symbol, cmds, evs, ci)
            self._trades(batch.symbol, cmds, evs, ci)
        if len(cmds):
            self._book_top(batch.symbol, st, cmds, evs)
            st.ts = int(cmds["ts"][-1])
        st.last_seq = batch.through_seq
        self._dirty_symbols.add(batch.symbol)
        return Outcome.APPLIED

    @staticmethod
    def _check(batch: SinkBatch, cmds: np.ndarray, evs: np.ndarray) -> None:
        cseq = cmds["seq"]
        if len(cmds) and (int(cseq[-1]) > batch.through_seq or (np.diff(cseq) <= 0).any()):
            raise BatchError(f"{batch.symbol}: command seqs not ascending within the batch range")
        if len(evs):
            if not len(cmds):
                raise BatchError(f"{batch.symbol}: events without commands")
            ci = np.searchsorted(cseq, evs["seq"])
            if int(ci.max()) >= len(cmds) or (cseq[ci] != evs["seq"]).any():
                raise BatchError(f"{batch.symbol}: an event's seq has no command in the batch")

    def _orders(self, symbol: str, cmds: np.ndarray, evs: np.ndarray, ci: np.ndarray) -> None:
        kind = evs["kind"]
        m = (kind != _TRADE) & (kind != _LEVEL)
        if not m.any():
            return
        o = evs[m]
        oc = cmds[ci[m]]
        ok = o["kind"]
        # The command at an Accepted (or a rejected new order's) seq is that order's own command.
        own = (oc["kind"] == int(CmdKind.NEW)) & ((ok == _ACCEPTED) | (ok == _REJECTED))
        zero8 = np.zeros(len(o), dtype=np.uint8)
        stop = np.where((ok == _ACCEPTED) | (ok == _TRIGGERED), o["aux"], 0)
        stop = np.where(own & (ok == _REJECTED), oc["stop_price"], stop)
        cols: dict[str, Column] = {
            "seq": o["seq"],
            "idx": _index_in_seq(evs["seq"])[m],
            "ts": oc["ts"],
            "event": ok,
            "cmd_kind": oc["kind"],
            "order_id": o["order_id"],
            "account": o["account"],
            "client_id": o["client_id"],
            "side": o["side"],
            "ord_type": np.where(own, oc["ord_type"], zero8),
            "tif": np.where(own, oc["tif"], zero8),
            "price": o["price"],
            "qty": o["qty"],
            "leaves": o["leaves"],
            "stop_price": stop.astype(np.int64),
            "display_qty": np.where(own, oc["display_qty"], 0).astype(np.int64),
            "expire_ts": np.where(own, oc["expire_ts"], 0).astype(np.uint64),
            "reason": o["reason"],
            "code": o["code"],
            "flags": o["flags"],
            "aux": o["aux"],
            "aux2": o["aux2"],
        }
        self._chunks["orders"].append(Chunk(symbol, cols, len(o)))
        self.pending_rows += len(o)

    def _trades(self, symbol: str, cmds: np.ndarray, evs: np.ndarray, ci: np.ndarray) -> None:
        m = evs["kind"] == _TRADE
        if not m.any():
            return
        t = evs[m]
        ts = cmds["ts"][ci[m]]
        cols: dict[str, Column] = {
            "trade_id": t["aux"],
            "seq": t["seq"],
            "ts": ts,
            "price": t["price"],
            "qty": t["qty"],
            "maker_side": t["side"],
            "maker_order_id": t["order_id"],
            "maker_account": t["account"],
            "maker_client_id": t["client_id"],
            "maker_leaves": t["leaves"],
            "taker_order_id": t["counter_id"],
            "taker_account": t["counter_account"],
            "taker_client_id": t["counter_client_id"],
            "taker_leaves": t["aux2"],
        }
        self._chunks["trades"].append(Chunk(symbol, cols, len(t)))
        self.pending_rows += len(t)
        self._positions_from(symbol, t, ts)

    def _positions_from(self, symbol: str, t: np.ndarray, ts: np.ndarray) -> None:
        n = len(t)
        acct = np.concatenate([t["account"], t["counter_account"]])
        maker_buy = t["side"] == _BUY
        buy = np.concatenate([maker_buy, ~maker_buy])
        qty = np.concatenate([t["qty"], t["qty"]])
        notional = np.concatenate([_notional(t["price"], t["qty"])] * 2)
        # Index of each fill, so that the last fill of an account in this batch is found.
        order = np.argsort(acct, kind="stable")
        acct_s = acct[order]
        starts = np.flatnonzero(np.r_[True, acct_s[1:] != acct_s[:-1]])
        last = np.r_[starts[1:], len(acct_s)] - 1
        buy_s, qty_s, not_s = buy[order], qty[order], notional[order]
        zero = np.zeros_like(not_s)
        buy_qty = np.add.reduceat(np.where(buy_s, qty_s, 0), starts)
        sell_qty = np.add.reduceat(np.where(buy_s, 0, qty_s), starts)
        buy_not = np.add.reduceat(np.where(buy_s, not_s, zero), starts)
        sell_not = np.add.reduceat(np.where(buy_s, zero, not_s), starts)
        counts = np.diff(np.r_[starts, len(acct_s)])
        fill_idx = order[last] % n
        seqs, times = t["seq"][fill_idx], ts[fill_idx]
        for i, a in enumerate(acct_s[starts].tolist()):
            key = (symbol, a)
            p = self._positions.get(key)
            if p is None:
                p = self._positions[key] = [0, 0, 0, 0, 0, 0]
            bq, sq = int(buy_qty[i]), int(sell_qty[i])
            p[0] += bq - sq
            p[1] += bq
            p[2] += sq
            p[3] += int(buy_not[i])
            p[4] += int(sell_not[i])
            p[5] += int(counts[i])
            self._dirty_positions[key] = (int(seqs[i]), int(times[i]))

    def _book_top(self, symbol: str, st: _Symbol, cmds: np.ndarray, evs: np.ndarray) -> None:
        cseq, cts = cmds["seq"], cmds["ts"]
        buckets = (cts - cts % np.uint64(self.interval)).astype(np.int64)
        changes = (np.flatnonzero(buckets[1:] != buckets[:-1]) + 1).tolist()
        if st.bucket != int(buckets[0]):
            changes.insert(0, 0)
        kind = evs["kind"]
        lv_at = np.flatnonzero(kind == _LEVEL)
        lv = evs[lv_at]
        levels = list(
            zip(
                lv_at.tolist(),
                lv["side"].tolist(),
                lv["price"].tolist(),
                lv["qty"].tolist(),
                lv["aux"].tolist(),
                strict=True,
            )
        )
        tr_at = np.flatnonzero(kind == _TRADE)
        tr_price = evs["price"][tr_at]
        eseq = evs["seq"]
        rows = self._top_rows.setdefault(symbol, [])
        li = 0
        for i in changes:
            first = int(cseq[i])
            end = int(np.searchsorted(eseq, cseq[i], "left"))
            li = self._apply_levels(st, levels, li, end)
            k = int(np.searchsorted(tr_at, end, "left"))
            if k:
                st.last_price = int(tr_price[k - 1])
            if i:
                st.bucket_seq, st.bucket_ts = int(cseq[i - 1]), int(cts[i - 1])
            if st.bucket != _NO_BUCKET:
                rows.append(
                    [st.bucket, st.bucket_seq, st.bucket_ts, first,
                     *_top(st.bids, 1), *_top(st.asks, -1), st.last_price]
                )  # fmt: skip
            st.bucket = int(buckets[i])
        self._apply_levels(st, levels, li, len(evs))
        if len(tr_at):
            st.last_price = int(tr_price[-1])
        st.bucket_seq, st.bucket_ts = int(cseq[-1]), int(cts[-1])

    @staticmethod
    def _apply_levels(
        st: _Symbol, levels: list[tuple[int, int, int, int, int]], i: int, end: int
    ) -> int:
        bids, asks = st.bids, st.asks
        n = len(levels)
        while i < n and levels[i][0] < end:
            _, side, price, qty, count = levels[i]
            book = bids if side == _BUY else asks
            if qty:
                book[price] = (qty, count)
            else:
                book.pop(price, None)
            i += 1
        return i

    # -- flushes -------------------------------------------------------------------------------

    def take(self) -> Flush | None:
        """Everything added since the last `take()` (None if nothing was)."""
        if not self._dirty_symbols:
            return None
        tables: dict[str, list[Chunk]] = {}
        for table, chunks in self._chunks.items():
            if chunks:
                tables[table] = _merge(chunks)
        top = self._top_chunks()
        if top:
            tables["book_top"] = top
        pos = self._position_chunks()
        if pos:
            tables["positions"] = pos
        checkpoints = [
            CheckpointRow(s, st.last_seq, st.ts, st.dump())
            for s, st in sorted((s, self._symbols[s]) for s in self._dirty_symbols)
        ]
        self._chunks = {t: [] for t in TABLES}
        self._top_rows = {}
        self._dirty_symbols = set()
        self._dirty_positions = {}
        self.pending_rows = 0
        return Flush(tables, checkpoints)

    def _top_chunks(self) -> list[Chunk]:
        names = [c for c, _ in TABLES["book_top"][1:]]
        out = []
        for symbol, rows in self._top_rows.items():
            if rows:
                arrays = [np.array(c, dtype=np.int64) for c in zip(*rows, strict=True)]
                cols: dict[str, Column] = dict(zip(names, arrays, strict=True))
                out.append(Chunk(symbol, cols, len(rows)))
        return out

    def _position_chunks(self) -> list[Chunk]:
        per: dict[str, list[list[int]]] = {}
        for (symbol, account), (seq, ts) in sorted(self._dirty_positions.items()):
            state = self._positions[(symbol, account)]
            per.setdefault(symbol, []).append([account, seq, ts, *state])
        names = [c for c, _ in TABLES["positions"][1:]]
        out = []
        for symbol, rows in per.items():
            columns = zip(*rows, strict=True)
            cols: dict[str, Column] = {n: list(c) for n, c in zip(names, columns, strict=True)}
            out.append(Chunk(symbol, cols, len(rows)))
        return out


def _merge(chunks: list[Chunk]) -> list[Chunk]:
    """One chunk per symbol (columns concatenated in arrival order)."""
    per: dict[str, list[Chunk]] = {}
    for c in chunks:
        per.setdefault(c.symbol, []).append(c)
    out = []
    for symbol, cs in per.items():
        if len(cs) == 1:
            out.append(cs[0])
            continue
        cols = {k: np.concatenate([c.columns[k] for c in cs]) for k in cs[0].columns}
        out.append(Chunk(symbol, cols, sum(c.rows for c in cs)))  # type: ignore[arg-type]
    return out
