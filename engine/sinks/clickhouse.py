"""The ClickHouse backend (clickhouse-connect): native-format inserts, off the event loop.

The client is clickhouse-connect's sync client — the embedded chDB engine
(`dsn='chdb:///path'`, the default; it has no async client) or a ClickHouse server over HTTP
(`http://host:8123`) — driven from one dedicated thread, so the event loop never waits on it.

Rows go in as Native-format blocks built straight from the numpy columns (one block per table
and symbol, `raw_insert(fmt="Native")`), then the checkpoint rows (ReplacingMergeTree keyed by
(sink, symbol), versioned by last_seq, read with FINAL). ClickHouse has no transaction across
tables, so `load()` first removes any torn tail: rows whose seq (book_top: closed_by_seq) is
beyond their symbol's checkpoint, left by a flush cut short before its checkpoint landed. Rows
are then exactly those up to the checkpoints and the reports need no FINAL; ReplacingMergeTree
on each table's key is the second line of defence.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import clickhouse_connect
import numpy as np
from clickhouse_connect.driver.client import Client

from engine.sinks import aggregates as agg
from engine.sinks import equity as eq
from engine.sinks import migrations as mig
from engine.sinks.backend import SinkState
from engine.sinks.convert import CheckpointRow, Chunk, Column, Flush, OpenOrder, PositionRow
from engine.sinks.tables import CHECKPOINT_COLUMNS, TABLES, Kind

__all__ = ["ClickHouseBackend", "native_block", "native_columns"]

R = TypeVar("R")
log = logging.getLogger(__name__)

_TYPES: dict[Kind, tuple[str, str | None]] = {
    "sym": ("String", None),
    "bytes": ("String", None),
    "u8": ("UInt8", "u1"),
    "u16": ("UInt16", "<u2"),
    "u32": ("UInt32", "<u4"),
    "u64": ("UInt64", "<u8"),
    "i64": ("Int64", "<i8"),
    "i128": ("Int128", None),
}
_SEQ_COLUMN = {
    "orders": "seq",
    "trades": "seq",
    "positions": "seq",
    "book_top": "closed_by_seq",
    "order_ends": "seq",
}
# The orders live at the checkpoint (after the torn tail is cut): accepted, never ended.
_OPEN_ORDERS = (
    "SELECT order_id, seq, ts, account FROM orders WHERE symbol = {s} AND event = 1"
    " AND order_id NOT IN (SELECT order_id FROM orders WHERE symbol = {s} AND event = 4"
    " AND leaves = 0 UNION ALL SELECT maker_order_id FROM trades WHERE symbol = {s}"
    " AND maker_leaves = 0 UNION ALL SELECT taker_order_id FROM trades WHERE symbol = {s}"
    " AND taker_leaves = 0)"
)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _string(s: bytes) -> bytes:
    return _varint(len(s)) + s


def _column(kind: Kind, data: Column | str | list[bytes], rows: int) -> bytes:
    if kind == "sym":
        assert isinstance(data, str)
        return _string(data.encode()) * rows
    if kind == "bytes":
        assert isinstance(data, list)
        return b"".join(_string(bytes(v)) for v in data)
    if kind == "i128":
        assert not isinstance(data, str)
        return b"".join(int(v).to_bytes(16, "little", signed=True) for v in data)
    dtype = _TYPES[kind][1]
    assert dtype is not None
    return np.ascontiguousarray(np.asarray(data).astype(dtype, copy=False)).tobytes()


def native_block(spec: tuple[tuple[str, Kind], ...], values: dict[str, Any], rows: int) -> bytes:
    """One block in ClickHouse's Native format: column count, row count, then per column its
    name, type and data (fixed-width little endian; strings length-prefixed)."""
    out = [_varint(len(spec)), _varint(rows)]
    for name, kind in spec:
        out += [_string(name.encode()), _string(_TYPES[kind][0].encode())]
        out.append(_column(kind, values[name], rows))
    return b"".join(out)


_NUMPY = {t: np.dtype(d) for t, d in (("UInt8", "u1"), ("UInt16", "<u2"), ("UInt32", "<u4"),
          ("UInt64", "<u8"), ("Int8", "i1"), ("Int16", "<i2"), ("Int32", "<i4"),
          ("Int64", "<i8"))}  # fmt: skip


_SIMPLE = re.compile(r"^SimpleAggregateFunction\(\w+, (.+)\)$")


def _read_varint(buf: memoryview, at: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[at]
        at += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, at
        shift += 7


def native_columns(data: bytes) -> list[np.ndarray]:
    """The columns of a query's Native-format output (fixed-width integer columns only) as
    numpy arrays, the blocks joined: the data of each block is used as it is (no per-value
    Python). Int128: int64 when every value fits, else an object array of Python ints."""
    buf = memoryview(data)
    at = 0
    parts: list[list[np.ndarray]] = []
    while at < len(buf):
        ncols, at = _read_varint(buf, at)
        nrows, at = _read_varint(buf, at)
        if not parts:
            parts = [[] for _ in range(ncols)]
        if ncols != len(parts):
            raise ValueError("native_columns: blocks with different column counts")
        for i in range(ncols):
            for _ in range(2):  # name, type
                size, at = _read_varint(buf, at)
                kind = bytes(buf[at : at + size]).decode()
                at += size
            simple = _SIMPLE.match(kind)  # a SimpleAggregateFunction's values are its type's
            kind = simple.group(1) if simple else kind
            if kind == "Int128":
                parts[i].append(_int128(np.frombuffer(data, _I128, nrows, at)))
                at += nrows * _I128.itemsize
                continue
            dtype = _NUMPY.get(kind)
            if dtype is None:
                raise ValueError(f"native_columns: unsupported column type {kind}")
            parts[i].append(np.frombuffer(data, dtype, nrows, at))
            at += nrows * dtype.itemsize
    return [_join(p) for p in parts]


_I128 = np.dtype([("lo", "<u8"), ("hi", "<i8")])


def _int128(v: np.ndarray) -> np.ndarray:
    """Int128 values: int64 when they all fit (the high word is the low word's sign), else
    exact Python ints in an object array."""
    lo, hi = v["lo"], v["hi"]
    signed = lo.view(np.int64)
    if np.array_equal(hi, signed >> 63):
        return signed
    return np.array([(h << 64) | x for h, x in zip(hi.tolist(), lo.tolist(), strict=True)],
                    dtype=object)  # fmt: skip


def _join(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    if any(p.dtype == object for p in parts):
        return np.concatenate([p.astype(object) for p in parts])
    return np.concatenate(parts)


def _chunk_block(table: str, chunk: Chunk) -> bytes:
    return native_block(TABLES[table], {"symbol": chunk.symbol, **chunk.columns}, chunk.rows)


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ClickHouseBackend:
    name = "clickhouse"
    dialect = "clickhouse"

    def __init__(self, dsn: str, *, database: str | None = None) -> None:
        self.dsn = dsn
        self.database = database
        self._client: Client | None = None
        # the last day whose `equity_daily` rows this process wrote completely (None: ask the
        # database, and recompute its last day: see `equity.py`)
        self._equity_day: int | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="clickhouse")

    async def _call(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _connect(self) -> None:
        self._close()
        if self.database:
            boot = clickhouse_connect.get_client(dsn=self.dsn)
            try:
                boot.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            finally:
                boot.close()
        self._client = clickhouse_connect.get_client(dsn=self.dsn, database=self.database)

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def client(self) -> Client:
        if self._client is None:
            raise ConnectionError("clickhouse: not connected")
        return self._client

    async def connect(self) -> None:
        await self._call(self._connect)

    async def close(self) -> None:
        await self._call(self._close)

    def shutdown(self) -> None:
        """Close and stop the thread (the backend cannot be used after this)."""
        self._thread.submit(self._close).result()
        self._thread.shutdown()

    # -- migrations ----------------------------------------------------------------------------

    def _migrate(self) -> list[int]:
        c = self.client
        c.command(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String,"
            " checksum String, applied_at DateTime DEFAULT now())"
            " ENGINE = ReplacingMergeTree ORDER BY version"
        )
        files = mig.migrations("clickhouse")
        rows = c.query("SELECT version, checksum FROM schema_migrations FINAL").result_rows
        applied = {int(v): str(s) for v, s in rows}
        mig.check_applied("clickhouse", applied, files)
        done = []
        for m in files:
            if m.version in applied:
                continue
            for stmt in mig.statements(m.sql):
                c.command(stmt)
            c.insert(
                "schema_migrations",
                [[m.version, m.name, m.checksum]],
                column_names=["version", "name", "checksum"],
            )
            done.append(m.version)
        return done

    async def migrate(self) -> list[int]:
        return await self._call(self._migrate)

    # -- state ---------------------------------------------------------------------------------

    def _checkpoints(self, sink: str) -> list[CheckpointRow]:
        rows = self.client.query(
            "SELECT symbol, last_seq, ts, state FROM sink_checkpoints FINAL"
            f" WHERE sink = {_quote(sink)}"
        ).result_rows
        return [CheckpointRow(s, int(q), int(t), _as_bytes(st)) for s, q, t, st in rows]

    def _cut_torn_tail(self, checkpoints: list[CheckpointRow]) -> None:
        """Delete rows beyond their symbol's checkpoint (a flush cut short), after recomputing
        the pre-aggregated tables they went into (`aggregates.py`: safe to crash and redo)."""
        syms = "[" + ",".join(_quote(c.symbol) for c in checkpoints) + "]"
        seqs = "[" + ",".join(f"toUInt64({c.last_seq})" for c in checkpoints) + "]"
        limit = f"transform(symbol, {syms}, {seqs}, toUInt64(0))" if checkpoints else "0"
        torn_from: dict[str, int] = {}
        for table in sorted(agg.SOURCES):
            rows = self.client.query(
                f"SELECT symbol, min(ts) FROM {table} WHERE seq > {limit} GROUP BY symbol"
            ).result_rows
            for symbol, ts in rows:
                torn_from[str(symbol)] = min(int(ts), torn_from.get(str(symbol), int(ts)))
        through = {c.symbol: c.last_seq for c in checkpoints}
        for symbol, ts in sorted(torn_from.items()):
            for stmt in agg.repair_statements(_quote(symbol), ts, through.get(symbol, 0)):
                self.client.command(stmt, settings={"mutations_sync": 2})
        for table, col in _SEQ_COLUMN.items():
            beyond = self.client.query(f"SELECT count() FROM {table} WHERE {col} > {limit}")
            if beyond.result_rows[0][0]:
                self.client.command(
                    f"DELETE FROM {table} WHERE {col} > {limit}",
                    settings={"mutations_sync": 2},
                )

    def _load(self, sink: str) -> SinkState:
        checkpoints = self._checkpoints(sink)
        self._cut_torn_tail(checkpoints)
        self._equity_day = None
        rows = self.client.query(
            "SELECT symbol, account, max(seq), argMax(ts, seq), argMax(position, seq),"
            " argMax(buy_qty, seq), argMax(sell_qty, seq), argMax(buy_notional, seq),"
            " argMax(sell_notional, seq), argMax(trades, seq)"
            " FROM positions GROUP BY symbol, account"
        ).result_rows
        positions = [PositionRow(r[0], *(int(v) for v in r[1:])) for r in rows]
        return SinkState(checkpoints, positions)

    def _open_orders(self, symbols: list[str]) -> list[OpenOrder]:
        out = []
        for symbol in symbols:  # one at a time: the set of ended order ids stays per symbol
            live = self.client.query(_OPEN_ORDERS.replace("{s}", _quote(symbol))).result_rows
            out += [OpenOrder(symbol, *(int(v) for v in r)) for r in live]
        return out

    async def open_orders(self, symbols: list[str]) -> list[OpenOrder]:
        return await self._call(self._open_orders, symbols)

    async def load(self, sink: str) -> SinkState:
        return await self._call(self._load, sink)

    # -- writes --------------------------------------------------------------------------------

    def _write(self, sink: str, flush: Flush) -> None:
        for table, chunks in flush.tables.items():
            blob = b"".join(_chunk_block(table, c) for c in chunks)
            self.insert_native(table, blob)
        ck = flush.checkpoints
        values = {
            "sink": sink,
            "symbol": [c.symbol.encode() for c in ck],
            "last_seq": [c.last_seq for c in ck],
            "ts": [c.ts for c in ck],
            "state": [c.state for c in ck],
        }
        spec = tuple((n, "bytes" if n == "symbol" else k) for n, k in CHECKPOINT_COLUMNS)
        self.insert_native("sink_checkpoints", native_block(spec, values, len(ck)))

    def insert_native(self, table: str, blob: bytes) -> None:
        """Insert Native-format blocks whose columns are `table`'s sink columns."""
        spec = CHECKPOINT_COLUMNS if table == "sink_checkpoints" else TABLES[table]
        names = [c for c, _ in spec]
        self.client.raw_insert(table, names, insert_block=blob, fmt="Native")

    async def write(self, sink: str, flush: Flush) -> None:
        await self._call(self._write, sink, flush)

    # -- end of day ----------------------------------------------------------------------------

    def _end_of_day(self, checkpoint_ts: int) -> int:
        closed = eq.closed_through(checkpoint_ts)
        if self._equity_day is not None and closed <= self._equity_day:
            return 0
        start = time.perf_counter()
        if self._equity_day is None:  # from the last day with rows, inclusive (eq docstring)
            if not self.client.command("EXISTS TABLE equity_daily"):
                self._equity_day = 2**62  # not migrated (a sink with migrate=False): nothing
                log.warning("equity_daily does not exist: end-of-day equity is not written")
                return 0
            ((last, rows),) = self.client.query(
                "SELECT max(day), count() FROM equity_daily"
            ).result_rows
            first = int(last) if int(rows) else 0
        else:
            first = self._equity_day + 1
        days = [int(d) for (d,) in self.client.query(
            eq.trading_days_sql(first, closed)).result_rows] if closed >= first else []  # fmt: skip
        if days:
            rows = self.client.query(eq.closes_sql(days[-1])).result_rows
            closes = {(str(s), int(d)): int(p) for s, d, p in rows}
            ((lo, hi),) = self.client.query(
                "SELECT min(day), max(day) FROM fills_daily"
            ).result_rows
            for day in days:  # in order, one INSERT (one block) a day
                forward = day - int(lo) < int(hi) - day  # fewer rows before the day than after
                self.client.command(eq.day_sql(day, eq.marks_at(closes, day), forward=forward))
            log.info(
                "equity_daily: %d closed day(s) %d..%d written in %.3f s",
                len(days), days[0], days[-1], time.perf_counter() - start,
            )  # fmt: skip
        self._equity_day = max(closed, first - 1)  # days before `first` are complete
        return len(days)

    async def end_of_day(self, checkpoint_ts: int) -> int:
        """Write `equity_daily` for the trading days closed by checkpoints all at or past
        `checkpoint_ts` that have no rows yet (`equity.py`); the number of days written."""
        return await self._call(self._end_of_day, checkpoint_ts)

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            return [tuple(r) for r in self.client.query(sql).result_rows]

        return await self._call(run)

    async def columns(self, sql: str) -> list[np.ndarray]:
        def run() -> list[np.ndarray]:
            return native_columns(self.client.raw_query(sql, fmt="Native"))

        return await self._call(run)


def _as_bytes(v: Any) -> bytes:
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    return str(v).encode("utf-8", "surrogateescape")
