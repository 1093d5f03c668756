-- End-of-day equity for `performance` (engine/sinks/reports.py, engine/sinks/equity.py): one row
-- per (account, UTC day D) with the account's equity at the end of D = Σ over symbols (cash from
-- its fills of days <= D + position after them × the symbol's last trade price of days <= D),
-- exact (Int128). Written by the ClickHouse sink once D is CLOSED: every symbol's checkpoint
-- (sink_checkpoints.ts, engine time) is at or past the start of D + 1, so no fill of a day <= D
-- can still arrive. Only days on which something traded get rows, and only accounts with a fill
-- on or before D. The value is a pure function of the fills of days <= D: writing a day again
-- (ReplacingMergeTree on (account, day)) is harmless.
--
-- The backfill (idempotent: empty, then refill): every trading day closed for the checkpoints
-- in the database (none without checkpoints), from `fills_daily` and the daily closes of
-- `trades_1h` (argMaxMerge(close) per symbol and day; a day's mark is the close of the symbol's
-- latest trading day <= D). Run before the sink writes, like 0002 and 0003.

CREATE TABLE IF NOT EXISTS equity_daily (
    account UInt64,
    day     UInt32,
    equity  Int128
) ENGINE = ReplacingMergeTree ORDER BY (account, day);

TRUNCATE TABLE equity_daily;
INSERT INTO equity_daily
    SELECT f.account, m.d,
           sum(toInt128(f.sell_notional) - toInt128(f.buy_notional)
               + (toInt128(f.buy_qty) - toInt128(f.sell_qty)) * toInt128(m.mark))
      FROM fills_daily AS f
     INNER JOIN (SELECT t.d AS d, c.symbol AS symbol, argMax(c.close, c.cday) AS mark
                   FROM (SELECT DISTINCT toUInt32(intDiv(bucket, 86400000000000)) AS d
                           FROM trades_1h) AS t
                  CROSS JOIN (SELECT symbol, toUInt32(intDiv(bucket, 86400000000000)) AS cday,
                                     argMaxMerge(close) AS close
                                FROM trades_1h GROUP BY symbol, cday) AS c
                  WHERE c.cday <= t.d
                    AND toInt64(t.d) < (SELECT toInt64(intDiv(min(ts), 86400000000000))
                                          FROM sink_checkpoints FINAL)
                  GROUP BY t.d, c.symbol) AS m
        ON m.symbol = f.symbol
     WHERE f.day <= m.d
     GROUP BY f.account, m.d;
