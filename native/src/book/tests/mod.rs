//! Unit tests of the fast book, one file per feature. Every command in these tests goes
//! through `H::run`, which also checks that `apply_batch` encodes exactly the events `apply`
//! returns, that every invariant holds afterwards, and that a snapshot restores to an equal
//! book. Events are compared in a compact text form (see `show`).

mod amend_cancel;
mod icebergs;
mod new_orders;
mod rejects;
mod snapshots;
mod stops;
mod stp;
mod time;
mod workload;

use super::Book;
use crate::types::{
    BookConfig, Command, Event, EventKind, OrderBook, Side, StpMode, Tif, COMMAND_SIZE, EVENT_SIZE,
    FLAG_END_OF_DAY, FLAG_POST_ONLY,
};

pub(super) const CFG: BookConfig = BookConfig {
    min_price: 1,
    max_price: 1_000_000,
    max_qty: 1_000_000,
};

/// Command builder: new orders default to a GTC limit of account 1.
#[derive(Clone, Copy, Debug)]
pub(super) struct C(pub Command);

impl C {
    fn new_order(side: u8, ord_type: u8, price: i64, qty: i64) -> C {
        C(Command {
            kind: 1,
            side,
            ord_type,
            tif: 1,
            account: 1,
            price,
            qty,
            ..Command::default()
        })
    }
    pub fn buy(price: i64, qty: i64) -> C {
        C::new_order(1, 1, price, qty)
    }
    pub fn sell(price: i64, qty: i64) -> C {
        C::new_order(2, 1, price, qty)
    }
    /// Market IOC (protection 0 = none).
    pub fn market(side: Side, qty: i64) -> C {
        C::new_order(side as u8, 2, 0, qty).tif(Tif::Ioc)
    }
    /// Stop-limit (`price` > 0) or stop-market (`price` = 0, IOC).
    pub fn stop(side: Side, stop: i64, price: i64, qty: i64) -> C {
        let c = C::new_order(side as u8, if price == 0 { 3 } else { 4 }, price, qty);
        let c = if price == 0 { c.tif(Tif::Ioc) } else { c };
        C(Command {
            stop_price: stop,
            ..c.0
        })
    }
    pub fn cancel(order_id: u64) -> C {
        C(Command {
            kind: 2,
            account: 1,
            order_id,
            ..Command::default()
        })
    }
    pub fn amend(order_id: u64, price: i64, qty: i64) -> C {
        C(Command {
            kind: 3,
            account: 1,
            order_id,
            price,
            qty,
            ..Command::default()
        })
    }
    pub fn mass(account: u64, side: u8) -> C {
        C(Command {
            kind: 4,
            account,
            side,
            ..Command::default()
        })
    }
    pub fn advance(ts: u64, end_of_day: bool) -> C {
        let flags = if end_of_day { FLAG_END_OF_DAY } else { 0 };
        C(Command {
            kind: 5,
            ts,
            flags,
            ..Command::default()
        })
    }
    pub fn id(self, order_id: u64) -> C {
        C(Command { order_id, ..self.0 })
    }
    pub fn acct(self, account: u64) -> C {
        C(Command { account, ..self.0 })
    }
    pub fn client(self, client_id: u64) -> C {
        C(Command {
            client_id,
            ..self.0
        })
    }
    pub fn tif(self, tif: Tif) -> C {
        C(Command {
            tif: tif as u8,
            ..self.0
        })
    }
    pub fn gtd(self, expire_ts: u64) -> C {
        C(Command {
            tif: Tif::Gtd as u8,
            expire_ts,
            ..self.0
        })
    }
    pub fn display(self, display_qty: i64) -> C {
        C(Command {
            display_qty,
            ..self.0
        })
    }
    pub fn stp(self, mode: StpMode) -> C {
        C(Command {
            stp: mode as u8,
            ..self.0
        })
    }
    pub fn group(self, stp_group: u64) -> C {
        C(Command {
            stp_group,
            ..self.0
        })
    }
    pub fn post_only(self) -> C {
        C(Command {
            flags: self.0.flags | FLAG_POST_ONLY,
            ..self.0
        })
    }
    pub fn with(self, f: impl FnOnce(&mut Command)) -> C {
        let mut c = self.0;
        f(&mut c);
        C(c)
    }
}

/// Test harness: a book, a sequence counter and a clock.
pub(super) struct H {
    pub book: Book,
    pub seq: u64,
    pub ts: u64,
}

impl H {
    pub fn new() -> H {
        H {
            book: Book::new(CFG),
            seq: 0,
            ts: 1_000,
        }
    }

