//! New orders, matching, remainders, icebergs, self-trade prevention and stops
//! (docs/book.md "Entering the book", "Icebergs", "Self-trade prevention", "Stops").

use super::{Order, ReferenceBook};
use crate::types::{
    BookReject, CancelReason, Command, Event, EventKind, OrdType, Side, StpMode, Tif,
};

/// Why matching of an incoming order stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// Nothing left open: filled, decremented to zero, or cancelled by self-trade prevention.
    Done,
    /// Open quantity left and no opposite order at all.
    Empty,
    /// Open quantity left and the opposite best price is beyond the order's limit.
    PriceLimit,
}

/// Whether an untriggered stop triggers at `last`.
fn triggers(stop: &Order, last: i64) -> bool {
    match stop.side {
        Side::Buy => last >= stop.stop_price,
        Side::Sell => last <= stop.stop_price,
    }
}

/// Whether the incoming order accepts a resting price (market without protection: any).
fn acceptable(inc: &Order, price: i64) -> bool {
    if inc.ord_type == OrdType::Market && inc.price == 0 {
        return true;
    }
    match inc.side {
        Side::Buy => price <= inc.price,
        Side::Sell => price >= inc.price,
    }
}

/// Reduce an order that is not trading: from the reserve first, then the visible part.
pub(super) fn reduce(o: &mut Order, by: i64) {
    let from_hidden = by.min(o.hidden);
    o.hidden -= from_hidden;
    o.visible -= by - from_hidden;
}

impl ReferenceBook {
    pub(super) fn new_order(
        &mut self,
        cmd: &Command,
        out: &mut Vec<Event>,
    ) -> Result<(), BookReject> {
        let v = self.validate_new(cmd)?;
        let id = if cmd.order_id == 0 {
            let id = self.next_id;
            self.next_id = self.next_id.saturating_add(1);
            id
        } else {
            self.next_id = self.next_id.max(cmd.order_id.saturating_add(1));
            cmd.order_id
        };
        let mut order = Order {
            id,
            account: cmd.account,
            client_id: cmd.client_id,
            side: v.side,
            ord_type: v.ord_type,
            tif: v.tif,
            stp: v.stp,
            stp_group: cmd.stp_group,
            post_only: v.post_only,
            price: cmd.price,
            stop_price: cmd.stop_price,
            visible: cmd.qty,
            hidden: 0,
            display_qty: cmd.display_qty,
            filled: 0,
            // "expire_ts is ignored for other TIFs": not carried by the order.
            expire_ts: if v.tif == Tif::Gtd { cmd.expire_ts } else { 0 },
            priority: 0,
        };
        let is_stop = order.is_stop_type();
        out.push(Event {
            qty: cmd.qty,
            leaves: cmd.qty,
            aux: if is_stop { cmd.stop_price } else { 0 },
            flags: u8::from(is_stop),
            ..order.event(EventKind::Accepted)
        });
        let trades_before = self.stats.trades;
        if is_stop {
            order.priority = self.take_arrival();
            if self.stats.last_price > 0 && triggers(&order, self.stats.last_price) {
                self.trigger(order, out);
            } else {
                let side = order.side;
                self.stop_vec_mut(side).push(order);
                self.sort_stops(side);
            }
        } else {
            self.enter(order, out);
        }
        self.run_stops(trades_before, out);
        Ok(())
    }

    /// An order entering the book as an incoming order: FOK pre-check, matching, remainder.
    pub(super) fn enter(&mut self, mut inc: Order, out: &mut Vec<Event>) {
        if inc.tif == Tif::Fok && !self.fok_fillable(&inc) {
            out.push(inc.cancelled(CancelReason::FokUnfilled, inc.open(), 0));
            return;
        }
        let end = self.match_incoming(&mut inc, out);
        if end == End::Done {
            return;
        }
        let rests = matches!(inc.tif, Tif::Gtc | Tif::Day | Tif::Gtd);
        if inc.ord_type == OrdType::Limit && rests {
            self.rest(inc);
            return;
        }
        let reason = if inc.ord_type == OrdType::Market && end == End::PriceLimit {
            CancelReason::MarketProtection
        } else {
            CancelReason::IocRemainder
        };
        out.push(inc.cancelled(reason, inc.open(), 0));
    }

    /// FOK pre-check: walk opposite orders in priority order at acceptable prices, counting each
    /// order's whole open quantity; a same-STP-key order ends the walk (mode cancel-resting:
    /// skipped).
    fn fok_fillable(&self, inc: &Order) -> bool {
        let mut count: i64 = 0;
        for r in self.side_vec(inc.side.opposite()) {
            if count >= inc.open() || !acceptable(inc, r.price) {
                break;
            }
            if inc.stp != StpMode::None && r.stp_key() == inc.stp_key() {
                if inc.stp == StpMode::CancelResting {
                    continue;
                }
                break;
            }
            count = count.saturating_add(r.open());
        }
        count >= inc.open()
    }

    /// Match `inc` against the opposite side while it is open and the best price is acceptable.
    pub(super) fn match_incoming(&mut self, inc: &mut Order, out: &mut Vec<Event>) -> End {
        let opp = inc.side.opposite();
        loop {
            if inc.open() == 0 {
                return End::Done;
            }
            let Some(front) = self.side_vec(opp).first().cloned() else {
                return End::Empty;
            };
            if !acceptable(inc, front.price) {
                return End::PriceLimit;
            }
            if inc.stp != StpMode::None && front.stp_key() == inc.stp_key() {
                if self.self_match(inc, front, out) {
                    return End::Done;
                }
                continue;
            }
            self.trade(inc, out);
        }
    }

