//! Every reject code the book owns, where the spec says it applies, and the validation order.

use super::{C, H};
use crate::types::{EventKind, Side, Tif};

fn code(h: &mut H, c: C) -> u16 {
    let evs = h.events(c);
    assert_eq!(evs.len(), 1, "a rejected command yields exactly one event");
    assert_eq!(evs[0].kind, EventKind::Rejected as u8);
    evs[0].code
}

#[test]
fn quantity_must_be_positive_3001() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 0)), 3001);
    assert_eq!(code(&mut h, C::sell(100, -5)), 3001);
}

#[test]
fn price_out_of_range_3002() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(0, 1)), 3002);
    assert_eq!(code(&mut h, C::buy(1_000_001, 1)), 3002);
    assert_eq!(
        code(&mut h, C::market(Side::Buy, 1).with(|c| c.price = -1)),
        3002
    );
    assert_eq!(
        code(
            &mut h,
            C::stop(Side::Buy, 100, 0, 1).with(|c| c.price = 2_000_000)
        ),
        3002
    );
    h.setup([C::buy(100, 5)]);
    assert_eq!(code(&mut h, C::amend(1, -3, 5)), 3002);
}

#[test]
fn unknown_order_3003() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::cancel(42)), 3003);
    assert_eq!(code(&mut h, C::amend(42, 0, 1)), 3003);
    assert_eq!(code(&mut h, C::cancel(0).client(9)), 3003);
    assert_eq!(
        code(&mut h, C::cancel(0)),
        3003,
        "no order id and no client id"
    );
    h.setup([C::buy(100, 5), C::cancel(1)]);
    assert_eq!(code(&mut h, C::cancel(1)), 3003, "already done");
}

#[test]
fn duplicate_client_id_for_the_same_account_3004() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).client(9)]);
    assert_eq!(code(&mut h, C::sell(200, 5).client(9)), 3004);
    assert_eq!(
        h.run(C::sell(200, 5).client(9).acct(2))[0],
        "acc 2 sell 200x5",
        "other account"
    );
    h.setup([C::stop(Side::Buy, 150, 0, 1).client(10)]);
    assert_eq!(
        code(&mut h, C::buy(90, 1).client(10)),
        3004,
        "stops are live too"
    );
}

#[test]
fn client_id_is_free_again_once_the_order_is_done() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).client(9), C::sell(100, 5).acct(2)]);
    assert_eq!(h.run(C::buy(100, 1).client(9))[0], "acc 3 buy 100x1");
}

#[test]
fn duplicate_live_order_id_3005() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).id(7), C::stop(Side::Sell, 50, 0, 1).id(8)]);
    assert_eq!(code(&mut h, C::sell(200, 1).id(7)), 3005);
    assert_eq!(code(&mut h, C::sell(200, 1).id(8)), 3005);
}

#[test]
fn invalid_side_3006() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.side = 0)), 3006);
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.side = 3)), 3006);
    assert_eq!(code(&mut h, C::mass(1, 3)), 3006);
}

#[test]
fn invalid_order_type_3007() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.ord_type = 0)), 3007);
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.ord_type = 5)), 3007);
}

#[test]
fn invalid_time_in_force_3008() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.tif = 0)), 3008);
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.tif = 6)), 3008);
}

#[test]
fn post_only_that_would_take_3009() {
    let mut h = H::new();
    h.setup([C::buy(100, 5), C::sell(102, 5).post_only()]);
    assert_eq!(code(&mut h, C::sell(100, 1).post_only()), 3009);
    assert_eq!(
        code(&mut h, C::amend(2, 100, 5)),
        3009,
        "amended post-only order"
    );
}

#[test]
fn invalid_display_quantity_3010() {
    let mut h = H::new();
    assert_eq!(
        code(&mut h, C::buy(100, 5).display(5)),
        3010,
        "display must be below qty"
    );
    assert_eq!(code(&mut h, C::buy(100, 5).display(-1)), 3010);
    assert_eq!(
        code(&mut h, C::market(Side::Buy, 5).display(1)),
        3010,
        "limit orders only"
    );
    assert_eq!(
        code(&mut h, C::stop(Side::Buy, 100, 100, 5).display(1)),
        3010
    );
}

#[test]
fn invalid_stop_price_3011() {
    let mut h = H::new();
    assert_eq!(
        code(&mut h, C::buy(100, 1).with(|c| c.stop_price = 90)),
        3011
    );
    assert_eq!(code(&mut h, C::stop(Side::Buy, 0, 100, 1)), 3011);
    assert_eq!(code(&mut h, C::stop(Side::Buy, 2_000_000, 0, 1)), 3011);
}

#[test]
fn gtd_needs_an_expiry_after_the_command_time_3012() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).gtd(1_000)), 3012);
    assert_eq!(code(&mut h, C::buy(100, 1).gtd(999)), 3012);
    assert_eq!(
        h.run(C::buy(100, 1).with(|c| c.expire_ts = 1))[0],
        "acc 1 buy 100x1",
        "ignored for GTC"
    );
}

#[test]
fn amend_quantity_must_be_positive_3013() {
    let mut h = H::new();
    h.setup([C::buy(100, 5)]);
    assert_eq!(code(&mut h, C::amend(1, 0, 0)), 3013);
    assert_eq!(code(&mut h, C::amend(1, 101, -1)), 3013);
}

