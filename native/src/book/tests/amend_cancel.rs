//! Cancel, amend and mass cancel of resting orders.

use super::{C, H};
use crate::types::{OrderBook, Side};

#[test]
fn cancel_removes_the_order_and_its_level() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).client(3)]);
    let evs = h.events(C::cancel(1));
    assert_eq!(
        evs.iter().map(super::show).collect::<Vec<_>>(),
        ["cxl 1 user 5 left0", "lvl buy 100 0/0"]
    );
    assert_eq!(
        (evs[0].price, evs[0].account, evs[0].client_id, evs[0].side),
        (100, 1, 3, 1)
    );
    assert_eq!(h.book.order_count(), 0);
}

#[test]
fn cancel_by_client_id() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).client(3), C::buy(100, 5).client(3).acct(2)]);
    assert_eq!(
        h.run(C::cancel(0).client(3).acct(2)),
        ["cxl 2 user 5 left0", "lvl buy 100 5/1"]
    );
}

#[test]
fn amend_quantity_down_keeps_priority() {
    let mut h = H::new();
    h.setup([C::buy(100, 5), C::buy(100, 5)]);
    assert_eq!(
        h.run(C::amend(1, 0, 3)),
        ["repl 1 100x3 was 100x5 kept", "lvl buy 100 8/2"]
    );
    assert_eq!(h.queue(Side::Buy, 100), [1, 2]);
}

#[test]
fn amend_quantity_up_loses_priority() {
    let mut h = H::new();
    h.setup([C::buy(100, 5), C::buy(100, 5)]);
    assert_eq!(
        h.run(C::amend(1, 100, 6)),
        ["repl 1 100x6 was 100x5 moved", "lvl buy 100 11/2"]
    );
    assert_eq!(h.queue(Side::Buy, 100), [2, 1]);
}

#[test]
fn amend_price_moves_the_order_to_the_back_of_its_new_level() {
    let mut h = H::new();
    h.setup([C::buy(100, 5), C::buy(99, 5), C::buy(99, 5)]);
    assert_eq!(
        h.run(C::amend(1, 99, 5)),
        [
            "repl 1 99x5 was 100x5 moved",
            "lvl buy 100 0/0",
            "lvl buy 99 15/3"
        ]
    );
    assert_eq!(h.queue(Side::Buy, 99), [2, 3, 1]);
    // A smaller quantity at a new price also loses priority.
    assert_eq!(
        h.run(C::amend(2, 98, 1)),
        [
            "repl 2 98x1 was 99x5 moved",
            "lvl buy 99 10/2",
            "lvl buy 98 1/1"
        ]
    );
}

#[test]
fn amend_to_a_crossing_price_trades_after_the_replaced_event_and_rests_the_rest() {
    let mut h = H::new();
    h.setup([C::sell(101, 2).acct(2), C::buy(100, 5)]);
    assert_eq!(
        h.run(C::amend(2, 101, 5)),
        [
            "repl 2 101x5 was 100x5 moved",
            "trade 1<-2 101x2 m0 t3",
            "lvl buy 101 3/1",
            "lvl buy 100 0/0",
            "lvl sell 101 0/0",
        ]
    );
    assert_eq!(h.book.order(2).map(|o| (o.visible, o.filled)), Some((3, 2)));
}

#[test]
fn amend_filling_completely_removes_the_order() {
    let mut h = H::new();
    h.setup([C::sell(101, 9).acct(2), C::buy(100, 5)]);
    assert_eq!(
        h.run(C::amend(2, 102, 4)),
        [
            "repl 2 102x4 was 100x5 moved",
            "trade 1<-2 101x4 m5 t0",
            "lvl buy 100 0/0",
            "lvl sell 101 5/1"
        ]
    );
    assert_eq!(h.book.order(2), None);
    assert_eq!(h.run(C::cancel(2)), ["rej 3003"]);
}

#[test]
fn amend_by_client_id() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).client(44)]);
    assert_eq!(
        h.run(C::amend(0, 0, 2).client(44)),
        ["repl 1 100x2 was 100x5 kept", "lvl buy 100 2/1"]
    );
}

#[test]
fn amend_keeps_filled_quantity_and_sets_the_new_open_quantity() {
    let mut h = H::new();
    h.setup([C::buy(100, 10), C::sell(100, 4).acct(2)]);
    assert_eq!(
        h.run(C::amend(1, 0, 8)),
        ["repl 1 100x8 was 100x6 moved", "lvl buy 100 8/1"]
    );
    assert_eq!(h.book.order(1).map(|o| (o.visible, o.filled)), Some((8, 4)));
}

#[test]
fn post_only_amend_that_does_not_cross_is_fine() {
    let mut h = H::new();
    h.setup([C::sell(105, 1).acct(2), C::buy(100, 5).post_only()]);
    assert_eq!(
        h.run(C::amend(2, 104, 5)),
        [
            "repl 2 104x5 was 100x5 moved",
            "lvl buy 104 5/1",
            "lvl buy 100 0/0"
        ]
    );
}

#[test]
fn mass_cancel_goes_best_to_worst_in_queue_order_bids_then_asks() {
    let mut h = H::new();
    h.setup([
        C::buy(99, 1),
        C::buy(100, 1),
        C::buy(100, 1).acct(2),
        C::buy(100, 1),
        C::sell(102, 1),
        C::sell(101, 1),
    ]);
    assert_eq!(
        h.run(C::mass(1, 0)),
        [
            "cxl 2 mass 1 left0",
            "cxl 4 mass 1 left0",
            "cxl 1 mass 1 left0",
            "cxl 6 mass 1 left0",
            "cxl 5 mass 1 left0",
            "lvl buy 100 1/1",
            "lvl buy 99 0/0",
            "lvl sell 101 0/0",
            "lvl sell 102 0/0",
        ]
    );
    assert_eq!(h.book.order_count(), 1);
}

#[test]
fn mass_cancel_of_one_side_leaves_the_other() {
    let mut h = H::new();
    h.setup([C::buy(100, 1), C::sell(101, 1)]);
    assert_eq!(
        h.run(C::mass(1, 2)),
        ["cxl 2 mass 1 left0", "lvl sell 101 0/0"]
    );
    assert_eq!(
        h.run(C::mass(1, 2)),
        Vec::<String>::new(),
        "no orders: no events"
    );
    assert_eq!(h.run(C::mass(7, 0)), Vec::<String>::new());
}
