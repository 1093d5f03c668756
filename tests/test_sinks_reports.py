"""The analytics, on ClickHouse and on PostgreSQL, equal the same figures computed here in plain
Python from the raw fills and order events of the stream (not from the database)."""

from __future__ import annotations

import asyncio
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from pg_harness import backend_for, ch_dsn, db_dsn, pg_dsn, pg_server  # noqa: F401

from engine.book import EventKind, decode_commands, decode_events
from engine.sinks import ClickHouseBackend, ReplayBooks, Sink, SinkMetrics, reports
from engine.sinks.cli import main
from engine.sinks.migrations import migrations, statements
from engine.sinks.reports import DAY_NS, Filter
from engine.sinks.synth import T0_NS, synthetic_journal
from engine.sinks.tail import ENTRY_DTYPE

SYMBOLS = [("AAA", 1, 10**9), ("BBB", 1, 10**9)]
STEP_NS = 45 * 10**9  # one command every 45 s: the stream spans several days
MIX = (300, 250, 150, 200, 100)


@dataclass(frozen=True)
class Fill:
    symbol: str
    trade_id: int
    seq: int
    ts: int
    price: int
    qty: int
    account: int
    buy: bool
    maker: bool


@dataclass
class Stream:
    batches: list[Any]
    fills: list[Fill]
    events: list[tuple[str, int, Any]]  # (symbol, ts, event) for every event


ENTRIES = synthetic_journal(2, 4_000, seed=11, step_ns=STEP_NS, mix=MIX, accounts=8)


def stream() -> Stream:
    batches = ReplayBooks(SYMBOLS).apply(ENTRIES)
    fills, events = [], []
    for b in batches:
        ts = {c.seq: c.ts for c in decode_commands(b.commands)}
        for e in decode_events(b.events):
            events.append((b.symbol, ts[e.seq], e))
            if e.kind == EventKind.TRADE:
                t = (b.symbol, e.aux, e.seq, ts[e.seq], e.price, e.qty)
                fills.append(Fill(*t, e.account, e.side == 1, True))
                fills.append(Fill(*t, e.counter_account, e.side != 1, False))
    return Stream(batches, fills, events)


STREAM = stream()


async def load(dsn: str) -> None:
    sink = Sink(backend_for(dsn), symbols=[s for s, _, _ in SYMBOLS], metrics=SinkMetrics())
    sink.start()
    for b in STREAM.batches:
        assert sink.offer(b)
    await sink.drain()


async def report(dsn: str, fn: Any, *args: Any, **kw: Any) -> reports.Report:
    db = backend_for(dsn)
    await db.connect()
    try:
        r: reports.Report = await fn(db, *args, **kw)
        return r
    finally:
        await db.close()
        if isinstance(db, ClickHouseBackend):
            db.shutdown()


def last_prices(fills: list[Fill]) -> dict[str, int]:
    last: dict[str, tuple[int, int]] = {}
    for f in fills:
        if f.trade_id >= last.get(f.symbol, (0, 0))[0]:
            last[f.symbol] = (f.trade_id, f.price)
    return {s: p for s, (_, p) in last.items()}


def approx_rows(rows: list[list[Any]]) -> Any:
    return [[pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v for v in r]
            for r in rows]  # fmt: skip


async def test_pnl_by_account_and_symbol(db_dsn: str) -> None:  # noqa: F811
    await load(db_dsn)
    got = await report(db_dsn, reports.pnl, maker_fee_bps=-1, taker_fee_bps=3)
    last = last_prices(STREAM.fills)
    acc: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * 7)
    for f in STREAM.fills:
        a = acc[(f.account, f.symbol)]
        a[0 if f.buy else 1] += f.qty
        a[2 if f.buy else 3] += f.price * f.qty
        a[4 if f.maker else 5] += f.price * f.qty
        a[6] += 1
    want = []
    for (account, symbol), (b, s, nb, ns, mk, tk, n) in sorted(acc.items()):
        pb, ps = (Fraction(nb, b) if b else None), (Fraction(ns, s) if s else None)
        realized = min(b, s) * (ps - pb) if pb is not None and ps is not None else 0
        if b > s:
            unreal = (b - s) * (last[symbol] - pb)
        elif s > b:
            unreal = (b - s) * (last[symbol] - ps)
        else:
            unreal = 0
        fees = Fraction(-mk + 3 * tk, 10_000)
        want.append(
            [account, symbol, n, b - s, b, s, pb, ps, last[symbol], realized, unreal, fees,
             realized + unreal - fees]
        )  # fmt: skip
    want = [[float(v) if isinstance(v, Fraction) else v for v in r] for r in want]
    assert got.rows == approx_rows(want)
    assert len(got.rows) > 8