#[test]
fn market_orders_need_ioc_or_fok_3014() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::market(Side::Buy, 1).tif(Tif::Gtc)), 3014);
    assert_eq!(
        code(&mut h, C::stop(Side::Buy, 100, 0, 1).tif(Tif::Day)),
        3014
    );
}

#[test]
fn unknown_command_kind_3015() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.kind = 0)), 3015);
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.kind = 9)), 3015);
}

#[test]
fn invalid_stp_mode_3016() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).with(|c| c.stp = 5)), 3016);
}

#[test]
fn post_only_not_allowed_with_this_type_or_tif_3017() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).tif(Tif::Ioc).post_only()), 3017);
    assert_eq!(code(&mut h, C::buy(100, 1).tif(Tif::Fok).post_only()), 3017);
    assert_eq!(code(&mut h, C::market(Side::Buy, 1).post_only()), 3017);
    assert_eq!(
        code(&mut h, C::stop(Side::Buy, 90, 100, 1).post_only()),
        3017
    );
}

#[test]
fn amend_that_changes_nothing_3018() {
    let mut h = H::new();
    h.setup([C::buy(100, 5).display(2)]);
    assert_eq!(code(&mut h, C::amend(1, 0, 5)), 3018);
    assert_eq!(code(&mut h, C::amend(1, 100, 5)), 3018);
}

#[test]
fn another_accounts_order_3019() {
    let mut h = H::new();
    h.setup([C::buy(100, 5)]);
    assert_eq!(code(&mut h, C::cancel(1).acct(2)), 3019);
    assert_eq!(code(&mut h, C::amend(1, 0, 1).acct(2)), 3019);
    assert_eq!(
        code(&mut h, C::cancel(1).acct(0)),
        3019,
        "account 0 owns nothing"
    );
}

#[test]
fn account_must_be_non_zero_3020() {
    let mut h = H::new();
    assert_eq!(code(&mut h, C::buy(100, 1).acct(0)), 3020);
    assert_eq!(code(&mut h, C::mass(0, 0)), 3020);
}

#[test]
fn first_failing_check_wins_in_spec_order() {
    let mut h = H::new();
    h.setup([C::buy(100, 1).id(5).client(6), C::sell(101, 1)]);
    let bad = |f: fn(&mut crate::types::Command)| C::buy(100, 1).with(f);
    assert_eq!(code(&mut h, bad(|c| (c.kind, c.account) = (7, 0))), 3015);
    assert_eq!(code(&mut h, bad(|c| (c.account, c.side) = (0, 9))), 3020);
    assert_eq!(code(&mut h, bad(|c| (c.side, c.ord_type) = (9, 9))), 3006);
    assert_eq!(code(&mut h, bad(|c| (c.ord_type, c.tif) = (9, 9))), 3007);
    assert_eq!(code(&mut h, bad(|c| (c.tif, c.stp) = (9, 9))), 3008);
    assert_eq!(code(&mut h, bad(|c| (c.stp, c.qty) = (9, 0))), 3016);
    assert_eq!(code(&mut h, bad(|c| (c.qty, c.display_qty) = (0, 5))), 3001);
    assert_eq!(
        code(&mut h, bad(|c| (c.display_qty, c.price) = (5, 0))),
        3010
    );
    assert_eq!(
        code(&mut h, bad(|c| (c.price, c.stop_price) = (0, 5))),
        3002
    );
    assert_eq!(
        code(&mut h, bad(|c| (c.stop_price, c.ord_type) = (5, 2))),
        3011
    );
    assert_eq!(
        code(&mut h, bad(|c| (c.ord_type, c.price, c.tif) = (2, 0, 3))),
        3014
    );
    assert_eq!(code(&mut h, bad(|c| (c.tif, c.flags) = (3, 1))), 3012);
    assert_eq!(
        code(&mut h, bad(|c| (c.tif, c.flags, c.order_id) = (4, 1, 5))),
        3017
    );
    assert_eq!(
        code(&mut h, bad(|c| (c.order_id, c.client_id) = (5, 6))),
        3005
    );
    assert_eq!(
        code(
            &mut h,
            bad(|c| (c.client_id, c.flags, c.price) = (6, 1, 101))
        ),
        3004
    );
    assert_eq!(code(&mut h, bad(|c| (c.flags, c.price) = (1, 101))), 3009);
    // Amend: target first, then quantity, price, no-op, post-only.
    assert_eq!(code(&mut h, C::amend(99, -1, 0)), 3003);
    assert_eq!(code(&mut h, C::amend(5, -1, 0)), 3013);
    assert_eq!(code(&mut h, C::amend(5, -1, 1)), 3002);
}

#[test]
fn rejected_event_echoes_the_command() {
    let mut h = H::new();
    let c = C::buy(123, 0)
        .id(77)
        .client(88)
        .acct(99)
        .with(|c| c.side = 7);
    let e = h.events(c)[0];
    assert_eq!(
        (
            e.code,
            e.side,
            e.order_id,
            e.account,
            e.client_id,
            e.price,
            e.qty,
            e.seq
        ),
        (3006, 7, 77, 99, 88, 123, 0, 1)
    );
}
