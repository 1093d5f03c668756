//! Stop orders: resting, triggering (order, cascade, immediate), conversion, amend, cancel.

use super::{C, H};
use crate::types::{OrdType, OrderBook, Side, Tif};

/// A book that has traded at `last` and is left with quotes 90 / 110.
fn traded_at(last: i64) -> H {
    let mut h = H::new();
    h.setup([
        C::sell(last, 1).acct(9),
        C::buy(last, 1).acct(8),
        C::buy(90, 50).acct(9),
        C::sell(110, 50).acct(9),
    ]);
    h
}

#[test]
fn stop_rests_in_the_stop_book_until_triggered() {
    let mut h = traded_at(100);
    assert_eq!(
        h.run(C::stop(Side::Buy, 105, 0, 5)),
        ["acc 5 buy 0x5 stop@105"]
    );
    assert_eq!(
        h.run(C::stop(Side::Sell, 95, 94, 5)),
        ["acc 6 sell 94x5 stop@95"]
    );
    let v = h
        .book
        .order(5)
        .map(|o| (o.is_stop, o.stop_price, o.visible));
    assert_eq!(v, Some((true, 105, 5)));
    assert_eq!(
        h.book
            .stop_orders(Side::Sell)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        [6]
    );
    assert_eq!(h.book.order_count(), 4);
    assert_eq!(
        h.book.best_bid().map(|l| l.price),
        Some(90),
        "stops are not on the book"
    );
}

#[test]
fn stop_does_not_trigger_before_the_first_trade() {
    let mut h = H::new();
    assert_eq!(
        h.run(C::stop(Side::Sell, 100, 0, 5)),
        ["acc 1 sell 0x5 stop@100"]
    );
}

#[test]
fn stop_whose_condition_already_holds_triggers_at_once() {
    let mut h = traded_at(100);
    assert_eq!(
        h.run(C::stop(Side::Sell, 100, 0, 5)),
        [
            "acc 5 sell 0x5 stop@100",
            "trig 5 0x5 stop@100 last100",
            "trade 3<-5 90x5 m45 t0",
            "lvl buy 90 45/1",
        ]
    );
}

#[test]
fn stop_market_triggers_on_a_trade_and_sweeps_as_a_market_order() {
    let mut h = traded_at(100);
    h.setup([
        C::stop(Side::Buy, 105, 0, 60).acct(2),
        C::sell(105, 1).acct(3),
    ]);
    assert_eq!(
        h.run(C::buy(105, 1).acct(4)),
        [
            "acc 7 buy 105x1",
            "trade 6<-7 105x1 m0 t0",
            "trig 5 0x60 stop@105 last105",
            "trade 4<-5 110x50 m0 t10",
            "cxl 5 ioc 10 left0",
            "lvl sell 105 0/0",
            "lvl sell 110 0/0",
        ]
    );
}

#[test]
fn stop_limit_becomes_a_limit_order_with_the_same_id_and_keeps_its_tif() {
    let mut h = traded_at(100);
    h.setup([
        C::stop(Side::Sell, 95, 96, 5).gtd(5_000).client(3),
        C::buy(95, 1).acct(2),
    ]);
    assert_eq!(
        h.run(C::sell(95, 1).acct(3)),
        [
            "acc 7 sell 95x1",
            "trade 6<-7 95x1 m0 t0",
            "trig 5 96x5 stop@95 last95",
            "lvl buy 95 0/0",
            "lvl sell 96 5/1"
        ]
    );
    let o = h
        .book
        .order(5)
        .map(|o| (o.ord_type, o.tif, o.is_stop, o.client_id, o.expire_ts));
    assert_eq!(o, Some((OrdType::Limit, Tif::Gtd, false, 3, 5_000)));
}

/// Two stops at 100 that both trigger on the first trade (at 100); the sell stop is a
/// stop-limit that rests without trading, so the buy stop still triggers after it.
fn both_fronts_trigger(sell_first: bool) -> Vec<String> {
    let mut h = H::new();
    let sell_stop = C::stop(Side::Sell, 100, 105, 1).acct(2);
    let buy_stop = C::stop(Side::Buy, 100, 0, 1).acct(3);
    h.setup(if sell_first {
        [sell_stop, buy_stop]
    } else {
        [buy_stop, sell_stop]
    });
    h.setup([
        C::buy(90, 5).acct(9),
        C::sell(110, 5).acct(9),
        C::sell(100, 1).acct(4),
    ]);
    h.run(C::buy(100, 1).acct(5))
        .into_iter()
        .filter(|e| e.starts_with("trig"))
        .collect()
}

