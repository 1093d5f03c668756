//! Reference order book: the semantics of `docs/book.md`, written for obviousness, not speed.
//!
//! This book is the oracle the fast book (`crate::book`) is tested against, event by event
//! (`native/tests/prop_book.rs`). Every rule is implemented the most literal way we could find:
//!
//! - each side is one `Vec` of resting orders kept sorted by (price priority, time priority);
//!   "time priority" is a counter taken whenever an order goes to the back of its level (rests,
//!   iceberg refresh, amend with loss of priority, stop entering the book);
//! - the stop book is one `Vec` per side sorted by (stop price in trigger order, arrival number);
//! - every lookup is a linear scan;
//! - `Level` events are not tracked incrementally: the whole L2 is computed before and after each
//!   command and the two are diffed.
//!
//! Submodules: `validate` (new-order checks, in the spec's order), `matching` (incoming orders,
//! FOK, self-trade prevention, icebergs, stops), `manage` (cancel, amend, mass cancel, time).

mod manage;
mod matching;
mod validate;

#[cfg(test)]
mod tests;

use crate::types::{
    BookConfig, BookReject, CancelReason, CmdKind, Command, Event, EventKind, LevelView, OrdType,
    OrderBook, OrderView, Side, StpMode, Tif, TradeStats,
};

/// One live order: resting on a side, waiting in the stop book, or being matched as incoming.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Order {
    id: u64,
    account: u64,
    client_id: u64,
    side: Side,
    ord_type: OrdType,
    tif: Tif,
    stp: StpMode,
    stp_group: u64,
    post_only: bool,
    /// Limit price, or protection price for (stop-)market orders (0 = none).
    price: i64,
    stop_price: i64,
    /// Displayed open quantity. For incoming orders and stops: the whole open quantity.
    visible: i64,
    /// Iceberg reserve (only ever non-zero while resting).
    hidden: i64,
    display_qty: i64,
    filled: i64,
    expire_ts: u64,
    /// Time priority while resting, arrival number while in the stop book.
    priority: u64,
}

impl Order {
    fn open(&self) -> i64 {
        self.visible.saturating_add(self.hidden)
    }

    fn stp_key(&self) -> u64 {
        if self.stp_group != 0 {
            self.stp_group
        } else {
            self.account
        }
    }

    fn is_stop_type(&self) -> bool {
        matches!(self.ord_type, OrdType::StopMarket | OrdType::StopLimit)
    }

    fn view(&self, is_stop: bool) -> OrderView {
        OrderView {
            order_id: self.id,
            account: self.account,
            client_id: self.client_id,
            side: self.side,
            ord_type: self.ord_type,
            tif: self.tif,
            price: self.price,
            stop_price: self.stop_price,
            visible: self.visible,
            hidden: self.hidden,
            display_qty: self.display_qty,
            filled: self.filled,
            expire_ts: self.expire_ts,
            is_stop,
        }
    }

    /// An event about this order with the identifying fields filled in.
    fn event(&self, kind: EventKind) -> Event {
        Event {
            kind: kind as u8,
            side: self.side as u8,
            order_id: self.id,
            account: self.account,
            client_id: self.client_id,
            price: self.price,
            ..Event::default()
        }
    }

    /// `Cancelled` event: `qty` removed, `leaves` left open.
    fn cancelled(&self, reason: CancelReason, qty: i64, leaves: i64) -> Event {
        Event {
            reason: reason as u8,
            qty,
            leaves,
            ..self.event(EventKind::Cancelled)
        }
    }
}

/// Where a live order sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Resting(Side),
    Stop(Side),
}

/// (price, visible total, order count) per level, best first.
type L2 = Vec<(i64, i64, u32)>;

