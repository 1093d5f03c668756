"""The sinks against real databases, each test on PostgreSQL (a server started by the tests) and
on ClickHouse (embedded chDB): schema, every event's row values, re-delivery, a torn flush, and
a follower process killed mid-batch and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from pg_harness import backend_for, ch_dsn, db_dsn, pg_dsn, pg_server  # noqa: F401
from test_sinks_convert import (
    SYMBOL,
    expected_order_ends,
    expected_orders,
    expected_positions,
    expected_trades,
    scenario_batches,
)

from engine._native import JournalWriter
from engine.book import EventKind, decode_events
from engine.recovery import JOURNAL_DIR, KIND_COMMANDS
from engine.retention import sink_marks
from engine.sinks import ClickHouseBackend, Converter, Sink, SinkMetrics
from engine.sinks.backend import Backend
from engine.sinks.migrations import migrations
from engine.sinks.synth import synthetic_journal
from engine.sinks.tables import CHECKPOINT_COLUMNS, TABLES
from engine.sinks.tail import ENTRY_DTYPE, ReplayBooks

REPO = Path(__file__).resolve().parent.parent
KILL_TIMEOUT_S = 120.0


async def run_sink(dsn: str, batches: list[Any], **kw: Any) -> Sink:
    sink = Sink(backend_for(dsn), symbols=[SYMBOL], metrics=SinkMetrics(), **kw)
    sink.start()
    for b in batches:
        assert sink.offer(b)
    await sink.drain()
    return sink


async def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    db = backend_for(dsn)
    await db.connect()
    try:
        return await db.query(sql)
    finally:
        await close(db)


async def close(db: Backend) -> None:
    await db.close()
    if isinstance(db, ClickHouseBackend):
        db.shutdown()


def columns_sql(dsn: str, table: str) -> str:
    if dsn.startswith("chdb:"):
        return f"SELECT name FROM system.columns WHERE table = '{table}' ORDER BY position"
    return (
        "SELECT column_name FROM information_schema.columns"
        f" WHERE table_name = '{table}' ORDER BY ordinal_position"
    )


async def test_migrations_create_the_tables_once(db_dsn: str) -> None:  # noqa: F811
    db = backend_for(db_dsn)
    await db.connect()
    try:
        every = [m.version for m in migrations(db.dialect)]  # clickhouse: + 2, 3 the aggregates
        assert await db.migrate() == every
        assert await db.migrate() == []
        for table, cols in {**TABLES, "sink_checkpoints": CHECKPOINT_COLUMNS}.items():
            got = [r[0] for r in await db.query(columns_sql(db_dsn, table))]
            assert got[: len(cols)] == [c for c, _ in cols], table
        versions = await db.query("SELECT version FROM schema_migrations")
        assert sorted(int(v) for (v,) in versions) == every
    finally:
        await close(db)


async def test_every_event_lands_with_the_values_of_its_record(db_dsn: str) -> None:  # noqa: F811
    cmds, events, batches = scenario_batches(2)
    await run_sink(db_dsn, batches)
    orders = await query(db_dsn, "SELECT * FROM orders")
    assert {tuple(int(v) if i else v for i, v in enumerate(r)) for r in orders} == (
        expected_orders(SYMBOL, cmds, events)
    )
    trades = await query(db_dsn, "SELECT * FROM trades")
    assert set(trades) == expected_trades(SYMBOL, cmds, events)
    ends = await query(db_dsn, "SELECT * FROM order_ends")
    assert {(r[0], *(int(v) for v in r[1:])) for r in ends} == (
        expected_order_ends(SYMBOL, cmds, events)
    )
    positions = await query(
        db_dsn,
        "SELECT account, position, buy_qty, sell_qty, buy_notional, sell_notional, seq"
        " FROM positions ORDER BY seq",
    )
    latest = {int(r[0]): tuple(int(v) for v in r[1:6]) for r in positions}
    assert latest == expected_positions(SYMBOL, events)
    (ckpt,) = await query(db_dsn, "SELECT symbol, last_seq FROM sink_checkpoints")
    assert (ckpt[0], int(ckpt[1])) == (SYMBOL, batches[-1].through_seq)


async def test_redelivered_batches_change_nothing(db_dsn: str) -> None:  # noqa: F811
    cmds, events, batches = scenario_batches(3)
    await run_sink(db_dsn, batches[:4])
    await run_sink(db_dsn, batches)  # a restarted sink gets everything again
    await run_sink(db_dsn, batches[2:5])
    counts = await query(
        db_dsn,
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM trades),"
        " (SELECT count(*) FROM book_top)",
    )
    assert tuple(int(v) for v in counts[0][:2]) == (
        len(expected_orders(SYMBOL, cmds, events)),
        len(expected_trades(SYMBOL, cmds, events)),
    )
    top = await query(db_dsn, "SELECT count(*), count(DISTINCT bucket_ts) FROM book_top")
    assert int(top[0][0]) == int(top[0][1])


async def test_a_flush_cut_short_before_its_checkpoint_is_removed_on_restart(
    ch_dsn: str,  # noqa: F811
) -> None:
    """ClickHouse has no transaction across tables: rows that landed without their checkpoint
    (a crash mid-flush) are deleted when the sink starts, then written again once."""
    cmds, events, batches = scenario_batches(3)
    await run_sink(ch_dsn, batches[:2])
    conv = Converter()
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        state = await db.load("main")
        conv.restore(state.checkpoints, state.positions)
        for b in batches[2:]:
            conv.add(b)
        torn = conv.take()
        assert torn is not None
        from engine.sinks.clickhouse import _chunk_block

        assert torn.tables["order_ends"]
        for table in ("orders", "trades", "order_ends"):  # the rows, not the checkpoint
            db.insert_native(table, b"".join(_chunk_block(table, c) for c in torn.tables[table]))
    finally:
        await close(db)
    await run_sink(ch_dsn, batches)
    trades = await query(ch_dsn, "SELECT * FROM trades")
    assert sorted(trades) == sorted(expected_trades(SYMBOL, cmds, events))
    orders = await query(ch_dsn, "SELECT count() FROM orders")
    assert orders[0][0] == len(expected_orders(SYMBOL, cmds, events))
    # the pre-aggregated tables counted the torn rows once: recomputed, they hold each once
    want = (len(trades), sum(t[5] for t in trades))
    for table in ("trades_1m", "trades_1h"):
        got = await query(ch_dsn, f"SELECT sum(trades), sum(volume) FROM {table}")
        assert tuple(int(v) for v in got[0]) == want, table
    for table in ("fills_daily", "fills_total"):
        fills = await query(ch_dsn, f"SELECT sum(fills), sum(buy_qty), sum(sell_qty) FROM {table}")
        assert tuple(int(v) for v in fills[0]) == (2 * want[0], want[1], want[1]), table
    accepted = sum(1 for r in expected_orders(SYMBOL, cmds, events) if r[4] == 1)
    got = await query(ch_dsn, "SELECT sum(orders) FROM orders_daily")
    assert int(got[0][0]) == accepted
    ends = expected_order_ends(SYMBOL, cmds, events)
    got = await query(ch_dsn, "SELECT * FROM order_ends")
    assert sorted((r[0], *(int(v) for v in r[1:])) for r in got) == sorted(ends)
    got = await query(ch_dsn, "SELECT sum(orders), sum(resting_ns) FROM resting_daily")
    assert tuple(int(v) for v in got[0]) == (len(ends), sum(r[6] - r[4] for r in ends))


# -- a follower process killed mid-batch -------------------------------------------------------


def write_journal(data_dir: Path, entries: bytes) -> tuple[Path, list[tuple[str, int, int]]]:
    symbols = [("AAA", 1, 10**9), ("BBB", 1, 10**9)]
    writer = JournalWriter(data_dir / JOURNAL_DIR, 1 << 20, 1)  # rolls every MiB
    size = ENTRY_DTYPE.itemsize
    for off in range(0, len(entries), 1_000 * size):  # records of 1,000 commands
        part = entries[off : off + 1_000 * size]
        writer.append(KIND_COMMANDS, writer.next_seq, len(part) // size, part, False)
    writer.sync()
    config = data_dir.parent / "engine.toml"
    lines = ["[process]", f'data_dir = "{data_dir}"', ""]
    for name, lo, hi in symbols:
        lines += [
            "[[symbols]]", f'name = "{name}"', "tick_size = 1", "lot_size = 1",
            "price_precision = 2", f"min_price = {lo}", f"max_price = {hi}",
            "reference_price = 0", "price_band_bps = 0", "max_order_qty = 1000000", "",
        ]  # fmt: skip
    config.write_text("\n".join(lines))
    return config, symbols


class Follower:
    def __init__(self, tmp: Path, config: Path, dsn: str, n: int) -> None:
        self.log_path = tmp / f"sink{n}.log"
        flag = "--clickhouse" if dsn.startswith("chdb:") else "--postgres"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.sinks.cli", "sink", "run", "--config", str(config),
             flag, dsn, "--flush-rows", "20000", "--log-level", "debug"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip

    def wait_for(self, predicate: Any, what: str) -> None:
        from conftest import wait_until

        def check() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sink exited {self.proc.returncode}:\n{self.text()}")
            return bool(predicate(self.text()))

        wait_until(check, KILL_TIMEOUT_S, what, step=0.01)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def finish(self, sig: int) -> int:
        os.kill(self.proc.pid, sig)
        code = self.proc.wait(30)
        self.log.close()
        return code


async def test_a_follower_killed_mid_batch_restarts_without_loss_or_duplicates(
    db_dsn: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    entries = synthetic_journal(2, 40_000, seed=7)
    config, symbols = write_journal(tmp_path / "data", entries)
    last_seq = len(entries) // ENTRY_DTYPE.itemsize
    first = Follower(tmp_path, config, db_dsn, 1)
    first.wait_for(lambda t: t.count("wrote ") >= 2, "two flushes")
    assert first.finish(signal.SIGKILL) == -signal.SIGKILL
    assert f"applied through seq {last_seq}" not in first.text()  # it died mid-way
    second = Follower(tmp_path, config, db_dsn, 2)
    second.wait_for(lambda t: f"applied through seq {last_seq}" in t, "the catch-up")
    assert second.finish(signal.SIGTERM) == 0
    # It told the daemon's journal pruning how far it got (engine/retention.py).
    assert list(sink_marks(tmp_path / "data").values()) == [last_seq]

    orders, trades = 0, set()
    streams: dict[str, list[bytes]] = {s: [b"", b""] for s, _, _ in symbols}
    for b in ReplayBooks(symbols).apply(entries):
        ev = decode_events(b.events)
        orders += sum(1 for e in ev if e.kind not in (EventKind.TRADE, EventKind.LEVEL))
        trades |= {(b.symbol, e.aux) for e in ev if e.kind == EventKind.TRADE}
        streams[b.symbol][0] += b.commands
        streams[b.symbol][1] += b.events
    # orders accepted before the kill and ended after it: the restarted follower restored them
    ends = set().union(*(expected_order_ends(s, c, e) for s, (c, e) in streams.items()))
    got_ends = await query(db_dsn, "SELECT * FROM order_ends")
    assert len(got_ends) == len(ends)
    assert {(r[0], *(int(v) for v in r[1:])) for r in got_ends} == ends
    got = await query(
        db_dsn,
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM trades),"
        " (SELECT count(DISTINCT symbol || ':' || CAST(trade_id AS text)) FROM trades)".replace(
            "CAST(trade_id AS text)",
            "toString(trade_id)" if db_dsn.startswith("chdb:") else "CAST(trade_id AS text)",
        ),
    )
    assert tuple(int(v) for v in got[0]) == (orders, len(trades), len(trades))


async def test_a_follower_whose_journal_was_pruned_past_it_stops_with_a_clear_error(
    db_dsn: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The daemon gave up on it (journal.sink_retention_max_commands): no retrying forever, a
    non-zero exit naming the cause (docs/sinks.md)."""
    entries = synthetic_journal(2, 6_000, seed=3)
    config, _symbols = write_journal(tmp_path / "data", entries)
    files = sorted((tmp_path / "data" / JOURNAL_DIR).glob("*.cjl"))
    assert len(files) > 1
    files[0].unlink()  # pruned, and no snapshot covers seq 1
    f = Follower(tmp_path, config, db_dsn, 1)
    code = f.proc.wait(60)
    f.log.close()
    assert code == 1, f.text()
    assert "pruned past" in f.text()
