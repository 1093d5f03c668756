"""Sink throughput, the cost of the sinks to matching, and the analytics' speed.

    python -m perf.sinks [--commands N] [--report-fills N] [--postgres DSN] [--no-postgres]
                         [--json PATH]

What is measured (printed next to the figures):

- **rows/s into each sink**: a trade-heavy synthetic journal (`engine.sinks.synth`, 4 symbols)
  is matched through fresh books first (not timed); then its batches go through a `Sink`
  (`offer`, then `drain`): conversion + COPY / Native insert + checkpoint, timed from the first
  offer to the end of the drain. Fills/s counts trade rows; rows/s every row written. PostgreSQL:
  a throwaway server from tests/pg_harness.py (fsync on) unless `--postgres DSN`; ClickHouse:
  embedded chDB in a temp directory. The schema is migrated before the clock starts; the
  timing includes the sink's connect and load.
- **matching with the sinks on vs off**: the same journal applied batch by batch through fresh
  books (what the book actors do) with (a) no sink, (b) an in-process sink (`offer` every batch,
  the sink converts and writes on the same event loop), (c) a follower process
  (`cift-engine sink run`, PostgreSQL) tailing the journal the matching loop appends to.
  Throughput = commands / wall time of the matching loop (not waiting for the sink).
- **reports on N fills in ClickHouse**: N trades (and their orders' events, and the `order_ends`
  rows the sink's converter would write for them) generated directly as rows (16 symbols, 2000
  accounts, 30 days), inserted a symbol at a time in Native blocks (the
  materialized views fill the pre-aggregated tables as in production), then each report timed
  (best of 3). Then, as the sink does after its rows, each symbol's checkpoint (its last
  trade's seq and engine time) and the sink's end-of-day step (`end_of_day`: the equity of
  every closed day, i.e. all but the last, into `equity_daily`), timed and printed, then the
  last closed day alone again (what closing one day costs the sink); and the
  backfill of migration 0004 run again over the same rows (timed; it must give the same rows).
  No OPTIMIZE: the reports run on the parts as inserted. Reports returned as
  columns (`pnl`, `bars`) build their Python rows on first use: that is timed apart ("as
  Python rows +N ms", `rows_seconds`), what a caller wanting lists (the CLI's output) adds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.sinks import ClickHouseBackend, PostgresBackend, ReplayBooks, Sink, SinkMetrics
from engine.sinks import reports as rp
from engine.sinks.backend import Backend
from engine.sinks.clickhouse import native_block
from engine.sinks.migrations import migrations, statements
from engine.sinks.records import SinkBatch
from engine.sinks.synth import T0_NS, synthetic_journal
from engine.sinks.tables import CHECKPOINT_COLUMNS, TABLES
from engine.sinks.tail import ENTRY_DTYPE
from perf._stats import write_json

REPO = Path(__file__).resolve().parent.parent
SYMBOLS = [(f"S{i}", 1, 10**9) for i in range(4)]
MIX = (250, 350, 100, 100, 200)  # gtc, ioc, cancel, amend, market (per mille): trade-heavy
TARGET_FILLS_PER_S = 500_000
TARGET_REPORT_S = 0.100


def journal(commands: int) -> bytes:
    return synthetic_journal(len(SYMBOLS), commands // len(SYMBOLS), seed=5, mix=MIX,
                             accounts=200, step_ns=100_000, advance_every=4096)  # fmt: skip


def batches_of(entries: bytes, chunk: int = 4096) -> list[SinkBatch]:
    books = ReplayBooks(SYMBOLS)
    size = ENTRY_DTYPE.itemsize
    out = []
    for i in range(0, len(entries), chunk * size):
        out += books.apply(entries[i : i + chunk * size])
    return out


async def sink_rows_per_s(db: Backend, batches: list[SinkBatch]) -> dict[str, Any]:
    await db.connect()  # the schema first: the timing is the sink's, not the migration's
    await db.migrate()
    await db.close()
    sink = Sink(db, symbols=[s for s, _, _ in SYMBOLS], metrics=SinkMetrics(),
                capacity=1 << 40, flush_rows=250_000)  # fmt: skip
    start = time.perf_counter()
    sink.start()
    for b in batches:
        sink.offer(b)
    await sink.drain()
    wall = time.perf_counter() - start
    rows = {t: sink.metrics.registry.get_sample_value(
        "cift_sink_rows_total", {"sink": db.name, "table": t}) or 0 for t in TABLES}  # fmt: skip
    return {
        "sink": db.name,
        "seconds": wall,
        "rows": rows,
        "fills_per_s": rows["trades"] / wall,
        "rows_per_s": sum(rows.values()) / wall,
    }


def matching(entries: bytes, chunk: int = 1024) -> tuple[float, int]:
    """The book actors' work alone: (seconds, commands)."""
    books = ReplayBooks(SYMBOLS)
    size = ENTRY_DTYPE.itemsize
    start = time.perf_counter()
    for i in range(0, len(entries), chunk * size):
        books.apply(entries[i : i + chunk * size])
    return time.perf_counter() - start, len(entries) // size


