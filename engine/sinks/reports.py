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
from fractions import Fraction
from typing import Any

from engine.sinks.backend import Backend

__all__ = ["INTERVALS", "Report", "bars", "order_flow", "performance", "pnl", "volume"]

DAY_NS = 86_400 * 10**9
INTERVALS = {"1s": 10**9, "1m": 60 * 10**9, "1h": 3600 * 10**9, "1d": DAY_NS}
_SYMBOL = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")


@dataclass(frozen=True)
class Report:
    title: str
    columns: list[str]
    rows: list[list[Any]]


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

    def where(self, account_col: str | None = "account", *, since: bool = True) -> str:
        c = ["1 = 1"]
        if self.account is not None and account_col:
            c.append(f"{account_col} = {self.account}")
        if self.symbol is not None:
            c.append(f"symbol = '{self.symbol}'")
        if since and self.from_ns is not None:
            c.append(f"ts >= {self.from_ns}")
        if self.to_ns is not None:
            c.append(f"ts < {self.to_ns}")
        return " AND ".join(c)


def _notional(db: Backend) -> str:
    return "toInt128(price) * qty" if db.dialect == "clickhouse" else "price::numeric * qty"


def _div(db: Backend, a: str, b: int) -> str:
    return f"intDiv({a}, {b})" if db.dialect == "clickhouse" else f"({a}) / {b}"


def _int(db: Backend, col: str) -> str:
    return f"toInt64({col})" if db.dialect == "clickhouse" else col


def _f(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


# -- P&L -------------------------------------------------------------------------------------


def pnl_row(
    buy_qty: int, sell_qty: int, buy_notional: int, sell_notional: int, last_price: int
) -> tuple[Fraction, Fraction]:
    """(realized, unrealized) by the average-price method."""
    avg_buy = Fraction(buy_notional, buy_qty) if buy_qty else Fraction(0)
    avg_sell = Fraction(sell_notional, sell_qty) if sell_qty else Fraction(0)
    realized = (
        min(buy_qty, sell_qty) * (avg_sell - avg_buy) if buy_qty and sell_qty else Fraction(0)
    )
    open_qty = buy_qty - sell_qty
    basis = avg_buy if open_qty > 0 else avg_sell
    return realized, open_qty * (last_price - basis) if open_qty else Fraction(0)


async def pnl(
    db: Backend, f: Filter = Filter(), *, maker_fee_bps: int = 0, taker_fee_bps: int = 0
) -> Report:
    n = _notional(db)
    rows = await db.query(
        "SELECT account, symbol,"
        " sum(CASE WHEN side = 1 THEN qty ELSE 0 END),"
        " sum(CASE WHEN side = 2 THEN qty ELSE 0 END),"
        f" sum(CASE WHEN side = 1 THEN {n} ELSE 0 END),"
        f" sum(CASE WHEN side = 2 THEN {n} ELSE 0 END),"
        f" sum(CASE WHEN maker THEN {n} ELSE 0 END), sum(CASE WHEN maker THEN 0 ELSE {n} END),"
        f" count(*) FROM fills WHERE {f.where()} GROUP BY account, symbol ORDER BY account, symbol"
    )
    last = await _last_prices(db, Filter(symbol=f.symbol, to_ns=f.to_ns))
    out = []
    for account, symbol, bq, sq, bn, sn, mn, tn, fills in rows:
        bq, sq, bn, sn, mn, tn = (int(v) for v in (bq, sq, bn, sn, mn, tn))
        price = last.get(symbol, 0)
        realized, unrealized = pnl_row(bq, sq, bn, sn, price)
        fees = Fraction(mn * maker_fee_bps + tn * taker_fee_bps, 10_000)
        out.append(
            [int(account), symbol, int(fills), bq - sq, bq, sq,
             _f(Fraction(bn, bq)) if bq else None, _f(Fraction(sn, sq)) if sq else None,
             price, _f(realized), _f(unrealized), _f(fees), _f(realized + unrealized - fees)]
        )  # fmt: skip
    cols = ["account", "symbol", "fills", "position", "bought", "sold", "avg_buy", "avg_sell",
            "last_price", "realized", "unrealized", "fees", "net"]  # fmt: skip
    return Report("P&L by account and symbol", cols, out)


async def _last_prices(db: Backend, f: Filter) -> dict[str, int]:
    if db.dialect == "clickhouse":
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
) -> Report:
    if capital <= 0:
        raise ValueError("capital must be positive")
    n = _notional(db)
    upto = Filter(account=f.account, symbol=f.symbol, to_ns=f.to_ns)  # history before the range too
    day = _div(db, "ts", DAY_NS)
    flows = await db.query(
        f"SELECT account, symbol, {day} AS day,"
        " sum(CASE WHEN side = 1 THEN qty ELSE -qty END),"
        f" sum(CASE WHEN side = 1 THEN -({n}) ELSE {n} END)"
        f" FROM fills WHERE {upto.where()} GROUP BY account, symbol, day ORDER BY day"
    )
    closes = await _closes(db, Filter(symbol=f.symbol, to_ns=f.to_ns))
    first_day = f.from_ns // DAY_NS if f.from_ns is not None else None
    days = sorted({d for _, d in closes})
    in_range = [d for d in days if first_day is None or d >= first_day]
    by_account: dict[int, dict[int, list[tuple[str, int, int]]]] = {}
    for account, symbol, d, dpos, dcash in flows:
        by_account.setdefault(int(account), {}).setdefault(int(d), []).append(
            (symbol, int(dpos), int(dcash))
        )
    marks = _carry_forward(closes, days)
    out = []
    for account in sorted(by_account):
        series = _daily_pnl(by_account[account], marks, days, set(in_range))
        if daily:
            equity = Fraction(capital)
            for d, p in series:
                equity += p
                out.append([account, _day(d), _f(p), _f(p / capital), _f(equity)])
            continue
        out.append([account, *_summary([p for _, p in series], capital, periods_per_year)])
    if daily:
        return Report("Daily P&L", ["account", "day", "pnl", "return", "equity"], out)
    cols = ["account", "days", "pnl", "mean_return", "sharpe", "max_drawdown", "win_rate"]
    return Report("Performance by account", cols, out)


