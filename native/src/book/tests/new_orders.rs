//! New orders: resting, matching, remainders, FOK, post-only, ids, level events.

use super::{C, H};
use crate::types::{EventKind, OrderBook, Side, Tif};

#[test]
fn limit_order_rests_and_emits_one_level_event() {
    let mut h = H::new();
    assert_eq!(
        h.run(C::buy(100, 10)),
        ["acc 1 buy 100x10", "lvl buy 100 10/1"]
    );
    assert_eq!(
        h.book.best_bid().map(|l| (l.price, l.qty, l.count)),
        Some((100, 10, 1))
    );
    assert_eq!(h.book.best_ask(), None);
    assert_eq!(h.book.order_count(), 1);
}

#[test]
fn book_assigns_sequential_ids_and_explicit_ids_raise_the_counter() {
    let mut h = H::new();
    assert_eq!(h.run(C::buy(100, 1))[0], "acc 1 buy 100x1");
    assert_eq!(h.run(C::buy(100, 1).id(10))[0], "acc 10 buy 100x1");
    assert_eq!(h.run(C::buy(100, 1))[0], "acc 11 buy 100x1");
    assert_eq!(
        h.run(C::buy(100, 1).id(5))[0],
        "acc 5 buy 100x1",
        "a lower unused id is fine"
    );
    assert_eq!(h.run(C::buy(100, 1))[0], "acc 12 buy 100x1");
}

#[test]
fn rejected_orders_consume_no_id() {
    let mut h = H::new();
    assert_eq!(h.run(C::buy(100, 0)), ["rej 3001"]);
    assert_eq!(h.run(C::buy(100, 1))[0], "acc 1 buy 100x1");
}

#[test]
fn done_order_ids_may_be_reused() {
    let mut h = H::new();
    h.setup([C::buy(100, 1).id(7), C::cancel(7)]);
    assert_eq!(h.run(C::sell(200, 1).id(7))[0], "acc 7 sell 200x1");
}

#[test]
fn trades_at_the_resting_price_in_fifo_order_with_increasing_trade_ids() {
    let mut h = H::new();
    h.setup([C::sell(101, 5), C::sell(101, 5), C::sell(102, 5)]);
    let evs = h.events(C::buy(105, 12).acct(2).client(77));
    let shown: Vec<String> = evs.iter().map(super::show).collect();
    assert_eq!(
        shown,
        [
            "acc 4 buy 105x12",
            "trade 1<-4 101x5 m0 t7",
            "trade 2<-4 101x5 m0 t2",
            "trade 3<-4 102x2 m3 t0",
            "lvl sell 101 0/0",
            "lvl sell 102 3/1",
        ]
    );
    let trades: Vec<_> = evs
        .iter()
        .filter(|e| e.kind == EventKind::Trade as u8)
        .collect();
    assert_eq!(trades.iter().map(|e| e.aux).collect::<Vec<_>>(), [1, 2, 3]);
    let t = trades[0];
    assert_eq!(
        (t.side, t.account, t.counter_account, t.counter_client_id),
        (2, 1, 2, 77)
    );
    let s = h.book.stats();
    assert_eq!(
        (s.last_price, s.volume, s.notional, s.trades),
        (102, 12, 101 * 10 + 102 * 2, 3)
    );
}

#[test]
fn partial_fill_rests_the_remainder_at_the_limit() {
    let mut h = H::new();
    h.setup([C::sell(100, 4)]);
    assert_eq!(
        h.run(C::buy(101, 10)),
        [
            "acc 2 buy 101x10",
            "trade 1<-2 100x4 m0 t6",
            "lvl buy 101 6/1",
            "lvl sell 100 0/0"
        ]
    );
    assert_eq!(h.book.order(2).map(|o| (o.visible, o.filled)), Some((6, 4)));
}

#[test]
fn limit_does_not_trade_beyond_its_price() {
    let mut h = H::new();
    h.setup([C::sell(101, 5)]);
    assert_eq!(
        h.run(C::buy(100, 5)),
        ["acc 2 buy 100x5", "lvl buy 100 5/1"]
    );
}

#[test]
fn ioc_remainder_is_cancelled() {
    let mut h = H::new();
    h.setup([C::sell(100, 4), C::sell(103, 4)]);
    assert_eq!(
        h.run(C::buy(101, 10).tif(Tif::Ioc)),
        [
            "acc 3 buy 101x10",
            "trade 1<-3 100x4 m0 t6",
            "cxl 3 ioc 6 left0",
            "lvl sell 100 0/0"
        ]
    );
    assert_eq!(h.book.order_count(), 1);
}

#[test]
fn market_order_sweeps_levels_and_cancels_its_remainder_as_ioc_when_the_book_runs_out() {
    let mut h = H::new();
    h.setup([C::buy(99, 3), C::buy(98, 3)]);
    assert_eq!(
        h.run(C::market(Side::Sell, 10)),
        [
            "acc 3 sell 0x10",
            "trade 1<-3 99x3 m0 t7",
            "trade 2<-3 98x3 m0 t4",
            "cxl 3 ioc 4 left0",
            "lvl buy 99 0/0",
            "lvl buy 98 0/0",
        ]
    );
}

