//! The fast limit order book: price-time priority over a slab of orders.
//!
//! Semantics are specified in `docs/book.md`; the command/event vocabulary in `crate::types`.
//! Layout:
//! - `slab`: order storage (u32 indices, free list, intrusive FIFO links);
//! - `side`: price levels per side (level slab, price priority with the best at the end of a
//!   sorted `Vec`, price -> level map);
//! - `index`: order id / client id / GTD expiry lookups;
//! - `changes`: per-command level-change coalescing into `Level` events;
//! - `sink`: event construction and output (records or `Event`s);
//! - `validate`: new-order validation and cancel/amend target lookup;
//! - `matching`: new orders, FOK check, the match loop, resting;
//! - `commands`: cancel, amend, mass cancel, time;
//! - `stops`: the stop book and trigger cascade;
//! - `snapshot`: canonical versioned snapshot and restore;
//! - `invariants`: the consistency check used by tests and by `restore`.

mod changes;
mod commands;
mod index;
mod invariants;
mod matching;
mod side;
mod sink;
mod slab;
mod snapshot;
mod stops;
mod validate;

#[cfg(test)]
mod tests;

pub use invariants::Inconsistency;
pub use snapshot::SnapshotError;

use changes::Changes;
use index::Index;
use side::Levels;
use sink::{rejected, Records, Sink};
use slab::{Order, Place, Slab};
use stops::StopBook;

use crate::types::{
    BookConfig, BookReject, CmdKind, Command, Event, LevelView, OrderBook, OrderView, Side,
    TradeStats, COMMAND_SIZE,
};

/// One symbol's order book. Deterministic: the same commands give the same events, byte for
/// byte, and `snapshot`/`restore` carry the whole state.
#[derive(Clone, Debug)]
pub struct Book {
    cfg: BookConfig,
    slab: Slab,
    bids: Levels,
    asks: Levels,
    index: Index,
    stops: StopBook,
    next_id: u64,
    next_trade_id: u64,
    next_arrival: u64,
    stats: TradeStats,
    changes: Changes,
    /// The current command's sequence number, stamped on every event.
    seq: u64,
    /// Whether the current command has traded (stops must be checked).
    traded: bool,
    /// Reusable buffers for mass cancel and expiry.
    scratch: Vec<u32>,
    scratch_ids: Vec<u64>,
}

impl Book {
    pub fn new(cfg: BookConfig) -> Book {
        Book {
            cfg,
            slab: Slab::default(),
            bids: Levels::new(Side::Buy),
            asks: Levels::new(Side::Sell),
            index: Index::default(),
            stops: StopBook::default(),
            next_id: 1,
            next_trade_id: 1,
            next_arrival: 1,
            stats: TradeStats::default(),
            changes: Changes::default(),
            seq: 0,
            traded: false,
            scratch: Vec::new(),
            scratch_ids: Vec::new(),
        }
    }

    pub fn config(&self) -> BookConfig {
        self.cfg
    }

    /// Apply every whole `COMMAND_SIZE` record in `cmds`, appending `EVENT_SIZE` event records
    /// to `out`. A trailing partial record is ignored. Returns the number of commands applied.
    pub fn apply_batch(&mut self, cmds: &[u8], out: &mut Vec<u8>) -> usize {
        let mut sink = Records(out);
        let mut n = 0;
        for rec in cmds.chunks_exact(COMMAND_SIZE) {
            if let Some(c) = Command::decode(rec) {
                self.process(&c, &mut sink);
                n += 1;
            }
        }
        n
    }

    pub fn best_bid(&self) -> Option<LevelView> {
        self.bids.best().map(|l| l.view())
    }

    pub fn best_ask(&self) -> Option<LevelView> {
        self.asks.best().map(|l| l.view())
    }

    /// (sum of visible bid qty, sum of visible ask qty) over the top `levels` levels of each side.
    pub fn depth_totals(&self, levels: usize) -> (i64, i64) {
        let sum = |l: &Levels| {
            l.best_first()
                .take(levels)
                .fold(0i64, |a, l| a.wrapping_add(l.qty))
        };
        (sum(&self.bids), sum(&self.asks))
    }

    /// Number of live orders (resting + stop).
    pub fn order_count(&self) -> usize {
        self.index.ids.len()
    }

    /// FNV-1a 64 of `snapshot()`: equal for equal states.
    pub fn digest(&self) -> u64 {
        snapshot::fnv1a(&self.snapshot())
    }

    /// One command, start to end: its own events, any stop cascade, then the level events.
    #[inline]
    fn process<S: Sink>(&mut self, c: &Command, out: &mut S) {
        self.seq = c.seq;
        self.traded = false;
        match CmdKind::from_u8(c.kind) {
            Some(CmdKind::New) => self.on_new(c, out),
            Some(CmdKind::Cancel) => self.on_cancel(c, out),
            Some(CmdKind::Amend) => self.on_amend(c, out),
            Some(CmdKind::MassCancel) => self.on_mass_cancel(c, out),
            Some(CmdKind::AdvanceTime) => self.on_advance_time(c, out),
            // Trading controls are the risk engine's; a book never executes one.
            Some(CmdKind::Admin) | None => {
                out.push(&rejected(c, BookReject::InvalidCommand.code()))
            }
        }
        if self.traded {
            self.run_stops(out);
        }
        self.changes.flush(self.seq, &self.bids, &self.asks, out);
    }

    #[inline]
    fn levels(&self, side: Side) -> &Levels {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn view(o: &Order) -> OrderView {
        OrderView {
            order_id: o.id,
            account: o.account,
            client_id: o.client_id,
            side: o.side,
            ord_type: o.ord_type,
            tif: o.tif,
            price: o.price,
            stop_price: o.stop_price,
            visible: o.visible,
            hidden: o.hidden,
            display_qty: o.display,
            filled: o.filled,
            expire_ts: o.expire_ts,
            is_stop: o.place == Place::Stop,
        }
    }
}

impl OrderBook for Book {
    fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        self.process(cmd, out);
    }

    fn depth(&self, side: Side, n: usize) -> Vec<LevelView> {
        self.levels(side)
            .best_first()
            .take(n)
            .map(|l| l.view())
            .collect()
    }

    fn level_orders(&self, side: Side, price: i64) -> Vec<OrderView> {
        let levels = self.levels(side);
        match levels.slot_of(price) {
            Some(s) => side::queue(&self.slab, levels.at(s))
                .map(|i| Book::view(self.slab.at(i)))
                .collect(),
            None => Vec::new(),
        }
    }

    fn stop_orders(&self, side: Side) -> Vec<OrderView> {
        self.stops
            .in_trigger_order(side)
            .map(|i| Book::view(self.slab.at(i)))
            .collect()
    }

    fn order(&self, order_id: u64) -> Option<OrderView> {
        self.index
            .by_id(order_id)
            .map(|i| Book::view(self.slab.at(i)))
    }

    fn stats(&self) -> TradeStats {
        self.stats
    }
}
