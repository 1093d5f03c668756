"""The sink tables' columns, in the order both backends' migrations create them.

Each column has a kind; `postgres.py` and `clickhouse.py` map kinds to their types
(u64 ids are BIGINT in PostgreSQL: the same 64 bits read as signed; ClickHouse has UInt64).
`tests/test_sinks_migrate.py` checks the migrated tables against these lists.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CHECKPOINT_COLUMNS", "DATA_TABLES", "DTYPES", "TABLES", "Kind"]

Kind = str  # "sym" | "u8" | "u16" | "u32" | "u64" | "i64" | "i128" | "bytes"

TABLES: Final[dict[str, tuple[tuple[str, Kind], ...]]] = {
    # Every order event but trades and levels: accepted, rejected, cancelled, replaced, triggered.
    # Key (seq, idx): the command's sequence number and the event's index among its events.
    "orders": (
        ("symbol", "sym"), ("seq", "u64"), ("idx", "u32"), ("ts", "u64"), ("event", "u8"),
        ("cmd_kind", "u8"), ("order_id", "u64"), ("account", "u64"), ("client_id", "u64"),
        ("side", "u8"), ("ord_type", "u8"), ("tif", "u8"), ("price", "i64"), ("qty", "i64"),
        ("leaves", "i64"), ("stop_price", "i64"), ("display_qty", "i64"), ("expire_ts", "u64"),
        ("reason", "u8"), ("code", "u16"), ("flags", "u8"), ("aux", "i64"), ("aux2", "i64"),
    ),
    # One row per trade with both sides (maker = the resting order). Key (symbol, trade_id).
    "trades": (
        ("symbol", "sym"), ("trade_id", "i64"), ("seq", "u64"), ("ts", "u64"), ("price", "i64"),
        ("qty", "i64"), ("maker_side", "u8"), ("maker_order_id", "u64"),
        ("maker_account", "u64"), ("maker_client_id", "u64"), ("maker_leaves", "i64"),
        ("taker_order_id", "u64"), ("taker_account", "u64"), ("taker_client_id", "u64"),
        ("taker_leaves", "i64"),
    ),
    # The position of (symbol, account) after its last trade in a sink flush. Key (symbol,
    # account, seq). Notionals are sums of price * qty (ticks * lots).
    "positions": (
        ("symbol", "sym"), ("account", "u64"), ("seq", "u64"), ("ts", "u64"),
        ("position", "i64"), ("buy_qty", "i64"), ("sell_qty", "i64"),
        ("buy_notional", "i128"), ("sell_notional", "i128"), ("trades", "u64"),
    ),
    # Top of book at the end of each interval of engine time in which the symbol had a command.
    # Key (symbol, bucket_ts). seq/ts: the interval's last command; closed_by_seq: the first
    # command after it (the row is written then). An empty side has price, qty and count 0.
    "book_top": (
        ("symbol", "sym"), ("bucket_ts", "u64"), ("seq", "u64"), ("ts", "u64"),
        ("closed_by_seq", "u64"), ("bid_price", "i64"), ("bid_qty", "i64"),
        ("bid_count", "u32"), ("ask_price", "i64"), ("ask_qty", "i64"), ("ask_count", "u32"),
        ("last_price", "i64"),
    ),
    # An order ended (cancelled, or filled to 0) by a later command than the one that accepted
    # it: what `order_flow`'s average resting time counts. Key (symbol, seq, order_id); seq: the
    # ending command. ts is the order's ACCEPTANCE time (the day it counts under, and the time
    # column of the torn-tail repair), ended_ts when it ended; account: the order's account.
    "order_ends": (
        ("symbol", "sym"), ("seq", "u64"), ("order_id", "u64"), ("account", "u64"),
        ("ts", "u64"), ("accepted_seq", "u64"), ("ended_ts", "u64"),
    ),
}  # fmt: skip

DATA_TABLES: Final = tuple(TABLES)

# Key (sink, symbol): the last sequence number applied for the symbol, the engine time of the
# last command applied, and the sink's state for the symbol (L2 levels, open interval).
CHECKPOINT_COLUMNS: Final[tuple[tuple[str, Kind], ...]] = (
    ("sink", "sym"),
    ("symbol", "sym"),
    ("last_seq", "u64"),
    ("ts", "u64"),
    ("state", "bytes"),
)

# numpy dtypes of the fixed-width kinds: the column buffers of `engine._native.SymbolRows`.
DTYPES: Final[dict[Kind, str]] = {
    "u8": "u1",
    "u16": "<u2",
    "u32": "<u4",
    "u64": "<u8",
    "i64": "<i8",
}