async def matching_with_inprocess_sink(entries: bytes, dsn: str, chunk: int = 1024) -> float:
    sink = Sink(PostgresBackend(dsn), symbols=[s for s, _, _ in SYMBOLS], metrics=SinkMetrics(),
                capacity=2_000_000, flush_rows=100_000)  # fmt: skip
    sink.start()
    books = ReplayBooks(SYMBOLS)
    size = ENTRY_DTYPE.itemsize
    start = time.perf_counter()
    for i in range(0, len(entries), chunk * size):
        for b in books.apply(entries[i : i + chunk * size]):
            sink.offer(b)
        await asyncio.sleep(0)  # one event loop, as in the daemon
    wall = time.perf_counter() - start
    await sink.drain()
    return wall


def journal_and_match(entries: bytes, data: Path, chunk: int = 1024) -> float:
    """The book actors' work plus the persistence actor's journal append (one record per batch,
    fsync none) into `data`'s journal: the seconds it took."""
    from engine._native import JournalWriter
    from engine.recovery import JOURNAL_DIR, KIND_COMMANDS

    writer = JournalWriter(data / JOURNAL_DIR, 64 << 20, 1)
    books = ReplayBooks(SYMBOLS)
    size = ENTRY_DTYPE.itemsize
    start = time.perf_counter()
    for i in range(0, len(entries), chunk * size):
        part = entries[i : i + chunk * size]
        writer.append(KIND_COMMANDS, writer.next_seq, len(part) // size, part, False)
        books.apply(part)
    return time.perf_counter() - start


def matching_with_journal(entries: bytes, tmp: Path, chunk: int = 1024) -> float:
    """`journal_and_match` with no sink: what the follower's figure is compared with (the
    daemon journals whether or not a sink follows the journal)."""
    data = Path(tempfile.mkdtemp(dir=tmp, prefix="journal-only-"))
    try:
        return journal_and_match(entries, data, chunk)
    finally:
        shutil.rmtree(data)


def pin_tree(pid: int, cpus: set[int]) -> None:
    """Pin process `pid` and its children (a PostgreSQL postmaster and its workers; backends it
    forks later inherit the mask) to `cpus`."""
    pids = [pid]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                pids.append(int(d.name))
    for p in pids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(p, cpus)


def matching_with_follower(
    entries: bytes, dsn: str, tmp: Path, chunk: int = 1024, cpus: set[int] | None = None
) -> float:
    """`journal_and_match` while a follower process (`cift-engine sink run`, on `cpus`) tails
    the journal into PostgreSQL."""
    data = tmp / "follower"
    data.mkdir()
    config = tmp / "follower.toml"
    lines = ["[process]", f'data_dir = "{data}"', ""]
    for name, lo, hi in SYMBOLS:
        lines += [
            "[[symbols]]", f'name = "{name}"', "tick_size = 1", "lot_size = 1",
            "price_precision = 2", f"min_price = {lo}", f"max_price = {hi}",
            "reference_price = 0", "price_band_bps = 0", "max_order_qty = 1000000", "",
        ]  # fmt: skip
    config.write_text("\n".join(lines))
    out = (tmp / "follower.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.sinks.cli", "sink", "run", "--config", str(config),
         "--postgres", dsn, "--name", "follower"],
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )  # fmt: skip
    try:
        return journal_and_match(entries, data, chunk)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        out.close()


