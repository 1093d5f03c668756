//! Event records -> sink rows, per symbol, without Python in the per-row work.
//!
//! `SymbolRows` keeps what the rows of one symbol depend on (the L2 book rebuilt from Level
//! events, the open interval of `book_top`, the last trade price, each account's position) and
//! turns batches of command + event records (`apply`) into rows of the `orders`, `trades`,
//! `book_top` and `order_ends` tables, kept as little-endian column buffers (`table::Table`),
//! and the positions changed since the last `take`. Column order = engine/sinks/tables.py
//! (without `symbol`).
//!
//! `order_ends`: the converter keeps each live order's acceptance (seq, ts, account) from its
//! `Accepted` event until the event that ends it (`Cancelled` with leaves 0, or a trade leaving
//! its side 0), and writes a row for every order ended by a later command than the one that
//! accepted it (what `order_flow`'s average resting time counts). A restarted sink restores the
//! live orders from its database (`restore_open`), not from the checkpoint state.
//! `pgcopy` encodes columns as PostgreSQL binary COPY.

pub mod pgcopy;
pub mod table;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use thiserror::Error;

use crate::types::{Command, Event, COMMAND_SIZE, EVENT_SIZE};
pub use table::{ColKind, Table, TableError, Val};

const NEW: u8 = 1;
const ACCEPTED: u8 = 1;
const REJECTED: u8 = 2;
const TRADE: u8 = 3;
const CANCELLED: u8 = 4;
const TRIGGERED: u8 = 6;
const LEVEL: u8 = 7;
const BUY: u8 = 1;
/// `bucket` before the symbol's first command.
pub const NO_BUCKET: i64 = -1;

pub const ORDERS: &[ColKind] = &[
    ColKind::U64, // seq
    ColKind::U32, // idx
    ColKind::U64, // ts
    ColKind::U8,  // event
    ColKind::U8,  // cmd_kind
    ColKind::U64, // order_id
    ColKind::U64, // account
    ColKind::U64, // client_id
    ColKind::U8,  // side
    ColKind::U8,  // ord_type
    ColKind::U8,  // tif
    ColKind::I64, // price
    ColKind::I64, // qty
    ColKind::I64, // leaves
    ColKind::I64, // stop_price
    ColKind::I64, // display_qty
    ColKind::U64, // expire_ts
    ColKind::U8,  // reason
    ColKind::U16, // code
    ColKind::U8,  // flags
    ColKind::I64, // aux
    ColKind::I64, // aux2
];
pub const TRADES: &[ColKind] = &[
    ColKind::I64, // trade_id
    ColKind::U64, // seq
    ColKind::U64, // ts
    ColKind::I64, // price
    ColKind::I64, // qty
    ColKind::U8,  // maker_side
    ColKind::U64, // maker_order_id
    ColKind::U64, // maker_account
    ColKind::U64, // maker_client_id
    ColKind::I64, // maker_leaves
    ColKind::U64, // taker_order_id
    ColKind::U64, // taker_account
    ColKind::U64, // taker_client_id
    ColKind::I64, // taker_leaves
];
pub const BOOK_TOP: &[ColKind] = &[
    ColKind::U64, // bucket_ts
    ColKind::U64, // seq
    ColKind::U64, // ts
    ColKind::U64, // closed_by_seq
    ColKind::I64, // bid_price
    ColKind::I64, // bid_qty
    ColKind::U32, // bid_count
    ColKind::I64, // ask_price
    ColKind::I64, // ask_qty
    ColKind::U32, // ask_count
    ColKind::I64, // last_price
];

pub const ORDER_ENDS: &[ColKind] = &[
    ColKind::U64, // seq: the command that ended the order
    ColKind::U64, // order_id
    ColKind::U64, // account
    ColKind::U64, // ts: when the order was accepted
    ColKind::U64, // accepted_seq
    ColKind::U64, // ended_ts
];