async def test_performance_daily_returns_sharpe_drawdown_win_rate(db_dsn: str) -> None:  # noqa: F811
    await load(db_dsn)
    days = sorted({f.ts // DAY_NS for f in STREAM.fills})
    assert len(days) >= 4
    lo, hi = days[1], days[-1]  # a range that leaves out the first day
    f = Filter(from_ns=lo * DAY_NS, to_ns=(hi + 1) * DAY_NS)
    capital = 500_000
    got = await report(db_dsn, reports.performance, f, capital=capital)
    daily = await report(db_dsn, reports.performance, f, capital=capital, daily=True)

    closes: dict[tuple[str, int], tuple[int, int]] = {}
    for x in STREAM.fills:
        k = (x.symbol, x.ts // DAY_NS)
        if x.trade_id >= closes.get(k, (0, 0))[0]:
            closes[k] = (x.trade_id, x.price)
    want, want_daily = [], []
    for account in sorted({x.account for x in STREAM.fills}):
        mine = [x for x in STREAM.fills if x.account == account]
        equity_by_day = {}
        for d in days:
            cash = sum(
                (x.price * x.qty) * (-1 if x.buy else 1) for x in mine if x.ts // DAY_NS <= d
            )
            value = 0
            for s, _, _ in SYMBOLS:
                pos = sum(x.qty * (1 if x.buy else -1) for x in mine
                          if x.symbol == s and x.ts // DAY_NS <= d)  # fmt: skip
                marks = [p for (sym, dd), (_, p) in closes.items() if sym == s and dd <= d]
                day_of_mark = max(
                    (dd for (sym, dd) in closes if sym == s and dd <= d), default=None
                )
                mark = closes[(s, day_of_mark)][1] if day_of_mark is not None else 0
                value += pos * mark if marks else 0
            equity_by_day[d] = cash + value
        pnls = []
        for i, d in enumerate(days):
            if lo <= d <= hi:
                pnls.append(equity_by_day[d] - (equity_by_day[days[i - 1]] if i else 0))
        rets = [p / capital for p in pnls]
        mean = sum(rets) / len(rets)
        sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / (len(rets) - 1))
        peak = value = float(capital)
        dd = 0.0
        for p in pnls:
            value += p
            peak = max(peak, value)
            dd = max(dd, (peak - value) / peak)
        decided = [p for p in pnls if p]
        win = sum(1 for p in decided if p > 0) / len(decided) if decided else None
        want.append([account, len(pnls), float(sum(pnls)), mean,
                     mean / sd * math.sqrt(252) if sd else None, dd, win])  # fmt: skip
        equity = capital
        for d, p in zip([d for d in days if lo <= d <= hi], pnls, strict=True):
            equity += p
            want_daily.append([account, reports._day(d), float(p), p / capital, float(equity)])
    assert got.rows == approx_rows(want)
    assert daily.rows == approx_rows(want_daily)


async def test_volume_vwap_and_ohlcv_bars(db_dsn: str) -> None:  # noqa: F811
    await load(db_dsn)
    trades = sorted({(f.symbol, f.trade_id, f.ts, f.price, f.qty) for f in STREAM.fills})
    got = await report(db_dsn, reports.volume)
    want = []
    for s, _, _ in SYMBOLS:
        t = [x for x in trades if x[0] == s]
        vol, notional = sum(x[4] for x in t), sum(x[3] * x[4] for x in t)
        want.append([s, len(t), vol, notional, notional / vol, max(x[3] for x in t),
                     min(x[3] for x in t), t[-1][3], t[0][2], max(x[2] for x in t)])  # fmt: skip
    assert got.rows == approx_rows(want)

    f = Filter(symbol="BBB", from_ns=T0_NS + 3600 * 10**9)
    got = await report(db_dsn, reports.bars, f, interval="1h")
    buckets: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for x in trades:
        if x[0] == "BBB" and x[2] >= f.from_ns:  # type: ignore[operator]
            buckets[x[2] - x[2] % (3600 * 10**9)].append(x)
    want = []
    for b, t in sorted(buckets.items()):
        vol = sum(x[4] for x in t)
        want.append(["BBB", b, t[0][3], max(x[3] for x in t), min(x[3] for x in t), t[-1][3],
                     vol, len(t), sum(x[3] * x[4] for x in t) / vol])  # fmt: skip
    assert got.rows == approx_rows(want)
    assert len(got.rows) > 24


def order_flow_want(f: Filter) -> list[list[Any]]:
    """`order_flow` computed here from the stream's events: orders, cancels and trades by their
    own time, resting times by the acceptance time of the order, all within `f`'s range."""
    lo, hi = f.from_ns or 0, f.to_ns if f.to_ns is not None else 2**64
    account = f.account
    want = []
    for s, _, _ in SYMBOLS:
        if f.symbol not in (None, s):
            continue
        ev = [(ts, e) for sym, ts, e in STREAM.events if sym == s]
        mine = [(ts, e) for ts, e in ev
                if (account is None or e.account == account) and lo <= ts < hi]  # fmt: skip
        accepted = {e.order_id: (e.seq, ts) for ts, e in mine if e.kind == EventKind.ACCEPTED}
        ordered = sum(e.qty for _, e in mine if e.kind == EventKind.ACCEPTED)
        cancels = sum(1 for _, e in mine if e.kind == EventKind.CANCELLED
                      and e.reason in (1, 6) and e.leaves == 0)  # fmt: skip
        tr = [e for ts, e in ev if e.kind == EventKind.TRADE and lo <= ts < hi]
        if account is not None:
            tr = [e for e in tr if account in (e.account, e.counter_account)]
        filled = sum(e.qty * ((account is None or e.account == account)
                              + (account is None or e.counter_account == account))
                     for e in tr)  # fmt: skip
        done: dict[int, tuple[int, int]] = {}
        for ts, e in ev:
            if e.kind == EventKind.CANCELLED and e.leaves == 0:
                done[e.order_id] = (e.seq, ts)
            if e.kind == EventKind.TRADE and e.leaves == 0:
                done[e.order_id] = (e.seq, ts)
            if e.kind == EventKind.TRADE and e.aux2 == 0:
                done[e.counter_id] = (e.seq, ts)
        rest = [done[o][1] - a[1] for o, a in accepted.items() if o in done and done[o][0] > a[0]]
        n = len(accepted)
        if not n:
            continue
        want.append([s, n, len(tr), ordered, filled, filled / ordered, cancels / n,
                     sum(rest) / len(rest) / 1e9 if rest else None, len(rest),
                     n / len(tr) if tr else None])  # fmt: skip
    return want


async def test_order_flow_statistics(db_dsn: str) -> None:  # noqa: F811
    await load(db_dsn)
    for account in (None, 3):
        got = await report(db_dsn, reports.order_flow, Filter(account=account))
        want = order_flow_want(Filter(account=account))
        assert len(want) == len(SYMBOLS) and all(w[8] for w in want)
        assert got.rows == approx_rows(want), account


async def test_order_flow_on_ranges_equals_the_events(db_dsn: str) -> None:  # noqa: F811
    """Whole days (ClickHouse: the daily aggregates) and ranges off day boundaries (the raw
    `order_ends` rows)."""
    await load(db_dsn)
    day0 = T0_NS - T0_NS % DAY_NS + DAY_NS
    for f in (Filter(from_ns=day0), Filter(to_ns=day0, account=3),
              Filter(symbol="AAA", from_ns=T0_NS + 600 * 10**9, to_ns=day0 + 7_203 * 10**9),
              Filter(from_ns=day0 + 10**9)):  # fmt: skip
        got = await report(db_dsn, reports.order_flow, f)
        want = order_flow_want(f)
        assert want and all(w[8] for w in want), f
        assert got.rows == approx_rows(want), f


async def test_order_flow_after_sink_restarts_and_redelivery(db_dsn: str) -> None:  # noqa: F811
    """Orders accepted before a sink restart and ended after it keep their resting time (the
    restarted sink restores the live orders from the database); re-delivered batches count
    once."""
    names = [s for s, _, _ in SYMBOLS]
    books, size = ReplayBooks(SYMBOLS), ENTRY_DTYPE.itemsize
    batches = [b for i in range(0, len(ENTRIES), 100 * size)  # 100 commands a batch
               for b in books.apply(ENTRIES[i : i + 100 * size])]  # fmt: skip
    cut = [len(batches) // 3, 2 * len(batches) // 3]
    for lo, hi in ((0, cut[0]), (0, cut[1]), (cut[0] // 2, len(batches))):
        sink = Sink(backend_for(db_dsn), symbols=names, metrics=SinkMetrics())
        sink.start()
        for b in batches[lo:hi]:
            assert sink.offer(b)
        await sink.drain()
        await sink.stop()
    for f in (Filter(), Filter(account=3), Filter(from_ns=T0_NS + 10**9)):
        got = await report(db_dsn, reports.order_flow, f)
        assert got.rows == approx_rows(order_flow_want(f)), f


async def test_the_order_ends_backfill_equals_what_the_sink_wrote(db_dsn: str) -> None:  # noqa: F811
    """Migration 0003 (ClickHouse) / 0002 (PostgreSQL) fills `order_ends` from the raw rows of a
    database written before it existed: the same rows the converter writes; run again, the
    ClickHouse migration leaves them (and `resting_daily`) as they are."""
    await load(db_dsn)
    db = backend_for(db_dsn)
    await db.connect()
    try:
        written = sorted(await db.query("SELECT * FROM order_ends"))
        assert written
        (m,) = [m for m in migrations(db.dialect) if m.name == "order_ends"]
        if db.dialect == "postgres":
            await db.query("DELETE FROM order_ends")
        for stmt in statements(m.sql):
            await db.query(stmt)
        assert sorted(await db.query("SELECT * FROM order_ends")) == written
    finally:
        await db.close()
        if isinstance(db, ClickHouseBackend):
            db.shutdown()
    got = await report(db_dsn, reports.order_flow, Filter())
    assert got.rows == approx_rows(order_flow_want(Filter()))


def test_report_cli_prints_json_csv_and_a_table(pg_dsn: str, capsys: Any) -> None:  # noqa: F811
    asyncio.run(load(pg_dsn))
    want = asyncio.run(report(pg_dsn, reports.volume)).rows
    assert main(["report", "volume", "--postgres", pg_dsn, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["symbol"] for r in rows] == ["AAA", "BBB"]
    assert [r["vwap"] for r in rows] == [w[4] for w in want]
    assert main(["report", "bars", "--interval", "1d", "--postgres", pg_dsn, "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "symbol,start_ts,open,high,low,close,volume,trades,vwap"
    assert main(["report", "flow", "--postgres", pg_dsn, "--account", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Order flow by symbol") and "AAA" in out and "BBB" in out
    with pytest.raises(SystemExit) as bad:
        main(["report", "bars", "--interval", "2m", "--postgres", pg_dsn])
    assert bad.value.code == 2
    capsys.readouterr()


def test_db_migrate_cli_is_idempotent(ch_dsn: str, capsys: Any) -> None:  # noqa: F811
    assert main(["db", "migrate", "--clickhouse", ch_dsn]) == 0
    assert capsys.readouterr().out == "clickhouse: applied [1, 2, 3, 4]\n"
    assert main(["db", "migrate", "--clickhouse", ch_dsn]) == 0
    assert capsys.readouterr().out == "clickhouse: up to date\n"


def bars_want(f: Filter, interval: str) -> list[list[Any]]:
    """OHLCV bars computed here from the stream's trades."""
    trades = sorted({(f.symbol, f.trade_id, f.ts, f.price, f.qty) for f in STREAM.fills})
    step = reports.INTERVALS[interval]
    buckets: dict[tuple[str, int], list[tuple[Any, ...]]] = defaultdict(list)
    for x in trades:
        if (f.symbol in (None, x[0])) and (f.from_ns or 0) <= x[2] < (f.to_ns or 2**64):
            buckets[(x[0], x[2] - x[2] % step)].append(x)
    want = []
    for (s, b), t in sorted(buckets.items()):
        vol = sum(x[4] for x in t)
        want.append([s, b, t[0][3], max(x[3] for x in t), min(x[3] for x in t), t[-1][3],
                     vol, len(t), sum(x[3] * x[4] for x in t) / vol])  # fmt: skip
    return want


async def test_bars_on_whole_intervals_equal_the_raw_trades(db_dsn: str) -> None:  # noqa: F811
    """Ranges on whole minutes/hours/days (ClickHouse answers from its pre-aggregated tables)."""
    await load(db_dsn)
    day0 = T0_NS - T0_NS % DAY_NS + DAY_NS
    for interval, f in (("1m", Filter(symbol="AAA")), ("1d", Filter(from_ns=day0))):
        got = await report(db_dsn, reports.bars, f, interval=interval)
        assert got.rows == approx_rows(bars_want(f, interval)), interval
        assert len(got.rows) > 3


async def test_reports_that_select_nothing_are_empty(db_dsn: str) -> None:  # noqa: F811
    """A filter no row matches gives an empty report (ClickHouse sends no block at all then)."""
    await load(db_dsn)
    nobody, before = Filter(account=10**6), Filter(symbol="AAA", to_ns=60 * 10**9)
    assert (await report(db_dsn, reports.pnl, nobody)).rows == []
    assert (await report(db_dsn, reports.performance, nobody)).rows == []
    for interval in ("1m", "1h", "1d"):
        assert (await report(db_dsn, reports.bars, before, interval=interval)).rows == []


async def test_bars_from_buckets_split_over_parts_not_yet_merged(ch_dsn: str) -> None:  # noqa: F811
    """Sinks restarted every ninth of the stream (each re-delivered everything from the start)
    leave hours (and maybe minutes) split over several parts of `trades_1h` / `trades_1m` (one
    row each, merges stopped): the bars read as stored merge those buckets and equal the
    trades, for all symbols and for one."""
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        await db.migrate()
        for t in ("trades_1m", "trades_1h"):  # keep the parts as the flushes wrote them
            await db.query(f"SYSTEM STOP MERGES {t}")
        books, size = ReplayBooks(SYMBOLS), ENTRY_DTYPE.itemsize
        step = len(ENTRIES) // size // 9 * size
        chunks = [books.apply(ENTRIES[i : i + step]) for i in range(0, len(ENTRIES), step)]
        for k in range(1, len(chunks) + 1):
            sink = Sink(db, symbols=[s for s, _, _ in SYMBOLS], metrics=SinkMetrics())
            sink.start()
            for b in (b for c in chunks[:k] for b in c):
                assert sink.offer(b)
            await sink.drain()  # closes the client
        await db.connect()
        split = [await db.query(f"SELECT count() - uniqExact(symbol, bucket) FROM {t}")
                 for t in ("trades_1m", "trades_1h")]  # fmt: skip
        assert split[1][0][0] > 0  # the case: hours in several rows (minutes: by chance)
    finally:
        await db.close()
        db.shutdown()
    for interval, f in (("1m", Filter()), ("1m", Filter(symbol="BBB")), ("1h", Filter()),
                        ("1h", Filter(from_ns=T0_NS - T0_NS % DAY_NS + DAY_NS))):  # fmt: skip
        got = await report(ch_dsn, reports.bars, f, interval=interval)
        assert got.rows == approx_rows(bars_want(f, interval)), (interval, f)
        assert len(got.rows) > 3


@pytest.mark.parametrize("grid", ["account ids as they are", "dense account index"])
async def test_performance_reads_the_daily_aggregate_as_columns_equal_to_the_grouped_rows(
    ch_dsn: str,  # noqa: F811
    grid: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ClickHouse answers `performance` from the `fills_daily` rows as stored (read as narrow
    integer columns, summed in numpy: on a grid of the account ids as they are, or, for large
    ids, of their dense index); the same equity as the database's GROUP BY of those rows."""
    if grid == "dense account index":
        monkeypatch.setattr(reports, "_GRID_CELLS", 0)  # as if the account ids were large
    await load(ch_dsn)
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        for f in (Filter(), Filter(account=3), Filter(symbol="BBB", to_ns=T0_NS - T0_NS % DAY_NS
                                                       + 3 * DAY_NS)):  # fmt: skip
            closes = await reports._closes(db, Filter(symbol=f.symbol, to_ns=f.to_ns))
            days = sorted({d for _, d in closes})
            fast = await reports._equity_from_daily(db, f, closes, days)
            assert fast is not None, f  # the columnar path answered
            grouped = reports._equity(await db.query(reports._flows_sql(db, f)), closes, days)
            assert fast[0] == grouped[0], f
            assert fast[1].tolist() == grouped[1].tolist(), f
            assert fast[0] and fast[1].dtype == "int64", f
    finally:
        await db.close()
        db.shutdown()


async def test_native_columns_reads_integer_columns_across_blocks(ch_dsn: str) -> None:  # noqa: F811
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        a, b, c, d = await db.columns(
            "SELECT toUInt8(number % 200), toInt64(number) - 5, toUInt64(number) * 4000000000,"
            " toInt32(-number) FROM numbers(25000) SETTINGS max_block_size = 1000"
        )
        assert [x.dtype.str for x in (a, b, c, d)] == ["|u1", "<i8", "<u8", "<i4"]
        assert a.tolist() == [n % 200 for n in range(25000)]
        assert b.tolist() == [n - 5 for n in range(25000)]
        assert c.tolist() == [n * 4_000_000_000 for n in range(25000)]
        assert d.tolist() == [-n for n in range(25000)]
        with pytest.raises(ValueError, match="unsupported column type String"):
            await db.columns("SELECT toString(number) FROM numbers(3)")
    finally:
        await db.close()
        db.shutdown()


async def test_native_columns_reads_int128_exactly(ch_dsn: str) -> None:  # noqa: F811
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        (small,) = await db.columns("SELECT toInt128(number) - 3 FROM numbers(5)")
        assert small.dtype == "int64" and small.tolist() == [-3, -2, -1, 0, 1]
        (big,) = await db.columns(
            "SELECT toInt128(number) * toInt128('170141183460469231731687303715884105') - 7"
            " FROM numbers(4)"
        )
        k = 170141183460469231731687303715884105
        assert big.dtype == object and big.tolist() == [n * k - 7 for n in range(4)]
    finally:
        await db.close()
        db.shutdown()


async def test_performance_beyond_int64_bounds_takes_the_exact_path(ch_dsn: str) -> None:  # noqa: F811
    """Notionals near 2^62: the columnar path declines (its int64 bound fails) and the report
    is still exact (Python integers)."""
    from engine.sinks.clickhouse import native_block
    from engine.sinks.tables import TABLES

    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        await db.migrate()
        day0 = T0_NS - T0_NS % DAY_NS
        p1, p2, q = 4 * 10**12, 5 * 10**12, 10**6  # q * p1 = 4e18 > 2^61
        z = [0, 0]
        trades = {
            "trade_id": [1, 2], "seq": [1, 2], "ts": [day0 + 1, day0 + DAY_NS + 1],
            "price": [p1, p2], "qty": [q, 1], "maker_side": [1, 1], "maker_order_id": [1, 3],
            "maker_account": [1, 1], "maker_client_id": z, "maker_leaves": z,
            "taker_order_id": [2, 4], "taker_account": [2, 2], "taker_client_id": z,
            "taker_leaves": z,
        }  # fmt: skip
        blob = native_block(TABLES["trades"], {"symbol": "AAA", **trades}, 2)
        await db._call(db.insert_native, "trades", blob)
        closes = await reports._closes(db, Filter())
        days = sorted({d for _, d in closes})
        assert await reports._equity_from_daily(db, Filter(), closes, days) is None
        capital = 10**18
        got = await reports.performance(db, capital=capital, daily=True)
    finally:
        await db.close()
        db.shutdown()
    # account 1 buys q at p1, then 1 at p2: equity day 1 = 0, day 2 = (q + 1) p2 - q p1 - p2
    pnl2 = q * (p2 - p1)
    d1, d2 = reports._day(day0 // DAY_NS), reports._day(day0 // DAY_NS + 1)
    assert got.rows == [
        [1, d1, 0.0, 0.0, float(capital)], [1, d2, float(pnl2), pnl2 / capital,
                                            float(capital + pnl2)],
        [2, d1, 0.0, 0.0, float(capital)], [2, d2, float(-pnl2), -pnl2 / capital,
                                            float(capital - pnl2)],
    ]  # fmt: skip


async def test_postgres_columns_are_its_rows_transposed_exactly(pg_dsn: str) -> None:  # noqa: F811
    db = backend_for(pg_dsn)
    await db.connect()
    try:
        a, b = await db.columns(
            "SELECT g::bigint, (g::numeric * 10^30)::numeric(60, 0) FROM generate_series(1, 3) g"
        )
        assert a.tolist() == [1, 2, 3] and b.tolist() == [n * 10**30 for n in (1, 2, 3)]
        empty = await db.columns("SELECT 1::bigint, 2::bigint WHERE false")
        assert [c.tolist() for c in empty] == [[], []]
    finally:
        await db.close()


def test_the_summaries_of_all_accounts_at_once_equal_the_exact_per_account_ones() -> None:
    rng = np.random.default_rng(5)
    for capital, scale, days in ((1_000_000, 50_000, 30), (10**9, 10**12, 7), (100, 10, 1)):
        pnl = rng.integers(-scale, scale, (300, days))
        pnl[::7] = 0  # no decided day
        pnl[1::5, ::2] = 0
        accounts = list(range(300))
        fast = reports._summaries(accounts, pnl, capital, 252)
        assert fast is not None
        rows = zip(accounts, pnl.tolist(), strict=True)
        want = [[a, *reports._summary(p, capital, 252)] for a, p in rows]
        assert fast == want  # the same floats, not approximately
    assert reports._summaries([1], np.array([[2**60]]), 1, 252) is None  # beyond 2^52


# -- end-of-day equity (ClickHouse `equity_daily`) ---------------------------------------------


async def equity_rows(db: ClickHouseBackend) -> list[tuple[int, int, int]]:
    """`equity_daily` as (account, day, equity), each key once (rows of parts not merged yet
    repeat a key with the same value: checked)."""
    rows = await db.query("SELECT account, day, groupUniqArray(equity) FROM equity_daily"
                          " GROUP BY account, day ORDER BY account, day")  # fmt: skip
    assert all(len(v) == 1 for _, _, v in rows)
    return [(int(a), int(d), int(v[0])) for a, d, v in rows]


def equity_want(fills: list[Fill], through: int) -> list[tuple[int, int, int]]:
    """(account, day, equity) for every trading day <= `through` and every account with a fill
    by then, from the raw fills."""
    days = sorted({f.ts // DAY_NS for f in fills if f.ts // DAY_NS <= through})
    out = []
    for account in sorted({f.account for f in fills}):
        mine = [f for f in fills if f.account == account]
        for d in days:
            upto = [f for f in mine if f.ts // DAY_NS <= d]
            if not upto:
                continue
            cash = sum(f.price * f.qty * (-1 if f.buy else 1) for f in upto)
            value = 0
            for s in {f.symbol for f in upto}:
                pos = sum(f.qty * (1 if f.buy else -1) for f in upto if f.symbol == s)
                last = max((x for x in fills if x.symbol == s and x.ts // DAY_NS <= d),
                           key=lambda x: x.trade_id)  # fmt: skip
                value += pos * last.price
            out.append((account, d, cash + value))
    return out


async def checkpoint_floor(db: ClickHouseBackend) -> int:
    ((ts,),) = await db.query("SELECT min(ts) FROM sink_checkpoints FINAL")
    return int(ts)


async def test_performance_from_equity_daily_equals_the_old_path_and_the_fills(
    ch_dsn: str,  # noqa: F811
) -> None:
    """The sink writes the end-of-day equity of every closed day (exactly the values computed
    from the raw fills); `performance` reads it for the closed days and values only the open
    day, with figures equal (==, not approximately) to valuing every day from `fills_daily`:
    daily and summary, with account filters and ranges on whole days."""
    await load(ch_dsn)
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        days = sorted({f.ts // DAY_NS for f in STREAM.fills})
        closed = await checkpoint_floor(db) // DAY_NS - 1
        assert days[-1] > closed >= days[-2]  # the last trading day is open, the others closed
        assert await equity_rows(db) == equity_want(STREAM.fills, closed)
        lo, hi = days[1], days[-1]
        filters = [
            Filter(), Filter(account=3), Filter(account=99),
            Filter(from_ns=lo * DAY_NS, to_ns=(hi + 1) * DAY_NS),
            Filter(account=5, from_ns=lo * DAY_NS), Filter(to_ns=(days[2] + 1) * DAY_NS),
            Filter(from_ns=days[1] * DAY_NS, to_ns=days[3] * DAY_NS),
            Filter(to_ns=(hi + 5) * DAY_NS),
        ]  # fmt: skip
        for f in filters:
            closes = await reports._closes(db, Filter(to_ns=f.to_ns))
            days_f = sorted({d for _, d in closes})
            fast = await reports._equity_closed(db, f, closes, days_f)
            assert fast is not None, f  # equity_daily answered
            for daily in (False, True):
                new = await reports.performance(db, f, capital=300_000, daily=daily)
                old = await reports.performance(
                    db, f, capital=300_000, daily=daily, closed_days=False
                )
                assert new.rows == old.rows, (f, daily)
                assert new.rows or f.account == 99, f
        # not answered by equity_daily: a symbol filter, a range off day boundaries
        for f in (Filter(symbol="AAA"), Filter(to_ns=(hi + 1) * DAY_NS - 1)):
            closes = await reports._closes(db, Filter(symbol=f.symbol, to_ns=f.to_ns))
            days_f = sorted({d for _, d in closes})
            assert await reports._equity_closed(db, f, closes, days_f) is None, f
    finally:
        await db.close()
        db.shutdown()


async def test_equity_daily_over_several_flushes_and_a_restart_after_the_checkpoint(
    ch_dsn: str,  # noqa: F811
) -> None:
    """Days close as the checkpoints cross midnight, over several sink runs and flushes; a
    sink that stopped between its checkpoint and the equity insert (simulated: the last day's
    rows deleted) writes them on restart, exactly."""
    names = [s for s, _, _ in SYMBOLS]
    books, size = ReplayBooks(SYMBOLS), ENTRY_DTYPE.itemsize
    batches = [b for i in range(0, len(ENTRIES), 100 * size)  # 100 commands a batch
               for b in books.apply(ENTRIES[i : i + 100 * size])]  # fmt: skip
    db = ClickHouseBackend(ch_dsn)
    seen_closed = []
    for lo, hi in ((0, len(batches) // 3), (len(batches) // 3, 2 * len(batches) // 3),
                   (2 * len(batches) // 3, len(batches))):  # fmt: skip
        sink = Sink(backend_for(ch_dsn), symbols=names, metrics=SinkMetrics(), flush_rows=500)
        sink.start()
        for b in batches[lo:hi]:
            assert sink.offer(b)
        await sink.drain()
        await sink.stop()
        await db.connect()
        closed = await checkpoint_floor(db) // DAY_NS - 1
        seen_closed.append(closed)
        assert await equity_rows(db) == equity_want(STREAM.fills, closed)
        await db.close()
    assert len(set(seen_closed)) == 3  # each run closed new days
    await db.connect()
    try:
        whole = await equity_rows(db)
        last = max(d for _, d, _ in whole)
        await db.query(f"DELETE FROM equity_daily WHERE day = {last}")
        assert max(d for _, d, _ in await equity_rows(db)) < last
    finally:
        await db.close()
        db.shutdown()
    sink = Sink(backend_for(ch_dsn), symbols=names, metrics=SinkMetrics())
    sink.start()
    await sink.drain()  # nothing new: the start alone recomputes the missing day
    await sink.stop()
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        assert await equity_rows(db) == whole
    finally:
        await db.close()
        db.shutdown()


async def test_the_equity_daily_backfill_equals_what_the_sink_wrote(ch_dsn: str) -> None:  # noqa: F811
    """Migration 0004 computes `equity_daily` for the closed days of a database written before
    it existed: the rows the sink writes; run again, the same."""
    await load(ch_dsn)
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        written = await equity_rows(db)
        assert written
        (m,) = [m for m in migrations("clickhouse") if m.name == "equity_daily"]
        for _ in range(2):
            for stmt in statements(m.sql):
                await db.query(stmt)
            assert await equity_rows(db) == written
    finally:
        await db.close()
        db.shutdown()


async def test_equity_daily_is_exact_beyond_int64(ch_dsn: str) -> None:  # noqa: F811
    """Equity beyond 2^63 (Int128 in the table, Python ints in the report): the sink's
    end-of-day step and the report through `equity_daily` give the exact figures."""
    from engine.sinks.clickhouse import native_block
    from engine.sinks.tables import CHECKPOINT_COLUMNS, TABLES

    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        await db.migrate()
        day0 = T0_NS - T0_NS % DAY_NS
        p1, p2, p3, q = 4 * 10**12, 5 * 10**12, 7 * 10**12, 3 * 10**6  # q * p = 1.2e19 > 2^63
        z = [0, 0, 0]
        trades = {
            "trade_id": [1, 2, 3], "seq": [1, 2, 3],
            "ts": [day0 + 1, day0 + DAY_NS + 1, day0 + 2 * DAY_NS + 1],
            "price": [p1, p2, p3], "qty": [q, 1, 1], "maker_side": [1, 1, 1],
            "maker_order_id": [1, 3, 5], "maker_account": [1, 1, 1], "maker_client_id": z,
            "maker_leaves": z, "taker_order_id": [2, 4, 6], "taker_account": [2, 2, 2],
            "taker_client_id": z, "taker_leaves": z,
        }  # fmt: skip
        await db._call(db.insert_native, "trades",
                       native_block(TABLES["trades"], {"symbol": "AAA", **trades}, 3))  # fmt: skip
        spec = tuple((n, "bytes" if n == "symbol" else k) for n, k in CHECKPOINT_COLUMNS)
        ck = {"sink": "main", "symbol": [b"AAA"], "last_seq": [3], "ts": [day0 + 2 * DAY_NS + 1],
              "state": [b""]}  # fmt: skip
        await db._call(db.insert_native, "sink_checkpoints", native_block(spec, ck, 1))
        assert await db.end_of_day(day0 + 2 * DAY_NS + 1) == 2  # days 0 and 1 closed
        d0 = day0 // DAY_NS
        # account 1 bought q at p1 (day 0), then 1 at p2 (day 1); account 2 the other side
        e1 = [q * p1 - q * p1, (q + 1) * p2 - q * p1 - p2]
        assert await equity_rows(db) == [(1, d0, e1[0]), (1, d0 + 1, e1[1]),
                                         (2, d0, -e1[0]), (2, d0 + 1, -e1[1])]  # fmt: skip
        capital = 10**18
        closes = await reports._closes(db, Filter())
        days = sorted({d for _, d in closes})
        fast = await reports._equity_closed(db, Filter(), closes, days)
        assert fast is not None and fast[1].dtype == object  # the exact ints
        for daily in (False, True):
            new = await reports.performance(db, capital=capital, daily=daily)
            old = await reports.performance(db, capital=capital, daily=daily, closed_days=False)
            assert new.rows == old.rows
        got = await reports.performance(db, capital=capital, daily=True)
    finally:
        await db.close()
        db.shutdown()
    pnl2, pnl3 = q * (p2 - p1), (q + 2) * p3 - q * p1 - p2 - p3 - e1[1]
    assert got.rows[:3] == [
        [1, reports._day(d0), 0.0, 0.0, float(capital)],
        [1, reports._day(d0 + 1), float(pnl2), pnl2 / capital, float(capital + pnl2)],
        [1, reports._day(d0 + 2), float(pnl3), pnl3 / capital, float(capital + pnl2 + pnl3)],
    ]


async def test_no_day_closes_while_a_symbol_has_no_checkpoint(ch_dsn: str) -> None:  # noqa: F811
    """A configured symbol without a checkpoint (its first batch not written yet) could still
    bring a fill of any day: no day is closed, `equity_daily` stays empty and `performance`
    values every day (the same figures). A closed day missing from `equity_daily` (a stale
    table) is not trusted either."""
    sink = Sink(backend_for(ch_dsn), symbols=[*(s for s, _, _ in SYMBOLS), "CCC"],
                metrics=SinkMetrics())  # fmt: skip
    sink.start()
    for b in STREAM.batches:
        assert sink.offer(b)
    await sink.drain()
    db = ClickHouseBackend(ch_dsn)
    await db.connect()
    try:
        assert await equity_rows(db) == []
        closes = await reports._closes(db, Filter())
        days = sorted({d for _, d in closes})
        assert await reports._equity_closed(db, Filter(), closes, days) is None
        want = await reports.performance(db, closed_days=False)
        assert (await reports.performance(db)).rows == want.rows
        # the sink without CCC closes every day but the last; then a middle day goes missing
        await db.end_of_day(await checkpoint_floor(db))
        assert await equity_rows(db) == equity_want(STREAM.fills, days[-2])
        assert await reports._equity_closed(db, Filter(), closes, days) is not None
        await db.query(f"DELETE FROM equity_daily WHERE day = {days[1]}")
        assert await reports._equity_closed(db, Filter(), closes, days) is None
        assert (await reports.performance(db)).rows == want.rows
    finally:
        await db.close()
        db.shutdown()