/// The reference book. See the module docs.
#[derive(Clone, Debug)]
pub struct ReferenceBook {
    cfg: BookConfig,
    /// Sorted by (price descending, time priority).
    bids: Vec<Order>,
    /// Sorted by (price ascending, time priority).
    asks: Vec<Order>,
    /// Sorted by (stop price ascending, arrival).
    buy_stops: Vec<Order>,
    /// Sorted by (stop price descending, arrival).
    sell_stops: Vec<Order>,
    next_id: u64,
    next_time: u64,
    next_arrival: u64,
    stats: TradeStats,
}

impl ReferenceBook {
    pub fn new(cfg: BookConfig) -> Self {
        ReferenceBook {
            cfg,
            bids: Vec::new(),
            asks: Vec::new(),
            buy_stops: Vec::new(),
            sell_stops: Vec::new(),
            next_id: 1,
            next_time: 1,
            next_arrival: 1,
            stats: TradeStats::default(),
        }
    }

    /// Number of live orders (resting plus waiting stops).
    pub fn order_count(&self) -> usize {
        self.bids.len() + self.asks.len() + self.buy_stops.len() + self.sell_stops.len()
    }

    fn side_vec(&self, side: Side) -> &Vec<Order> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_vec_mut(&mut self, side: Side) -> &mut Vec<Order> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    fn stop_vec(&self, side: Side) -> &Vec<Order> {
        match side {
            Side::Buy => &self.buy_stops,
            Side::Sell => &self.sell_stops,
        }
    }

    fn stop_vec_mut(&mut self, side: Side) -> &mut Vec<Order> {
        match side {
            Side::Buy => &mut self.buy_stops,
            Side::Sell => &mut self.sell_stops,
        }
    }

    /// Restore the priority order of one side after any change.
    fn sort_side(&mut self, side: Side) {
        match side {
            Side::Buy => self
                .bids
                .sort_by_key(|o| (std::cmp::Reverse(o.price), o.priority)),
            Side::Sell => self.asks.sort_by_key(|o| (o.price, o.priority)),
        }
    }

    /// Restore the trigger order of one side of the stop book after any change.
    fn sort_stops(&mut self, side: Side) {
        match side {
            Side::Buy => self.buy_stops.sort_by_key(|o| (o.stop_price, o.priority)),
            Side::Sell => self
                .sell_stops
                .sort_by_key(|o| (std::cmp::Reverse(o.stop_price), o.priority)),
        }
    }

    fn take_time(&mut self) -> u64 {
        let t = self.next_time;
        self.next_time += 1;
        t
    }

    fn take_arrival(&mut self) -> u64 {
        let a = self.next_arrival;
        self.next_arrival += 1;
        a
    }

    /// All live orders with their place, in a fixed order (bids, asks, buy stops, sell stops).
    fn live(&self) -> impl Iterator<Item = (&Order, Place)> {
        let resting = |side| {
            self.side_vec(side)
                .iter()
                .map(move |o| (o, Place::Resting(side)))
        };
        let stops = |side| {
            self.stop_vec(side)
                .iter()
                .map(move |o| (o, Place::Stop(side)))
        };
        resting(Side::Buy)
            .chain(resting(Side::Sell))
            .chain(stops(Side::Buy))
            .chain(stops(Side::Sell))
    }

    fn find(&self, order_id: u64) -> Option<(&Order, Place)> {
        self.live().find(|(o, _)| o.id == order_id)
    }

    fn find_client(&self, account: u64, client_id: u64) -> Option<(&Order, Place)> {
        self.live()
            .find(|(o, _)| o.account == account && o.client_id == client_id)
    }

    /// Remove a live order from wherever it is.
    fn remove(&mut self, order_id: u64) -> Option<Order> {
        for v in [
            &mut self.bids,
            &mut self.asks,
            &mut self.buy_stops,
            &mut self.sell_stops,
        ] {
            if let Some(i) = v.iter().position(|o| o.id == order_id) {
                return Some(v.remove(i));
            }
        }
        None
    }

