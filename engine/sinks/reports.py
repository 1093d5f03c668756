"""The analytics: the database aggregates (ClickHouse first, PostgreSQL where ClickHouse is off),
Python finishes on the small aggregated result. Units: prices in ticks, quantities in lots,
money in ticks x lots, times in engine nanoseconds (UTC days for the daily figures).

- `pnl`: per account and symbol. Average-price method over the selected fills: B lots bought
  at average price b, S sold at average s; realized = min(B, S) * (s - b); the open position
  B - S is marked at the symbol's last trade price p: unrealized = (B - S) * (p - b) when long,
  (B - S) * (p - s) when short; fees = maker notional * maker_fee_bps / 10^4 + taker notional *
  taker_fee_bps / 10^4 (negative bps: a rebate); net = realized + unrealized - fees.
- `performance`: per account over a date range. Equity at the end of a UTC day = cash from all
  fills so far + each position marked at its symbol's last trade price so far; the day's P&L is
  the change in equity over the previous trading day, its return that P&L / `capital`. Days: the
  UTC days in the range on which anything traded. Sharpe = mean / sample stdev of the daily
  returns * sqrt(periods_per_year); max drawdown = the largest fall of capital + cumulative P&L
  from its running peak, as a fraction of that peak; win rate = days with P&L > 0 / days with
  P&L != 0.
- `volume`: per symbol: trades, volume, notional, VWAP (notional / volume), high, low, last.
- `bars`: OHLCV per symbol and interval (1s, 1m, 1h, 1d) from trades: open/close = price of the
  first/last trade (by trade id) in the interval, and VWAP.
- `order_flow`: per symbol (optionally one account's orders): orders = accepted new orders;
  fill ratio = quantity filled / quantity ordered; cancel ratio = orders cancelled by the user
  (cancel or mass cancel) / orders; average resting time = mean time from acceptance to done
  (filled or cancelled) over orders done by a later command; order-to-trade = orders / trades
  the selection took part in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.sinks import equity as eq
from engine.sinks import exact as x
from engine.sinks.backend import Backend
from engine.sinks.exact import ints

__all__ = ["INTERVALS", "Report", "bars", "order_flow", "performance", "pnl", "volume"]

DAY_NS = 86_400 * 10**9
HOUR_NS = 3600 * 10**9
INTERVALS = {"1s": 10**9, "1m": 60 * 10**9, "1h": HOUR_NS, "1d": DAY_NS}
# pre-aggregated OHLCV tables (ClickHouse) by bucket width, coarsest first
_BAR_TABLES = {HOUR_NS: "trades_1h", 60 * 10**9: "trades_1m"}
_BAR_STEPS = {t: step for step, t in _BAR_TABLES.items()}
_SYMBOL = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")


class Report:
    """A report: a title, column names and the rows — given as rows, or as columns (`data`:
    one numpy array or list per column) whose rows are built on first use. Large reports
    (`pnl`, `bars`: tens of thousands of rows) come as columns: a caller that reads them as
    arrays (`column`) never pays for one Python list per row; `rows` is the same values as
    lists either way (numpy's `tolist()` of one object array: Python ints and floats)."""

    __slots__ = ("_data", "_rows", "columns", "title")

    def __init__(
        self,
        title: str,
        columns: list[str],
        rows: list[list[Any]] | None = None,
        *,
        data: list[Any] | None = None,
    ) -> None:
        if (rows is None) == (data is None):
            raise ValueError("a report has rows or columns (data), one of them")
        if data is not None and len(data) != len(columns):
            raise ValueError("one data column per column name")
        self.title, self.columns = title, columns
        self._rows, self._data = rows, data

    @property
    def rows(self) -> list[list[Any]]:
        if self._rows is None:
            data = self._data or []
            table = np.empty((len(data[0]) if data else 0, len(data)), dtype=object)
            for i, col in enumerate(data):
                table[:, i] = col
            self._rows = table.tolist()
        return self._rows

    def column(self, name: str) -> Any:
        """One column's values (a numpy array when the report was built from columns)."""
        i = self.columns.index(name)
        if self._data is not None:
            return self._data[i]
        return [row[i] for row in self.rows]

    def __len__(self) -> int:
        return len(self._data[0]) if self._data else len(self.rows)


@dataclass(frozen=True)
class Filter:
    account: int | None = None
    symbol: str | None = None
    from_ns: int | None = None
    to_ns: int | None = None  # exclusive

    def __post_init__(self) -> None:
        if self.symbol is not None and not _SYMBOL.match(self.symbol):
            raise ValueError(f"not a symbol name: {self.symbol!r}")
        for v in (self.account, self.from_ns, self.to_ns):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError(f"not a non-negative integer: {v!r}")

    def where(
        self,
        account_col: str | None = "account",
        *,
        since: bool = True,
        time_col: str = "ts",
        unit: int = 1,
    ) -> str:
        """SQL conditions; `time_col` in units of `unit` ns (an aggregate's bucket or day)."""
        c = ["1 = 1"]
        if self.account is not None and account_col:
            c.append(f"{account_col} = {self.account}")
        if self.symbol is not None:
            c.append(f"symbol = '{self.symbol}'")
        if since and self.from_ns is not None:
            c.append(f"{time_col} >= {self.from_ns // unit}")
        if self.to_ns is not None:
            c.append(f"{time_col} < {self.to_ns // unit}")
        return " AND ".join(c)

    def aligned(self, step: int, *, since: bool = True) -> bool:
        """Whether the time range falls on `step` boundaries (a pre-aggregated table answers)."""
        ends = [self.to_ns, self.from_ns] if since else [self.to_ns]
        return all(t is None or t % step == 0 for t in ends)


def _aggregated(db: Backend, f: Filter, step: int, *, since: bool = True) -> bool:
    """ClickHouse keeps pre-aggregated tables (migration 0002, `aggregates.py`); they answer
    when the range is aligned to their buckets. PostgreSQL reads the raw rows."""
    return db.dialect == "clickhouse" and f.aligned(step, since=since)


def _notional(db: Backend) -> str:
    return "toInt128(price) * qty" if db.dialect == "clickhouse" else "price::numeric * qty"


def _div(db: Backend, a: str, b: int) -> str:
    return f"intDiv({a}, {b})" if db.dialect == "clickhouse" else f"({a}) / {b}"


def _int(db: Backend, col: str) -> str:
    return f"toInt64({col})" if db.dialect == "clickhouse" else col


# -- P&L -------------------------------------------------------------------------------------


def pnl_arrays(
    bq: Any, sq: Any, bn: Any, sn: Any, price: Any
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """(realized, unrealized) by the average-price method for every (account, symbol) at once,
    each an exact (numerator, denominator) pair of integer arrays (`exact`: int64 where the
    sizes prove it exact, else Python ints)."""
    both = (bq != 0) & (sq != 0)
    m = np.minimum(bq, sq)
    one, zero = ints(np.ones(len(bq), np.int64)), ints(np.zeros(len(bq), np.int64))
    # min(B, S) * (sn / S - bn / B)
    rn = x.where(both, x.mul(m, x.sub(x.mul(sn, bq), x.mul(bn, sq))), zero)
    realized = (rn, x.where(both, x.mul(sq, bq), one))
    open_qty = x.sub(bq, sq)
    long, short = open_qty > 0, open_qty < 0
    # long: open * (p - bn / B); short: open * (p - sn / S)
    un_long = x.mul(open_qty, x.sub(x.mul(price, bq), bn))
    un_short = x.mul(open_qty, x.sub(x.mul(price, sq), sn))
    un = x.where(long, un_long, x.where(short, un_short, zero))
    ud = x.where(long, bq, x.where(short, sq, one))
    return realized, (un, ud)


async def pnl(
    db: Backend, f: Filter = Filter(), *, maker_fee_bps: int = 0, taker_fee_bps: int = 0
) -> Report:
    n = _notional(db)
    sums = (
        "sum(buy_qty), sum(sell_qty), sum(buy_notional), sum(sell_notional),"
        " sum(maker_notional), sum(taker_notional), sum(fills)"
    )
    last = await _last_prices(db, Filter(symbol=f.symbol, to_ns=f.to_ns))
    names = sorted(last)
    if db.dialect == "clickhouse" and f.from_ns is None and f.to_ns is None:
        table, where = "fills_total", f.where()
    elif _aggregated(db, f, DAY_NS):
        table, where = "fills_daily", f.where(time_col="day", unit=DAY_NS)
    else:
        table, where = "", ""
    if table and names:
        # columns, symbols as their index in `names` (1-based; 0: a symbol without a last
        # price, not expected: its name is looked up then)
        listed = "[" + ", ".join(_string(x) for x in names) + "]"
        ix = "[" + ", ".join(str(i) for i in range(1, len(names) + 1)) + "]"
        acct, sym, *cols = await _columns(
            db,
            9,
            f"SELECT account, CAST(transform(symbol, {listed}, {ix}, 0) AS UInt32) AS s, {sums}"
            f" FROM {table} WHERE {where} GROUP BY account, symbol ORDER BY account, symbol",
        )
        symbols: Any = np.array(["", *names], dtype=object)[sym]
        price = ints(np.array([0, *(last[s] for s in names)], dtype=object)[sym])
        if not sym.all():
            table = ""  # the exact rows instead
    if not table or not names:
        if table:
            sql = f"SELECT account, symbol, {sums} FROM {table} WHERE {where}"
            sql += " GROUP BY account, symbol"
        else:
            sql = (
                "SELECT account, symbol,"
                " sum(CASE WHEN side = 1 THEN qty ELSE 0 END),"
                " sum(CASE WHEN side = 2 THEN qty ELSE 0 END),"
                f" sum(CASE WHEN side = 1 THEN {n} ELSE 0 END),"
                f" sum(CASE WHEN side = 2 THEN {n} ELSE 0 END),"
                f" sum(CASE WHEN maker THEN {n} ELSE 0 END),"
                f" sum(CASE WHEN maker THEN 0 ELSE {n} END),"
                f" count(*) FROM fills WHERE {f.where()} GROUP BY account, symbol"
            )
        rows = sorted(
            (int(r[0]), str(r[1]), *r[2:])
            for r in await db.query(sql + " ORDER BY account, symbol")
        )
        acct = np.array([r[0] for r in rows], dtype=object)
        symbols = [r[1] for r in rows]
        cols = [np.array([r[i] for r in rows], dtype=object) for i in range(2, 9)]
        price = ints([last.get(s, 0) for s in symbols])
    acct = ints(acct)
    bq, sq, bn, sn, mn, tn, fills = (ints(c) for c in cols)
    (rn, rd), (un, ud) = pnl_arrays(bq, sq, bn, sn, price)
    k = len(symbols)
    bps = ints(np.full(k, 10_000, np.int64))
    fees = x.add(
        x.mul(mn, ints(np.full(k, maker_fee_bps))), x.mul(tn, ints(np.full(k, taker_fee_bps)))
    )
    # net = rn / rd + un / ud - fees / 10^4, as one fraction
    net_num = x.sub(x.mul(x.add(x.mul(rn, ud), x.mul(un, rd)), bps), x.mul(fees, x.mul(rd, ud)))
    net_den = x.mul(x.mul(rd, ud), bps)
    one = ints(np.ones(k, np.int64))
    avg_buy = np.where(bq != 0, x.quot(bn, x.where(bq != 0, bq, one)), None)
    avg_sell = np.where(sq != 0, x.quot(sn, x.where(sq != 0, sq, one)), None)
    data = [acct, symbols, fills, x.sub(bq, sq), bq, sq, avg_buy, avg_sell, price,
            x.quot(rn, rd), x.quot(un, ud), x.quot(fees, bps),
            x.quot(net_num, net_den)]  # fmt: skip
    cols_ = ["account", "symbol", "fills", "position", "bought", "sold", "avg_buy", "avg_sell",
             "last_price", "realized", "unrealized", "fees", "net"]  # fmt: skip
    return Report("P&L by account and symbol", cols_, data=data)


async def _last_prices(db: Backend, f: Filter) -> dict[str, int]:
    if _aggregated(db, f, HOUR_NS):
        sql = (
            "SELECT symbol, argMaxMerge(close) FROM trades_1h"
            f" WHERE {f.where(None, time_col='bucket')} GROUP BY symbol"
        )
    elif db.dialect == "clickhouse":
        sql = (
            f"SELECT symbol, argMax(price, trade_id) FROM trades WHERE {f.where(None)}"
            " GROUP BY symbol"
        )
    else:
        sql = (
            f"SELECT DISTINCT ON (symbol) symbol, price FROM trades WHERE {f.where(None)}"
            " ORDER BY symbol, trade_id DESC"
        )
    return {s: int(p) for s, p in await db.query(sql)}


# -- performance -----------------------------------------------------------------------------


async def performance(
    db: Backend,
    f: Filter = Filter(),
    *,
    capital: int = 1_000_000,
    periods_per_year: int = 252,
    daily: bool = False,
    closed_days: bool = True,
) -> Report:
    """`closed_days`: read the end-of-day equity of closed days from `equity_daily` where it
    answers (ClickHouse; False: value every day from the fills, as without the table)."""
    if capital <= 0:
        raise ValueError("capital must be positive")
    upto = Filter(account=f.account, symbol=f.symbol, to_ns=f.to_ns)  # history before the range too
    closes = await _closes(db, Filter(symbol=f.symbol, to_ns=f.to_ns))
    days = sorted({d for _, d in closes})
    accounts: list[int] = []
    equity: Any = None  # accounts x days
    if days:
        found = await _equity_closed(db, f, closes, days) if closed_days else None
        if found is None:
            found = await _equity_from_daily(db, upto, closes, days)
        if found is None:
            found = _equity(await db.query(_flows_sql(db, upto)), closes, days)
        accounts, equity = found
    first_day = f.from_ns // DAY_NS if f.from_ns is not None else None
    keep = [i for i, d in enumerate(days) if first_day is None or d >= first_day]
    out = []
    # the day's P&L: the change in equity over the previous trading day (0 before the first)
    matrix = np.diff(equity, axis=1, prepend=0)[:, keep] if accounts else None
    if not daily and matrix is not None and matrix.dtype == np.int64:
        fast = _summaries(accounts, matrix, capital, periods_per_year)
        if fast is not None:
            cols = ["account", "days", "pnl", "mean_return", "sharpe", "max_drawdown", "win_rate"]
            return Report("Performance by account", cols, fast)
    daily_pnl = matrix.tolist() if matrix is not None else []
    for account, pnls in zip(accounts, daily_pnl, strict=True):
        if daily:
            value = capital
            for i, p in zip(keep, pnls, strict=True):
                value += p
                out.append([account, _day(days[i]), float(p), p / capital, float(value)])
            continue
        out.append([account, *_summary(pnls, capital, periods_per_year)])
    if daily:
        return Report("Daily P&L", ["account", "day", "pnl", "return", "equity"], out)
    cols = ["account", "days", "pnl", "mean_return", "sharpe", "max_drawdown", "win_rate"]
    return Report("Performance by account", cols, out)


async def _equity_closed(
    db: Backend, f: Filter, closes: dict[tuple[str, int], int], days: list[int]
) -> tuple[list[int], Any] | None:
    """`_equity` from the end-of-day equity the ClickHouse sink wrote for closed days
    (`equity_daily`, `equity.py`: ~60k rows on 10M fills) and, for the one trading day after
    them (the open day), the equity valued now from the all-time sums in `fills_total` (~32k
    rows) minus those of days after the range. None — the caller values every day — unless
    ClickHouse, no symbol filter, a range on whole days, every closed trading day present in
    `equity_daily` and at most one open day."""
    if db.dialect != "clickhouse" or f.symbol is not None or not f.aligned(DAY_NS):
        return None
    if not (await db.query("EXISTS TABLE equity_daily"))[0][0]:
        return None
    end = f.to_ns // DAY_NS if f.to_ns is not None else None
    before = f"day < {end}" if end is not None else "1 = 1"
    present = {int(d) for (d,) in await db.query(
        f"SELECT DISTINCT day FROM equity_daily WHERE {before}")}  # fmt: skip
    last_closed = max(present, default=-1)
    closed = [d for d in days if d <= last_closed]
    open_days = days[len(closed) :]
    if set(closed) != present or len(open_days) > 1:
        return None  # a closed day without rows (a stale table), or several open days
    mine = f"account = {f.account}" if f.account is not None else "1 = 1"
    acct, day, value = await _columns(
        db, 3, f"SELECT account, day, equity FROM equity_daily WHERE {before} AND {mine}"
    )
    o_acct: Any = np.zeros(0, np.uint64)
    o_value: Any = np.zeros(0, np.int64)
    if open_days:  # Σ (cash + position x mark) over the fills of days <= the open day
        names = sorted({s for s, _ in closes})
        marks = dict(zip(names, [row[-1] for row in _marks(names, closes, days)], strict=True))
        o_acct, o_value, _ = await _columns(db, 3, eq.value_sql(marks, end, mine))
    acct, o_acct = acct.astype(np.uint64), o_acct.astype(np.uint64)
    accounts = np.union1d(acct, o_acct)
    if not len(accounts):
        return [], []
    # int64 when every equity (and so every day's change) fits
    small = all(c.dtype != object and (not len(c) or int(np.abs(c).max()) < 2**62)
                for c in (value, o_value))  # fmt: skip
    equity = np.zeros((len(accounts), len(days)), dtype=np.int64 if small else object)
    # rows of parts not merged yet may repeat a key: with the same value (a pure function)
    equity[np.searchsorted(accounts, acct), np.searchsorted(days, day)] = value
    if open_days:
        equity[np.searchsorted(accounts, o_acct), len(days) - 1] = o_value
    return [int(a) for a in accounts], equity


def _flows_sql(db: Backend, upto: Filter) -> str:
    """(account, symbol, day, position change, cash change) per account, symbol and day."""
    if _aggregated(db, upto, DAY_NS):
        return (
            "SELECT account, symbol, day, sum(buy_qty) - sum(sell_qty),"
            " sum(sell_notional) - sum(buy_notional)"
            f" FROM fills_daily WHERE {upto.where(time_col='day', unit=DAY_NS)}"
            " GROUP BY account, symbol, day"
        )
    n = _notional(db)
    return (
        f"SELECT account, symbol, {_div(db, 'ts', DAY_NS)} AS day,"
        " sum(CASE WHEN side = 1 THEN qty ELSE -qty END),"
        f" sum(CASE WHEN side = 1 THEN -({n}) ELSE {n} END)"
        f" FROM fills WHERE {upto.where()} GROUP BY account, symbol, day"
    )


def _marks(names: list[str], closes: dict[tuple[str, int], int], days: list[int]) -> Any:
    """Each symbol's last trade price at the end of each of `days` (0 before its first)."""
    marks = [[0] * len(days) for _ in names]
    for i, name in enumerate(names):
        last = 0
        for j, d in enumerate(days):
            last = closes.get((name, d), last)
            marks[i][j] = last
    return marks


async def _equity_from_daily(
    db: Backend, upto: Filter, closes: dict[tuple[str, int], int], days: list[int]
) -> tuple[list[int], Any] | None:
    """`_equity` from the ClickHouse `fills_daily` rows as they are stored (parts not yet
    merged hold several rows per key: they add up in numpy, no GROUP BY in the database), read
    as narrow integer columns. Only when every figure provably fits in int64 (a bound from the
    all-time sums in `fills_total`, ~32k rows) and the rows' symbols all have closes; else None
    (the caller takes the exact path).

    ~1M rows on 10M fills: the read is the cost, so each column is as narrow as the bounds
    allow (account and day UInt16 / UInt32, the symbol's index UInt8, the position change
    Int32 when every quantity sum fits; the cash change Int64)."""
    if not _aggregated(db, upto, DAY_NS):
        return None
    names = sorted({s for s, _ in closes})
    marks = _marks(names, closes, days)
    top = max((abs(m) for row in marks for m in row), default=0)
    everything = Filter(account=upto.account, symbol=upto.symbol).where()
    ((qty, notional, max_account),) = await db.query(
        "SELECT sum(toInt128(buy_qty) + sell_qty), sum(buy_notional + sell_notional),"
        f" max(account) FROM fills_total WHERE {everything}"
    )
    qty, notional, max_account = int(qty), int(notional), int(max_account)
    if notional + qty * top >= 2**61:
        return None
    d0, span = days[0], days[-1] - days[0] + 1  # calendar days: a trading day's offset
    n_sym = len(names)
    n_cells = n_sym * span  # (symbol, calendar day) cells of one account
    listed = "[" + ", ".join(_string(s) for s in names) + "]"
    where = upto.where(time_col="day", unit=DAY_NS)
    dpos = "toInt32(buy_qty - sell_qty)" if qty < 2**31 else "buy_qty - sell_qty"
    dcash = "toInt64(sell_notional) - toInt64(buy_notional)"
    # sums as float64 are exact while every partial sum is below 2^53 (bincount: several
    # times faster than ufunc.at); else int64 ufunc.at
    floats = notional < 2**53 and qty < 2**53
    size = (max_account + 1) * n_cells
    if size <= _GRID_CELLS:
        # account ids as they are: ClickHouse computes each row's cell of the (account,
        # symbol, day) grid (a symbol without closes lands beyond it: the exact path then)
        bases = "[" + ", ".join(str(i * span) for i in range(n_sym)) + "]"
        cell, dpos_, dcash_ = await _columns(
            db,
            3,
            f"SELECT toUInt32(toUInt32(account) * {n_cells}"
            f" + CAST(transform(symbol, {listed}, {bases}, {size}) AS UInt32)"
            f" + (day - {d0})), {dpos}, {dcash} FROM fills_daily WHERE {where}",
        )
        if not len(cell):
            return [], []
        if int(cell.max()) >= size:
            return None
        grid = (max_account + 1, n_sym, span)
        cell = cell.astype(np.intp)  # bincount's index type: converted once, not per call
        present = np.bincount(cell, minlength=size).reshape(grid[0], -1).any(axis=1)
        accounts = np.flatnonzero(present)
        pos = _sum_at(cell, dpos_, size, floats).reshape(grid)[present]
        cash = _sum_at(cell, dcash_, size, floats).reshape(grid)[present].sum(axis=1)
    else:  # sparse or large account ids: their dense index in numpy
        ix = "[" + ", ".join(str(i) for i in range(1, n_sym + 1)) + "]"
        acct, sym, day, dpos_, dcash_ = await _columns(
            db,
            5,
            f"SELECT {_uint('account', max_account)},"
            f" CAST(transform(symbol, {listed}, {ix}, 0) AS {_uint_type(n_sym)}),"
            f" {_uint('day', days[-1])}, {dpos}, {dcash} FROM fills_daily WHERE {where}",
        )
        if not len(acct):
            return [], []
        if not sym.all():  # a symbol without closes: not expected, but then the exact path
            return None
        # fills on a day imply a close that day: 0 <= offset < span
        offset = day.astype(np.int64) - d0
        accounts, a = _dense_index(acct)
        cells = a * n_cells + (sym.astype(np.int64) - 1) * span + offset
        pos = _sum_at(cells, dpos_, len(accounts) * n_cells, floats).reshape(-1, n_sym, span)
        cash = _sum_at(a * span + offset, dcash_, len(accounts) * span, floats).reshape(-1, span)
    at = np.array(days, dtype=np.int64) - d0  # the trading days' columns
    value = (np.cumsum(pos, axis=2)[:, :, at] * np.array(marks, dtype=np.int64)[None]).sum(axis=1)
    equity = np.cumsum(cash, axis=1)[:, at] + value
    return [int(v) for v in accounts], equity


# the largest (account id, symbol, day) grid `_equity_from_daily` sums in (float64: 64 MB)
_GRID_CELLS = 2**23


def _uint_type(top: int) -> str:
    return next(f"UInt{b}" for b in (8, 16, 32, 64) if top < 2**b)


def _uint(col: str, top: int) -> str:
    """`col` (unsigned) as the narrowest unsigned type holding `top`."""
    return f"to{_uint_type(top)}({col})"


def _sum_at(index: Any, values: Any, size: int, exact_floats: bool) -> Any:
    """int64 sums of `values` by `index` (0 <= index < size)."""
    if exact_floats:
        return np.bincount(index, weights=values, minlength=size).astype(np.int64)
    out = np.zeros(size, dtype=np.int64)
    np.add.at(out, index, values.astype(np.int64))
    return out


def _equity(
    flows: list[tuple[Any, ...]], closes: dict[tuple[str, int], int], days: list[int]
) -> tuple[list[int], Any]:
    """Each account's equity at the end of each of `days`: cash from its fills so far + its
    positions marked at each symbol's last trade price so far. Integers, exact: int64 arrays
    when every figure is provably within range, else Python ints in object arrays; (accounts,
    an accounts x days array)."""
    if not flows or not days:
        return [], []
    acct_col, sym_col, day_col, dpos_col, dcash_col = zip(*flows, strict=True)
    names = sorted({s for s, _ in closes} | set(map(str, set(sym_col))))
    sym_ix = {s: i for i, s in enumerate(names)}
    sym = np.array([sym_ix[str(s)] for s in sym_col])
    day = np.searchsorted(np.array(days), np.array(day_col, dtype=np.int64))
    marks = _marks(names, closes, days)
    top = max((abs(m) for row in marks for m in row), default=0)
    try:
        dpos = np.array(dpos_col, dtype=np.int64)
        dcash = np.array(dcash_col, dtype=np.int64)
        # every figure below is bounded by this (floats: an estimate with a wide margin)
        bound = float(np.abs(dcash).sum(dtype=float) + np.abs(dpos).sum(dtype=float) * top)
        dtype: Any = np.int64 if bound < 2.0**61 else object
    except OverflowError:
        dtype = object
    if dtype is object:
        dpos = np.array([int(v) for v in dpos_col], dtype=object)
        dcash = np.array([int(v) for v in dcash_col], dtype=object)
    acct = np.array(acct_col, dtype=np.uint64)
    return _equity_arrays(acct, sym, day, dpos, dcash, marks, len(days), dtype)


def _equity_arrays(
    acct: Any, sym: Any, day: Any, dpos: Any, dcash: Any, marks: Any, n_days: int, dtype: Any
) -> tuple[list[int], Any]:
    """Sum the (account, symbol index, day index, position change, cash change) rows (a key
    may repeat) into each account's end-of-day equity."""
    accounts, a = _dense_index(acct)
    n_acct, n_sym = len(accounts), len(marks)
    # ufunc.at on a flat index: several times faster than on a tuple of index arrays
    pos = np.zeros(n_acct * n_sym * n_days, dtype=dtype)
    np.add.at(pos, (a * n_sym + sym) * n_days + day, dpos)
    pos = pos.reshape(n_acct, n_sym, n_days)
    cash = np.zeros(n_acct * n_days, dtype=dtype)
    np.add.at(cash, a * n_days + day, dcash)
    cash = cash.reshape(n_acct, n_days)
    value = (np.cumsum(pos, axis=2) * np.array(marks, dtype=dtype)[None]).sum(axis=1)
    equity = np.cumsum(cash, axis=1) + value
    return [int(x) for x in accounts], equity


def _dense_index(ids: Any) -> tuple[Any, Any]:
    """(the distinct ids, sorted; each id's index among them), as `np.unique(ids,
    return_inverse=True)`, without a sort when the ids are small numbers (account ids)."""
    top = int(ids.max()) if len(ids) else 0
    if top >= 4 * len(ids) + 4096:
        return np.unique(ids, return_inverse=True)
    present = np.zeros(top + 1, dtype=bool)
    present[ids] = True
    return np.flatnonzero(present).astype(ids.dtype), (np.cumsum(present) - 1)[ids]


async def _columns(db: Backend, n: int, sql: str) -> list[Any]:
    """`db.columns(sql)`, or `n` empty columns when the result has no rows (ClickHouse then
    sends no block at all)."""
    return await db.columns(sql) or [np.zeros(0, np.int64) for _ in range(n)]


def _string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def _closes(db: Backend, f: Filter) -> dict[tuple[str, int], int]:
    day = _div(db, "ts", DAY_NS)
    if _aggregated(db, f, HOUR_NS):
        sql = (
            "SELECT symbol, intDiv(bucket, 86400000000000) AS day, argMaxMerge(close)"
            f" FROM trades_1h WHERE {f.where(None, time_col='bucket')} GROUP BY symbol, day"
        )
    elif db.dialect == "clickhouse":
        sql = (
            f"SELECT symbol, {day} AS day, argMax(price, trade_id) FROM trades"
            f" WHERE {f.where(None)} GROUP BY symbol, day"
        )
    else:
        sql = (
            f"SELECT DISTINCT ON (symbol, day) symbol, {day} AS day, price FROM trades"
            f" WHERE {f.where(None)} ORDER BY symbol, day, trade_id DESC"
        )
    return {(s, int(d)): int(p) for s, d, p in await db.query(sql)}


def _summaries(accounts: list[int], pnl: Any, capital: int, periods: int) -> list[list[Any]] | None:
    """`_summary` of every account at once (an accounts x days int64 array): the same figures,
    each still rounded to float once — the drawdown ratios in float64 are the correctly rounded
    exact ones because every value is below 2^53 (checked; else None: the caller loops)."""
    n = pnl.shape[1]
    value = capital + np.cumsum(pnl, axis=1, dtype=np.int64)
    if not n or capital >= 2**52 or int(np.abs(value).max()) >= 2**52:
        return None
    peak = np.maximum.accumulate(np.maximum(value, capital), axis=1)
    drawdown = ((peak - value) / peak).max(axis=1).tolist()  # peak >= capital > 0
    totals = pnl.sum(axis=1).tolist()
    # sum((n p - total)^2) = n (n sum(p^2) - total^2): in int64 when n^3 max|p|^2 proves it
    # fits, else Python ints
    top = int(np.abs(pnl).max())
    if n**3 * top * top < 2**62:
        total = pnl.sum(axis=1)
        var_nums = (n * (n * (pnl * pnl).sum(axis=1) - total * total)).tolist()
    else:
        exact = pnl.astype(object)
        var_nums = ((n * exact - np.array(totals, dtype=object)[:, None]) ** 2).sum(axis=1)
        var_nums = var_nums.tolist()
    wins = (pnl > 0).sum(axis=1).tolist()
    decided = (pnl != 0).sum(axis=1).tolist()
    out = []
    for account, total, var_num, dd, w, k in zip(
        accounts, totals, var_nums, drawdown, wins, decided, strict=True
    ):
        mean = total / (capital * n)
        sharpe = None
        if n > 1 and var_num:
            var = var_num / (capital * capital * n * n * (n - 1))
            sharpe = mean / math.sqrt(var) * math.sqrt(periods)
        out.append([account, n, float(total), mean, sharpe, dd, w / k if k else None])
    return out


def _summary(pnls: list[int], capital: int, periods: int) -> list[Any]:
    """days, P&L, mean return, Sharpe, max drawdown, win rate: exact integer arithmetic, each
    figure rounded to float once."""
    n = len(pnls)
    total = sum(pnls)
    mean = total / (capital * n) if n else None
    sharpe = None
    if n > 1 and mean is not None:
        # variance of the returns p / capital: sum((n p - total)^2) / (capital^2 n^2 (n - 1))
        var_num = sum((n * p - total) ** 2 for p in pnls)
        if var_num:
            var = var_num / (capital * capital * n * n * (n - 1))
            sharpe = mean / math.sqrt(var) * math.sqrt(periods)
    peak = value = capital
    dd_num, dd_den = 0, 1  # the drawdown (peak - value) / peak, as a fraction
    for p in pnls:
        value += p
        if value > peak:
            peak = value
        elif (peak - value) * dd_den > dd_num * peak:
            dd_num, dd_den = peak - value, peak
    decided = n - pnls.count(0)
    win = sum(p > 0 for p in pnls) / decided if decided else None
    return [n, float(total), mean, sharpe, dd_num / dd_den, win]


def _day(d: int) -> str:
    import datetime as dt

    return (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat()


# -- volume and bars ---------------------------------------------------------------------------


async def volume(db: Backend, f: Filter = Filter()) -> Report:
    n = _notional(db)
    table = next((t for step, t in _BAR_TABLES.items() if _aggregated(db, f, step)), None)
    if table is not None:
        sql = (
            "SELECT symbol, sum(trades), sum(volume), sum(notional), max(high), min(low),"
            f" min(first_ts), max(last_ts) FROM {table}"
            f" WHERE {f.where(None, time_col='bucket')} GROUP BY symbol ORDER BY symbol"
        )
    else:
        sql = (
            f"SELECT symbol, count(*), sum(qty), sum({n}), max(price), min(price), min(ts),"
            f" max(ts) FROM trades WHERE {f.where(None)} GROUP BY symbol ORDER BY symbol"
        )
    rows = await db.query(sql)
    last = await _last_prices(db, f)
    out = [
        [s, int(c), int(v), int(nv), int(nv) / int(v), int(hi), int(lo), last[s],
         int(t0), int(t1)]
        for s, c, v, nv, hi, lo, t0, t1 in rows
    ]  # fmt: skip
    cols = ["symbol", "trades", "volume", "notional", "vwap", "high", "low", "last", "first_ts",
            "last_ts"]  # fmt: skip
    return Report("Volume by symbol", cols, out)


async def bars(db: Backend, f: Filter = Filter(), *, interval: str = "1m") -> Report:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    step = INTERVALS[interval]
    n = _notional(db)
    table = next(
        (t for w, t in _BAR_TABLES.items() if step % w == 0 and _aggregated(db, f, w)), None
    )
    if table is not None:
        return await _bars_aggregated(db, f, step, table, interval)
    bucket = f"ts - ts % {step}"
    if db.dialect == "clickhouse":
        oc = "argMin(price, trade_id), argMax(price, trade_id)"
    else:
        oc = "(array_agg(price ORDER BY trade_id))[1], (array_agg(price ORDER BY trade_id DESC))[1]"
    sql = (
        f"SELECT symbol, {bucket} AS bucket, {oc}, max(price), min(price), sum(qty),"
        f" count(*), sum({n}) FROM trades WHERE {f.where(None)} GROUP BY symbol, bucket"
        " ORDER BY symbol, bucket"
    )
    rows = await db.query(sql)
    out = [
        [s, int(b), int(o), int(hi), int(lo), int(c), int(v), int(k), int(nv) / int(v)]
        for s, b, o, c, hi, lo, v, k, nv in rows
    ]
    return Report(f"OHLCV {interval} bars", _BAR_COLUMNS, out)


async def _bars_aggregated(db: Backend, f: Filter, step: int, table: str, interval: str) -> Report:
    """Bars from a pre-aggregated table (ClickHouse), read as integer columns (symbols as their
    index in the sorted list of the table's symbols): tens of thousands of bars without a
    Python object per value until the report's rows.

    On the table's own buckets the rows are read as stored (`_stored_bars`): merging every
    bucket's open/close states in a GROUP BY costs ClickHouse several times the read; only the
    few buckets split over parts not yet merged go through it."""
    where = f.where(None, time_col="bucket")
    if f.symbol is not None:
        names = [f.symbol]
    else:
        names = sorted(str(s) for (s,) in await db.query(f"SELECT DISTINCT symbol FROM {table}"
                                                          f" WHERE {where}"))  # fmt: skip
    if not names:
        return Report(f"OHLCV {interval} bars", _BAR_COLUMNS, [])
    listed = "[" + ", ".join(_string(s) for s in names) + "]"
    ix = "[" + ", ".join(str(i) for i in range(len(names))) + "]"  # every symbol is listed
    sym_ix = f"CAST(transform(symbol, {listed}, {ix}, 0) AS UInt32)"
    if step == _BAR_STEPS[table]:
        sym, start, o, hi, lo, c, v, k, nv = await _stored_bars(db, table, where, sym_ix)
    else:
        sym, start, o, hi, lo, c, v, k, nv = await _columns(
            db,
            9,
            f"SELECT {sym_ix} AS s, bucket - bucket % {step} AS b, argMinMerge(open), max(high),"
            " min(low), argMaxMerge(close), sum(volume), sum(trades), sum(notional)"
            f" FROM {table} WHERE {where} GROUP BY symbol, b ORDER BY symbol, b",
        )
    # vwap: float64 division is the correctly rounded quotient when both are below 2^53
    small = all(x.dtype != object and (not len(x) or int(np.abs(x).max()) < 2**53) for x in (nv, v))
    vwap = (
        nv / v if small else np.array([a / b for a, b in zip(nv.tolist(), v.tolist(), strict=True)])
    )
    data = [np.array(names, dtype=object)[sym], start, o, hi, lo, c, v, k, vwap]
    return Report(f"OHLCV {interval} bars", _BAR_COLUMNS, data=data)


async def _stored_bars(db: Backend, table: str, where: str, sym_ix: str) -> list[Any]:
    """The bars of `table`'s own buckets: its rows as stored, each row's open/close state
    finalized on its own (no merge), sorted by (symbol, bucket) in numpy. A bucket still split
    over several parts (inserted by several flushes, not merged yet) has several rows: those
    buckets — a few at each flush boundary — are read again grouped (the states merged by
    ClickHouse) and replace their rows. The same figures as the GROUP BY of every bucket."""
    cols = "argMinMerge(open), max(high), min(low), argMaxMerge(close), sum(volume), sum(trades),"
    cols += " sum(notional)"
    stored = await _columns(
        db,
        9,
        f"SELECT {sym_ix}, bucket, finalizeAggregation(open), high, low,"
        f" finalizeAggregation(close), volume, trades, notional FROM {table} WHERE {where}",
    )
    sym, bucket = stored[0], stored[1]
    order = np.lexsort((bucket, sym))
    stored = [col[order] for col in stored]
    sym, bucket = stored[0], stored[1]
    split = (sym[1:] == sym[:-1]) & (bucket[1:] == bucket[:-1])
    if not split.any():
        return stored
    again = np.unique(bucket[1:][split])
    if len(again) > 10_000:  # many parts not merged: the GROUP BY of everything
        return await _columns(
            db,
            9,
            f"SELECT {sym_ix} AS s, bucket, {cols} FROM {table} WHERE {where}"
            " GROUP BY symbol, bucket ORDER BY symbol, bucket",
        )
    listed = ", ".join(str(int(b)) for b in again)
    merged = await _columns(
        db,
        9,
        f"SELECT {sym_ix} AS s, bucket, {cols} FROM {table} WHERE {where}"
        f" AND bucket IN ({listed}) GROUP BY symbol, bucket",
    )
    keep = ~np.isin(bucket, again)  # every symbol's rows of those buckets are in `merged`
    out = [np.concatenate([a[keep], b]) for a, b in zip(stored, merged, strict=True)]
    order = np.lexsort((out[1], out[0]))
    return [col[order] for col in out]


_BAR_COLUMNS = ["symbol", "start_ts", "open", "high", "low", "close", "volume", "trades", "vwap"]


# -- order flow --------------------------------------------------------------------------------


async def order_flow(db: Backend, f: Filter = Filter()) -> Report:
    w, acct = f.where(), f.account
    if _aggregated(db, f, DAY_NS):
        sql = (
            "SELECT symbol, sum(orders), sum(ordered_qty), sum(user_cancels) FROM orders_daily"
            f" WHERE {f.where(time_col='day', unit=DAY_NS)} GROUP BY symbol"
        )
    else:
        sql = (
            "SELECT symbol, sum(CASE WHEN event = 1 THEN 1 ELSE 0 END),"
            " sum(CASE WHEN event = 1 THEN qty ELSE 0 END),"
            " sum(CASE WHEN event = 4 AND reason IN (1, 6) AND leaves = 0 THEN 1 ELSE 0 END)"
            f" FROM orders WHERE {w} GROUP BY symbol"
        )
    orders = await db.query(sql)
    if acct is None:
        mine, filled_qty = "1 = 1", "2 * qty"
    else:
        mine = f"(maker_account = {acct} OR taker_account = {acct})"
        filled_qty = (
            f"(CASE WHEN maker_account = {acct} THEN qty ELSE 0 END)"
            f" + (CASE WHEN taker_account = {acct} THEN qty ELSE 0 END)"
        )
    if acct is None and _aggregated(db, f, HOUR_NS):
        sql = (
            "SELECT symbol, sum(trades), 2 * sum(volume) FROM trades_1h"
            f" WHERE {f.where(None, time_col='bucket')} GROUP BY symbol"
        )
    else:
        sql = (
            f"SELECT symbol, count(*), sum({filled_qty}) FROM trades"
            f" WHERE {f.where(None)} AND {mine} GROUP BY symbol"
        )
    trades = await db.query(sql)
    # resting time: the converter's `order_ends` rows (orders ended by a later command than
    # the one that accepted them; ts = acceptance), summed per day in `resting_daily`
    if _aggregated(db, f, DAY_NS):
        sql = (
            "SELECT symbol, sum(orders), sum(resting_ns) FROM resting_daily"
            f" WHERE {f.where(time_col='day', unit=DAY_NS)} GROUP BY symbol"
        )
    else:  # Σ in Int128 / NUMERIC: nanoseconds add up past 2^63 over millions of orders
        wide = "toInt128(ended_ts) - ts" if db.dialect == "clickhouse" else "ended_ts - ts"
        sql = f"SELECT symbol, count(*), sum({wide}) FROM order_ends WHERE {w} GROUP BY symbol"
    resting = await db.query(sql)
    t = {s: (int(c), int(q)) for s, c, q in trades}
    r = {s: (int(c), int(total)) for s, c, total in resting}
    out = []
    for symbol, n_orders, ordered, cancels in sorted(orders):
        n_orders, ordered, cancels = int(n_orders), int(ordered), int(cancels)
        n_trades, filled_q = t.get(symbol, (0, 0))
        rested, resting_ns = r.get(symbol, (0, 0))
        out.append(
            [symbol, n_orders, n_trades, ordered, filled_q,
             filled_q / ordered if ordered else None, cancels / n_orders if n_orders else None,
             resting_ns / rested / 1e9 if rested else None, rested,
             n_orders / n_trades if n_trades else None]
        )  # fmt: skip
    cols = ["symbol", "orders", "trades", "ordered_qty", "filled_qty", "fill_ratio",
            "cancel_ratio", "avg_resting_s", "rested_orders", "order_to_trade"]  # fmt: skip
    return Report("Order flow by symbol", cols, out)
