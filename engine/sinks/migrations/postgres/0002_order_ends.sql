-- cift-engine sink schema, version 2 (PostgreSQL): `order_ends`, one row per order ended
-- (cancelled, or filled to 0) by a later command than the one that accepted it, written by the
-- sink's converter. ts = the order's ACCEPTANCE time, ended_ts when it ended. The backfill
-- takes, for each accepted order, the first event that ended it, if by a later command.

CREATE TABLE IF NOT EXISTS order_ends (
    symbol       text   NOT NULL,
    seq          bigint NOT NULL,
    order_id     bigint NOT NULL,
    account      bigint NOT NULL,
    ts           bigint NOT NULL,
    accepted_seq bigint NOT NULL,
    ended_ts     bigint NOT NULL,
    PRIMARY KEY (symbol, seq, order_id)
);

INSERT INTO order_ends
    SELECT a.symbol, d.seq, a.order_id, a.account, a.ts, a.seq, d.ts
      FROM (SELECT symbol, order_id, seq, ts, account FROM orders WHERE event = 1) AS a
      JOIN (SELECT DISTINCT ON (symbol, order_id) symbol, order_id, seq, ts
              FROM (SELECT symbol, order_id, seq, ts FROM orders WHERE event = 4 AND leaves = 0
                    UNION ALL
                    SELECT symbol, maker_order_id, seq, ts FROM trades WHERE maker_leaves = 0
                    UNION ALL
                    SELECT symbol, taker_order_id, seq, ts FROM trades WHERE taker_leaves = 0)
                   AS done
             ORDER BY symbol, order_id, seq) AS d
        ON d.symbol = a.symbol AND d.order_id = a.order_id
     WHERE d.seq > a.seq
    ON CONFLICT DO NOTHING;
