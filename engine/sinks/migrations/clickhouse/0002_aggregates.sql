-- Pre-aggregated tables for the reports (engine/sinks/reports.py), maintained at insert time by
-- materialized views on `trades` and `orders`. Every statement is idempotent: the tables and
-- views are created IF NOT EXISTS, then each aggregate is emptied and refilled from its raw
-- table (the backfill of a database that already holds rows; run before the sink writes).
-- The sink's torn-tail repair (clickhouse.py) re-inserts the raw rows of the affected days so
-- that the views recompute them. Buckets and days are engine nanoseconds (UTC).

-- Per symbol and minute / hour: the figures of `volume` and `bars`.
CREATE TABLE IF NOT EXISTS trades_1m (
    symbol   LowCardinality(String),
    bucket   UInt64,
    trades   SimpleAggregateFunction(sum, UInt64),
    volume   SimpleAggregateFunction(sum, Int64),
    notional SimpleAggregateFunction(sum, Int128),
    high     SimpleAggregateFunction(max, Int64),
    low      SimpleAggregateFunction(min, Int64),
    first_ts SimpleAggregateFunction(min, UInt64),
    last_ts  SimpleAggregateFunction(max, UInt64),
    open     AggregateFunction(argMin, Int64, Int64),
    close    AggregateFunction(argMax, Int64, Int64)
) ENGINE = AggregatingMergeTree ORDER BY (symbol, bucket);

CREATE TABLE IF NOT EXISTS trades_1h AS trades_1m;

CREATE MATERIALIZED VIEW IF NOT EXISTS trades_1m_mv TO trades_1m AS
    SELECT symbol, ts - ts % 60000000000 AS bucket, toUInt64(count()) AS trades,
           sum(qty) AS volume, sum(toInt128(price) * qty) AS notional, max(price) AS high,
           min(price) AS low, min(ts) AS first_ts, max(ts) AS last_ts,
           argMinState(price, trade_id) AS open, argMaxState(price, trade_id) AS close
      FROM trades GROUP BY symbol, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS trades_1h_mv TO trades_1h AS
    SELECT symbol, ts - ts % 3600000000000 AS bucket, toUInt64(count()) AS trades,
           sum(qty) AS volume, sum(toInt128(price) * qty) AS notional, max(price) AS high,
           min(price) AS low, min(ts) AS first_ts, max(ts) AS last_ts,
           argMinState(price, trade_id) AS open, argMaxState(price, trade_id) AS close
      FROM trades GROUP BY symbol, bucket;

