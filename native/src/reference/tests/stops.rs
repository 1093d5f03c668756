//! Stop orders: resting, triggering, trigger order, cascades.

use super::*;

#[test]
fn test_stop_rests_until_a_trade_reaches_its_trigger() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(acct(2, stop(1, 3, 4, 0, 101, 2))),
        vec!["A#1 B 0 q2 stop101"]
    );
    assert_eq!(h.book.stop_orders(Side::Buy).len(), 1);
    h.run(acct(3, sell(101, 1))); // #2
    h.run(acct(3, sell(102, 5))); // #3
                                  // Trade at 101 triggers the buy stop, which buys the rest at 102.
    assert_eq!(
        h.run(buy(101, 1)),
        vec![
            "A#4 B 101 q1",
            "T1 #2<-#4 1@101 m0 t0",
            "G#1 0 q2 stop101 last101",
            "T2 #3<-#1 2@102 m3 t0",
            "LS101 0/0",
            "LS102 3/1",
        ]
    );
    assert_eq!(h.book.stop_orders(Side::Buy), vec![]);
}

#[test]
fn test_stop_accepted_when_condition_holds_triggers_at_once() {
    let mut h = Harness::new();
    h.run(sell(100, 1));
    h.run(acct(2, buy(100, 1))); // last = 100
    h.run(sell(103, 5)); // #3
    assert_eq!(
        h.run_quiet(acct(2, stop(1, 4, 1, 102, 99, 2))),
        vec!["A#4 B 102 q2 stop99", "G#4 102 q2 stop99 last100"]
    );
    assert_eq!(h.queue(Side::Buy, 102), vec![(4, 2, 0)]);
    let v = h.book.order(4).map(|o| (o.ord_type, o.is_stop));
    assert_eq!(v, Some((OrdType::Limit, false)));
}

#[test]
fn test_stops_before_any_trade_never_trigger_at_acceptance() {
    let mut h = Harness::new();
    // Last price 0 would satisfy "last <= stop" for a sell stop; no trade yet, so it rests.
    assert_eq!(h.run(stop(2, 3, 4, 0, 100, 1)), vec!["A#1 S 0 q1 stop100"]);
}

#[test]
fn test_stop_trigger_order_is_front_of_queue_then_arrival() {
    let mut h = Harness::new();
    h.run(acct(9, stop(1, 4, 1, 110, 102, 1))); // #1 buy stop 102
    h.run(acct(9, stop(2, 4, 1, 90, 100, 1))); // #2 sell stop 100
    h.run(acct(9, stop(1, 4, 1, 110, 101, 1))); // #3 buy stop 101, front of buy stops
    h.run(acct(9, stop(2, 4, 1, 90, 101, 1))); // #4 sell stop 101, front of sell stops
    assert_eq!(
        h.book
            .stop_orders(Side::Buy)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        vec![3, 1]
    );
    assert_eq!(
        h.book
            .stop_orders(Side::Sell)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        vec![4, 2]
    );
    h.run(sell(101, 1)); // #5
                         // Trade at 101: fronts #3 (buy 101 <= 101) and #4 (sell 101 >= 101) trigger; #3 arrived
                         // first and rests at 110 (no asks). #4 then sells into it at 110, and last = 110 triggers
                         // #1 (buy 102), which rests; #2 (sell 100) does not trigger at 110.
    assert_eq!(
        h.run_quiet(acct(2, buy(101, 1))),
        vec![
            "A#6 B 101 q1",
            "T1 #5<-#6 1@101 m0 t0",
            "G#3 110 q1 stop101 last101",
            "G#4 90 q1 stop101 last101",
            "T2 #3<-#4 1@110 m0 t0",
            "G#1 110 q1 stop102 last110",
        ]
    );
    assert_eq!(h.queue(Side::Buy, 110), vec![(1, 1, 0)]);
    let sells: Vec<u64> = h
        .book
        .stop_orders(Side::Sell)
        .iter()
        .map(|o| o.order_id)
        .collect();
    assert_eq!(sells, vec![2]);
}

#[test]
fn test_triggered_stop_market_keeps_its_protection_price() {
    let mut h = Harness::new();
    h.run(acct(2, stop(2, 3, 4, 98, 100, 5))); // #1 sell stop-market, protection 98
    h.run(acct(3, buy(99, 2))); // #2
    h.run(acct(3, buy(97, 2))); // #3
    h.run(acct(4, sell(100, 1))); // #4
    assert_eq!(
        h.run_quiet(acct(3, buy(100, 1))),
        vec![
            "A#5 B 100 q1",
            "T1 #4<-#5 1@100 m0 t0",
            "G#1 98 q5 stop100 last100",
            "T2 #2<-#1 2@99 m0 t3",
            "C#1 r7 q3 l0",
        ]
    );
}

#[test]
fn test_stop_cascade_ends_when_no_stop_triggers() {
    let mut h = Harness::new();
    h.run(acct(5, sell(100, 1))); // #1
    h.run(acct(5, sell(101, 1))); // #2
    h.run(acct(5, sell(102, 1))); // #3
    h.run(acct(2, stop(1, 3, 4, 0, 100, 1))); // #4 triggers at 100, buys 101
    h.run(acct(3, stop(1, 3, 4, 0, 101, 1))); // #5 triggers at 101, buys 102
    h.run(acct(4, stop(1, 3, 4, 0, 103, 1))); // #6 never
    assert_eq!(
        h.run_quiet(buy(100, 1)),
        vec![
            "A#7 B 100 q1",
            "T1 #1<-#7 1@100 m0 t0",
            "G#4 0 q1 stop100 last100",
            "T2 #2<-#4 1@101 m0 t0",
            "G#5 0 q1 stop101 last101",
            "T3 #3<-#5 1@102 m0 t0",
        ]
    );
    assert_eq!(
        h.book
            .stop_orders(Side::Buy)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>(),
        vec![6]
    );
}
