//! New orders and the match loop: FOK pre-check, price-time matching with self-trade
//! prevention and iceberg refresh, then the remainder (rest or cancel).

use super::side::{move_to_back, push_back, unlink, Levels};
use super::sink::{accepted, cancelled, rejected, trade, Sink};
use super::slab::{Order, Place, NIL};
use super::stops::triggers;
use super::Book;
use crate::types::{CancelReason, Command, OrdType, Side, StpMode, Tif, FLAG_POST_ONLY};

/// Why the match loop stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Incoming order has no open quantity left.
    Filled,
    /// The opposite side is empty.
    Exhausted,
    /// The best opposite level is beyond the incoming order's limit/protection price.
    PriceLimit,
    /// Self-trade prevention ends the incoming order (cancel-incoming, cancel-both).
    SelfTrade,
}

/// The incoming order's price bound: its limit, or its protection (market; 0 = none).
#[inline]
fn bound(t: &Order) -> Option<i64> {
    match t.ord_type {
        OrdType::Market | OrdType::StopMarket if t.price == 0 => None,
        _ => Some(t.price),
    }
}

/// May an incoming order on `side` bounded by `limit` trade at `price`?
#[inline]
fn acceptable(side: Side, limit: Option<i64>, price: i64) -> bool {
    match (limit, side) {
        (None, _) => true,
        (Some(l), Side::Buy) => price <= l,
        (Some(l), Side::Sell) => price >= l,
    }
}

impl Book {
    pub(super) fn on_new<S: Sink>(&mut self, c: &Command, out: &mut S) {
        let v = match self.validate_new(c) {
            Ok(v) => v,
            Err(r) => return out.push(&rejected(c, r.code())),
        };
        self.next_id = if c.order_id == 0 {
            self.next_id.saturating_add(1)
        } else {
            self.next_id.max(v.id.saturating_add(1))
        };
        let is_stop = matches!(v.ord_type, OrdType::StopMarket | OrdType::StopLimit);
        let mut o = Order {
            id: v.id,
            account: c.account,
            client_id: c.client_id,
            stp_group: c.stp_group,
            price: c.price,
            stop_price: c.stop_price,
            visible: c.qty,
            hidden: 0,
            display: c.display_qty,
            filled: 0,
            expire_ts: if v.tif == Tif::Gtd { c.expire_ts } else { 0 },
            arrival: 0,
            prev: NIL,
            next: NIL,
            level: NIL,
            side: v.side,
            ord_type: v.ord_type,
            tif: v.tif,
            stp: v.stp,
            post_only: c.flags & FLAG_POST_ONLY != 0,
            place: Place::Incoming,
        };
        out.push(&accepted(self.seq, &o, c.qty, is_stop));
        if !is_stop {
            return self.enter(o, None, out);
        }
        o.arrival = self.next_arrival;
        self.next_arrival = self.next_arrival.wrapping_add(1);
        if triggers(o.side, o.stop_price, self.stats.last_price) {
            self.trigger(o, None, out);
        } else {
            o.place = Place::Stop;
            match self.slab.insert(o) {
                Some(i) => {
                    self.index.add(&o, i);
                    self.stops.insert(&o, i);
                }
                None => out.push(&cancelled(
                    self.seq,
                    &o,
                    CancelReason::IocRemainder,
                    o.visible,
                    0,
                )),
            }
        }
    }

    /// Run incoming order `t` (open quantity in `t.visible`) against the book, then rest or
    /// cancel its remainder. `slot` is its slab index if it already has one (amended or
    /// triggered orders keep their slot and index entries); `None` for a brand-new order.
    pub(super) fn enter<S: Sink>(&mut self, mut t: Order, slot: Option<u32>, out: &mut S) {
        if t.tif == Tif::Fok && !self.fok_fillable(&t) {
            out.push(&cancelled(
                self.seq,
                &t,
                CancelReason::FokUnfilled,
                t.visible,
                0,
            ));
            return self.release(slot, &t);
        }
        let end = self.match_incoming(&mut t, out);
        if t.visible == 0 {
            return self.release(slot, &t);
        }
        let reason = match end {
            End::SelfTrade => Some(CancelReason::SelfTrade),
            _ if t.ord_type == OrdType::Market => Some(if end == End::PriceLimit {
                CancelReason::MarketProtection
            } else {
                CancelReason::IocRemainder
            }),
            _ if matches!(t.tif, Tif::Ioc | Tif::Fok) => Some(CancelReason::IocRemainder),
            _ => None,
        };
        match reason {
            Some(r) => {
                out.push(&cancelled(self.seq, &t, r, t.visible, 0));
                self.release(slot, &t);
            }
            None => self.rest(t, slot, out),
        }
    }

    /// Forget an incoming order that is done.
    #[inline]
    fn release(&mut self, slot: Option<u32>, t: &Order) {
        if let Some(i) = slot {
            self.index.remove(t);
            self.slab.free(i);
        }
    }

    /// Could `t` fill completely? Counts whole open quantities (icebergs included) in priority
    /// order at acceptable prices; a self-match ends the count unless the mode cancels resting.
    fn fok_fillable(&self, t: &Order) -> bool {
        let limit = bound(t);
        let key = t.stp_key();
        let mut count: i64 = 0;
        for level in self.levels(t.side.opposite()).best_first() {
            if !acceptable(t.side, limit, level.price) {
                return false;
            }
            for i in super::side::queue(&self.slab, level) {
                let m = self.slab.at(i);
                if t.stp != StpMode::None && m.stp_key() == key {
                    if t.stp == StpMode::CancelResting {
                        continue;
                    }
                    return false;
                }
                count = count.saturating_add(m.open());
                if count >= t.visible {
                    return true;
                }
            }
        }
        false
    }

