-- cift-engine sink schema, version 1 (PostgreSQL). Column order = engine/sinks/tables.py.
-- Engine times (ts, bucket_ts, expire_ts) are nanoseconds since the epoch; prices are ticks,
-- quantities lots. u64 ids are stored as BIGINT with the same 64 bits.

CREATE TABLE orders (
    symbol      text     NOT NULL,
    seq         bigint   NOT NULL,
    idx         integer  NOT NULL,
    ts          bigint   NOT NULL,
    event       smallint NOT NULL,
    cmd_kind    smallint NOT NULL,
    order_id    bigint   NOT NULL,
    account     bigint   NOT NULL,
    client_id   bigint   NOT NULL,
    side        smallint NOT NULL,
    ord_type    smallint NOT NULL,
    tif         smallint NOT NULL,
    price       bigint   NOT NULL,
    qty         bigint   NOT NULL,
    leaves      bigint   NOT NULL,
    stop_price  bigint   NOT NULL,
    display_qty bigint   NOT NULL,
    expire_ts   bigint   NOT NULL,
    reason      smallint NOT NULL,
    code        integer  NOT NULL,
    flags       smallint NOT NULL,
    aux         bigint   NOT NULL,
    aux2        bigint   NOT NULL,
    PRIMARY KEY (seq, idx)
);
CREATE INDEX orders_order_id ON orders (order_id);
CREATE INDEX orders_account_ts ON orders (account, ts);

CREATE TABLE trades (
    symbol          text     NOT NULL,
    trade_id        bigint   NOT NULL,
    seq             bigint   NOT NULL,
    ts              bigint   NOT NULL,
    price           bigint   NOT NULL,
    qty             bigint   NOT NULL,
    maker_side      smallint NOT NULL,
    maker_order_id  bigint   NOT NULL,
    maker_account   bigint   NOT NULL,
    maker_client_id bigint   NOT NULL,
    maker_leaves    bigint   NOT NULL,
    taker_order_id  bigint   NOT NULL,
    taker_account   bigint   NOT NULL,
    taker_client_id bigint   NOT NULL,
    taker_leaves    bigint   NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
CREATE INDEX trades_ts ON trades (ts);

CREATE TABLE positions (
    symbol        text    NOT NULL,
    account       bigint  NOT NULL,
    seq           bigint  NOT NULL,
    ts            bigint  NOT NULL,
    position      bigint  NOT NULL,
    buy_qty       bigint  NOT NULL,
    sell_qty      bigint  NOT NULL,
    buy_notional  numeric NOT NULL,
    sell_notional numeric NOT NULL,
    trades        bigint  NOT NULL,
    PRIMARY KEY (symbol, account, seq)
);

CREATE TABLE book_top (
    symbol        text    NOT NULL,
    bucket_ts     bigint  NOT NULL,
    seq           bigint  NOT NULL,
    ts            bigint  NOT NULL,
    closed_by_seq bigint  NOT NULL,
    bid_price     bigint  NOT NULL,
    bid_qty       bigint  NOT NULL,
    bid_count     integer NOT NULL,
    ask_price     bigint  NOT NULL,
    ask_qty       bigint  NOT NULL,
    ask_count     integer NOT NULL,
    last_price    bigint  NOT NULL,
    PRIMARY KEY (symbol, bucket_ts)
);

CREATE TABLE sink_checkpoints (
    sink       text        NOT NULL,
    symbol     text        NOT NULL,
    last_seq   bigint      NOT NULL,
    ts         bigint      NOT NULL,
    state      bytea       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink, symbol)
);

-- Fills from each account's side: one row per trade and side.
CREATE VIEW fills AS
    SELECT symbol, trade_id, seq, ts, price, qty, maker_account AS account,
           maker_order_id AS order_id, maker_side AS side, true AS maker
      FROM trades
    UNION ALL
    SELECT symbol, trade_id, seq, ts, price, qty, taker_account AS account,
           taker_order_id AS order_id, (3 - maker_side)::smallint AS side, false AS maker
      FROM trades;
