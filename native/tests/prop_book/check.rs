//! Comparisons and invariants, written against the `OrderBook` trait so they hold both books.

use std::collections::{BTreeMap, BTreeSet};

use cift_native::book::Book;
use cift_native::reference::ReferenceBook;
use cift_native::types::{Command, Event, EventKind, OrderBook, Side};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::strategy::{live_orders, CFG};

/// Levels deep enough for every price of the configured range.
const ALL: usize = 1000;

/// FNV-1a 64, as docs/book.md specifies `digest()`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A command in one line, naming only its non-zero fields.
pub fn brief(c: &Command) -> String {
    let kind = ["?0", "New", "Cancel", "Amend", "MassCancel", "AdvanceTime"]
        .get(usize::from(c.kind))
        .map_or(format!("kind{}", c.kind), |s| (*s).to_string());
    let fields: [(&str, i128); 15] = [
        ("side", c.side.into()),
        ("ord_type", c.ord_type.into()),
        ("tif", c.tif.into()),
        ("stp", c.stp.into()),
        ("flags", c.flags.into()),
        ("ts", c.ts.into()),
        ("order_id", c.order_id.into()),
        ("account", c.account.into()),
        ("client_id", c.client_id.into()),
        ("price", c.price.into()),
        ("stop_price", c.stop_price.into()),
        ("qty", c.qty.into()),
        ("display_qty", c.display_qty.into()),
        ("expire_ts", c.expire_ts.into()),
        ("stp_group", c.stp_group.into()),
    ];
    let set: Vec<String> = fields
        .iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    format!("{kind} {{ {} }}", set.join(", "))
}

/// Everything observable through the trait (and the fast book's extra queries) is equal.
/// `ids`: the order ids to look up (every id seen so far, and a few never used).
pub fn same_state(r: &ReferenceBook, f: &Book, ids: &BTreeSet<u64>) -> Result<(), TestCaseError> {
    for side in [Side::Buy, Side::Sell] {
        prop_assert_eq!(f.depth(side, ALL), r.depth(side, ALL), "depth {:?}", side);
        for price in CFG.min_price - 1..=CFG.max_price + 1 {
            prop_assert_eq!(
                f.level_orders(side, price),
                r.level_orders(side, price),
                "level_orders {:?} {}",
                side,
                price
            );
        }
        prop_assert_eq!(
            f.stop_orders(side),
            r.stop_orders(side),
            "stop_orders {:?}",
            side
        );
    }
    prop_assert_eq!(f.stats(), r.stats());
    prop_assert_eq!(f.best_bid(), r.depth(Side::Buy, 1).first().copied());
    prop_assert_eq!(f.best_ask(), r.depth(Side::Sell, 1).first().copied());
    prop_assert_eq!(f.order_count(), r.order_count());
    for &id in ids {
        prop_assert_eq!(f.order(id), r.order(id), "order({})", id);
    }
    Ok(())
}

/// The book's standing guarantees, checked from outside.
pub fn invariants(b: &dyn OrderBook) -> Result<(), TestCaseError> {
    let (bids, asks) = (b.depth(Side::Buy, ALL), b.depth(Side::Sell, ALL));
    if let (Some(bid), Some(ask)) = (bids.first(), asks.first()) {
        prop_assert!(
            bid.price < ask.price,
            "crossed: bid {} ask {}",
            bid.price,
            ask.price
        );
    }
    for (side, levels) in [(Side::Buy, &bids), (Side::Sell, &asks)] {
        for pair in levels.windows(2) {
            let better = match side {
                Side::Buy => pair[0].price > pair[1].price,
                Side::Sell => pair[0].price < pair[1].price,
            };
            prop_assert!(better, "{:?} levels out of order: {:?}", side, pair);
        }
        for level in levels.iter() {
            let orders = b.level_orders(side, level.price);
            prop_assert_eq!(
                level.count as usize,
                orders.len(),
                "count at {}",
                level.price
            );
            prop_assert_eq!(level.qty, orders.iter().map(|o| o.visible).sum::<i64>());
            for o in &orders {
                prop_assert!(
                    o.side == side && o.price == level.price && !o.is_stop,
                    "{:?}",
                    o
                );
                prop_assert!(o.visible > 0 && o.hidden >= 0, "{:?}", o);
                if o.display_qty > 0 {
                    prop_assert!(
                        o.visible <= o.display_qty,
                        "iceberg shows too much: {:?}",
                        o
                    );
                } else {
                    prop_assert_eq!(o.hidden, 0, "reserve without display size: {:?}", o);
                }
                prop_assert_eq!(b.order(o.order_id), Some(*o));
            }
        }
    }
    for side in [Side::Buy, Side::Sell] {
        let stops = b.stop_orders(side);
        for o in &stops {
            prop_assert!(
                o.side == side && o.is_stop && o.visible > 0 && o.hidden == 0,
                "{:?}",
                o
            );
            prop_assert_eq!(b.order(o.order_id), Some(*o));
        }
        for pair in stops.windows(2) {
            let ordered = match side {
                Side::Buy => pair[0].stop_price <= pair[1].stop_price,
                Side::Sell => pair[0].stop_price >= pair[1].stop_price,
            };
            prop_assert!(ordered, "{:?} stops out of trigger order: {:?}", side, pair);
        }
        let last = b.stats().last_price;
        if let (Some(front), true) = (stops.first(), last > 0) {
            let triggers = match side {
                Side::Buy => last >= front.stop_price,
                Side::Sell => last <= front.stop_price,
            };
            prop_assert!(
                !triggers,
                "stop left untriggered at last {}: {:?}",
                last,
                front
            );
        }
    }
    let live = live_orders(b);
    let mut ids: Vec<u64> = live.iter().map(|o| o.order_id).collect();
    ids.sort_unstable();
    ids.dedup();
    prop_assert_eq!(ids.len(), live.len(), "an order id is live twice");
    let mut clients: Vec<(u64, u64)> = live
        .iter()
        .filter(|o| o.client_id != 0)
        .map(|o| (o.account, o.client_id))
        .collect();
    let n = clients.len();
    clients.sort_unstable();
    clients.dedup();
    prop_assert_eq!(clients.len(), n, "a (account, client id) is live twice");
    Ok(())
}

/// An L2 book kept only from `Level` events, as a market-data subscriber would.
#[derive(Default)]
pub struct Mirror {
    levels: BTreeMap<(u8, i64), (i64, u32)>,
}

impl Mirror {
    pub fn apply(&mut self, events: &[Event]) {
        for e in events.iter().filter(|e| e.kind == EventKind::Level as u8) {
            if e.qty == 0 && e.aux == 0 {
                self.levels.remove(&(e.side, e.price));
            } else {
                self.levels.insert(
                    (e.side, e.price),
                    (e.qty, u32::try_from(e.aux).unwrap_or(u32::MAX)),
                );
            }
        }
    }

    pub fn check(&self, b: &dyn OrderBook) -> Result<(), TestCaseError> {
        for side in [Side::Buy, Side::Sell] {
            let book: Vec<(i64, i64, u32)> = b
                .depth(side, ALL)
                .iter()
                .map(|l| (l.price, l.qty, l.count))
                .collect();
            let mut mirror: Vec<(i64, i64, u32)> = self
                .levels
                .iter()
                .filter(|((s, _), _)| *s == side as u8)
                .map(|((_, p), (q, c))| (*p, *q, *c))
                .collect();
            if side == Side::Buy {
                mirror.reverse();
            }
            prop_assert_eq!(
                book,
                mirror,
                "L2 rebuilt from Level events differs ({:?})",
                side
            );
        }
        Ok(())
    }
}