    /// Apply the incoming order's STP mode against its own resting order `front` (the front of
    /// the opposite side). Returns true when the incoming order is finished.
    fn self_match(&mut self, inc: &mut Order, front: Order, out: &mut Vec<Event>) -> bool {
        let opp = front.side;
        match inc.stp {
            StpMode::None => false,
            StpMode::CancelIncoming => {
                out.push(inc.cancelled(CancelReason::SelfTrade, inc.open(), 0));
                true
            }
            StpMode::CancelResting | StpMode::CancelBoth => {
                self.pop_front(opp);
                out.push(front.cancelled(CancelReason::SelfTrade, front.open(), 0));
                if inc.stp == StpMode::CancelBoth {
                    out.push(inc.cancelled(CancelReason::SelfTrade, inc.open(), 0));
                    return true;
                }
                false
            }
            StpMode::DecrementCancel => {
                let d = inc.open().min(front.open());
                let mut resting = front;
                reduce(&mut resting, d);
                out.push(resting.cancelled(CancelReason::SelfTrade, d, resting.open()));
                if resting.open() == 0 {
                    self.pop_front(opp);
                } else if let Some(slot) = self.side_vec_mut(opp).first_mut() {
                    *slot = resting;
                }
                reduce(inc, d);
                out.push(inc.cancelled(CancelReason::SelfTrade, d, inc.open()));
                inc.open() == 0
            }
        }
    }

    /// One trade between `inc` and the front order of the opposite side, at the resting price.
    fn trade(&mut self, inc: &mut Order, out: &mut Vec<Event>) {
        let opp = inc.side.opposite();
        let Some(mut maker) = self.pop_front(opp) else {
            return;
        };
        let qty = inc.open().min(maker.visible);
        maker.visible -= qty;
        maker.filled = maker.filled.saturating_add(qty);
        inc.visible -= qty;
        inc.filled = inc.filled.saturating_add(qty);
        self.stats.trades += 1;
        self.stats.last_price = maker.price;
        self.stats.volume = self.stats.volume.saturating_add(qty);
        self.stats.notional += i128::from(maker.price) * i128::from(qty);
        out.push(Event {
            qty,
            leaves: maker.open(),
            counter_id: inc.id,
            counter_account: inc.account,
            counter_client_id: inc.client_id,
            aux: self.stats.trades as i64,
            aux2: inc.open(),
            ..maker.event(EventKind::Trade)
        });
        if maker.visible > 0 {
            // Partially filled: same place, front of the queue.
            self.side_vec_mut(opp).insert(0, maker);
        } else if maker.hidden > 0 {
            // Iceberg refresh: new slice at the back of its level.
            maker.visible = maker.display_qty.min(maker.hidden);
            maker.hidden -= maker.visible;
            maker.priority = self.take_time();
            self.side_vec_mut(opp).push(maker);
            self.sort_side(opp);
        }
    }

    /// Remove the order at the front of `side` (the best price's oldest order).
    fn pop_front(&mut self, side: Side) -> Option<Order> {
        let orders = self.side_vec_mut(side);
        if orders.is_empty() {
            None
        } else {
            Some(orders.remove(0))
        }
    }

    /// Put an order's remainder on its side at the back of its price level.
    pub(super) fn rest(&mut self, mut o: Order) {
        let open = o.open();
        o.visible = if o.display_qty > 0 {
            o.display_qty.min(open)
        } else {
            open
        };
        o.hidden = open - o.visible;
        o.priority = self.take_time();
        let side = o.side;
        self.side_vec_mut(side).push(o);
        self.sort_side(side);
    }

    /// After a command that traded: trigger stops until none triggers. Each round looks at the
    /// front of both stop queues and takes, of those that trigger, the one that arrived first.
    pub(super) fn run_stops(&mut self, trades_before: u64, out: &mut Vec<Event>) {
        if self.stats.trades == trades_before {
            return;
        }
        loop {
            let last = self.stats.last_price;
            let front =
                |v: &Vec<Order>| v.first().filter(|o| triggers(o, last)).map(|o| o.priority);
            let side = match (front(&self.buy_stops), front(&self.sell_stops)) {
                (Some(b), Some(s)) if s < b => Side::Sell,
                (Some(_), _) => Side::Buy,
                (None, Some(_)) => Side::Sell,
                (None, None) => return,
            };
            let stops = self.stop_vec_mut(side);
            if stops.is_empty() {
                return;
            }
            let stop = stops.remove(0);
            self.trigger(stop, out);
        }
    }

    /// Emit `Triggered` and enter the stop as a market (stop-market) or limit (stop-limit) order.
    fn trigger(&mut self, mut stop: Order, out: &mut Vec<Event>) {
        out.push(Event {
            qty: stop.open(),
            aux: stop.stop_price,
            aux2: self.stats.last_price,
            ..stop.event(EventKind::Triggered)
        });
        stop.ord_type = if stop.ord_type == OrdType::StopMarket {
            OrdType::Market
        } else {
            OrdType::Limit
        };
        self.enter(stop, out);
    }
}
