//! Time: GTD expiry and end of day.

use super::{C, H};
use crate::types::{Side, Tif};

#[test]
fn gtd_expires_on_advance_time() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).gtd(2_000), C::buy(99, 5).gtd(3_000)]);
    assert_eq!(h.run(C::advance(1_999, false)), Vec::<String>::new());
    assert_eq!(
        h.run(C::advance(2_000, false)),
        ["cxl 1 expired 5 left0", "lvl buy 100 0/0"]
    );
    assert_eq!(h.book.order_count(), 1);
}

#[test]
fn expiries_come_in_ascending_order_id_whatever_their_expiry_times() {
    let mut h = H::new();
    h.setup([
        C::buy(100, 1).gtd(3_000).id(3),
        C::buy(100, 1).gtd(2_000).id(9),
        C::stop(Side::Sell, 50, 49, 1).gtd(2_500).id(5),
        C::buy(100, 1).tif(Tif::Day).id(4),
        C::buy(100, 1).id(6),
    ]);
    assert_eq!(
        h.run(C::advance(3_000, true)),
        [
            "cxl 3 expired 1 left0",
            "cxl 4 expired 1 left0",
            "cxl 5 expired 1 left0",
            "cxl 9 expired 1 left0",
            "lvl buy 100 1/1",
        ]
    );
}

#[test]
fn day_orders_expire_only_at_end_of_day() {
    let mut h = H::new();
    h.setup([
        C::buy(100, 5).tif(Tif::Day),
        C::stop(Side::Buy, 200, 201, 5).tif(Tif::Day),
    ]);
    assert_eq!(h.run(C::advance(10_000, false)), Vec::<String>::new());
    assert_eq!(
        h.run(C::advance(10_000, true)),
        [
            "cxl 1 expired 5 left0",
            "cxl 2 expired 5 left0",
            "lvl buy 100 0/0"
        ]
    );
}

#[test]
fn an_order_past_its_expiry_still_trades_until_the_next_advance_time() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).gtd(2_000)]);
    h.ts = 5_000;
    assert_eq!(h.run(C::sell(100, 2).acct(2))[1], "trade 1<-2 100x2 m3 t0");
    assert_eq!(
        h.run(C::advance(5_000, false)),
        ["cxl 1 expired 3 left0", "lvl buy 100 0/0"]
    );
}
