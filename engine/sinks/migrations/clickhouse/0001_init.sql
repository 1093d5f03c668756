-- cift-engine sink schema, version 1 (ClickHouse). Column order = engine/sinks/tables.py.
-- No transactions here: every statement must be idempotent (IF NOT EXISTS), so that a migration
-- cut short is simply run again. ReplacingMergeTree on the idempotent key is the second line of
-- defence against duplicates; the sink's torn-tail cleanup (clickhouse.py) is the first.

CREATE TABLE IF NOT EXISTS orders (
    symbol      LowCardinality(String),
    seq         UInt64,
    idx         UInt32,
    ts          UInt64,
    event       UInt8,
    cmd_kind    UInt8,
    order_id    UInt64,
    account     UInt64,
    client_id   UInt64,
    side        UInt8,
    ord_type    UInt8,
    tif         UInt8,
    price       Int64,
    qty         Int64,
    leaves      Int64,
    stop_price  Int64,
    display_qty Int64,
    expire_ts   UInt64,
    reason      UInt8,
    code        UInt16,
    flags       UInt8,
    aux         Int64,
    aux2        Int64
) ENGINE = ReplacingMergeTree ORDER BY (symbol, seq, idx);

CREATE TABLE IF NOT EXISTS trades (
    symbol          LowCardinality(String),
    trade_id        Int64,
    seq             UInt64,
    ts              UInt64,
    price           Int64,
    qty             Int64,
    maker_side      UInt8,
    maker_order_id  UInt64,
    maker_account   UInt64,
    maker_client_id UInt64,
    maker_leaves    Int64,
    taker_order_id  UInt64,
    taker_account   UInt64,
    taker_client_id UInt64,
    taker_leaves    Int64
) ENGINE = ReplacingMergeTree ORDER BY (symbol, trade_id);

CREATE TABLE IF NOT EXISTS positions (
    symbol        LowCardinality(String),
    account       UInt64,
    seq           UInt64,
    ts            UInt64,
    position      Int64,
    buy_qty       Int64,
    sell_qty      Int64,
    buy_notional  Int128,
    sell_notional Int128,
    trades        UInt64
) ENGINE = ReplacingMergeTree ORDER BY (symbol, account, seq);

CREATE TABLE IF NOT EXISTS book_top (
    symbol        LowCardinality(String),
    bucket_ts     UInt64,
    seq           UInt64,
    ts            UInt64,
    closed_by_seq UInt64,
    bid_price     Int64,
    bid_qty       Int64,
    bid_count     UInt32,
    ask_price     Int64,
    ask_qty       Int64,
    ask_count     UInt32,
    last_price    Int64
) ENGINE = ReplacingMergeTree ORDER BY (symbol, bucket_ts);

CREATE TABLE IF NOT EXISTS sink_checkpoints (
    sink       LowCardinality(String),
    symbol     LowCardinality(String),
    last_seq   UInt64,
    ts         UInt64,
    state      String,
    updated_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(last_seq) ORDER BY (sink, symbol);

CREATE VIEW IF NOT EXISTS fills AS
    SELECT symbol, trade_id, seq, ts, price, qty, maker_account AS account,
           maker_order_id AS order_id, maker_side AS side, true AS maker
      FROM trades
    UNION ALL
    SELECT symbol, trade_id, seq, ts, price, qty, taker_account AS account,
           taker_order_id AS order_id, toUInt8(3 - maker_side) AS side, false AS maker
      FROM trades;