async def _closes(db: Backend, f: Filter) -> dict[tuple[str, int], int]:
    day = _div(db, "ts", DAY_NS)
    if db.dialect == "clickhouse":
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


def _carry_forward(
    closes: dict[tuple[str, int], int], days: list[int]
) -> dict[tuple[str, int], int]:
    """(symbol, day) -> the symbol's last trade price at the end of that day."""
    out: dict[tuple[str, int], int] = {}
    for symbol in {s for s, _ in closes}:
        last = 0
        for d in days:
            last = closes.get((symbol, d), last)
            out[(symbol, d)] = last
    return out


def _daily_pnl(
    flows: dict[int, list[tuple[str, int, int]]],
    marks: dict[tuple[str, int], int],
    days: list[int],
    in_range: set[int],
) -> list[tuple[int, Fraction]]:
    pos: dict[str, int] = {}
    cash = 0
    prev = 0
    series = []
    for d in days:
        for symbol, dpos, dcash in flows.get(d, ()):
            pos[symbol] = pos.get(symbol, 0) + dpos
            cash += dcash
        equity = cash + sum(q * marks[(s, d)] for s, q in pos.items() if q)
        if d in in_range:
            series.append((d, Fraction(equity - prev)))
        prev = equity
    return series


def _summary(pnls: list[Fraction], capital: int, periods: int) -> list[Any]:
    returns = [p / capital for p in pnls]
    mean = sum(returns, Fraction(0)) / len(returns) if returns else None
    sharpe = None
    if len(returns) > 1 and mean is not None:
        var = sum(((r - mean) ** 2 for r in returns), Fraction(0)) / (len(returns) - 1)
        if var:
            sharpe = float(mean) / math.sqrt(var) * math.sqrt(periods)
    peak = value = Fraction(capital)
    drawdown = Fraction(0)
    for p in pnls:
        value += p
        peak = max(peak, value)
        drawdown = max(drawdown, (peak - value) / peak)
    decided = [p for p in pnls if p]
    win = Fraction(sum(1 for p in decided if p > 0), len(decided)) if decided else None
    return [len(pnls), _f(sum(pnls, Fraction(0))), _f(mean), sharpe, _f(drawdown), _f(win)]


