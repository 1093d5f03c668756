//! Cancel, amend, mass cancel and time.

use super::*;

#[test]
fn test_cancel_by_id_or_client_id_and_its_rejects() {
    let mut h = Harness::new();
    h.run(Command {
        client_id: 5,
        display_qty: 2,
        ..buy(99, 7)
    }); // #1
    h.run(stop(2, 3, 4, 0, 95, 3)); // #2
    assert_eq!(h.run(cancel(2, 1)), vec!["R3019"]);
    assert_eq!(h.run(cancel(1, 3)), vec!["R3003"]);
    assert_eq!(h.run(cancel(1, 0)), vec!["R3003"]);
    assert_eq!(
        h.run(Command {
            client_id: 5,
            ..cancel(1, 0)
        }),
        vec!["C#1 r1 q7 l0", "LB99 0/0"]
    );
    assert_eq!(h.run(cancel(1, 2)), vec!["C#2 r1 q3 l0"]);
    assert_eq!(h.run(cancel(1, 2)), vec!["R3003"]);
}

#[test]
fn test_amend_rejects_in_order() {
    let mut h = Harness::new();
    h.run(Command {
        flags: FLAG_POST_ONLY,
        ..buy(99, 5)
    }); // #1
    h.run(acct(2, sell(101, 5))); // #2
    assert_eq!(h.run(amend(1, 9, 0, 0)), vec!["R3003"]);
    assert_eq!(h.run(amend(2, 1, 0, 0)), vec!["R3019"]);
    assert_eq!(h.run(amend(1, 1, 111, 0)), vec!["R3013"]);
    assert_eq!(h.run(amend(1, 1, 111, 5)), vec!["R3002"]);
    assert_eq!(h.run(amend(1, 1, 99, 5)), vec!["R3018"]);
    assert_eq!(h.run(amend(1, 1, 0, 5)), vec!["R3018"]);
    assert_eq!(h.run(amend(1, 1, 101, 5)), vec!["R3009"]);
}

#[test]
fn test_amend_quantity_down_keeps_priority_and_up_or_price_loses_it() {
    let mut h = Harness::new();
    h.run(buy(99, 5)); // #1
    h.run(buy(99, 5)); // #2
    assert_eq!(
        h.run(amend(1, 1, 0, 4)),
        vec!["P#1 99 q4 was99/5 k1", "LB99 9/2"]
    );
    assert_eq!(h.queue(Side::Buy, 99), vec![(1, 4, 0), (2, 5, 0)]);
    assert_eq!(
        h.run(amend(1, 1, 0, 6)),
        vec!["P#1 99 q6 was99/4 k0", "LB99 11/2"]
    );
    assert_eq!(h.queue(Side::Buy, 99), vec![(2, 5, 0), (1, 6, 0)]);
    h.run(amend(1, 2, 98, 5));
    h.run(amend(1, 2, 99, 4));
    assert_eq!(h.queue(Side::Buy, 99), vec![(1, 6, 0), (2, 4, 0)]);
}

#[test]
fn test_amend_to_crossing_price_trades_after_replaced_and_rests_remainder() {
    let mut h = Harness::new();
    h.run(buy(99, 5)); // #1
    h.run(acct(2, sell(101, 3))); // #2
    assert_eq!(
        h.run(amend(1, 1, 102, 5)),
        vec![
            "P#1 102 q5 was99/5 k0",
            "T1 #2<-#1 3@101 m0 t2",
            "LB102 2/1",
            "LB99 0/0",
            "LS101 0/0"
        ]
    );
    assert_eq!(
        h.book.order(1).map(|o| (o.price, o.visible, o.filled)),
        Some((102, 2, 3))
    );
}

