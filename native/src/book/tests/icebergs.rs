//! Icebergs: display slices, refresh to the back of the queue, reductions from the reserve.

use super::{C, H};
use crate::types::{OrderBook, Side};

fn parts(h: &H, id: u64) -> Option<(i64, i64, i64)> {
    h.book.order(id).map(|o| (o.visible, o.hidden, o.filled))
}

#[test]
fn iceberg_rests_showing_only_its_display_quantity() {
    let mut h = H::new();
    assert_eq!(
        h.run(C::buy(100, 10).display(3)),
        ["acc 1 buy 100x10", "lvl buy 100 3/1"]
    );
    assert_eq!(parts(&h, 1), Some((3, 7, 0)));
    assert_eq!(h.book.order(1).map(|o| o.display_qty), Some(3));
}

#[test]
fn iceberg_refresh_goes_to_back_of_queue() {
    let mut h = H::new();
    h.setup([C::buy(100, 10).display(3), C::buy(100, 5)]);
    // The level total and count are back where they were: no level event.
    assert_eq!(
        h.run(C::sell(100, 3).acct(2)),
        ["acc 3 sell 100x3", "trade 1<-3 100x3 m7 t0"]
    );
    assert_eq!(h.queue(Side::Buy, 100), [2, 1]);
    assert_eq!(
        h.run(C::sell(100, 6).acct(2)),
        [
            "acc 4 sell 100x6",
            "trade 2<-4 100x5 m0 t1",
            "trade 1<-4 100x1 m6 t0",
            "lvl buy 100 2/1"
        ]
    );
    assert_eq!(parts(&h, 1), Some((2, 4, 4)));
}

#[test]
fn incoming_order_meets_the_refreshed_slice_again_when_it_is_alone_at_its_level() {
    let mut h = H::new();
    h.setup([C::buy(100, 7).display(3), C::buy(99, 5)]);
    assert_eq!(
        h.run(C::sell(99, 8).acct(2)),
        [
            "acc 3 sell 99x8",
            "trade 1<-3 100x3 m4 t5",
            "trade 1<-3 100x3 m1 t2",
            "trade 1<-3 100x1 m0 t1",
            "trade 2<-3 99x1 m4 t0",
            "lvl buy 100 0/0",
            "lvl buy 99 4/1",
        ]
    );
}

#[test]
fn amend_down_takes_from_the_reserve_first_and_keeps_priority() {
    let mut h = H::new();
    h.setup([C::buy(100, 10).display(3), C::buy(100, 1)]);
    assert_eq!(h.run(C::amend(1, 0, 5)), ["repl 1 100x5 was 100x10 kept"]);
    assert_eq!(parts(&h, 1), Some((3, 2, 0)));
    assert_eq!(
        h.run(C::amend(1, 0, 2)),
        ["repl 1 100x2 was 100x5 kept", "lvl buy 100 3/2"]
    );
    assert_eq!(parts(&h, 1), Some((2, 0, 0)));
    assert_eq!(h.queue(Side::Buy, 100), [1, 2]);
}

#[test]
fn amend_up_recomputes_the_visible_part_and_loses_priority() {
    let mut h = H::new();
    h.setup([
        C::buy(100, 10).display(3),
        C::buy(100, 1),
        C::sell(100, 2).acct(2),
    ]);
    assert_eq!(parts(&h, 1), Some((1, 7, 2)));
    assert_eq!(
        h.run(C::amend(1, 0, 20)),
        ["repl 1 100x20 was 100x8 moved", "lvl buy 100 4/2"]
    );
    assert_eq!(parts(&h, 1), Some((3, 17, 2)));
    assert_eq!(h.queue(Side::Buy, 100), [2, 1]);
}

#[test]
fn amend_price_below_the_display_size_shows_everything() {
    let mut h = H::new();
    h.setup([C::buy(100, 10).display(3)]);
    assert_eq!(
        h.run(C::amend(1, 101, 2)),
        [
            "repl 1 101x2 was 100x10 moved",
            "lvl buy 101 2/1",
            "lvl buy 100 0/0"
        ]
    );
    assert_eq!(parts(&h, 1), Some((2, 0, 0)));
}

#[test]
fn cancel_reports_the_whole_open_quantity_including_the_reserve() {
    let mut h = H::new();
    h.setup([C::sell(100, 10).display(4), C::buy(100, 5).acct(2)]);
    assert_eq!(
        h.run(C::cancel(1)),
        ["cxl 1 user 5 left0", "lvl sell 100 0/0"]
    );
}

#[test]
fn iceberg_remainder_of_an_incoming_order_rests_as_a_slice() {
    let mut h = H::new();
    h.setup([C::sell(100, 2)]);
    assert_eq!(
        h.run(C::buy(100, 10).display(3).acct(2)),
        [
            "acc 2 buy 100x10",
            "trade 1<-2 100x2 m0 t8",
            "lvl buy 100 3/1",
            "lvl sell 100 0/0"
        ]
    );
    assert_eq!(parts(&h, 2), Some((3, 5, 2)));
}