# -- reports -----------------------------------------------------------------------------------


def report_rows(n: int, seed: int = 1) -> Iterator[tuple[str, str, dict[str, Any], int]]:
    """N trades over 16 symbols, 2000 accounts, 30 days; each trade's maker was accepted
    earlier (and rested until the trade: an `order_ends` row); one order in 4 is cancelled.
    (table, symbol, columns, rows), a symbol at a time."""
    rng = np.random.default_rng(seed)
    syms = 16
    per = n // syms
    for s in range(syms):
        ts = np.sort(rng.integers(T0_NS, T0_NS + 30 * rp.DAY_NS, per, dtype=np.int64))
        seq = np.arange(per, dtype=np.uint64) * syms + s + 1
        price = 10_000 + np.cumsum(rng.integers(-2, 3, per)).astype(np.int64)
        qty = rng.integers(1, 100, per).astype(np.int64)
        maker_oid = seq * 4
        taker_oid = seq * 4 + 1
        z = np.zeros(per, np.int64)
        trades = {
            "trade_id": np.arange(1, per + 1, dtype=np.int64), "seq": seq, "ts": ts,
            "price": price, "qty": qty, "maker_side": rng.integers(1, 3, per).astype(np.uint8),
            "maker_order_id": maker_oid, "maker_account": rng.integers(1, 2001, per),
            "maker_client_id": z, "maker_leaves": z, "taker_order_id": taker_oid,
            "taker_account": rng.integers(1, 2001, per), "taker_client_id": z, "taker_leaves": z,
        }  # fmt: skip
        yield "trades", f"S{s:02d}", trades, per
        m = per * 2
        cancel = rng.random(per) < 0.25
        k = int(cancel.sum())
        oid = np.concatenate([maker_oid, taker_oid, seq[cancel] * 4 + 2])
        acc_ts = np.concatenate([ts - rng.integers(1, 10**10, per), ts, ts[cancel]])
        orders = {
            "seq": np.concatenate([seq, seq, seq[cancel]]) * 0 + np.arange(m + k) + 1,
            "idx": np.zeros(m + k, np.uint32), "ts": acc_ts,
            "event": np.r_[np.ones(m, np.uint8), np.full(k, 4, np.uint8)],
            "cmd_kind": np.ones(m + k, np.uint8), "order_id": oid,
            "account": rng.integers(1, 2001, m + k), "client_id": np.zeros(m + k, np.uint64),
            "side": rng.integers(1, 3, m + k).astype(np.uint8),
            "ord_type": np.ones(m + k, np.uint8),
            "tif": np.ones(m + k, np.uint8), "price": np.concatenate([price, price, price[cancel]]),
            "qty": np.concatenate([qty, qty, qty[cancel]]), "leaves": np.zeros(m + k, np.int64),
            "stop_price": np.zeros(m + k, np.int64), "display_qty": np.zeros(m + k, np.int64),
            "expire_ts": np.zeros(m + k, np.uint64),
            "reason": np.r_[np.zeros(m, np.uint8), np.ones(k, np.uint8)],
            "code": np.zeros(m + k, np.uint16), "flags": np.zeros(m + k, np.uint8),
            "aux": np.zeros(m + k, np.int64), "aux2": np.zeros(m + k, np.int64),
        }  # fmt: skip
        orders["seq"] = orders["seq"] * syms + s  # unique per symbol
        yield "orders", f"S{s:02d}", orders, m + k
        # what the sink's converter writes: each maker rested until its trade ended it (takers
        # end in the command that placed them: no row)
        ends = {
            "seq": seq, "order_id": maker_oid, "account": orders["account"][:per],
            "ts": acc_ts[:per], "accepted_seq": orders["seq"][:per], "ended_ts": ts,
        }  # fmt: skip
        yield "order_ends", f"S{s:02d}", ends, per


