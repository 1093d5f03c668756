//! Post-trade: the book's events keep live orders, exposure, positions and the last price.
//!
//! - `Accepted`: the in-flight new order gets its order id and the book's open quantity (an
//!   order the engine did not check is tracked from the event);
//! - `Rejected`: the in-flight new order or amend reservation is released (a new order's client
//!   id is free again);
//! - `Trade`: both orders' open quantities, both accounts' positions, the last price;
//! - `Cancelled` (any reason: user, IOC, FOK, STP, expiry, mass cancel, protection): the order's
//!   open quantity becomes `leaves`;
//! - `Replaced`: the amend reservation is released and the order takes its new price and size;
//! - `Triggered`: the stop's price band reference becomes the symbol's;
//! - `Level`: ignored.

use super::config::RiskError;
use super::orders::{LiveOrder, Pending};
use super::RiskEngine;
use crate::types::{Event, EventKind, OrdType, Side, EVENT_SIZE};

impl RiskEngine {
    /// Feed the event records (`EVENT_SIZE` bytes each) that `symbol`'s book produced, in order.
    pub fn on_events(&mut self, symbol: u32, events: &[u8]) -> Result<(), RiskError> {
        if !events.len().is_multiple_of(EVENT_SIZE) {
            return Err(RiskError::BadBuffer {
                what: "event",
                len: events.len(),
                size: EVENT_SIZE,
            });
        }
        let si = self.symbol_index(symbol)?;
        for rec in events.chunks_exact(EVENT_SIZE) {
            if rec.first() == Some(&(EventKind::Level as u8)) {
                continue;
            }
            if let Some(e) = Event::decode(rec) {
                self.event(si, &e);
            }
        }
        Ok(())
    }

    /// Feed one decoded event of `symbol`'s book.
    pub fn on_event(&mut self, symbol: u32, e: &Event) -> Result<(), RiskError> {
        let si = self.symbol_index(symbol)?;
        self.event(si, e);
        Ok(())
    }

    fn event(&mut self, si: u32, e: &Event) {
        match EventKind::from_u8(e.kind) {
            Some(EventKind::Accepted) => self.accepted(si, e),
            Some(EventKind::Rejected) => {
                if let Some(p) = self.orders.pending.remove(e.seq) {
                    self.release(p);
                }
            }
            Some(EventKind::Trade) => self.trade(si, e),
            Some(EventKind::Cancelled) => {
                if let Some(h) = self.orders.find_id(si, e.order_id) {
                    let price = self.orders.get(h).map_or(0, |o| o.price);
                    self.update_order(h, price, e.leaves);
                }
            }
            Some(EventKind::Replaced) => self.replaced(si, e),
            Some(EventKind::Triggered) => {
                if let Some(o) = self
                    .orders
                    .find_id(si, e.order_id)
                    .and_then(|h| self.orders.get_mut(h))
                {
                    o.triggered = true;
                }
            }
            Some(EventKind::Level | EventKind::Admin) | None => {}
        }
    }

    /// Undo an in-flight command's reservation (the book rejected it, or its answer can no
    /// longer arrive).
    pub(super) fn release(&mut self, p: Pending) {
        match p {
            Pending::New { handle, day } => {
                if let Some(o) = self.remove_order(handle) {
                    if o.client_id != 0 && day == self.day {
                        self.client_ids.remove(&(o.acct, o.client_id));
                    }
                }
            }
            Pending::Amend {
                acct,
                holding,
                side,
                qty,
                notional,
                ..
            } => {
                self.usage(acct, holding, side, -qty, -notional, 0);
            }
        }
    }

    fn accepted(&mut self, si: u32, e: &Event) {
        match self.orders.pending.remove(e.seq) {
            Some(Pending::New { handle, .. }) => {
                self.assign_id(handle, e.order_id);
                let price = self.orders.get(handle).map_or(0, |o| o.price);
                self.update_order(handle, price, e.leaves);
            }
            other => {
                if let Some(p) = other {
                    self.orders.pending.insert(e.seq, p);
                }
                self.track_unchecked(si, e);
            }
        }
    }

    /// An accepted order that did not pass `check` here (e.g. entered before the engine was
    /// attached): track it from what the event says.
    fn track_unchecked(&mut self, si: u32, e: &Event) {
        let Some(side) = Side::from_u8(e.side) else {
            return;
        };
        if e.account == 0 || e.leaves <= 0 || self.orders.find_id(si, e.order_id).is_some() {
            return;
        }
        let ord_type = match (e.aux != 0, e.price != 0) {
            (true, true) => OrdType::StopLimit,
            (true, false) => OrdType::StopMarket,
            (false, true) => OrdType::Limit,
            (false, false) => OrdType::Market,
        };
        let reference = self.symbols.get(si as usize).map_or(0, |s| s.reference());
        let price = [e.price, e.aux, reference]
            .into_iter()
            .find(|&p| p > 0)
            .unwrap_or(0);
        let a = self.account_index(e.account);
        let holding = self.holding_index(a, si);
        self.insert_order(LiveOrder {
            sym: si,
            acct: a,
            holding,
            side,
            ord_type,
            triggered: false,
            price,
            stop_price: e.aux,
            open: e.leaves,
            client_id: e.client_id,
            order_id: e.order_id,
            seq: 0,
        });
    }

    fn trade(&mut self, si: u32, e: &Event) {
        let Some(maker_side) = Side::from_u8(e.side) else {
            return;
        };
        if let Some(s) = self.symbols.get_mut(si as usize) {
            s.last_price = e.price;
        }
        let parties = [
            (e.order_id, e.leaves, e.account, maker_side),
            (
                e.counter_id,
                e.aux2,
                e.counter_account,
                maker_side.opposite(),
            ),
        ];
        for (order_id, open, account, side) in parties {
            match self.orders.find_id(si, order_id) {
                Some(h) => {
                    let (price, a, held) = self
                        .orders
                        .get(h)
                        .map_or((0, 0, 0), |o| (o.price, o.acct, o.holding));
                    self.update_order(h, price, open);
                    self.fill_holding(a, held, side, e.qty, e.price);
                }
                None => self.fill(account, si, side, e.qty, e.price),
            }
        }
    }

    fn replaced(&mut self, si: u32, e: &Event) {
        let reservation = match self.orders.pending.remove(e.seq) {
            Some(p @ Pending::Amend { .. }) => Some(p),
            Some(p) => {
                self.orders.pending.insert(e.seq, p);
                None
            }
            None => None,
        };
        let hint = match reservation {
            Some(Pending::Amend { order, .. }) => order,
            _ => u32::MAX,
        };
        let target = self.orders.find_id_hinted(hint, si, e.order_id);
        let Some((h, o)) = target.and_then(|h| Some((h, *self.orders.get(h)?))) else {
            if let Some(p) = reservation {
                self.release(p);
            }
            return;
        };
        let price = if e.price > 0 { e.price } else { o.price };
        match reservation {
            // The usual case: the reservation was made for this order. Its release and the
            // order's new size are one change of usage.
            Some(Pending::Amend {
                acct,
                holding,
                side,
                qty,
                notional,
                ..
            }) if (acct, holding, side) == (o.acct, o.holding, o.side) => {
                self.resize_order(h, price, e.leaves, qty, notional);
            }
            Some(p) => {
                self.release(p);
                self.update_order(h, price, e.leaves);
            }
            None => self.update_order(h, price, e.leaves),
        }
    }
}
