//! Price-time matching, trades, Level events, remainders, FOK, icebergs.

use super::*;

#[test]
fn test_matching_is_price_then_time_priority_at_the_resting_price() {
    let mut h = Harness::new();
    h.run(sell(101, 5)); // #1
    h.run(sell(100, 5)); // #2
    h.run(acct(2, sell(100, 5))); // #3
    let out = h.run(acct(3, buy(102, 12))); // #4
    assert_eq!(
        out,
        vec![
            "A#4 B 102 q12",
            "T1 #2<-#4 5@100 m0 t7",
            "T2 #3<-#4 5@100 m0 t2",
            "T3 #1<-#4 2@101 m3 t0",
            "LS100 0/0",
            "LS101 3/1",
        ]
    );
    let s = h.book.stats();
    assert_eq!(
        (s.last_price, s.volume, s.notional, s.trades),
        (101, 12, 1202, 3)
    );
}

#[test]
fn test_trade_event_fields_name_maker_and_taker() {
    let mut h = Harness::new();
    h.run(Command {
        client_id: 11,
        ..sell(100, 5)
    });
    let out = h.raw(acct(
        2,
        Command {
            client_id: 22,
            ..buy(100, 3)
        },
    ));
    let trade = Event {
        kind: EventKind::Trade as u8,
        side: 2,
        seq: 2,
        order_id: 1,
        account: 1,
        client_id: 11,
        price: 100,
        qty: 3,
        leaves: 2,
        counter_id: 2,
        counter_account: 2,
        counter_client_id: 22,
        aux: 1,
        aux2: 0,
        ..Event::default()
    };
    assert_eq!(out.get(1), Some(&trade));
}

#[test]
fn test_level_events_come_last_bids_then_asks_best_first() {
    let mut h = Harness::new();
    h.run(buy(98, 1));
    h.run(buy(99, 2));
    h.run(sell(101, 3));
    h.run(sell(102, 4));
    // Mass cancel touches all four levels at once.
    assert_eq!(
        h.run(Command {
            kind: 4,
            account: 1,
            ..Command::default()
        }),
        vec![
            "C#2 r6 q2 l0",
            "C#1 r6 q1 l0",
            "C#3 r6 q3 l0",
            "C#4 r6 q4 l0",
            "LB99 0/0",
            "LB98 0/0",
            "LS101 0/0",
            "LS102 0/0",
        ]
    );
}

#[test]
fn test_level_event_only_when_total_or_count_changes() {
    let mut h = Harness::new();
    h.run(buy(99, 5)); // #1
    h.run(buy(99, 5)); // #2
                       // Moving #1 to another price: both touched levels are reported, best first.
    assert_eq!(
        h.run(amend(1, 1, 98, 5)),
        vec!["P#1 98 q5 was99/5 k0", "LB99 5/1", "LB98 5/1"]
    );
    // Moving #2 to the back of 99 with a larger quantity changes the total.
    assert_eq!(
        h.run(amend(1, 2, 0, 6)),
        vec!["P#2 99 q6 was99/5 k0", "LB99 6/1"]
    );
}

#[test]
fn test_gtc_remainder_rests_and_ioc_remainder_is_cancelled() {
    let mut h = Harness::new();
    h.run(sell(100, 2));
    assert_eq!(
        h.run(acct(2, order(1, 1, 4, 100, 5))),
        vec![
            "A#2 B 100 q5",
            "T1 #1<-#2 2@100 m0 t3",
            "C#2 r2 q3 l0",
            "LS100 0/0"
        ]
    );
    h.run(sell(100, 2));
    assert_eq!(
        h.run(acct(2, buy(100, 5))),
        vec![
            "A#4 B 100 q5",
            "T2 #3<-#4 2@100 m0 t3",
            "LB100 3/1",
            "LS100 0/0"
        ]
    );
}

#[test]
fn test_market_remainder_reason_is_protection_only_with_liquidity_beyond_the_limit() {
    let mut h = Harness::new();
    h.run(sell(100, 2)); // #1
    h.run(sell(103, 2)); // #2
                         // Protected at 101: stops with 103 still there.
    assert_eq!(
        h.run_quiet(acct(2, order(1, 2, 4, 101, 5))),
        vec!["A#3 B 101 q5", "T1 #1<-#3 2@100 m0 t3", "C#3 r7 q3 l0"]
    );
    // Unprotected: eats everything, remainder is an IOC remainder.
    assert_eq!(
        h.run_quiet(acct(2, order(1, 2, 4, 0, 5))),
        vec!["A#4 B 0 q5", "T2 #2<-#4 2@103 m0 t3", "C#4 r2 q3 l0"]
    );
    // Protected but the book is simply empty: IOC remainder.
    assert_eq!(
        h.run_quiet(acct(2, order(1, 2, 4, 101, 5))),
        vec!["A#5 B 101 q5", "C#5 r2 q5 l0"]
    );
}

