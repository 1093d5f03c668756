//! The book's consistency check: structure, totals, indices, and the spec's standing
//! guarantees (never crossed, no stop left that should have triggered). Used by tests after
//! every command and by `restore` to refuse inconsistent snapshots.

use std::collections::BTreeSet;

use super::side::Levels;
use super::slab::{Place, NIL};
use super::stops::triggers;
use super::Book;
use crate::types::{OrdType, Side, Tif};

/// What is inconsistent, in words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("book inconsistent: {0}")]
pub struct Inconsistency(pub String);

fn fail<T>(msg: String) -> Result<T, Inconsistency> {
    Err(Inconsistency(msg))
}

impl Book {
    /// Check every invariant; `Err` names the first one broken.
    pub fn check_invariants(&self) -> Result<(), Inconsistency> {
        let mut resting = 0usize;
        for levels in [&self.bids, &self.asks] {
            resting += self.check_side(levels)?;
        }
        if let (Some(b), Some(a)) = (self.bids.best(), self.asks.best()) {
            if b.price >= a.price {
                return fail(format!("crossed book: bid {} >= ask {}", b.price, a.price));
            }
        }
        self.check_stops()?;
        let live = resting + self.stops.len();
        if self.slab.live() != live {
            return fail(format!(
                "{} live slab slots, {} orders on the book",
                self.slab.live(),
                live
            ));
        }
        self.check_index(live)
    }

    /// Levels strictly ordered, non-empty, indexed by price, totals and counts equal to their
    /// queues.
    fn check_side(&self, levels: &Levels) -> Result<usize, Inconsistency> {
        let side = levels.side;
        let mut orders = 0usize;
        let mut prev_key = None;
        for &(key, slot) in levels.sorted() {
            let level = levels.at(slot);
            if !level.live || key != levels.key(level.price) || prev_key.is_some_and(|k| k >= key) {
                return fail(format!("{side:?} level {} out of order", level.price));
            }
            prev_key = Some(key);
            if levels.slot_of(level.price) != Some(slot) {
                return fail(format!(
                    "{side:?} level {} not indexed by price",
                    level.price
                ));
            }
            if level.count == 0 {
                return fail(format!("{side:?} level {} is empty", level.price));
            }
            let (mut qty, mut count, mut prev) = (0i64, 0u32, NIL);
            let mut cur = level.head;
            while cur != NIL {
                if count >= level.count {
                    return fail(format!(
                        "{side:?} level {} queue longer than its count",
                        level.price
                    ));
                }
                let o = self.slab.at(cur);
                if o.place != Place::Resting
                    || o.side != side
                    || o.price != level.price
                    || o.prev != prev
                    || o.level != slot
                {
                    return fail(format!(
                        "order {} misplaced at {side:?} level {}",
                        o.id, level.price
                    ));
                }
                if o.ord_type != OrdType::Limit || matches!(o.tif, Tif::Ioc | Tif::Fok) {
                    return fail(format!("order {} cannot rest", o.id));
                }
                let iceberg_ok = if o.display > 0 {
                    o.visible <= o.display
                } else {
                    o.hidden == 0
                };
                if o.visible <= 0 || o.hidden < 0 || !iceberg_ok {
                    return fail(format!("order {} has bad quantities", o.id));
                }
                qty = qty.wrapping_add(o.visible);
                count += 1;
                prev = cur;
                cur = o.next;
            }
            if prev != level.tail || count != level.count || qty != level.qty {
                return fail(format!(
                    "{side:?} level {} totals differ from its queue",
                    level.price
                ));
            }
            orders += count as usize;
        }
        let (indexed, live) = levels.census();
        if indexed != levels.len() || live != levels.len() {
            return fail(format!(
                "{side:?} has {indexed} prices indexed and {live} live levels for {}",
                levels.len()
            ));
        }
        Ok(orders)
    }

    /// Stop keys match their orders; no stop should already have triggered.
    fn check_stops(&self) -> Result<(), Inconsistency> {
        for side in [Side::Buy, Side::Sell] {
            for i in self.stops.in_trigger_order(side) {
                let o = self.slab.at(i);
                if o.place != Place::Stop || o.side != side || o.visible <= 0 || o.hidden != 0 {
                    return fail(format!("stop {} misplaced", o.id));
                }
                if !matches!(o.ord_type, OrdType::StopMarket | OrdType::StopLimit) {
                    return fail(format!("stop {} is not a stop order", o.id));
                }
                if o.arrival >= self.next_arrival {
                    return fail(format!(
                        "stop {} arrival {} not below the counter",
                        o.id, o.arrival
                    ));
                }
                if triggers(side, o.stop_price, self.stats.last_price) {
                    return fail(format!("stop {} should have triggered", o.id));
                }
            }
        }
        let keyed = |m: &std::collections::BTreeMap<(i64, u64), u32>, neg: bool| {
            m.iter().all(|(&(k, arrival), &i)| {
                let o = self.slab.at(i);
                o.arrival == arrival && (if neg { !o.stop_price } else { o.stop_price }) == k
            })
        };
        if !keyed(&self.stops.buy, false) || !keyed(&self.stops.sell, true) {
            return fail("stop key differs from its order".to_string());
        }
        Ok(())
    }

    /// Id, client-id and GTD indices describe exactly the live orders.
    fn check_index(&self, live: usize) -> Result<(), Inconsistency> {
        if self.index.ids.len() != live {
            return fail(format!(
                "{} ids indexed, {} live orders",
                self.index.ids.len(),
                live
            ));
        }
        let (mut clients, mut gtd) = (0usize, BTreeSet::new());
        for (i, o) in self.slab.iter() {
            if o.place == Place::Free {
                continue;
            }
            if self.index.by_id(o.id) != Some(i) {
                return fail(format!("order {} not indexed by id", o.id));
            }
            if o.id >= self.next_id && self.next_id != u64::MAX {
                return fail(format!(
                    "order {} not below the id counter {}",
                    o.id, self.next_id
                ));
            }
            if o.account == 0 {
                return fail(format!("order {} has account 0", o.id));
            }
            if o.client_id != 0 {
                clients += 1;
                if self.index.by_client(o.account, o.client_id) != Some(i) {
                    return fail(format!("order {} not indexed by client id", o.id));
                }
            }
            if o.tif == Tif::Gtd {
                gtd.insert((o.expire_ts, o.id));
            } else if o.expire_ts != 0 {
                return fail(format!("order {} has an expiry but is not GTD", o.id));
            }
        }
        if clients != self.index.clients.len() {
            return fail("client-id index has stale entries".to_string());
        }
        if gtd != self.index.gtd {
            return fail("GTD index differs from the GTD orders".to_string());
        }
        Ok(())
    }
}
