//! Order storage: a slab (`Vec<Order>` plus a free list) addressed by `u32` indices.
//!
//! Orders never move once stored, so price levels link them into FIFO queues through the
//! intrusive `prev`/`next` indices. Freed slots are reused, so steady-state order flow does not
//! allocate. Every accessor is total: an index outside the slab (which only a bug could produce)
//! reads and writes a detached sentinel instead of panicking; `Book::check_invariants` finds
//! such inconsistencies in tests.

use crate::types::{OrdType, Side, StpMode, Tif};

/// "No order": the end of a FIFO queue.
pub(crate) const NIL: u32 = u32::MAX;

/// Where a stored order lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Slot on the free list.
    Free,
    /// Linked into the FIFO queue of its price level.
    Resting,
    /// Waiting in the stop book.
    Stop,
    /// Being matched by the current command (an amended or triggered order).
    Incoming,
}

/// One order. For an incoming (taker) order `visible` holds its whole open quantity and
/// `hidden` is 0; the split into display and reserve happens when it rests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Order {
    pub id: u64,
    pub account: u64,
    pub client_id: u64,
    pub stp_group: u64,
    /// Limit price, or protection price for market/stop-market (0 = none).
    pub price: i64,
    /// Trigger price while the order is a stop; 0 otherwise.
    pub stop_price: i64,
    pub visible: i64,
    /// Iceberg reserve.
    pub hidden: i64,
    /// Iceberg display size (0 = fully visible).
    pub display: i64,
    pub filled: i64,
    /// Expiry for GTD orders; 0 for every other time in force.
    pub expire_ts: u64,
    /// Stop arrival number (trigger tie-break).
    pub arrival: u64,
    pub prev: u32,
    pub next: u32,
    /// Slot of the price level the order rests on (see `side::Levels`).
    pub level: u32,
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: Tif,
    pub stp: StpMode,
    pub post_only: bool,
    pub place: Place,
}

impl Order {
    /// A detached placeholder (the sentinel slot, fresh free slots).
    pub(crate) const EMPTY: Order = Order {
        id: 0,
        account: 0,
        client_id: 0,
        stp_group: 0,
        price: 0,
        stop_price: 0,
        visible: 0,
        hidden: 0,
        display: 0,
        filled: 0,
        expire_ts: 0,
        arrival: 0,
        prev: NIL,
        next: NIL,
        level: NIL,
        side: Side::Buy,
        ord_type: OrdType::Limit,
        tif: Tif::Gtc,
        stp: StpMode::None,
        post_only: false,
        place: Place::Free,
    };

    /// Open quantity: visible plus reserve.
    #[inline]
    pub(crate) fn open(&self) -> i64 {
        self.visible.wrapping_add(self.hidden)
    }

    /// Self-trade key: the STP group when set, else the account.
    #[inline]
    pub(crate) fn stp_key(&self) -> u64 {
        if self.stp_group != 0 {
            self.stp_group
        } else {
            self.account
        }
    }

    /// Take `d` (<= open) away without a trade: reserve first, then the visible part.
    /// Returns how much came off the visible part.
    #[inline]
    pub(crate) fn reduce(&mut self, d: i64) -> i64 {
        let from_hidden = d.min(self.hidden);
        self.hidden -= from_hidden;
        let from_visible = (d - from_hidden).min(self.visible);
        self.visible -= from_visible;
        from_visible
    }
}

/// Slab of orders with a free list.
#[derive(Clone, Debug)]
pub(crate) struct Slab {
    orders: Vec<Order>,
    free: Vec<u32>,
    sentinel: Order,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            orders: Vec::new(),
            free: Vec::new(),
            sentinel: Order::EMPTY,
        }
    }
}

impl Slab {
    /// Store `o`, returning its index; `None` only when the index space (u32) is exhausted.
    #[inline]
    pub(crate) fn insert(&mut self, o: Order) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            *self.at_mut(i) = o;
            return Some(i);
        }
        let i = u32::try_from(self.orders.len())
            .ok()
            .filter(|&i| i != NIL)?;
        self.orders.push(o);
        Some(i)
    }

    /// Return slot `i` to the free list.
    #[inline]
    pub(crate) fn free(&mut self, i: u32) {
        let o = self.at_mut(i);
        if o.place != Place::Free {
            o.place = Place::Free;
            o.prev = NIL;
            o.next = NIL;
            self.free.push(i);
        }
    }

    #[inline]
    pub(crate) fn at(&self, i: u32) -> &Order {
        self.orders.get(i as usize).unwrap_or(&self.sentinel)
    }

    #[inline]
    pub(crate) fn at_mut(&mut self, i: u32) -> &mut Order {
        match self.orders.get_mut(i as usize) {
            Some(o) => o,
            None => &mut self.sentinel,
        }
    }

    /// Every stored slot with its index (free slots included; check `place`).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Order)> {
        (0u32..).zip(self.orders.iter())
    }

    /// Number of live (non-free) slots.
    pub(crate) fn live(&self) -> usize {
        self.orders.len() - self.free.len()
    }
}