#[derive(Debug, PartialEq, Eq, Error)]
pub enum SinkError {
    #[error("{0} bytes is not a whole number of command records")]
    CommandBytes(usize),
    #[error("{0} bytes is not a whole number of event records")]
    EventBytes(usize),
    #[error("command seqs not ascending within the batch range (seq {seq})")]
    CommandOrder { seq: u64 },
    #[error("an event's seq {seq} has no command in the batch")]
    EventWithoutCommand { seq: u64 },
    #[error("interval must be >= 1 ns")]
    Interval,
}

/// A position: quantities in lots, notionals in ticks x lots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub position: i64,
    pub buy_qty: i64,
    pub sell_qty: i64,
    pub buy_notional: i128,
    pub sell_notional: i128,
    pub trades: u64,
}

/// A positions row: the account's position after its last fill (`seq`, `ts`) since `take`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionRow {
    pub account: u64,
    pub seq: u64,
    pub ts: u64,
    pub pos: Position,
}

/// A live order's acceptance: what its `order_ends` row needs when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOrder {
    pub seq: u64,
    pub ts: u64,
    pub account: u64,
}

/// The restartable state of a symbol's `book_top` rows (positions are restored separately).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopState {
    pub bucket: i64,
    pub bucket_seq: u64,
    pub bucket_ts: u64,
    pub last_price: i64,
    /// (price, qty, count) per level.
    pub bids: Vec<(i64, i64, i64)>,
    pub asks: Vec<(i64, i64, i64)>,
}

#[derive(Debug)]
pub struct SymbolRows {
    interval: u64,
    bids: BTreeMap<i64, (i64, i64)>,
    asks: BTreeMap<i64, (i64, i64)>,
    bucket: i64,
    bucket_seq: u64,
    bucket_ts: u64,
    last_price: i64,
    positions: FxHashMap<u64, Position>,
    dirty: FxHashMap<u64, (u64, u64)>,
    open: FxHashMap<u64, OpenOrder>,
    pub orders: Table,
    pub trades: Table,
    pub top: Table,
    pub ends: Table,
}

impl SymbolRows {
    pub fn new(interval_ns: u64) -> Result<SymbolRows, SinkError> {
        if interval_ns == 0 {
            return Err(SinkError::Interval);
        }
        Ok(SymbolRows {
            interval: interval_ns,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            bucket: NO_BUCKET,
            bucket_seq: 0,
            bucket_ts: 0,
            last_price: 0,
            positions: FxHashMap::default(),
            dirty: FxHashMap::default(),
            open: FxHashMap::default(),
            orders: Table::new(ORDERS.len()),
            trades: Table::new(TRADES.len()),
            top: Table::new(BOOK_TOP.len()),
            ends: Table::new(ORDER_ENDS.len()),
        })
    }

    pub fn restore_top(&mut self, s: &TopState) {
        self.bucket = s.bucket;
        self.bucket_seq = s.bucket_seq;
        self.bucket_ts = s.bucket_ts;
        self.last_price = s.last_price;
        self.bids = s.bids.iter().map(|&(p, q, c)| (p, (q, c))).collect();
        self.asks = s.asks.iter().map(|&(p, q, c)| (p, (q, c))).collect();
    }

    pub fn top_state(&self) -> TopState {
        TopState {
            bucket: self.bucket,
            bucket_seq: self.bucket_seq,
            bucket_ts: self.bucket_ts,
            last_price: self.last_price,
            bids: self.bids.iter().map(|(&p, &(q, c))| (p, q, c)).collect(),
            asks: self.asks.iter().map(|(&p, &(q, c))| (p, q, c)).collect(),
        }
    }

    pub fn restore_position(&mut self, account: u64, pos: Position) {
        self.positions.insert(account, pos);
    }

    /// A live order accepted before the sink's checkpoint (restored from the database).
    pub fn restore_open(&mut self, order_id: u64, o: OpenOrder) {
        self.open.insert(order_id, o);
    }

    /// Live orders tracked for `order_ends`.
    pub fn open_orders(&self) -> usize {
        self.open.len()
    }

