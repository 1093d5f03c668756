"""The PostgreSQL backend (asyncpg): one transaction per flush.

Each flush is one transaction: the checkpoint rows are locked first (`FOR UPDATE`, so two sinks
on one database cannot interleave), every table's rows go in by `COPY`
(`copy_records_to_table`), then the checkpoints move. Rows and checkpoints commit together, so
after any crash the database holds exactly the rows up to its checkpoints. A COPY that meets an
existing key (a re-delivered flush whose commit was not acknowledged, or a second writer) rolls
back to a savepoint and goes in again through temporary tables with
`INSERT ... ON CONFLICT DO NOTHING`: re-delivery is a no-op, never an error.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import numpy as np

from engine._native import pgcopy
from engine.sinks import migrations as mig
from engine.sinks.backend import SinkState
from engine.sinks.convert import CheckpointRow, Chunk, Flush, OpenOrder, PositionRow
from engine.sinks.tables import TABLES

__all__ = ["PostgresBackend"]

_MIGRATE_LOCK = 0x43494654  # pg_advisory_xact_lock key: one migrator at a time


_KIND_CODES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i64": "q"}


def _binary_copy(table: str, chunk: Chunk) -> bytes | None:
    """The chunk as PostgreSQL binary COPY data, built natively from its column buffers; None
    if a column is not a fixed-width array (positions: Python ints, NUMERIC notionals)."""
    spec = TABLES[table][1:]
    kinds = "".join(_KIND_CODES.get(k, "?") for _, k in spec)
    cols = [chunk.columns[n] for n, _ in spec]
    if "?" in kinds or not all(isinstance(c, np.ndarray) for c in cols):
        return None
    buffers = [np.ascontiguousarray(c).view(np.uint8).data for c in cols]
    return pgcopy(chunk.symbol, kinds, buffers, chunk.rows)


def _records(chunk: Chunk) -> Iterator[tuple[Any, ...]]:
    cols = []
    for c in chunk.columns.values():
        if isinstance(c, np.ndarray):
            if c.dtype == np.uint64:
                c = c.view(np.int64)  # same 64 bits as BIGINT
            cols.append(c.tolist())
        else:
            cols.append(c)
    return zip(itertools.repeat(chunk.symbol, chunk.rows), *cols, strict=False)


class PostgresBackend:
    name = "postgres"
    dialect = "postgres"

    def __init__(
        self, dsn: str, *, timeout_s: float = 10.0, synchronous_commit: bool = False
    ) -> None:
        """`synchronous_commit` off (the default) for this session: a commit returns before
        its WAL is flushed. Safe here because rows and checkpoint commit together and the
        journal is the source of truth: a server crash can only lose whole recent flushes,
        which the sink notices on reconnect (the checkpoint is behind) and rewrites."""
        self.dsn = dsn
        self.timeout_s = timeout_s
        self.synchronous_commit = synchronous_commit
        self._conn: asyncpg.Connection | None = None

    async def connect(self) -> None:
        await self.close()
        self._conn = await asyncpg.connect(
            self.dsn,
            timeout=self.timeout_s,
            server_settings={"synchronous_commit": "on" if self.synchronous_commit else "off"},
        )

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            raise ConnectionError("postgres: not connected")
        return self._conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=self.timeout_s)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn.terminate()

    async def migrate(self) -> list[int]:
        files = mig.migrations("postgres")
        done: list[int] = []
        async with self.conn.transaction():
            await self.conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATE_LOCK)
            await self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            rows = await self.conn.fetch("SELECT version, checksum FROM schema_migrations")
            applied = {r["version"]: r["checksum"] for r in rows}
            mig.check_applied("postgres", applied, files)
            for m in files:
                if m.version in applied:
                    continue
                await self.conn.execute(m.sql)
                await self.conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
                done.append(m.version)
        return done

    async def load(self, sink: str) -> SinkState:
        ckpts = await self.conn.fetch(
            "SELECT symbol, last_seq, ts, state FROM sink_checkpoints WHERE sink = $1", sink
        )
        pos = await self.conn.fetch(
            "SELECT DISTINCT ON (symbol, account) symbol, account, seq, ts, position, buy_qty,"
            " sell_qty, buy_notional, sell_notional, trades FROM positions"
            " ORDER BY symbol, account, seq DESC"
        )
        return SinkState(
            [CheckpointRow(r["symbol"], r["last_seq"], r["ts"], bytes(r["state"])) for r in ckpts],
            [PositionRow(r[0], *(int(v) for v in tuple(r)[1:])) for r in pos],
        )

    async def open_orders(self, symbols: list[str]) -> list[OpenOrder]:
        live = await self.conn.fetch(  # accepted, never ended (hash anti join); u64 as BIGINT
            "SELECT a.symbol, a.order_id, a.seq, a.ts, a.account FROM orders a"
            " WHERE a.event = 1 AND a.symbol = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM ("
            "SELECT symbol, order_id FROM orders WHERE event = 4 AND leaves = 0"
            " UNION ALL SELECT symbol, maker_order_id FROM trades WHERE maker_leaves = 0"
            " UNION ALL SELECT symbol, taker_order_id FROM trades WHERE taker_leaves = 0) d"
            " WHERE d.symbol = a.symbol AND d.order_id = a.order_id)",
            symbols,
        )
        return [OpenOrder(r[0], *(int(v) % 2**64 for v in tuple(r)[1:])) for r in live]

    async def write(self, sink: str, flush: Flush) -> None:
        conn = self.conn
        async with conn.transaction():
            await conn.execute(
                "SELECT 1 FROM sink_checkpoints WHERE sink = $1 FOR UPDATE", sink
            )  # serialises writers of this sink
            try:
                async with conn.transaction():
                    await self._copy(flush)
            except asyncpg.UniqueViolationError:
                await self._insert_ignoring_duplicates(flush)
            await conn.executemany(
                "INSERT INTO sink_checkpoints (sink, symbol, last_seq, ts, state)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (sink, symbol) DO UPDATE SET"
                " last_seq = GREATEST(sink_checkpoints.last_seq, EXCLUDED.last_seq),"
                " ts = EXCLUDED.ts, state = EXCLUDED.state, updated_at = now()",
                [(sink, c.symbol, c.last_seq, c.ts, c.state) for c in flush.checkpoints],
            )

    async def _copy(self, flush: Flush, prefix: str = "") -> None:
        for table, chunks in flush.tables.items():
            columns = [c for c, _ in TABLES[table]]
            for chunk in chunks:
                data = _binary_copy(table, chunk)
                if data is None:
                    await self.conn.copy_records_to_table(
                        prefix + table, records=_records(chunk), columns=columns
                    )
                else:
                    await self.conn.copy_to_table(
                        prefix + table, source=io.BytesIO(data), columns=columns, format="binary"
                    )

    async def _insert_ignoring_duplicates(self, flush: Flush) -> None:
        for table in flush.tables:
            await self.conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} (LIKE {table})"
                " ON COMMIT DELETE ROWS"
            )
        await self._copy(flush, prefix="stage_")
        for table in flush.tables:
            await self.conn.execute(
                f"INSERT INTO {table} SELECT * FROM stage_{table} ON CONFLICT DO NOTHING"
            )

    async def end_of_day(self, checkpoint_ts: int) -> int:
        """Nothing: PostgreSQL's `performance` reads the raw fills (no `equity_daily`)."""
        return 0

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self.conn.fetch(sql)]

    async def columns(self, sql: str) -> list[np.ndarray]:
        stmt = await self.conn.prepare(sql)
        rows = await stmt.fetch()
        width = len(stmt.get_attributes())
        # Python ints (NUMERIC sums can exceed 64 bits): exact, object arrays
        return [np.array([int(r[i]) for r in rows], dtype=object) for i in range(width)]
