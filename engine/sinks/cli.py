"""`cift-engine db ...`, `cift-engine report ...` and `cift-engine sink run` (hooked into
engine/cli.py: `if argv[0] in sinks.cli.COMMANDS: return sinks.cli.main(argv)`).

    cift-engine db migrate [--postgres DSN] [--clickhouse DSN]
    cift-engine report pnl [--account N] [--symbol S] [--to DAY] [--maker-fee-bps N] ...
    cift-engine report performance [--account N] [--from DAY] [--to DAY] [--capital N] [--daily]
    cift-engine report volume [--symbol S] [--from DAY] [--to DAY]
    cift-engine report bars --interval 1s|1m|1h|1d [--symbol S] [--from DAY] [--to DAY]
    cift-engine report flow [--account N] [--symbol S] [--from DAY] [--to DAY]
    cift-engine sink run [--postgres DSN] [--clickhouse DSN] [--name NAME]

Databases: `--clickhouse DSN` / $CIFT_CLICKHOUSE_DSN (chdb:///path or http://host:8123),
`--postgres DSN` / $CIFT_POSTGRES_DSN; with neither, the embedded ClickHouse at
DATA_DIR/clickhouse (DATA_DIR from --data-dir, else --config, else the default config).
Reports use ClickHouse when it is configured, else PostgreSQL. Days are UTC (YYYY-MM-DD, `--to`
inclusive) or engine nanoseconds. Output: a table, `--json` or `--csv`. Exit codes: 0 ok,
1 failure (database unreachable, migration error), 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import io
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from engine import config as cfg
from engine.retention import write_sink_mark
from engine.sinks import reports
from engine.sinks.backend import Backend
from engine.sinks.clickhouse import ClickHouseBackend
from engine.sinks.metrics import SinkMetrics
from engine.sinks.postgres import PostgresBackend
from engine.sinks.runner import Sink
from engine.sinks.tail import JournalHead, tail_journal

__all__ = ["COMMANDS", "main"]

COMMANDS = ("db", "report", "sink")
log = logging.getLogger("engine.sinks")


def _databases(p: argparse.ArgumentParser) -> None:
    p.add_argument("--postgres", default=os.environ.get("CIFT_POSTGRES_DSN"), help="PostgreSQL DSN")
    p.add_argument(
        "--clickhouse", default=os.environ.get("CIFT_CLICKHOUSE_DSN"), help="ClickHouse DSN"
    )
    p.add_argument("--config", help="the engine's config file (for its data directory)")
    p.add_argument("--data-dir", help="the engine's data directory (embedded ClickHouse)")


def _day(value: str, *, end: bool = False) -> int:
    if value.isdigit():
        return int(value)
    day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
    return (day - dt.date(1970, 1, 1)).days * reports.DAY_NS


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cift-engine", description="Sink databases and reports.")
    sub = ap.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="the sink databases").add_subparsers(dest="verb", required=True)
    _databases(db.add_parser("migrate", help="apply the schema migrations (idempotent)"))
    sink = sub.add_parser("sink", help="run the sinks").add_subparsers(dest="verb", required=True)
    p = sink.add_parser("run", help="follow the journal into the databases until SIGTERM")
    _databases(p)
    p.add_argument("--name", default="main", help="the sink's name in its checkpoints")
    p.add_argument("--flush-rows", type=int, default=200_000)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    rep = sub.add_parser("report", help="analytics").add_subparsers(dest="report", required=True)
    for name, help_ in [
        ("pnl", "P&L per account and symbol"),
        ("performance", "daily returns, Sharpe, max drawdown, win rate per account"),
        ("volume", "volume, VWAP, trades per symbol"),
        ("bars", "OHLCV bars per symbol"),
        ("flow", "order-flow statistics per symbol"),
    ]:
        p = rep.add_parser(name, help=help_)
        _databases(p)
        out = p.add_mutually_exclusive_group()
        out.add_argument("--json", action="store_true", help="JSON output")
        out.add_argument("--csv", action="store_true", help="CSV output")
        p.add_argument("--symbol")
        p.add_argument("--from", dest="from_", type=_day, help="first day (or ns)")
        p.add_argument("--to", type=lambda v: _day(v, end=True), help="last day (or ns, exclusive)")
        if name in ("pnl", "performance", "flow"):
            p.add_argument("--account", type=int)
        if name == "pnl":
            p.add_argument("--maker-fee-bps", type=int, default=0)
            p.add_argument("--taker-fee-bps", type=int, default=0)
        if name == "performance":
            p.add_argument("--capital", type=int, default=1_000_000)
            p.add_argument("--periods-per-year", type=int, default=252)
            p.add_argument("--daily", action="store_true", help="one row per account and day")
        if name == "bars":
            p.add_argument("--interval", choices=list(reports.INTERVALS), default="1m")
    return ap


def _engine_config(args: argparse.Namespace) -> cfg.Config:
    config = cfg.load(args.config)
    return config.with_data_dir(args.data_dir) if args.data_dir else config


def _backends(args: argparse.Namespace) -> list[Backend]:
    out: list[Backend] = []
    if args.clickhouse:
        out.append(ClickHouseBackend(args.clickhouse))
    if args.postgres:
        out.append(PostgresBackend(args.postgres))
    if not out:
        data_dir = Path(args.data_dir) if args.data_dir else _engine_config(args).data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        out.append(ClickHouseBackend(f"chdb://{(data_dir / 'clickhouse').resolve()}"))
    return out


async def _with(db: Backend, work: Callable[[Backend], Awaitable[int]]) -> int:
    try:
        await db.connect()
        return await work(db)
    finally:
        await db.close()
        if isinstance(db, ClickHouseBackend):
            db.shutdown()


async def _migrate(args: argparse.Namespace) -> int:
    for db in _backends(args):

        async def run(db: Backend) -> int:
            done = await db.migrate()
            print(f"{db.name}: " + (f"applied {done}" if done else "up to date"))
            return 0

        await _with(db, run)
    return 0


async def _report(args: argparse.Namespace) -> int:
    f = reports.Filter(getattr(args, "account", None), args.symbol, args.from_, args.to)
    db = _backends(args)[0]  # ClickHouse first

    async def run(db: Backend) -> int:
        r: reports.Report
        if args.report == "pnl":
            r = await reports.pnl(
                db, f, maker_fee_bps=args.maker_fee_bps, taker_fee_bps=args.taker_fee_bps
            )
        elif args.report == "performance":
            r = await reports.performance(
                db, f, capital=args.capital, periods_per_year=args.periods_per_year,
                daily=args.daily,
            )  # fmt: skip
        elif args.report == "volume":
            r = await reports.volume(db, f)
        elif args.report == "bars":
            r = await reports.bars(db, f, interval=args.interval)
        else:
            r = await reports.order_flow(db, f)
        sys.stdout.write(render(r, "json" if args.json else "csv" if args.csv else "table"))
        return 0

    return await _with(db, run)


def render(r: reports.Report, fmt: str) -> str:
    if fmt == "json":
        rows = [dict(zip(r.columns, row, strict=True)) for row in r.rows]
        return orjson.dumps(rows).decode() + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(r.columns)
        w.writerows([["" if v is None else v for v in row] for row in r.rows])
        return buf.getvalue()
    cells = [r.columns] + [[_cell(v) for v in row] for row in r.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(r.columns))]
    lines = [r.title, ""]
    for n, row in enumerate(cells):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not r.rows:
        lines.append("(no rows)")
    return "\n".join(lines) + "\n"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}" if abs(v) < 1e15 else f"{v:.6e}"
    return str(v)


async def _sink_run(args: argparse.Namespace) -> int:
    """A follower process: tails the journal (DATA_DIR/journal) into each database until
    SIGTERM."""
    config = _engine_config(args)
    symbols = [(s.name, s.min_price, s.max_price) for s in config.symbols]
    data_dir = config.data_dir
    metrics = SinkMetrics()
    sinks = []
    for db in _backends(args):

        def source(start: int) -> Any:
            return tail_journal(data_dir, symbols, start)

        sinks.append(
            Sink(
                db, name=args.name, symbols=[s[0] for s in symbols], source=source,
                head=JournalHead(data_dir), flush_rows=args.flush_rows, metrics=metrics,
            )
        )  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [s.start() for s in sinks]
    waiter = asyncio.ensure_future(stop.wait())
    marks = asyncio.ensure_future(_publish_marks(data_dir, args.name, sinks))
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    failed = any(t.done() and not t.cancelled() and t.exception() for t in tasks)
    for s in sinks:
        try:
            await asyncio.wait_for(s.drain(), 10.0)
        except (TimeoutError, Exception):
            await s.stop()
        if isinstance(s.backend, ClickHouseBackend):
            s.backend.shutdown()
    marks.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await marks
    _write_marks(data_dir, args.name, sinks, {})
    waiter.cancel()
    return 1 if failed else 0


def _write_marks(data_dir: Path, name: str, sinks: list[Sink], last: dict[str, int]) -> None:
    """Publish each sink's applied seq for the daemon's journal pruning (engine/retention.py),
    when it moved."""
    for s in sinks:
        key = f"{name}-{s.backend.name}"
        seq = s.applied()[0]
        if last.get(key) != seq:
            write_sink_mark(data_dir, key, seq)
            last[key] = seq


async def _publish_marks(data_dir: Path, name: str, sinks: list[Sink]) -> None:
    last: dict[str, int] = {}
    while True:
        _write_marks(data_dir, name, sinks, last)
        await asyncio.sleep(0.5)


_RUN: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "db": _migrate,
    "report": _report,
    "sink": _sink_run,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("engine.sinks").setLevel(getattr(args, "log_level", "info").upper())
    try:
        return asyncio.run(_RUN[args.command](args))
    except cfg.ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
