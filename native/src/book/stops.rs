//! The stop book and the trigger cascade.
//!
//! Buy stops are kept by (stop price ascending, arrival), sell stops by (stop price descending,
//! arrival); the sell key stores `!stop_price`, which reverses the order without overflow.
//! After a command has traded, the fronts of both queues are examined; of those that trigger,
//! the earlier arrival goes first. Each stop triggers at most once, so the cascade ends.

use std::collections::BTreeMap;

use super::sink::{triggered, Sink};
use super::slab::{Order, Place};
use super::Book;
use crate::types::{OrdType, Side};

/// Does a stop on `side` with trigger `stop_price` fire at last trade price `last`?
/// Never before the first trade (`last == 0`).
#[inline]
pub(crate) fn triggers(side: Side, stop_price: i64, last: i64) -> bool {
    last > 0
        && match side {
            Side::Buy => last >= stop_price,
            Side::Sell => last <= stop_price,
        }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct StopBook {
    pub buy: BTreeMap<(i64, u64), u32>,
    pub sell: BTreeMap<(i64, u64), u32>,
}

impl StopBook {
    #[inline]
    fn key(o: &Order) -> (i64, u64) {
        match o.side {
            Side::Buy => (o.stop_price, o.arrival),
            Side::Sell => (!o.stop_price, o.arrival),
        }
    }

    fn queue_mut(&mut self, side: Side) -> &mut BTreeMap<(i64, u64), u32> {
        match side {
            Side::Buy => &mut self.buy,
            Side::Sell => &mut self.sell,
        }
    }

    /// Add stop `o` stored at slab index `i`. Returns false if its key is already taken.
    pub(crate) fn insert(&mut self, o: &Order, i: u32) -> bool {
        self.queue_mut(o.side).insert(StopBook::key(o), i).is_none()
    }

    pub(crate) fn remove(&mut self, o: &Order) {
        self.queue_mut(o.side).remove(&StopBook::key(o));
    }

    pub(crate) fn len(&self) -> usize {
        self.buy.len() + self.sell.len()
    }

    /// Slab indices of `side`'s stops in trigger order.
    pub(crate) fn in_trigger_order(&self, side: Side) -> impl Iterator<Item = u32> + '_ {
        match side {
            Side::Buy => self.buy.values(),
            Side::Sell => self.sell.values(),
        }
        .copied()
    }

    /// Take the next stop to trigger at last price `last` out of the stop book, if any.
    fn pop_triggered(&mut self, last: i64) -> Option<u32> {
        let buy = self
            .buy
            .first_key_value()
            .filter(|((sp, _), _)| triggers(Side::Buy, *sp, last))
            .map(|(k, _)| *k);
        let sell = self
            .sell
            .first_key_value()
            .filter(|((nsp, _), _)| triggers(Side::Sell, !*nsp, last))
            .map(|(k, _)| *k);
        match (buy, sell) {
            (Some(b), Some(s)) if b.1 <= s.1 => self.buy.remove(&b),
            (_, Some(s)) => self.sell.remove(&s),
            (Some(b), None) => self.buy.remove(&b),
            (None, None) => None,
        }
    }
}

impl Book {
    /// Trigger stops until none triggers.
    pub(super) fn run_stops<S: Sink>(&mut self, out: &mut S) {
        while let Some(i) = self.stops.pop_triggered(self.stats.last_price) {
            let o = *self.slab.at(i);
            self.slab.at_mut(i).place = Place::Incoming;
            self.trigger(o, Some(i), out);
        }
    }

    /// Emit `Triggered` and enter stop `o` as a market (stop-market, protection = its price)
    /// or limit (stop-limit) order with the same id, TIF and STP. It keeps its `stop_price`
    /// (visible in order views) but no longer sits in the stop book.
    pub(super) fn trigger<S: Sink>(&mut self, mut o: Order, slot: Option<u32>, out: &mut S) {
        out.push(&triggered(
            self.seq,
            &o,
            o.stop_price,
            self.stats.last_price,
        ));
        o.ord_type = match o.ord_type {
            OrdType::StopMarket | OrdType::Market => OrdType::Market,
            OrdType::StopLimit | OrdType::Limit => OrdType::Limit,
        };
        o.place = Place::Incoming;
        self.enter(o, slot, out);
    }
}