#[test]
fn test_amend_of_a_stop_takes_a_new_arrival_unless_quantity_goes_down() {
    let mut h = Harness::new();
    h.run(stop(1, 4, 1, 104, 103, 5)); // #1
    h.run(stop(1, 4, 1, 104, 103, 5)); // #2
    assert_eq!(h.run(amend(1, 1, 0, 4)), vec!["P#1 104 q4 was104/5 k1"]);
    let ids = |h: &Harness| {
        h.book
            .stop_orders(Side::Buy)
            .iter()
            .map(|o| o.order_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&h), vec![1, 2]);
    assert_eq!(h.run(amend(1, 1, 105, 4)), vec!["P#1 105 q4 was104/4 k0"]);
    assert_eq!(ids(&h), vec![2, 1]);
    let v = h
        .book
        .order(1)
        .map(|o| (o.price, o.stop_price, o.visible, o.is_stop));
    assert_eq!(v, Some((105, 103, 4, true)));
}

#[test]
fn test_mass_cancel_order_and_side_filter() {
    let mut h = Harness::new();
    h.run(stop(2, 3, 4, 0, 95, 1)); // #1 sell stop
    h.run(buy(98, 1)); // #2
    h.run(sell(103, 1)); // #3
    h.run(buy(99, 1)); // #4
    h.run(acct(2, buy(99, 1))); // #5 not ours
    h.run(sell(102, 1)); // #6
    h.run(stop(1, 3, 4, 0, 105, 1)); // #7 buy stop
    h.run(buy(99, 1)); // #8
    assert_eq!(
        h.run(Command {
            kind: 4,
            account: 0,
            ..Command::default()
        }),
        vec!["R3020"]
    );
    assert_eq!(
        h.run(Command {
            kind: 4,
            account: 1,
            side: 3,
            ..Command::default()
        }),
        vec!["R3006"]
    );
    assert_eq!(
        h.run_quiet(Command {
            kind: 4,
            account: 1,
            side: 2,
            ..Command::default()
        }),
        vec!["C#6 r6 q1 l0", "C#3 r6 q1 l0", "C#1 r6 q1 l0"]
    );
    assert_eq!(
        h.run_quiet(Command {
            kind: 4,
            account: 1,
            ..Command::default()
        }),
        vec![
            "C#4 r6 q1 l0",
            "C#8 r6 q1 l0",
            "C#2 r6 q1 l0",
            "C#7 r6 q1 l0"
        ]
    );
    assert_eq!(
        h.run(Command {
            kind: 4,
            account: 1,
            ..Command::default()
        }),
        Vec::<String>::new()
    );
}

#[test]
fn test_advance_time_expires_gtd_and_end_of_day_expires_day_in_id_order() {
    let mut h = Harness::new();
    h.run(Command {
        order_id: 7,
        tif: 3,
        expire_ts: 100,
        ..buy(99, 1)
    }); // #7
    h.run(Command {
        tif: 2,
        ..buy(98, 1)
    }); // #8
    h.run(Command {
        tif: 3,
        expire_ts: 50,
        ..stop(1, 4, 3, 105, 104, 1)
    }); // #9 stop GTD
    h.run(Command {
        tif: 3,
        expire_ts: 101,
        ..sell(105, 1)
    }); // #10
    h.run(Command {
        order_id: 3,
        tif: 3,
        expire_ts: 60,
        ..sell(106, 1)
    }); // #3
    let time = |ts, flags| Command {
        kind: 5,
        ts,
        flags,
        ..Command::default()
    };
    assert_eq!(
        h.run(time(99, 0)),
        vec!["C#3 r5 q1 l0", "C#9 r5 q1 l0", "LS106 0/0"]
    );
    assert_eq!(
        h.run(time(100, FLAG_END_OF_DAY)),
        vec!["C#7 r5 q1 l0", "C#8 r5 q1 l0", "LB99 0/0", "LB98 0/0"]
    );
    assert_eq!(h.run(time(100, 0)), Vec::<String>::new());
}

#[test]
fn test_expired_gtd_order_still_trades_until_advance_time() {
    let mut h = Harness::new();
    h.run(Command {
        tif: 3,
        expire_ts: 15,
        ..sell(100, 1)
    }); // ts 10
    assert_eq!(
        h.run_quiet(acct(
            2,
            Command {
                ts: 500,
                ..buy(100, 1)
            }
        )),
        vec!["A#2 B 100 q1", "T1 #1<-#2 1@100 m0 t0"]
    );
}
