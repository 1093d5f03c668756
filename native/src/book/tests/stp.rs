//! Self-trade prevention: the incoming order's mode decides.

use super::{C, H};
use crate::types::{OrderBook, Side, StpMode};

#[test]
fn stp_none_allows_self_trade() {
    let mut h = H::new();
    h.setup([C::sell(100, 5)]);
    assert_eq!(h.run(C::buy(100, 5))[1], "trade 1<-2 100x5 m0 t0");
}

#[test]
fn stp_cancel_incoming_leaves_the_resting_order_untouched() {
    let mut h = H::new();
    h.setup([
        C::sell(100, 2).acct(2),
        C::sell(100, 5),
        C::sell(100, 5).acct(3),
    ]);
    assert_eq!(
        h.run(C::buy(100, 10).stp(StpMode::CancelIncoming)),
        [
            "acc 4 buy 100x10",
            "trade 1<-4 100x2 m0 t8",
            "cxl 4 stp 8 left0",
            "lvl sell 100 10/2"
        ]
    );
    assert_eq!(h.queue(Side::Sell, 100), [2, 3]);
}

#[test]
fn stp_cancel_resting_cancels_own_orders_and_continues_matching() {
    let mut h = H::new();
    h.setup([C::sell(100, 5), C::sell(100, 5).acct(3), C::sell(101, 5)]);
    assert_eq!(
        h.run(C::buy(101, 8).stp(StpMode::CancelResting)),
        [
            "acc 4 buy 101x8",
            "cxl 1 stp 5 left0",
            "trade 2<-4 100x5 m0 t3",
            "cxl 3 stp 5 left0",
            "lvl buy 101 3/1",
            "lvl sell 100 0/0",
            "lvl sell 101 0/0",
        ]
    );
}

#[test]
fn stp_cancel_both_cancels_resting_then_incoming() {
    let mut h = H::new();
    h.setup([C::sell(100, 5), C::sell(100, 5).acct(3)]);
    assert_eq!(
        h.run(C::buy(100, 8).stp(StpMode::CancelBoth)),
        [
            "acc 3 buy 100x8",
            "cxl 1 stp 5 left0",
            "cxl 3 stp 8 left0",
            "lvl sell 100 5/1"
        ]
    );
}

#[test]
fn stp_decrement_cancels_smaller() {
    let mut h = H::new();
    h.setup([C::sell(100, 10)]);
    // Incoming smaller: resting reduced (keeps priority), incoming done.
    assert_eq!(
        h.run(C::buy(100, 4).stp(StpMode::DecrementCancel)),
        [
            "acc 2 buy 100x4",
            "cxl 1 stp 4 left6",
            "cxl 2 stp 4 left0",
            "lvl sell 100 6/1"
        ]
    );
    // Incoming larger: resting gone, matching continues with the rest.
    h.setup([C::sell(100, 3).acct(2)]);
    assert_eq!(
        h.run(C::buy(100, 8).stp(StpMode::DecrementCancel)),
        [
            "acc 4 buy 100x8",
            "cxl 1 stp 6 left0",
            "cxl 4 stp 6 left2",
            "trade 3<-4 100x2 m1 t0",
            "lvl sell 100 1/1",
        ]
    );
}

#[test]
fn stp_decrement_of_equal_quantities_finishes_both() {
    let mut h = H::new();
    h.setup([C::sell(100, 5)]);
    assert_eq!(
        h.run(C::buy(100, 5).stp(StpMode::DecrementCancel)),
        [
            "acc 2 buy 100x5",
            "cxl 1 stp 5 left0",
            "cxl 2 stp 5 left0",
            "lvl sell 100 0/0"
        ]
    );
    assert_eq!(h.book.order_count(), 0);
}

#[test]
fn stp_decrement_takes_an_icebergs_reserve_first() {
    let mut h = H::new();
    h.setup([C::sell(100, 10).display(4)]);
    assert_eq!(
        h.run(C::buy(100, 7).stp(StpMode::DecrementCancel)),
        [
            "acc 2 buy 100x7",
            "cxl 1 stp 7 left3",
            "cxl 2 stp 7 left0",
            "lvl sell 100 3/1"
        ]
    );
    assert_eq!(h.book.order(1).map(|o| (o.visible, o.hidden)), Some((3, 0)));
}

#[test]
fn stp_group_replaces_the_account_as_the_key() {
    let mut h = H::new();
    h.setup([C::sell(100, 5).acct(2).group(9), C::sell(100, 5).group(8)]);
    // Account 1 in group 9: matches its group's order (account 2), trades with its own
    // account's order in group 8.
    assert_eq!(
        h.run(C::buy(100, 5).group(9).stp(StpMode::CancelResting)),
        [
            "acc 3 buy 100x5",
            "cxl 1 stp 5 left0",
            "trade 2<-3 100x5 m0 t0",
            "lvl sell 100 0/0"
        ]
    );
}

#[test]
fn fok_count_stops_at_a_self_match_unless_the_mode_cancels_resting() {
    let mut h = H::new();
    h.setup([
        C::sell(100, 5).acct(2),
        C::sell(100, 5),
        C::sell(101, 5).acct(2),
    ]);
    let fok = |m| C::buy(101, 8).tif(crate::types::Tif::Fok).stp(m);
    assert_eq!(
        h.run(fok(StpMode::CancelIncoming)),
        ["acc 4 buy 101x8", "cxl 4 fok 8 left0"]
    );
    assert_eq!(
        h.run(fok(StpMode::DecrementCancel)),
        ["acc 5 buy 101x8", "cxl 5 fok 8 left0"]
    );
    assert_eq!(
        h.run(fok(StpMode::CancelResting)),
        [
            "acc 6 buy 101x8",
            "trade 1<-6 100x5 m0 t3",
            "cxl 2 stp 5 left0",
            "trade 3<-6 101x3 m2 t0",
            "lvl sell 100 0/0",
            "lvl sell 101 2/1",
        ]
    );
}