-- Per account, symbol and UTC day: each account's fills (both sides of every trade), the
-- inputs of `pnl` and `performance`.
CREATE TABLE IF NOT EXISTS fills_daily (
    account        UInt64,
    symbol         LowCardinality(String),
    day            UInt32,
    buy_qty        Int64,
    sell_qty       Int64,
    buy_notional   Int128,
    sell_notional  Int128,
    maker_notional Int128,
    taker_notional Int128,
    fills          UInt64
) ENGINE = SummingMergeTree ORDER BY (account, symbol, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS fills_daily_mv TO fills_daily AS
    SELECT account, symbol, day, sum(buy_qty) AS buy_qty, sum(sell_qty) AS sell_qty,
           sum(buy_notional) AS buy_notional, sum(sell_notional) AS sell_notional,
           sum(maker_notional) AS maker_notional, sum(taker_notional) AS taker_notional,
           toUInt64(count()) AS fills
      FROM (SELECT symbol, toUInt32(intDiv(ts, 86400000000000)) AS day, qty,
                   toInt128(price) * qty AS n, side.1 AS account, side.2 AS buy, side.3 AS maker,
                   if(buy, qty, 0) AS buy_qty, if(buy, 0, qty) AS sell_qty,
                   if(buy, n, 0) AS buy_notional, if(buy, 0, n) AS sell_notional,
                   if(maker, n, 0) AS maker_notional, if(maker, 0, n) AS taker_notional
              FROM trades
             ARRAY JOIN [(maker_account, maker_side = 1, true),
                         (taker_account, maker_side != 1, false)] AS side)
     GROUP BY account, symbol, day;

-- Per account and symbol over all time: the same sums (`pnl` without a time range).
CREATE TABLE IF NOT EXISTS fills_total (
    account        UInt64,
    symbol         LowCardinality(String),
    buy_qty        Int64,
    sell_qty       Int64,
    buy_notional   Int128,
    sell_notional  Int128,
    maker_notional Int128,
    taker_notional Int128,
    fills          UInt64
) ENGINE = SummingMergeTree ORDER BY (account, symbol);

CREATE MATERIALIZED VIEW IF NOT EXISTS fills_total_mv TO fills_total AS
    SELECT account, symbol, sum(buy_qty) AS buy_qty, sum(sell_qty) AS sell_qty,
           sum(buy_notional) AS buy_notional, sum(sell_notional) AS sell_notional,
           sum(maker_notional) AS maker_notional, sum(taker_notional) AS taker_notional,
           toUInt64(count()) AS fills
      FROM (SELECT symbol, qty, toInt128(price) * qty AS n, side.1 AS account, side.2 AS buy,
                   side.3 AS maker, if(buy, qty, 0) AS buy_qty, if(buy, 0, qty) AS sell_qty,
                   if(buy, n, 0) AS buy_notional, if(buy, 0, n) AS sell_notional,
                   if(maker, n, 0) AS maker_notional, if(maker, 0, n) AS taker_notional
              FROM trades
             ARRAY JOIN [(maker_account, maker_side = 1, true),
                         (taker_account, maker_side != 1, false)] AS side)
     GROUP BY account, symbol;

-- Per symbol, account and UTC day: order counts of `order_flow`.
CREATE TABLE IF NOT EXISTS orders_daily (
    symbol       LowCardinality(String),
    account      UInt64,
    day          UInt32,
    orders       UInt64,
    ordered_qty  Int64,
    user_cancels UInt64
) ENGINE = SummingMergeTree ORDER BY (symbol, account, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS orders_daily_mv TO orders_daily AS
    SELECT symbol, account, toUInt32(intDiv(ts, 86400000000000)) AS day,
           toUInt64(countIf(event = 1)) AS orders, sumIf(qty, event = 1) AS ordered_qty,
           toUInt64(countIf(event = 4 AND reason IN (1, 6) AND leaves = 0)) AS user_cancels
      FROM orders WHERE event IN (1, 4) GROUP BY symbol, account, day;

-- The backfill (idempotent: empty, then refill from the raw tables).
TRUNCATE TABLE trades_1m;
INSERT INTO trades_1m
    SELECT symbol, ts - ts % 60000000000 AS bucket, toUInt64(count()), sum(qty),
           sum(toInt128(price) * qty), max(price), min(price), min(ts), max(ts),
           argMinState(price, trade_id), argMaxState(price, trade_id)
      FROM trades GROUP BY symbol, bucket;
TRUNCATE TABLE trades_1h;
INSERT INTO trades_1h
    SELECT symbol, ts - ts % 3600000000000 AS bucket, toUInt64(count()), sum(qty),
           sum(toInt128(price) * qty), max(price), min(price), min(ts), max(ts),
           argMinState(price, trade_id), argMaxState(price, trade_id)
      FROM trades GROUP BY symbol, bucket;
TRUNCATE TABLE fills_daily;
INSERT INTO fills_daily
    SELECT side.1 AS account, symbol, toUInt32(intDiv(ts, 86400000000000)) AS day,
           sum(if(side.2, qty, 0)), sum(if(side.2, 0, qty)),
           sum(if(side.2, toInt128(price) * qty, 0)), sum(if(side.2, 0, toInt128(price) * qty)),
           sum(if(side.3, toInt128(price) * qty, 0)), sum(if(side.3, 0, toInt128(price) * qty)),
           toUInt64(count())
      FROM trades
     ARRAY JOIN [(maker_account, maker_side = 1, true),
                 (taker_account, maker_side != 1, false)] AS side
     GROUP BY account, symbol, day;
TRUNCATE TABLE fills_total;
INSERT INTO fills_total
    SELECT side.1 AS account, symbol,
           sum(if(side.2, qty, 0)), sum(if(side.2, 0, qty)),
           sum(if(side.2, toInt128(price) * qty, 0)), sum(if(side.2, 0, toInt128(price) * qty)),
           sum(if(side.3, toInt128(price) * qty, 0)), sum(if(side.3, 0, toInt128(price) * qty)),
           toUInt64(count())
      FROM trades
     ARRAY JOIN [(maker_account, maker_side = 1, true),
                 (taker_account, maker_side != 1, false)] AS side
     GROUP BY account, symbol;
TRUNCATE TABLE orders_daily;
INSERT INTO orders_daily
    SELECT symbol, account, toUInt32(intDiv(ts, 86400000000000)) AS day,
           toUInt64(countIf(event = 1)), sumIf(qty, event = 1),
           toUInt64(countIf(event = 4 AND reason IN (1, 6) AND leaves = 0))
      FROM orders WHERE event IN (1, 4) GROUP BY symbol, account, day;