    /// Best price of `side`, if any order rests there.
    fn best(&self, side: Side) -> Option<i64> {
        self.side_vec(side).first().map(|o| o.price)
    }

    fn l2(&self, side: Side) -> L2 {
        let mut levels: L2 = Vec::new();
        for o in self.side_vec(side) {
            match levels.last_mut() {
                Some((p, q, c)) if *p == o.price => {
                    *q = q.saturating_add(o.visible);
                    *c += 1;
                }
                _ => levels.push((o.price, o.visible, 1)),
            }
        }
        levels
    }

    fn execute(&mut self, cmd: &Command, out: &mut Vec<Event>) -> Result<(), BookReject> {
        match CmdKind::from_u8(cmd.kind) {
            Some(CmdKind::New) => self.new_order(cmd, out),
            Some(CmdKind::Cancel) => self.cancel(cmd, out),
            Some(CmdKind::Amend) => self.amend(cmd, out),
            Some(CmdKind::MassCancel) => self.mass_cancel(cmd, out),
            Some(CmdKind::AdvanceTime) => {
                self.advance_time(cmd, out);
                Ok(())
            }
            Some(CmdKind::Admin) | None => Err(BookReject::InvalidCommand),
        }
    }
}

fn rejected(cmd: &Command, code: BookReject) -> Event {
    Event {
        kind: EventKind::Rejected as u8,
        side: cmd.side,
        code: code.code(),
        order_id: cmd.order_id,
        account: cmd.account,
        client_id: cmd.client_id,
        price: cmd.price,
        qty: cmd.qty,
        ..Event::default()
    }
}

/// One `Level` event per price whose (visible total, count) differs, best price first.
fn level_diff(side: Side, before: &L2, after: &L2, out: &mut Vec<Event>) {
    let mut prices: Vec<i64> = before.iter().chain(after.iter()).map(|l| l.0).collect();
    prices.sort_unstable();
    prices.dedup();
    if side == Side::Buy {
        prices.reverse();
    }
    let get = |l2: &L2, p: i64| l2.iter().find(|l| l.0 == p).map_or((0, 0), |l| (l.1, l.2));
    for p in prices {
        let (q, c) = get(after, p);
        if get(before, p) != (q, c) {
            out.push(Event {
                kind: EventKind::Level as u8,
                side: side as u8,
                price: p,
                qty: q,
                aux: i64::from(c),
                ..Event::default()
            });
        }
    }
}

impl OrderBook for ReferenceBook {
    fn apply(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        let start = out.len();
        let (bids, asks) = (self.l2(Side::Buy), self.l2(Side::Sell));
        // Every check runs before the first change, so a rejected command emitted nothing else.
        if let Err(code) = self.execute(cmd, out) {
            out.push(rejected(cmd, code));
        }
        level_diff(Side::Buy, &bids, &self.l2(Side::Buy), out);
        level_diff(Side::Sell, &asks, &self.l2(Side::Sell), out);
        for e in out.iter_mut().skip(start) {
            e.seq = cmd.seq;
        }
    }

    fn depth(&self, side: Side, n: usize) -> Vec<LevelView> {
        self.l2(side)
            .into_iter()
            .take(n)
            .map(|(price, qty, count)| LevelView { price, qty, count })
            .collect()
    }

    fn level_orders(&self, side: Side, price: i64) -> Vec<OrderView> {
        self.side_vec(side)
            .iter()
            .filter(|o| o.price == price)
            .map(|o| o.view(false))
            .collect()
    }

    fn stop_orders(&self, side: Side) -> Vec<OrderView> {
        self.stop_vec(side).iter().map(|o| o.view(true)).collect()
    }

    fn order(&self, order_id: u64) -> Option<OrderView> {
        self.find(order_id)
            .map(|(o, place)| o.view(matches!(place, Place::Stop(_))))
    }

    fn stats(&self) -> TradeStats {
        self.stats
    }
}
