"""The ClickHouse pre-aggregated tables (migrations 0002_aggregates.sql, 0003_order_ends.sql)
and how to recompute them from the raw tables.

Materialized views keep them up to date at insert time. ClickHouse has no transactions, so a
flush cut short leaves raw rows beyond the checkpoint (the torn tail, deleted by the sink on
start) AND their contributions in these aggregates. `repair_statements` recomputes the affected
days of one symbol from the raw rows up to its checkpoint, in an order that is safe to crash
in and run again: delete the aggregate rows from the day of the first torn row on, insert them
again from the raw rows with seq <= checkpoint, and only then (by the caller) delete the torn
raw rows — until that last step, the next start sees the torn tail again and redoes it all.
"""

from __future__ import annotations

from typing import Final

__all__ = ["AGGREGATES", "DAY_NS", "SOURCES", "repair_statements"]

DAY_NS: Final = 86_400 * 10**9

_TRADES_BARS = (
    "SELECT symbol, ts - ts % {step} AS bucket, toUInt64(count()), sum(qty),"
    " sum(toInt128(price) * qty), max(price), min(price), min(ts), max(ts),"
    " argMinState(price, trade_id), argMaxState(price, trade_id)"
    " FROM trades WHERE {where} GROUP BY symbol, bucket"
)
_FILLS_DAILY = (
    "SELECT side.1 AS account, symbol, toUInt32(intDiv(ts, 86400000000000)) AS day,"
    " sum(if(side.2, qty, 0)), sum(if(side.2, 0, qty)),"
    " sum(if(side.2, toInt128(price) * qty, 0)), sum(if(side.2, 0, toInt128(price) * qty)),"
    " sum(if(side.3, toInt128(price) * qty, 0)), sum(if(side.3, 0, toInt128(price) * qty)),"
    " toUInt64(count()) FROM trades"
    " ARRAY JOIN [(maker_account, maker_side = 1, true),"
    " (taker_account, maker_side != 1, false)] AS side"
    " WHERE {where} GROUP BY account, symbol, day"
)
_FILLS_TOTAL = (
    "SELECT side.1 AS account, symbol,"
    " sum(if(side.2, qty, 0)), sum(if(side.2, 0, qty)),"
    " sum(if(side.2, toInt128(price) * qty, 0)), sum(if(side.2, 0, toInt128(price) * qty)),"
    " sum(if(side.3, toInt128(price) * qty, 0)), sum(if(side.3, 0, toInt128(price) * qty)),"
    " toUInt64(count()) FROM trades"
    " ARRAY JOIN [(maker_account, maker_side = 1, true),"
    " (taker_account, maker_side != 1, false)] AS side"
    " WHERE {where} GROUP BY account, symbol"
)
_ORDERS_DAILY = (
    "SELECT symbol, account, toUInt32(intDiv(ts, 86400000000000)) AS day,"
    " toUInt64(countIf(event = 1)), sumIf(qty, event = 1),"
    " toUInt64(countIf(event = 4 AND reason IN (1, 6) AND leaves = 0))"
    " FROM orders WHERE event IN (1, 4) AND {where} GROUP BY symbol, account, day"
)

_RESTING_DAILY = (  # order_ends.ts is the acceptance time: the day an order counts under
    "SELECT symbol, account, toUInt32(intDiv(ts, 86400000000000)) AS day,"
    " toUInt64(count()), sum(toUInt128(ended_ts - ts))"
    " FROM order_ends WHERE {where} GROUP BY symbol, account, day"
)

# aggregate table -> (raw table, SELECT filling it with {where} on the raw rows, the aggregate's
# time column ("" = none: a symbol's rows are recomputed whole), that column's unit in ns)
AGGREGATES: Final[dict[str, tuple[str, str, str, int]]] = {
    "trades_1m": ("trades", _TRADES_BARS.replace("{step}", str(60 * 10**9)), "bucket", 1),
    "trades_1h": ("trades", _TRADES_BARS.replace("{step}", str(3600 * 10**9)), "bucket", 1),
    "fills_daily": ("trades", _FILLS_DAILY, "day", DAY_NS),
    "orders_daily": ("orders", _ORDERS_DAILY, "day", DAY_NS),
    "resting_daily": ("order_ends", _RESTING_DAILY, "day", DAY_NS),
    "fills_total": ("trades", _FILLS_TOTAL, "", 0),  # no time column: recomputed whole
}
SOURCES: Final = frozenset(src for src, _, _, _ in AGGREGATES.values())


def repair_statements(symbol_sql: str, from_ts: int, through_seq: int) -> list[str]:
    """Statements recomputing every aggregate of one symbol (a quoted SQL string) from the UTC
    day of `from_ts` on, out of the raw rows with seq <= `through_seq`."""
    day = from_ts - from_ts % DAY_NS
    out = []
    for table, (_, select, col, unit) in AGGREGATES.items():
        since = f" AND {col} >= {day // unit}" if col else ""
        out.append(f"ALTER TABLE {table} DELETE WHERE symbol = {symbol_sql}{since}")
        where = f"symbol = {symbol_sql} AND seq <= {through_seq}"
        where += f" AND ts >= {day}" if col else ""
        out.append(f"INSERT INTO {table} {select.replace('{where}', where)}")
    return out