    /// An event ended order `order_id` at command `seq` (time `ts`): its `order_ends` row if it
    /// was accepted by an earlier command.
    #[inline]
    fn end(&mut self, order_id: u64, seq: u64, ts: u64) {
        if let Some(o) = self.open.remove(&order_id) {
            if seq > o.seq {
                self.ends.push(&[
                    Val::U64(seq),
                    Val::U64(order_id),
                    Val::U64(o.account),
                    Val::U64(o.ts),
                    Val::U64(o.seq),
                    Val::U64(ts),
                ]);
            }
        }
    }

    /// Add the rows of `commands` and the `events` they produced, skipping everything at or
    /// below `after` (already applied). Returns the ts of the last command applied, if any.
    /// Nothing is changed when the batch breaks the contract (checked before any row is added).
    pub fn apply(
        &mut self,
        commands: &[u8],
        events: &[u8],
        after: u64,
        through: u64,
    ) -> Result<Option<u64>, SinkError> {
        if !commands.len().is_multiple_of(COMMAND_SIZE) {
            return Err(SinkError::CommandBytes(commands.len()));
        }
        if !events.len().is_multiple_of(EVENT_SIZE) {
            return Err(SinkError::EventBytes(events.len()));
        }
        let cmds: Vec<Command> = commands
            .chunks_exact(COMMAND_SIZE)
            .filter_map(Command::decode)
            .filter(|c| c.seq > after)
            .collect();
        let evs: Vec<Event> = events
            .chunks_exact(EVENT_SIZE)
            .filter_map(Event::decode)
            .filter(|e| e.seq > after)
            .collect();
        check(&cmds, &evs, through)?;
        let mut j = 0;
        for c in &cmds {
            let bucket = (c.ts - c.ts % self.interval) as i64;
            if bucket != self.bucket {
                if self.bucket != NO_BUCKET {
                    self.close_bucket(c.seq);
                }
                self.bucket = bucket;
            }
            let mut idx = 0u32;
            while j < evs.len() && evs[j].seq == c.seq {
                self.event(c, &evs[j], idx);
                idx += 1;
                j += 1;
            }
            self.bucket_seq = c.seq;
            self.bucket_ts = c.ts;
        }
        Ok(cmds.last().map(|c| c.ts))
    }

    fn close_bucket(&mut self, closed_by: u64) {
        let (bp, bq, bc) = top(self.bids.iter().next_back());
        let (ap, aq, ac) = top(self.asks.iter().next());
        self.top.push(&[
            Val::U64(self.bucket as u64),
            Val::U64(self.bucket_seq),
            Val::U64(self.bucket_ts),
            Val::U64(closed_by),
            Val::I64(bp),
            Val::I64(bq),
            Val::U32(bc),
            Val::I64(ap),
            Val::I64(aq),
            Val::U32(ac),
            Val::I64(self.last_price),
        ]);
    }