#[test]
fn test_fok_that_cannot_fill_is_cancelled_without_trading() {
    let mut h = Harness::new();
    h.run(sell(100, 3));
    h.run(sell(102, 3));
    assert_eq!(
        h.run(acct(2, order(1, 1, 5, 101, 4))),
        vec!["A#3 B 101 q4", "C#3 r3 q4 l0"]
    );
    assert_eq!(h.queue(Side::Sell, 100), vec![(1, 3, 0)]);
}

#[test]
fn test_fok_counts_iceberg_reserve_and_fills_completely() {
    let mut h = Harness::new();
    h.run(Command {
        display_qty: 2,
        ..sell(100, 6)
    }); // #1 shows 2, reserve 4
    assert_eq!(
        h.run_quiet(acct(2, order(1, 1, 5, 100, 5))),
        vec![
            "A#2 B 100 q5",
            "T1 #1<-#2 2@100 m4 t3",
            "T2 #1<-#2 2@100 m2 t1",
            "T3 #1<-#2 1@100 m1 t0"
        ]
    );
    assert_eq!(h.queue(Side::Sell, 100), vec![(1, 1, 0)]);
}

#[test]
fn test_fok_count_stops_at_own_order_unless_cancel_resting() {
    let mut h = Harness::new();
    h.run(acct(2, sell(100, 3))); // #1
    h.run(sell(100, 3)); // #2 own
    h.run(acct(2, sell(101, 3))); // #3
                                  // cancel-incoming: count 3, stops at #2: unfillable.
    assert_eq!(
        h.run_quiet(Command {
            stp: 1,
            ..order(1, 1, 5, 101, 6)
        }),
        vec!["A#4 B 101 q6", "C#4 r3 q6 l0"]
    );
    // cancel-resting: #2 skipped, count 3 + 3 = 6: fills; #2 is cancelled on the way.
    assert_eq!(
        h.run_quiet(Command {
            stp: 2,
            ..order(1, 1, 5, 101, 6)
        }),
        vec![
            "A#5 B 101 q6",
            "T1 #1<-#5 3@100 m0 t3",
            "C#2 r4 q3 l0",
            "T2 #3<-#5 3@101 m0 t0"
        ]
    );
}

#[test]
fn test_iceberg_refresh_goes_to_the_back_of_its_level() {
    let mut h = Harness::new();
    h.run(Command {
        display_qty: 2,
        ..sell(100, 5)
    }); // #1
    h.run(sell(100, 4)); // #2
    assert_eq!(
        h.run(acct(2, buy(100, 3))),
        vec![
            "A#3 B 100 q3",
            "T1 #1<-#3 2@100 m3 t1",
            "T2 #2<-#3 1@100 m3 t0",
            "LS100 5/2",
        ]
    );
    assert_eq!(h.queue(Side::Sell, 100), vec![(2, 3, 0), (1, 2, 1)]);
    let v = h
        .book
        .order(1)
        .map(|o| (o.visible, o.hidden, o.display_qty, o.filled));
    assert_eq!(v, Some((2, 1, 2, 2)));
}

#[test]
fn test_incoming_meets_the_refreshed_slice_when_it_is_alone() {
    let mut h = Harness::new();
    h.run(Command {
        display_qty: 2,
        ..sell(100, 5)
    });
    assert_eq!(
        h.run(acct(2, buy(100, 5))),
        vec![
            "A#2 B 100 q5",
            "T1 #1<-#2 2@100 m3 t3",
            "T2 #1<-#2 2@100 m1 t1",
            "T3 #1<-#2 1@100 m0 t0",
            "LS100 0/0",
        ]
    );
}

#[test]
fn test_iceberg_rests_showing_display_size_and_amend_down_takes_reserve_first() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(Command {
            display_qty: 3,
            ..buy(99, 10)
        }),
        vec!["A#1 B 99 q10", "LB99 3/1"]
    );
    h.run(buy(99, 1)); // #2 behind
    assert_eq!(h.run(amend(1, 1, 0, 5)), vec!["P#1 99 q5 was99/10 k1"]);
    assert_eq!(h.queue(Side::Buy, 99), vec![(1, 3, 2), (2, 1, 0)]);
    assert_eq!(
        h.run(amend(1, 1, 0, 2)),
        vec!["P#1 99 q2 was99/5 k1", "LB99 3/2"]
    );
    assert_eq!(h.queue(Side::Buy, 99), vec![(1, 2, 0), (2, 1, 0)]);
    // A larger quantity loses priority and recomputes the visible part.
    assert_eq!(
        h.run(amend(1, 1, 0, 8)),
        vec!["P#1 99 q8 was99/2 k0", "LB99 4/2"]
    );
    assert_eq!(h.queue(Side::Buy, 99), vec![(2, 1, 0), (1, 3, 5)]);
}