    /// Apply one command (seq stamped, ts = the harness clock unless set), with all the
    /// cross-checks, returning its events.
    pub fn events(&mut self, c: C) -> Vec<Event> {
        self.seq += 1;
        let mut cmd = c.0;
        cmd.seq = self.seq;
        if cmd.ts == 0 {
            cmd.ts = self.ts;
        }
        let mut via_batch = self.book.clone();
        let mut evs = Vec::new();
        self.book.apply(&cmd, &mut evs);
        assert!(
            evs.iter().all(|e| e.seq == cmd.seq),
            "every event carries the command's seq"
        );

        let mut bytes = Vec::new();
        cmd.encode(&mut bytes);
        let mut out = Vec::new();
        assert_eq!(via_batch.apply_batch(&bytes, &mut out), 1);
        let mut expected = Vec::new();
        evs.iter().for_each(|e| e.encode(&mut expected));
        assert_eq!(
            out, expected,
            "apply_batch encodes the events apply returns"
        );

        if let Err(e) = self.book.check_invariants() {
            panic!("{e} after {cmd:?}");
        }
        let restored = Book::restore(&self.book.snapshot()).expect("snapshot restores");
        assert_eq!(restored.snapshot(), self.book.snapshot());
        evs
    }

    /// Apply one command and show its events.
    pub fn run(&mut self, c: C) -> Vec<String> {
        self.events(c).iter().map(show).collect()
    }

    /// Apply several commands, ignoring their events.
    pub fn setup(&mut self, cs: impl IntoIterator<Item = C>) {
        for c in cs {
            self.events(c);
        }
    }

    /// Resting order ids at a level, queue order.
    pub fn queue(&self, side: Side, price: i64) -> Vec<u64> {
        self.book
            .level_orders(side, price)
            .iter()
            .map(|o| o.order_id)
            .collect()
    }
}

fn side_name(s: u8) -> &'static str {
    match s {
        1 => "buy",
        2 => "sell",
        _ => "side?",
    }
}

fn reason_name(r: u8) -> &'static str {
    match r {
        1 => "user",
        2 => "ioc",
        3 => "fok",
        4 => "stp",
        5 => "expired",
        6 => "mass",
        7 => "protection",
        _ => "reason?",
    }
}

/// Compact text form of an event:
/// `acc <id> <side> <price>x<qty>[ stop@<stop>]`, `rej <code>`,
/// `trade <maker><-<taker> <price>x<qty> m<maker left> t<taker left>`,
/// `cxl <id> <reason> <qty> left<leaves>`, `repl <id> <price>x<qty> was <old price>x<old open> kept|moved`,
/// `trig <id> <price>x<qty> stop@<stop> last<last>`, `lvl <side> <price> <qty>/<count>`.
pub(super) fn show(e: &Event) -> String {
    match EventKind::from_u8(e.kind) {
        Some(EventKind::Accepted) => {
            let stop = if e.flags & 1 != 0 {
                format!(" stop@{}", e.aux)
            } else {
                String::new()
            };
            format!(
                "acc {} {} {}x{}{}",
                e.order_id,
                side_name(e.side),
                e.price,
                e.qty,
                stop
            )
        }
        Some(EventKind::Rejected) => format!("rej {}", e.code),
        Some(EventKind::Admin) => format!("admin {}", e.code),
        Some(EventKind::Trade) => {
            format!(
                "trade {}<-{} {}x{} m{} t{}",
                e.order_id, e.counter_id, e.price, e.qty, e.leaves, e.aux2
            )
        }
        Some(EventKind::Cancelled) => {
            format!(
                "cxl {} {} {} left{}",
                e.order_id,
                reason_name(e.reason),
                e.qty,
                e.leaves
            )
        }
        Some(EventKind::Replaced) => format!(
            "repl {} {}x{} was {}x{} {}",
            e.order_id,
            e.price,
            e.qty,
            e.aux,
            e.aux2,
            if e.flags & 1 != 0 { "kept" } else { "moved" }
        ),
        Some(EventKind::Triggered) => {
            format!(
                "trig {} {}x{} stop@{} last{}",
                e.order_id, e.price, e.qty, e.aux, e.aux2
            )
        }
        Some(EventKind::Level) => {
            format!("lvl {} {} {}/{}", side_name(e.side), e.price, e.qty, e.aux)
        }
        None => format!("kind? {}", e.kind),
    }
}

/// Encode commands as one batch.
pub(super) fn batch(cmds: &[Command]) -> Vec<u8> {
    let mut b = Vec::with_capacity(cmds.len() * COMMAND_SIZE);
    cmds.iter().for_each(|c| c.encode(&mut b));
    b
}

/// Decode a batch of event records.
pub(super) fn decode_events(bytes: &[u8]) -> Vec<Event> {
    bytes
        .chunks_exact(EVENT_SIZE)
        .filter_map(Event::decode)
        .collect()
}

/// Tiny deterministic generator (xorshift64*).
pub(super) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}