#[test]
fn stop_triggers_in_arrival_order() {
    assert_eq!(
        both_fronts_trigger(true),
        [
            "trig 1 105x1 stop@100 last100",
            "trig 2 0x1 stop@100 last100"
        ]
    );
    // Buy stop first: it trades at 110, after which the sell stop (<= 100) no longer triggers.
    assert_eq!(both_fronts_trigger(false), ["trig 1 0x1 stop@100 last100"]);
}

#[test]
fn stop_queue_front_is_the_best_trigger_price_not_the_earliest_arrival() {
    let mut h = traded_at(100);
    h.setup([
        C::stop(Side::Buy, 104, 0, 1).acct(2),
        C::stop(Side::Buy, 103, 0, 1).acct(3),
        C::stop(Side::Buy, 103, 0, 1).acct(4),
        C::sell(105, 1).acct(5),
    ]);
    let ids: Vec<u64> = h
        .book
        .stop_orders(Side::Buy)
        .iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(ids, [6, 7, 5]);
    let evs = h.run(C::buy(105, 1).acct(6));
    let trig: Vec<_> = evs.iter().filter(|e| e.starts_with("trig")).collect();
    assert_eq!(
        trig,
        [
            "trig 6 0x1 stop@103 last105",
            "trig 7 0x1 stop@103 last110",
            "trig 5 0x1 stop@104 last110"
        ]
    );
}

#[test]
fn triggered_stops_cascade_until_none_triggers() {
    let mut h = traded_at(100);
    h.setup([
        C::sell(102, 2).acct(3),
        C::stop(Side::Buy, 101, 0, 2).acct(2), // sweeps 102, last = 102
        C::stop(Side::Buy, 102, 103, 2).acct(4), // then rests at 103 (nothing at or below)
        C::stop(Side::Buy, 107, 0, 2).acct(5), // never reached
        C::sell(101, 1).acct(6),
    ]);
    assert_eq!(
        h.run(C::buy(101, 1).acct(7)),
        [
            "acc 10 buy 101x1",
            "trade 9<-10 101x1 m0 t0",
            "trig 6 0x2 stop@101 last101",
            "trade 5<-6 102x2 m0 t0",
            "trig 7 103x2 stop@102 last102",
            "lvl buy 103 2/1",
            "lvl sell 101 0/0",
            "lvl sell 102 0/0",
        ]
    );
    assert_eq!(h.book.stop_orders(Side::Buy).len(), 1);
}

#[test]
fn cancel_a_stop() {
    let mut h = traded_at(100);
    h.setup([C::stop(Side::Buy, 105, 106, 5)]);
    assert_eq!(h.run(C::cancel(5)), ["cxl 5 user 5 left0"]);
    assert!(h.book.stop_orders(Side::Buy).is_empty());
}

#[test]
fn amend_stop_quantity_down_keeps_arrival_anything_else_takes_a_new_one() {
    let mut h = traded_at(100);
    h.setup([
        C::stop(Side::Buy, 105, 0, 5),
        C::stop(Side::Buy, 105, 0, 5),
        C::stop(Side::Buy, 105, 0, 5),
    ]);
    assert_eq!(h.run(C::amend(5, 0, 4)), ["repl 5 0x4 was 0x5 kept"]);
    assert_eq!(h.run(C::amend(6, 0, 6)), ["repl 6 0x6 was 0x5 moved"]);
    assert_eq!(h.run(C::amend(7, 108, 5)), ["repl 7 108x5 was 0x5 moved"]);
    let ids: Vec<u64> = h
        .book
        .stop_orders(Side::Buy)
        .iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(ids, [5, 6, 7]);
    h.setup([C::amend(5, 109, 3)]);
    let ids: Vec<u64> = h
        .book
        .stop_orders(Side::Buy)
        .iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(ids, [6, 7, 5]);
}

#[test]
fn mass_cancel_includes_stops_after_resting_orders() {
    let mut h = traded_at(100);
    h.setup([
        C::stop(Side::Sell, 95, 0, 1).acct(2),
        C::stop(Side::Buy, 105, 0, 1).acct(2),
        C::sell(111, 1).acct(2),
        C::buy(89, 1).acct(2),
        C::buy(90, 1).acct(2),
    ]);
    assert_eq!(
        h.run(C::mass(2, 0)),
        [
            "cxl 9 mass 1 left0",
            "cxl 8 mass 1 left0",
            "cxl 7 mass 1 left0",
            "cxl 6 mass 1 left0",
            "cxl 5 mass 1 left0",
            "lvl buy 90 50/1",
            "lvl buy 89 0/0",
            "lvl sell 111 0/0",
        ]
    );
}