async def close_days(db: ClickHouseBackend, last: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """What the sink does after the rows: the checkpoints, then the end-of-day equity of the
    days they close (timed), then migration 0004's backfill over the same database (timed)."""
    spec = tuple((n, "bytes" if n == "symbol" else k) for n, k in CHECKPOINT_COLUMNS)
    names = sorted(last)
    values = {"sink": "main", "symbol": [s.encode() for s in names],
              "last_seq": [last[s][0] for s in names], "ts": [last[s][1] for s in names],
              "state": [b"" for _ in names]}  # fmt: skip
    await db._call(db.insert_native, "sink_checkpoints", native_block(spec, values, len(names)))
    floor = min((ts for _, ts in last.values()), default=0)
    t = time.perf_counter()
    days = await db.end_of_day(floor)
    sink_s = time.perf_counter() - t
    db._equity_day = None  # as after a restart: the last day with rows is computed again
    t = time.perf_counter()
    one = await db.end_of_day(floor)
    one_s = time.perf_counter() - t
    assert one == 1
    count = "SELECT count(), uniqExact(account, day) FROM equity_daily"
    ((_, keys),) = await db.query(count)
    (m,) = [m for m in migrations("clickhouse") if m.name == "equity_daily"]
    t = time.perf_counter()
    for stmt in statements(m.sql):
        await db.query(stmt)
    backfill_s = time.perf_counter() - t
    ((rows_b, keys_b),) = await db.query(count)
    if keys_b != keys:
        raise AssertionError(f"backfill: {keys_b} (account, day) keys, the sink wrote {keys}")
    return {"days": days, "rows": int(rows_b), "sink_seconds": sink_s,
            "one_day_seconds": one_s, "backfill_seconds": backfill_s}  # fmt: skip


async def report_timings(fills: int, tmp: Path) -> dict[str, Any]:
    db = ClickHouseBackend(f"chdb://{tmp / 'reports'}")
    await db.connect()
    try:
        await db.migrate()
        start = time.perf_counter()
        last: dict[str, tuple[int, int]] = {}  # symbol -> its last trade's (seq, ts)
        for table, symbol, cols, n in report_rows(fills):  # materialized views fill the aggregates
            if table == "trades" and n:
                last[symbol] = (int(cols["seq"][-1]), int(cols["ts"][-1]))
            blob = native_block(TABLES[table], {"symbol": symbol, **cols}, n)
            await db._call(db.insert_native, table, blob)
        load_s = time.perf_counter() - start
        end_of_day = await close_days(db, last)
        cases = {
            "pnl": lambda: rp.pnl(db, maker_fee_bps=-1, taker_fee_bps=2),
            "performance": lambda: rp.performance(db),
            "volume": lambda: rp.volume(db),
            "bars_1m_one_symbol": lambda: rp.bars(db, rp.Filter(symbol="S03"), interval="1m"),
            "bars_1h": lambda: rp.bars(db, interval="1h"),
            "order_flow": lambda: rp.order_flow(db),
        }
        timings = {}
        for name, run in cases.items():
            best = rows_best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                r = await run()
                best = min(best, time.perf_counter() - t)
                t = time.perf_counter()
                r.rows  # noqa: B018 (the rows as Python lists: what the CLI formats)
                rows_best = min(rows_best, time.perf_counter() - t)
            timings[name] = {"seconds": best, "rows": len(r), "rows_seconds": rows_best}
        return {"fills": fills, "load_seconds": load_s, "end_of_day": end_of_day,
                "reports": timings}  # fmt: skip
    finally:
        await db.close()
        db.shutdown()


# -- main --------------------------------------------------------------------------------------


def postgres(args: argparse.Namespace) -> tuple[Any, str | None]:
    """(the throwaway server started, or None; the DSN to use, or None): `--postgres DSN` as
    given, none with `--no-postgres`, else a fresh server from tests/pg_harness.py, fsync on
    (the caller destroys it)."""
    if args.postgres is not None or args.no_postgres:
        return None, args.postgres
    sys.path.insert(0, str(REPO / "tests"))
    from pg_harness import PgServer

    server = PgServer.start(fsync=True)
    return server, server.dsn


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"machine_cpus": os.cpu_count()}
    entries = journal(args.commands)
    commands = len(entries) // ENTRY_DTYPE.itemsize
    batches = batches_of(entries)
    print(f"journal: {commands} commands, {len(batches)} batches")
    server, dsn = postgres(args)
    sink_cpus: set[int] | None = None
    if args.pin:
        # matching on the first core; the databases and the follower on the others, as on a
        # host with cores to spare for them
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least two CPUs")
        os.sched_setaffinity(0, {cpus[0]})
        sink_cpus = set(cpus[1:])
        if server is not None:
            postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
            pin_tree(postmaster, sink_cpus)
        result["pinned"] = {"matching": cpus[0], "sinks": sorted(sink_cpus)}
    try:
        sinks = []
        if dsn is not None:
            sinks.append(await sink_rows_per_s(PostgresBackend(dsn), batches))
        ch = ClickHouseBackend(f"chdb://{tmp / 'sink'}")
        sinks.append(await sink_rows_per_s(ch, batches))
        ch.shutdown()
        result["sinks"] = sinks
        for s in sinks:
            print(f"{s['sink']:>10}: {s['fills_per_s']:>10,.0f} fills/s  "
                  f"{s['rows_per_s']:>10,.0f} rows/s  ({s['rows']['trades']} fills, "
                  f"{sum(s['rows'].values())} rows in {s['seconds']:.2f} s; target "
                  f"{TARGET_FILLS_PER_S:,} fills/s)")  # fmt: skip
        off = min(matching(entries)[0] for _ in range(3))
        pipe: dict[str, Any] = {"commands": commands, "off_per_s": commands / off}
        if dsn is not None:
            inproc = await matching_with_inprocess_sink(entries, dsn)
            journaled = min(matching_with_journal(entries, tmp) for _ in range(3))
            follower = matching_with_follower(entries, dsn, tmp, cpus=sink_cpus)
            pipe |= {
                "inprocess_per_s": commands / inproc,
                "inprocess_loss": 1 - off / inproc,
                "follower_per_s": commands / follower,
                "follower_loss": 1 - off / follower,
                "journaled_per_s": commands / journaled,
                "follower_loss_vs_journaled": 1 - journaled / follower,
            }
        result["matching"] = pipe
        print(f"matching: sinks off {pipe['off_per_s']:,.0f} commands/s", end="")
        if dsn is not None:
            print(
                f"; in-process sink {pipe['inprocess_per_s']:,.0f}/s"
                f" (loss {pipe['inprocess_loss']:.1%}); follower process"
                f" {pipe['follower_per_s']:,.0f}/s (loss {pipe['follower_loss']:.1%}; against"
                f" matching that journals without a sink, {pipe['journaled_per_s']:,.0f}/s:"
                f" {pipe['follower_loss_vs_journaled']:.1%})"
            )
        else:
            print()
    finally:
        if server is not None:
            server.destroy()
    rep = await report_timings(args.report_fills, tmp)
    result["reports"] = rep
    print(f"reports on {rep['fills']:,} fills in ClickHouse (load {rep['load_seconds']:.1f} s), "
          f"best of 3, target {TARGET_REPORT_S * 1000:.0f} ms:")  # fmt: skip
    e = rep["end_of_day"]
    print(f"  end-of-day equity: the sink's step {e['sink_seconds'] * 1000:.0f} ms for"
          f" {e['days']} closed days ({e['rows']} rows), the last day alone (what closing"
          f" one day costs) {e['one_day_seconds'] * 1000:.0f} ms; migration 0004's backfill"
          f" {e['backfill_seconds'] * 1000:.0f} ms")  # fmt: skip
    for name, t in rep["reports"].items():
        print(f"  {name:<20} {t['seconds'] * 1000:8.1f} ms  ({t['rows']} rows; as Python rows"
              f" +{t['rows_seconds'] * 1000:.1f} ms)")  # fmt: skip
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.sinks", description=__doc__.split("\n")[0])
    ap.add_argument("--commands", type=int, default=400_000, help="journal size (all symbols)")
    ap.add_argument("--report-fills", type=int, default=1_000_000, help="fills for the reports")
    ap.add_argument("--postgres", help="an existing PostgreSQL (default: start one)")
    ap.add_argument("--no-postgres", action="store_true", help="ClickHouse only")
    ap.add_argument(
        "--pin",
        action="store_true",
        help="matching on the first CPU, PostgreSQL and the follower on the others",
    )
    ap.add_argument("--json", help="write the results as JSON here")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="cift-perf-sinks-"))
    try:
        result = asyncio.run(run(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        write_json(args.json, "perf.sinks", vars(args), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
