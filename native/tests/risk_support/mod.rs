//! Shared harness of the risk tests: a risk engine in front of one real book per symbol, driven
//! the way the daemon drives them (stamp seq/ts, check, apply what passed, feed the events back).
#![allow(dead_code)]

use cift_native::book::Book;
use cift_native::risk::{AccountLimits, RiskEngine, RiskReject, SymbolRisk};
use cift_native::types::{BookConfig, Command, Event, OrderBook, COMMAND_SIZE, EVENT_SIZE};

pub const SYM: u32 = 7;
pub const BUY: u8 = 1;
pub const SELL: u8 = 2;

pub struct H {
    pub risk: RiskEngine,
    pub books: Vec<(u32, Book)>,
    pub seq: u64,
    pub ts: u64,
    /// Nanoseconds between consecutive commands.
    pub step: u64,
}

impl H {
    pub fn new(symbols: Vec<SymbolRisk>, limits: AccountLimits) -> H {
        let books = symbols
            .iter()
            .map(|s| {
                (
                    s.symbol,
                    Book::new(BookConfig {
                        min_price: 1,
                        max_price: 1_000_000_000,
                        max_qty: cift_native::types::DEFAULT_MAX_QTY,
                    }),
                )
            })
            .collect();
        let risk = RiskEngine::new(symbols, limits).expect("valid config");
        H {
            risk,
            books,
            seq: 0,
            ts: 1_000_000_000,
            step: 1_000,
        }
    }

    /// One symbol `SYM` with the given checks and default limits.
    pub fn one(sym: SymbolRisk, limits: AccountLimits) -> H {
        H::new(vec![sym], limits)
    }

    fn stamp(&mut self, mut c: Command) -> Command {
        self.seq += 1;
        self.ts += self.step;
        c.seq = self.seq;
        c.ts = self.ts;
        c
    }

    fn book(&mut self, symbol: u32) -> &mut Book {
        let i = self
            .books
            .iter()
            .position(|(s, _)| *s == symbol)
            .expect("symbol has a book");
        &mut self.books[i].1
    }

    /// Check one command; if it passes, apply it to the book and feed the events back.
    pub fn send_to(&mut self, symbol: u32, c: Command) -> Result<Vec<Event>, RiskReject> {
        let c = self.stamp(c);
        self.risk.check(symbol, &c)?;
        let mut out = Vec::new();
        self.book(symbol).apply(&c, &mut out);
        let mut records = Vec::new();
        for e in &out {
            e.encode(&mut records);
        }
        self.risk
            .on_events(symbol, &records)
            .expect("well-formed events");
        Ok(out)
    }

    pub fn send(&mut self, c: Command) -> Result<Vec<Event>, RiskReject> {
        self.send_to(SYM, c)
    }

    /// The reject code of `c` (0 = passed).
    pub fn code(&mut self, c: Command) -> u16 {
        self.send(c).err().map_or(0, RiskReject::code)
    }

    /// Check a whole batch first (as the risk actor does), then apply what passed to the books
    /// and feed back their events. Returns the verdicts.
    pub fn batch(&mut self, cmds: &[(u32, Command)]) -> Vec<u16> {
        self.batch_full(cmds).verdicts
    }

    /// `batch`, returning everything a replica needs to follow: the stamped records, verdicts
    /// and the event records of each symbol's book, in order.
    pub fn batch_full(&mut self, cmds: &[(u32, Command)]) -> Batch {
        let mut b = Batch::default();
        let mut stamped = Vec::new();
        for &(s, c) in cmds {
            let c = self.stamp(c);
            b.symbols.push(s);
            c.encode(&mut b.records);
            stamped.push((s, c));
        }
        self.risk
            .check_batch(&b.symbols, &b.records, &mut b.verdicts)
            .expect("well-formed batch");
        assert_eq!(b.verdicts.len(), b.records.len() / COMMAND_SIZE);
        for (&(s, c), &v) in stamped.iter().zip(&b.verdicts) {
            if v == 0 {
                let mut rec = Vec::new();
                c.encode(&mut rec);
                let mut events = Vec::new();
                self.book(s).apply_batch(&rec, &mut events);
                assert_eq!(events.len() % EVENT_SIZE, 0);
                self.risk.on_events(s, &events).expect("well-formed events");
                b.events.push((s, events));
            }
        }
        b
    }
}

#[derive(Default)]
pub struct Batch {
    pub symbols: Vec<u32>,
    pub records: Vec<u8>,
    pub verdicts: Vec<u16>,
    /// Event records per passed command: (symbol, records).
    pub events: Vec<(u32, Vec<u8>)>,
}

impl Batch {
    /// Make `r` follow this batch exactly as the engine that produced it did.
    pub fn replay(&self, r: &mut RiskEngine) {
        let mut verdicts = Vec::new();
        r.check_batch(&self.symbols, &self.records, &mut verdicts)
            .expect("well-formed batch");
        assert_eq!(verdicts, self.verdicts, "replica gave other verdicts");
        for (s, events) in &self.events {
            r.on_events(*s, events).expect("well-formed events");
        }
    }

    pub fn decoded_events(&self) -> Vec<Event> {
        self.events
            .iter()
            .flat_map(|(_, recs)| recs.chunks_exact(EVENT_SIZE).filter_map(Event::decode))
            .collect()
    }
}

fn order(account: u64, side: u8, ord_type: u8, tif: u8, price: i64, qty: i64) -> Command {
    Command {
        kind: 1,
        side,
        ord_type,
        tif,
        account,
        price,
        qty,
        ..Command::default()
    }
}

/// GTC limit order.
pub fn lim(account: u64, side: u8, price: i64, qty: i64) -> Command {
    order(account, side, 1, 1, price, qty)
}

/// IOC limit order.
pub fn ioc(account: u64, side: u8, price: i64, qty: i64) -> Command {
    order(account, side, 1, 4, price, qty)
}

/// Market IOC with protection price (0 = none).
pub fn mkt(account: u64, side: u8, protection: i64, qty: i64) -> Command {
    order(account, side, 2, 4, protection, qty)
}

/// GTC stop-limit.
pub fn stop_lim(account: u64, side: u8, stop: i64, price: i64, qty: i64) -> Command {
    Command {
        stop_price: stop,
        ..order(account, side, 4, 1, price, qty)
    }
}

/// IOC stop-market with protection price (0 = none).
pub fn stop_mkt(account: u64, side: u8, stop: i64, protection: i64, qty: i64) -> Command {
    Command {
        stop_price: stop,
        ..order(account, side, 3, 4, protection, qty)
    }
}

pub fn cancel(account: u64, order_id: u64) -> Command {
    Command {
        kind: 2,
        account,
        order_id,
        ..Command::default()
    }
}

pub fn amend(account: u64, order_id: u64, price: i64, qty: i64) -> Command {
    Command {
        kind: 3,
        account,
        order_id,
        price,
        qty,
        ..Command::default()
    }
}

pub fn mass_cancel(account: u64, side: u8) -> Command {
    Command {
        kind: 4,
        account,
        side,
        ..Command::default()
    }
}

/// AdvanceTime with the end-of-day flag.
pub fn end_of_day() -> Command {
    Command {
        kind: 5,
        flags: 2,
        ..Command::default()
    }
}

pub fn with_client(mut c: Command, client_id: u64) -> Command {
    c.client_id = client_id;
    c
}

/// The order id the book gave in these events' `Accepted`.
pub fn accepted_id(events: &[Event]) -> u64 {
    events
        .iter()
        .find(|e| e.kind == 1)
        .map(|e| e.order_id)
        .expect("accepted")
}