    #[inline]
    fn event(&mut self, c: &Command, e: &Event, idx: u32) {
        match e.kind {
            LEVEL => {
                let book = if e.side == BUY {
                    &mut self.bids
                } else {
                    &mut self.asks
                };
                if e.qty != 0 {
                    book.insert(e.price, (e.qty, e.aux));
                } else {
                    book.remove(&e.price);
                }
            }
            TRADE => {
                self.last_price = e.price;
                self.trades.push(&[
                    Val::I64(e.aux),
                    Val::U64(e.seq),
                    Val::U64(c.ts),
                    Val::I64(e.price),
                    Val::I64(e.qty),
                    Val::U8(e.side),
                    Val::U64(e.order_id),
                    Val::U64(e.account),
                    Val::U64(e.client_id),
                    Val::I64(e.leaves),
                    Val::U64(e.counter_id),
                    Val::U64(e.counter_account),
                    Val::U64(e.counter_client_id),
                    Val::I64(e.aux2),
                ]);
                let maker_buys = e.side == BUY;
                self.fill(e.account, maker_buys, e, c.ts);
                self.fill(e.counter_account, !maker_buys, e, c.ts);
                if e.leaves == 0 {
                    self.end(e.order_id, e.seq, c.ts);
                }
                if e.aux2 == 0 {
                    self.end(e.counter_id, e.seq, c.ts);
                }
            }
            kind => {
                if kind == ACCEPTED {
                    let o = OpenOrder {
                        seq: e.seq,
                        ts: c.ts,
                        account: e.account,
                    };
                    self.open.insert(e.order_id, o);
                } else if kind == CANCELLED && e.leaves == 0 {
                    self.end(e.order_id, e.seq, c.ts);
                }
                let own = c.kind == NEW && (kind == ACCEPTED || kind == REJECTED);
                let stop = if kind == ACCEPTED || kind == TRIGGERED {
                    e.aux
                } else if own {
                    c.stop_price
                } else {
                    0
                };
                let (ord_type, tif, display, expire) = if own {
                    (c.ord_type, c.tif, c.display_qty, c.expire_ts)
                } else {
                    (0, 0, 0, 0)
                };
                self.orders.push(&[
                    Val::U64(e.seq),
                    Val::U32(idx),
                    Val::U64(c.ts),
                    Val::U8(kind),
                    Val::U8(c.kind),
                    Val::U64(e.order_id),
                    Val::U64(e.account),
                    Val::U64(e.client_id),
                    Val::U8(e.side),
                    Val::U8(ord_type),
                    Val::U8(tif),
                    Val::I64(e.price),
                    Val::I64(e.qty),
                    Val::I64(e.leaves),
                    Val::I64(stop),
                    Val::I64(display),
                    Val::U64(expire),
                    Val::U8(e.reason),
                    Val::U16(e.code),
                    Val::U8(e.flags),
                    Val::I64(e.aux),
                    Val::I64(e.aux2),
                ]);
            }
        }
    }

    #[inline]
    fn fill(&mut self, account: u64, buys: bool, e: &Event, ts: u64) {
        let p = self.positions.entry(account).or_default();
        let notional = i128::from(e.price) * i128::from(e.qty);
        if buys {
            p.position += e.qty;
            p.buy_qty += e.qty;
            p.buy_notional += notional;
        } else {
            p.position -= e.qty;
            p.sell_qty += e.qty;
            p.sell_notional += notional;
        }
        p.trades += 1;
        self.dirty.insert(account, (e.seq, ts));
    }

    /// The positions changed since the last call, by account.
    pub fn take_positions(&mut self) -> Vec<PositionRow> {
        let mut out: Vec<PositionRow> = self
            .dirty
            .drain()
            .map(|(account, (seq, ts))| PositionRow {
                account,
                seq,
                ts,
                pos: self.positions.get(&account).copied().unwrap_or_default(),
            })
            .collect();
        out.sort_unstable_by_key(|r| r.account);
        out
    }
}

fn top(level: Option<(&i64, &(i64, i64))>) -> (i64, i64, u32) {
    match level {
        Some((&p, &(q, c))) => (p, q, u32::try_from(c).unwrap_or(u32::MAX)),
        None => (0, 0, 0),
    }
}

fn check(cmds: &[Command], evs: &[Event], through: u64) -> Result<(), SinkError> {
    for w in cmds.windows(2) {
        if w[1].seq <= w[0].seq {
            return Err(SinkError::CommandOrder { seq: w[1].seq });
        }
    }
    if let Some(c) = cmds.last() {
        if c.seq > through {
            return Err(SinkError::CommandOrder { seq: c.seq });
        }
    }
    // Events follow their commands in seq order: walk both.
    let mut i = 0;
    for e in evs {
        while i < cmds.len() && cmds[i].seq < e.seq {
            i += 1;
        }
        if i == cmds.len() || cmds[i].seq != e.seq {
            return Err(SinkError::EventWithoutCommand { seq: e.seq });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
