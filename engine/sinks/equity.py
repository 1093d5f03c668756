"""End-of-day equity (ClickHouse `equity_daily`, migration 0004): each account's equity at the
end of each closed UTC day, written once by the sink so that `performance` reads ~60k rows
instead of valuing every (account, symbol, day) cell of `fills_daily` at every report.

Equity at the end of day D = Σ over the account's fills of days <= D of (cash change +
position change x the symbol's mark at D), the mark being the close of the symbol's latest
trading day <= D (`argMaxMerge(close)` of `trades_1h`, as `reports._closes` /
`reports._marks`). The mark is one number per symbol for a given D, so the sum is linear in
the rows: the all-time (account, symbol) sums of `fills_total` less the `fills_daily` rows of
the days after D (normally the open day's only), one GROUP BY account, exact in Int128
(`value_sql`; the report values its open day the same way). Migration 0004's backfill sums
the other way (the `fills_daily` rows of days <= D); the tests check both agree.

**Closed days.** D is closed when every symbol's checkpoint (engine time `ts` of its last
applied command) is at or past the start of D + 1 (`closed_through`): the sequencer stamps
commands with a clock that never goes backwards within the daemon's life (`max(now, last)`,
native/src/wire/sequencer.rs), so a symbol's later commands — and the trades they make — have
engine times at or past its checkpoint's; AdvanceTime goes to every book every
`clock.advance_interval_ms`, so idle symbols' checkpoints move too. Torn rows (beyond a
checkpoint, cut on start) therefore lie on days after every closed day and never change one.

**Days written.** Only trading days (a trade in some symbol) get rows, one per account with a
fill on or before D, in day order, one INSERT per day (one block: a part that lands whole).
After a restart the sink recomputes from the last day that has rows (inclusive: an insert cut
short could at worst have left that day incomplete) through the last closed day.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DAY_NS",
    "closed_through",
    "closes_sql",
    "day_sql",
    "marks_at",
    "trading_days_sql",
    "value_sql",
]

DAY_NS: Final = 86_400 * 10**9


def closed_through(checkpoint_ts: int) -> int:
    """The last UTC day closed when every symbol's checkpoint is at `checkpoint_ts` or later
    (-1: none)."""
    return checkpoint_ts // DAY_NS - 1


def trading_days_sql(first: int, last: int) -> str:
    """The UTC days in [first, last] on which something traded."""
    return (
        f"SELECT DISTINCT toUInt32(intDiv(bucket, {DAY_NS})) AS d FROM trades_1h"
        f" WHERE bucket >= {first * DAY_NS} AND bucket < {(last + 1) * DAY_NS} ORDER BY d"
    )


def closes_sql(last: int) -> str:
    """(symbol, day, close) for every symbol and trading day <= `last`."""
    return (
        f"SELECT symbol, toUInt32(intDiv(bucket, {DAY_NS})) AS day, argMaxMerge(close)"
        f" FROM trades_1h WHERE bucket < {(last + 1) * DAY_NS} GROUP BY symbol, day"
    )


def marks_at(closes: dict[tuple[str, int], int], day: int) -> dict[str, int]:
    """Each symbol's close on its latest trading day <= `day` (symbols without one: absent)."""
    best: dict[str, tuple[int, int]] = {}
    for (symbol, d), price in closes.items():
        if d <= day and d >= best.get(symbol, (-1, 0))[0]:
            best[symbol] = (d, price)
    return {s: p for s, (_, p) in best.items()}


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _mark_sql(marks: dict[str, int]) -> str:
    """Each row's symbol's mark (0 for a symbol without one), as an Int128 expression."""
    names = sorted(marks)
    if not names:
        return "0"
    listed = "[" + ", ".join(_quote(s) for s in names) + "]"
    prices = "CAST([" + ", ".join(str(marks[s]) for s in names) + "] AS Array(Int64))"
    return f"toInt128(transform(symbol, {listed}, {prices}, toInt64(0)))"


def value_sql(marks: dict[str, int], since_day: int | None, where: str = "1 = 1") -> str:
    """(account, equity, fills) of every account with a fill before day `since_day` (None: with
    any fill), its fills before that day valued at `marks`: Σ (cash + position x mark) over the
    all-time (account, symbol) sums of `fills_total` (~32k rows) less the `fills_daily` rows of
    days >= `since_day` (normally one day's). Symbols without a mark count 0: their fills are
    all on the days subtracted. Exact (Int128); `where`: a condition on `account`."""
    mark = _mark_sql(marks)
    v = (
        "toInt128(sell_notional) - toInt128(buy_notional)"
        f" + (toInt128(buy_qty) - toInt128(sell_qty)) * {mark}"
    )
    sql = f"SELECT account, {v} AS v, toInt64(fills) AS n FROM fills_total WHERE {where}"
    if since_day is not None:
        sql += (
            f" UNION ALL SELECT account, -({v}) AS v, -toInt64(fills) AS n FROM fills_daily"
            f" WHERE day >= {since_day} AND {where}"
        )
    return f"SELECT account, sum(v) AS equity, sum(n) AS k FROM ({sql}) GROUP BY account" + (
        " HAVING k > 0"
    )


def day_sql(day: int, marks: dict[str, int], *, forward: bool = False) -> str:
    """The INSERT of day `day`'s `equity_daily` rows, given the symbols' marks at that day.
    Normally (`forward` False) `value_sql` of the fills before day + 1: `fills_total` less the
    rows of the days after `day` — only the open day's when one day has just closed, whatever
    the history. `forward`: the `fills_daily` rows of days <= `day` summed instead (cheaper
    for the early days of a long catch-up, as the backfill does). The same values."""
    if not forward:
        return (
            "INSERT INTO equity_daily (account, day, equity)"
            f" SELECT account, toUInt32({day}), equity FROM ({value_sql(marks, day + 1)})"
        )
    mark = _mark_sql(marks)
    return (
        "INSERT INTO equity_daily (account, day, equity)"
        f" SELECT account, toUInt32({day}), sum(toInt128(sell_notional)"
        f" - toInt128(buy_notional) + (toInt128(buy_qty) - toInt128(sell_qty)) * {mark})"
        f" FROM fills_daily WHERE day <= {day} GROUP BY account"
    )
