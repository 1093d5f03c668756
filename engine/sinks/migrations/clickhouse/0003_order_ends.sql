-- Order resting times for `order_flow` (engine/sinks/reports.py) without joining acceptances
-- with the events that end orders at report time. `order_ends` is written by the sink's
-- converter (native/src/sinks/: it keeps each live order's acceptance until the event that ends
-- it): one row per order ended by a later command than the one that accepted it. `ts` is the
-- ACCEPTANCE time (the UTC day the order counts under, and the time column of the torn-tail
-- repair in aggregates.py), `ended_ts` when it ended. A materialized view sums it into
-- `resting_daily` per (symbol, account, UTC day of acceptance).
-- Idempotent: created IF NOT EXISTS, then both emptied and `order_ends` refilled from the raw
-- rows (the first event that ended each accepted order, if by a later command; the view
-- refills `resting_daily`). Run before the sink writes, like 0002.

CREATE TABLE IF NOT EXISTS order_ends (
    symbol       LowCardinality(String),
    seq          UInt64,
    order_id     UInt64,
    account      UInt64,
    ts           UInt64,
    accepted_seq UInt64,
    ended_ts     UInt64
) ENGINE = ReplacingMergeTree ORDER BY (symbol, seq, order_id);

CREATE TABLE IF NOT EXISTS resting_daily (
    symbol     LowCardinality(String),
    account    UInt64,
    day        UInt32,
    orders     UInt64,
    resting_ns UInt128
) ENGINE = SummingMergeTree ORDER BY (symbol, account, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS resting_daily_mv TO resting_daily AS
    SELECT symbol, account, toUInt32(intDiv(ts, 86400000000000)) AS day,
           toUInt64(count()) AS orders, sum(toUInt128(ended_ts - ts)) AS resting_ns
      FROM order_ends GROUP BY symbol, account, day;

-- The backfill (idempotent: empty both, then refill order_ends; the view refills resting_daily).
TRUNCATE TABLE order_ends;
TRUNCATE TABLE resting_daily;
INSERT INTO order_ends
    SELECT a.symbol, d.end_seq, a.order_id, a.account, a.ts, a.seq, d.end_ts
      FROM (SELECT symbol, order_id, seq, ts, account FROM orders WHERE event = 1) AS a
     INNER JOIN (SELECT symbol, order_id, min(seq) AS end_seq, argMin(ts, seq) AS end_ts
                   FROM (SELECT symbol, order_id, seq, ts FROM orders
                          WHERE event = 4 AND leaves = 0
                         UNION ALL
                         SELECT symbol, maker_order_id AS order_id, seq, ts FROM trades
                          WHERE maker_leaves = 0
                         UNION ALL
                         SELECT symbol, taker_order_id AS order_id, seq, ts FROM trades
                          WHERE taker_leaves = 0)
                  GROUP BY symbol, order_id) AS d
        ON d.symbol = a.symbol AND d.order_id = a.order_id
     WHERE d.end_seq > a.seq;