#[test]
fn market_order_stopped_by_its_protection_price_is_cancelled_with_reason_market_protection() {
    let mut h = H::new();
    h.setup([C::sell(100, 3), C::sell(105, 3)]);
    assert_eq!(
        h.run(C::market(Side::Buy, 10).with(|c| c.price = 102)),
        [
            "acc 3 buy 102x10",
            "trade 1<-3 100x3 m0 t7",
            "cxl 3 protection 7 left0",
            "lvl sell 100 0/0"
        ]
    );
}

#[test]
fn market_order_with_protection_and_no_liquidity_beyond_is_an_ioc_remainder() {
    let mut h = H::new();
    h.setup([C::sell(100, 3)]);
    assert_eq!(
        h.run(C::market(Side::Buy, 10).with(|c| c.price = 102)),
        [
            "acc 2 buy 102x10",
            "trade 1<-2 100x3 m0 t7",
            "cxl 2 ioc 7 left0",
            "lvl sell 100 0/0"
        ]
    );
}

#[test]
fn fok_unfillable_trades_nothing() {
    let mut h = H::new();
    h.setup([C::sell(100, 3), C::sell(101, 3), C::sell(110, 10)]);
    assert_eq!(
        h.run(C::buy(101, 7).tif(Tif::Fok)),
        ["acc 4 buy 101x7", "cxl 4 fok 7 left0"]
    );
    assert_eq!(h.book.order_count(), 3);
}

#[test]
fn fok_fillable_fills_completely_across_levels() {
    let mut h = H::new();
    h.setup([C::sell(100, 3), C::sell(101, 3)]);
    assert_eq!(
        h.run(C::buy(101, 6).tif(Tif::Fok)),
        [
            "acc 3 buy 101x6",
            "trade 1<-3 100x3 m0 t3",
            "trade 2<-3 101x3 m0 t0",
            "lvl sell 100 0/0",
            "lvl sell 101 0/0",
        ]
    );
}

#[test]
fn fok_counts_iceberg_reserve() {
    let mut h = H::new();
    h.setup([C::sell(100, 10).display(2)]);
    let evs = h.run(C::buy(100, 9).tif(Tif::Fok));
    assert_eq!(evs.iter().filter(|e| e.starts_with("trade")).count(), 5);
    assert_eq!(evs.last().map(String::as_str), Some("lvl sell 100 1/1"));
}

#[test]
fn market_fok_is_bounded_by_its_protection() {
    let mut h = H::new();
    h.setup([C::sell(100, 3), C::sell(105, 3)]);
    let fok = C::market(Side::Buy, 5)
        .tif(Tif::Fok)
        .with(|c| c.price = 104);
    assert_eq!(h.run(fok), ["acc 3 buy 104x5", "cxl 3 fok 5 left0"]);
}

#[test]
fn post_only_crossing_is_rejected_3009() {
    let mut h = H::new();
    h.setup([C::sell(101, 5)]);
    assert_eq!(h.run(C::buy(101, 5).post_only()), ["rej 3009"]);
    assert_eq!(
        h.run(C::buy(100, 5).post_only()),
        ["acc 2 buy 100x5", "lvl buy 100 5/1"]
    );
    assert_eq!(h.run(C::sell(100, 1).post_only()), ["rej 3009"]);
}

#[test]
fn level_events_come_bids_first_then_asks_each_best_price_first() {
    let mut h = H::new();
    h.setup([C::buy(100, 1), C::buy(99, 1), C::buy(98, 1).acct(2)]);
    // A sell sweeping two bid levels then resting, touching both sides.
    assert_eq!(
        h.run(C::sell(99, 5).acct(3)),
        [
            "acc 4 sell 99x5",
            "trade 1<-4 100x1 m0 t4",
            "trade 2<-4 99x1 m0 t3",
            "lvl buy 100 0/0",
            "lvl buy 99 0/0",
            "lvl sell 99 3/1",
        ]
    );
}

#[test]
fn level_back_to_its_state_at_the_end_of_a_command_emits_nothing() {
    let mut h = H::new();
    // A sell stop-limit waits (no trade yet) to re-offer exactly what the buy will take.
    h.setup([C::sell(101, 5), C::stop(Side::Sell, 101, 101, 5).acct(3)]);
    assert_eq!(
        h.run(C::buy(101, 5).acct(2)),
        [
            "acc 3 buy 101x5",
            "trade 1<-3 101x5 m0 t0",
            "trig 2 101x5 stop@101 last101"
        ]
    );
    assert_eq!(h.queue(Side::Sell, 101), [2]);
}

#[test]
fn depth_and_totals_report_best_first() {
    let mut h = H::new();
    h.setup([
        C::buy(100, 1),
        C::buy(99, 2),
        C::buy(98, 3),
        C::sell(101, 4),
        C::sell(102, 5),
    ]);
    let d: Vec<_> = h
        .book
        .depth(Side::Buy, 2)
        .iter()
        .map(|l| (l.price, l.qty))
        .collect();
    assert_eq!(d, [(100, 1), (99, 2)]);
    assert_eq!(h.book.depth_totals(2), (3, 9));
    assert_eq!(h.book.depth_totals(10), (6, 9));
    assert_eq!(h.queue(Side::Sell, 101), [4]);
}
