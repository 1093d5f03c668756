"""PostgreSQL stopped for a while under load: the engine's books keep matching (the sink only
ever drops live batches), the lag metrics grow, and once the server is back the sink catches
up from the journal with exactly the rows the stream holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pg_harness import PgServer
from services import until

from engine.book import EventKind, decode_events
from engine.sinks import PostgresBackend, ReplayBooks, Sink, SinkBatch, SinkMetrics, replay
from engine.sinks.synth import synthetic_journal
from engine.sinks.tail import ENTRY_DTYPE

SYMBOLS = [("AAA", 1, 10**9), ("BBB", 1, 10**9)]
CHUNK = 1_000  # journal entries per engine batch
TIMEOUT_S = 120.0


def gauge(metrics: SinkMetrics, name: str) -> float:
    v = metrics.registry.get_sample_value(name, {"sink": "postgres"})
    return v if v is not None else 0.0


async def test_postgres_outage_under_load_lags_then_catches_up_exactly() -> None:
    server = PgServer.start()
    try:
        entries = synthetic_journal(2, 30_000, seed=3)
        size = ENTRY_DTYPE.itemsize
        chunks = [entries[i : i + CHUNK * size] for i in range(0, len(entries), CHUNK * size)]
        journal: list[bytes] = []  # what the persistence actor has written

        def source(start: int) -> AsyncIterator[SinkBatch | None]:
            return replay(list(journal), SYMBOLS, start)

        metrics = SinkMetrics()
        sink = Sink(
            PostgresBackend(server.dsn), symbols=[s[0] for s in SYMBOLS], source=source,
            metrics=metrics, capacity=30_000, flush_rows=10_000, retry_s=(0.02, 0.2),
        )  # fmt: skip
        books = ReplayBooks(SYMBOLS)  # the engine's books
        matched = 0

        async def engine(part: list[bytes]) -> None:
            nonlocal matched
            for chunk in part:
                journal.append(chunk)
                for batch in books.apply(chunk):
                    sink.offer(batch)  # never waits
                matched += len(chunk) // size
                await asyncio.sleep(0)  # the event loop is shared with the sink

        def seq_after(n_chunks: int) -> int:
            return min(n_chunks * CHUNK, len(entries) // size)

        third = len(chunks) // 3
        sink.start()
        await engine(chunks[:third])
        await until(lambda: sink.lag()[0] == 0, "the sink to keep up", TIMEOUT_S)
        assert gauge(metrics, "cift_sink_lag_sequences") == 0

        await asyncio.to_thread(server.stop)
        await engine(chunks[third : 2 * third])
        assert matched == seq_after(2 * third)  # matching went on
        errors = "cift_sink_errors_total"
        await until(lambda: gauge(metrics, errors) > 0, "a failed write", TIMEOUT_S)
        await until(
            lambda: (
                gauge(metrics, "cift_sink_lag_sequences") >= seq_after(2 * third) - seq_after(third)
            ),
            "the lag to show the outage",
            TIMEOUT_S,
        )
        assert gauge(metrics, "cift_sink_lag_seconds") > 0
        assert gauge(metrics, "cift_sink_dropped_batches_total") > 0

        await asyncio.to_thread(server.restart)
        await engine(chunks[2 * third :])
        last = len(entries) // size
        await until(lambda: sink.applied()[0] == last, "the catch-up", TIMEOUT_S)
        await sink.drain()
        assert sink.lag() == (0, 0.0)
        assert gauge(metrics, "cift_sink_catchups_total") >= 2  # at start, after the outage

        orders, trades = 0, 0
        for b in ReplayBooks(SYMBOLS).apply(entries):
            ev = decode_events(b.events)
            orders += sum(1 for e in ev if e.kind not in (EventKind.TRADE, EventKind.LEVEL))
            trades += sum(1 for e in ev if e.kind == EventKind.TRADE)
        db = PostgresBackend(server.dsn)
        await db.connect()
        try:
            (got,) = await db.query(
                "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM trades),"
                " (SELECT min(last_seq) FROM sink_checkpoints)"
            )
        finally:
            await db.close()
        assert got == (orders, trades, last)
    finally:
        server.destroy()
