//! Where events go: straight into a byte buffer (`apply_batch`) or into a `Vec<Event>`
//! (`OrderBook::apply`). The book is generic over the sink, so both produce the same events.

use super::slab::Order;
use crate::types::{CancelReason, Command, Event, EventKind, Side, EVENT_SIZE};

pub(crate) trait Sink {
    fn push(&mut self, e: &Event);
}

impl Sink for Vec<Event> {
    #[inline]
    fn push(&mut self, e: &Event) {
        Vec::push(self, *e);
    }
}

/// Encodes each event as its `EVENT_SIZE`-byte record.
pub(crate) struct Records<'a>(pub &'a mut Vec<u8>);

impl Sink for Records<'_> {
    #[inline]
    fn push(&mut self, e: &Event) {
        let mut rec = [0u8; EVENT_SIZE];
        e.write(&mut rec);
        self.0.extend_from_slice(&rec);
    }
}

#[inline]
pub(crate) fn rejected(c: &Command, code: u16) -> Event {
    Event {
        kind: EventKind::Rejected as u8,
        side: c.side,
        code,
        seq: c.seq,
        order_id: c.order_id,
        account: c.account,
        client_id: c.client_id,
        price: c.price,
        qty: c.qty,
        ..Event::default()
    }
}

/// An order-scoped event with the order's identity filled in.
#[inline]
fn about(kind: EventKind, seq: u64, o: &Order) -> Event {
    Event {
        kind: kind as u8,
        side: o.side as u8,
        seq,
        order_id: o.id,
        account: o.account,
        client_id: o.client_id,
        price: o.price,
        ..Event::default()
    }
}

#[inline]
pub(crate) fn accepted(seq: u64, o: &Order, qty: i64, is_stop: bool) -> Event {
    Event {
        qty,
        leaves: qty,
        aux: o.stop_price,
        flags: u8::from(is_stop),
        ..about(EventKind::Accepted, seq, o)
    }
}

#[inline]
pub(crate) fn cancelled(seq: u64, o: &Order, reason: CancelReason, qty: i64, leaves: i64) -> Event {
    Event {
        reason: reason as u8,
        qty,
        leaves,
        ..about(EventKind::Cancelled, seq, o)
    }
}

#[inline]
pub(crate) fn replaced(
    seq: u64,
    o: &Order,
    qty: i64,
    old_price: i64,
    old_open: i64,
    kept: bool,
) -> Event {
    Event {
        qty,
        leaves: qty,
        aux: old_price,
        aux2: old_open,
        flags: u8::from(kept),
        ..about(EventKind::Replaced, seq, o)
    }
}

#[inline]
pub(crate) fn triggered(seq: u64, o: &Order, stop_price: i64, last: i64) -> Event {
    Event {
        qty: o.open(),
        aux: stop_price,
        aux2: last,
        ..about(EventKind::Triggered, seq, o)
    }
}

/// A trade of `qty` at `price`; `maker_left`/`taker_left` are the open quantities after it.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn trade(
    seq: u64,
    maker: &Order,
    taker: &Order,
    price: i64,
    qty: i64,
    maker_left: i64,
    taker_left: i64,
    trade_id: u64,
) -> Event {
    Event {
        price,
        qty,
        leaves: maker_left,
        counter_id: taker.id,
        counter_account: taker.account,
        counter_client_id: taker.client_id,
        aux: trade_id as i64,
        aux2: taker_left,
        ..about(EventKind::Trade, seq, maker)
    }
}

#[inline]
pub(crate) fn level_event(seq: u64, side: Side, price: i64, qty: i64, count: u32) -> Event {
    Event {
        kind: EventKind::Level as u8,
        side: side as u8,
        seq,
        price,
        qty,
        aux: i64::from(count),
        ..Event::default()
    }
}