    /// The match loop: best opposite level first, FIFO within a level, each trade at the
    /// resting order's price for `min(incoming open, resting visible)`.
    fn match_incoming<S: Sink>(&mut self, t: &mut Order, out: &mut S) -> End {
        let limit = bound(t);
        let key = t.stp_key();
        let seq = self.seq;
        let opp: &mut Levels = match t.side {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        let opp_side = opp.side;
        loop {
            if t.visible <= 0 {
                return End::Filled;
            }
            let Some(slot) = opp.best_slot() else {
                return End::Exhausted;
            };
            let level = opp.at_mut(slot);
            let price = level.price;
            if !acceptable(t.side, limit, price) {
                return End::PriceLimit;
            }
            self.changes.touch(opp_side, slot, level);
            let mut stopped = None;
            while t.visible > 0 {
                let mi = opp.at(slot).head;
                if mi == NIL {
                    break;
                }
                let m = self.slab.at_mut(mi);
                if t.stp != StpMode::None && m.stp_key() == key {
                    match t.stp {
                        StpMode::CancelIncoming => {
                            stopped = Some(End::SelfTrade);
                            break;
                        }
                        StpMode::CancelResting | StpMode::CancelBoth | StpMode::None => {
                            let mo = *m;
                            out.push(&cancelled(seq, &mo, CancelReason::SelfTrade, mo.open(), 0));
                            unlink(&mut self.slab, opp, mi);
                            self.index.remove(&mo);
                            self.slab.free(mi);
                            if t.stp == StpMode::CancelBoth {
                                stopped = Some(End::SelfTrade);
                                break;
                            }
                        }
                        StpMode::DecrementCancel => {
                            let d = t.visible.min(m.open());
                            let off = m.reduce(d);
                            let mo = *m;
                            let level = opp.at_mut(slot);
                            level.qty = level.qty.wrapping_sub(off);
                            out.push(&cancelled(seq, &mo, CancelReason::SelfTrade, d, mo.open()));
                            t.visible -= d;
                            out.push(&cancelled(seq, t, CancelReason::SelfTrade, d, t.visible));
                            if mo.open() <= 0 {
                                unlink(&mut self.slab, opp, mi);
                                self.index.remove(&mo);
                                self.slab.free(mi);
                            }
                        }
                    }
                    continue;
                }
                let q = t.visible.min(m.visible).max(0);
                m.visible -= q;
                m.filled = m.filled.wrapping_add(q);
                t.visible -= q;
                t.filled = t.filled.wrapping_add(q);
                let trade_id = self.next_trade_id;
                self.next_trade_id = trade_id.wrapping_add(1);
                out.push(&trade(seq, m, t, price, q, m.open(), t.visible, trade_id));
                let level = opp.at_mut(slot);
                level.qty = level.qty.wrapping_sub(q);
                if m.visible <= 0 {
                    if m.hidden > 0 {
                        // Iceberg refresh: a new slice at the back of the queue.
                        let slice = if m.display > 0 {
                            m.display.min(m.hidden)
                        } else {
                            m.hidden
                        };
                        m.hidden -= slice;
                        m.visible = slice;
                        level.qty = level.qty.wrapping_add(slice);
                        move_to_back(&mut self.slab, opp, mi);
                    } else {
                        let mo = *m;
                        unlink(&mut self.slab, opp, mi);
                        self.index.remove(&mo);
                        self.slab.free(mi);
                    }
                }
                let s = &mut self.stats;
                s.last_price = price;
                s.volume = s.volume.saturating_add(q);
                s.notional = s.notional.saturating_add(i128::from(price) * i128::from(q));
                s.trades = s.trades.wrapping_add(1);
                self.traded = true;
            }
            opp.close_if_empty(slot);
            if let Some(end) = stopped {
                return end;
            }
        }
    }

    /// Put the remainder of `t` at the back of its price level.
    fn rest<S: Sink>(&mut self, mut t: Order, slot: Option<u32>, out: &mut S) {
        let open = t.visible;
        if t.display > 0 {
            t.visible = t.display.min(open);
            t.hidden = open - t.visible;
        }
        t.place = Place::Resting;
        let levels = match t.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let Some((lvl, created)) = levels.open(t.price, self.changes.epoch) else {
            return self.cannot_rest(&t, open, slot, out);
        };
        let i = match slot {
            Some(i) => {
                *self.slab.at_mut(i) = t;
                i
            }
            None => match self.slab.insert(t) {
                Some(i) => {
                    self.index.add(&t, i);
                    i
                }
                None => {
                    levels.close_if_empty(lvl);
                    return self.cannot_rest(&t, open, slot, out);
                }
            },
        };
        if created {
            self.changes.created(t.side, t.price, lvl);
        } else {
            self.changes.touch(t.side, lvl, levels.at_mut(lvl));
        }
        push_back(&mut self.slab, levels, lvl, i);
    }

    /// Only when 2^32 - 1 orders or levels are live: the remainder is cancelled instead.
    fn cannot_rest<S: Sink>(&mut self, t: &Order, open: i64, slot: Option<u32>, out: &mut S) {
        out.push(&cancelled(self.seq, t, CancelReason::IocRemainder, open, 0));
        self.release(slot, t);
    }
}