def _day(d: int) -> str:
    import datetime as dt

    return (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat()


# -- volume and bars ---------------------------------------------------------------------------


async def volume(db: Backend, f: Filter = Filter()) -> Report:
    n = _notional(db)
    rows = await db.query(
        f"SELECT symbol, count(*), sum(qty), sum({n}), max(price), min(price), min(ts), max(ts)"
        f" FROM trades WHERE {f.where(None)} GROUP BY symbol ORDER BY symbol"
    )
    last = await _last_prices(db, f)
    out = [
        [s, int(c), int(v), int(nv), _f(Fraction(int(nv), int(v))), int(hi), int(lo), last[s],
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
    bucket = f"ts - ts % {step}"
    if db.dialect == "clickhouse":
        oc = "argMin(price, trade_id), argMax(price, trade_id)"
    else:
        oc = "(array_agg(price ORDER BY trade_id))[1], (array_agg(price ORDER BY trade_id DESC))[1]"
    rows = await db.query(
        f"SELECT symbol, {bucket} AS bucket, {oc}, max(price), min(price), sum(qty), count(*),"
        f" sum({n}) FROM trades WHERE {f.where(None)} GROUP BY symbol, bucket"
        " ORDER BY symbol, bucket"
    )
    out = [
        [s, int(b), int(o), int(hi), int(lo), int(c), int(v), int(k), _f(Fraction(int(nv), int(v)))]
        for s, b, o, c, hi, lo, v, k, nv in rows
    ]
    cols = ["symbol", "start_ts", "open", "high", "low", "close", "volume", "trades", "vwap"]
    return Report(f"OHLCV {interval} bars", cols, out)


# -- order flow --------------------------------------------------------------------------------


async def order_flow(db: Backend, f: Filter = Filter()) -> Report:
    w, acct = f.where(), f.account
    orders = await db.query(
        "SELECT symbol, sum(CASE WHEN event = 1 THEN 1 ELSE 0 END),"
        " sum(CASE WHEN event = 1 THEN qty ELSE 0 END),"
        " sum(CASE WHEN event = 4 AND reason IN (1, 6) AND leaves = 0 THEN 1 ELSE 0 END)"
        f" FROM orders WHERE {w} GROUP BY symbol"
    )
    if acct is None:
        mine, filled_qty = "1 = 1", "2 * qty"
    else:
        mine = f"(maker_account = {acct} OR taker_account = {acct})"
        filled_qty = (
            f"(CASE WHEN maker_account = {acct} THEN qty ELSE 0 END)"
            f" + (CASE WHEN taker_account = {acct} THEN qty ELSE 0 END)"
        )
    trades = await db.query(
        f"SELECT symbol, count(*), sum({filled_qty}) FROM trades"
        f" WHERE {f.where(None)} AND {mine} GROUP BY symbol"
    )
    done = (
        "SELECT order_id, seq, ts FROM orders WHERE event = 4 AND leaves = 0"
        " UNION ALL SELECT maker_order_id, seq, ts FROM trades WHERE maker_leaves = 0"
        " UNION ALL SELECT taker_order_id, seq, ts FROM trades WHERE taker_leaves = 0"
    )
    resting = await db.query(
        f"SELECT a.symbol, count(*), avg({_int(db, 'd.ts')} - {_int(db, 'a.ts')}) FROM"
        f" (SELECT symbol, order_id, seq, ts FROM orders WHERE event = 1 AND {w}) AS a"
        f" JOIN ({done}) AS d ON d.order_id = a.order_id"
        " WHERE d.seq > a.seq GROUP BY a.symbol"
    )
    t = {s: (int(c), int(q)) for s, c, q in trades}
    r = {s: (int(c), float(avg)) for s, c, avg in resting}
    out = []
    for symbol, n_orders, ordered, cancels in sorted(orders):
        n_orders, ordered, cancels = int(n_orders), int(ordered), int(cancels)
        n_trades, filled_q = t.get(symbol, (0, 0))
        rested, avg_ns = r.get(symbol, (0, 0.0))
        out.append(
            [symbol, n_orders, n_trades, ordered, filled_q,
             filled_q / ordered if ordered else None, cancels / n_orders if n_orders else None,
             avg_ns / 1e9 if rested else None, rested,
             n_orders / n_trades if n_trades else None]
        )  # fmt: skip
    cols = ["symbol", "orders", "trades", "ordered_qty", "filled_qty", "fill_ratio",
            "cancel_ratio", "avg_resting_s", "rested_orders", "order_to_trade"]  # fmt: skip
    return Report("Order flow by symbol", cols, out)
