//! Hand-computed expectations for every rule of docs/book.md, one behaviour per test.
//!
//! Events are compared through a compact text form (`show`), e.g. `T1 #1<-#3 5@100 m0 t2`
//! = trade id 1, maker #1, taker #3, 5 lots at 100, maker leaves 0, taker leaves 2.

mod manage;
mod matching;
mod stops;
mod stp;
mod validation;

use super::ReferenceBook;
use crate::types::{
    BookConfig, Command, Event, EventKind, OrdType, OrderBook, Side, Tif, FLAG_END_OF_DAY,
    FLAG_POST_ONLY,
};

fn show(e: &Event) -> String {
    let side = match e.side {
        1 => "B",
        2 => "S",
        _ => "?",
    };
    match EventKind::from_u8(e.kind) {
        Some(EventKind::Accepted) if e.flags & 1 == 1 => {
            format!(
                "A#{} {side} {} q{} stop{}",
                e.order_id, e.price, e.qty, e.aux
            )
        }
        Some(EventKind::Accepted) => format!("A#{} {side} {} q{}", e.order_id, e.price, e.qty),
        Some(EventKind::Rejected) => format!("R{}", e.code),
        Some(EventKind::Admin) => format!("ADM{}", e.code),
        Some(EventKind::Trade) => format!(
            "T{} #{}<-#{} {}@{} m{} t{}",
            e.aux, e.order_id, e.counter_id, e.qty, e.price, e.leaves, e.aux2
        ),
        Some(EventKind::Cancelled) => {
            format!("C#{} r{} q{} l{}", e.order_id, e.reason, e.qty, e.leaves)
        }
        Some(EventKind::Replaced) => format!(
            "P#{} {} q{} was{}/{} k{}",
            e.order_id, e.price, e.qty, e.aux, e.aux2, e.flags
        ),
        Some(EventKind::Triggered) => {
            format!(
                "G#{} {} q{} stop{} last{}",
                e.order_id, e.price, e.qty, e.aux, e.aux2
            )
        }
        Some(EventKind::Level) => format!("L{side}{} {}/{}", e.price, e.qty, e.aux),
        None => format!("?{}", e.kind),
    }
}

/// A book with prices 90..=110 that numbers commands seq 1, 2, 3... and ts = 10 * seq.
struct Harness {
    book: ReferenceBook,
    seq: u64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            book: ReferenceBook::new(BookConfig {
                min_price: 90,
                max_price: 110,
                max_qty: 1_000,
            }),
            seq: 0,
        }
    }

    fn raw(&mut self, cmd: Command) -> Vec<Event> {
        self.seq += 1;
        let cmd = Command {
            seq: self.seq,
            ts: if cmd.ts == 0 { self.seq * 10 } else { cmd.ts },
            ..cmd
        };
        let mut out = Vec::new();
        self.book.apply(&cmd, &mut out);
        assert!(
            out.iter().all(|e| e.seq == self.seq),
            "every event carries the command's seq"
        );
        out
    }

    fn run(&mut self, cmd: Command) -> Vec<String> {
        self.raw(cmd).iter().map(show).collect()
    }

    /// Apply and keep only the non-Level events.
    fn run_quiet(&mut self, cmd: Command) -> Vec<String> {
        self.raw(cmd)
            .iter()
            .filter(|e| e.kind != EventKind::Level as u8)
            .map(show)
            .collect()
    }

    fn queue(&self, side: Side, price: i64) -> Vec<(u64, i64, i64)> {
        self.book
            .level_orders(side, price)
            .iter()
            .map(|o| (o.order_id, o.visible, o.hidden))
            .collect()
    }
}

fn order(side: u8, ord_type: u8, tif: u8, price: i64, qty: i64) -> Command {
    Command {
        kind: 1,
        side,
        ord_type,
        tif,
        price,
        qty,
        account: 1,
        ..Command::default()
    }
}

fn buy(price: i64, qty: i64) -> Command {
    order(1, 1, 1, price, qty)
}

fn sell(price: i64, qty: i64) -> Command {
    order(2, 1, 1, price, qty)
}

fn acct(account: u64, cmd: Command) -> Command {
    Command { account, ..cmd }
}

fn cancel(account: u64, order_id: u64) -> Command {
    Command {
        kind: 2,
        account,
        order_id,
        ..Command::default()
    }
}

fn amend(account: u64, order_id: u64, price: i64, qty: i64) -> Command {
    Command {
        kind: 3,
        account,
        order_id,
        price,
        qty,
        ..Command::default()
    }
}

fn stop(side: u8, ord_type: u8, tif: u8, price: i64, stop_price: i64, qty: i64) -> Command {
    Command {
        stop_price,
        ..order(side, ord_type, tif, price, qty)
    }
}
