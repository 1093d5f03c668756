//! New-order validation, reject events, order and client ids, post-only.

use super::*;

#[test]
fn test_validation_first_failing_check_wins_in_spec_order() {
    let ok = buy(100, 10);
    // Each case breaks its own check and every later one it can; the earliest must be reported.
    let cases: Vec<(Command, u16)> = vec![
        (
            Command {
                kind: 9,
                account: 0,
                side: 9,
                ..ok
            },
            3015,
        ),
        (
            Command {
                account: 0,
                side: 9,
                ord_type: 9,
                ..ok
            },
            3020,
        ),
        (
            Command {
                side: 0,
                ord_type: 9,
                tif: 9,
                ..ok
            },
            3006,
        ),
        (
            Command {
                ord_type: 0,
                tif: 9,
                stp: 9,
                ..ok
            },
            3007,
        ),
        (
            Command {
                tif: 6,
                stp: 9,
                qty: 0,
                ..ok
            },
            3008,
        ),
        (
            Command {
                stp: 5,
                qty: -1,
                ..ok
            },
            3016,
        ),
        (
            Command {
                qty: 0,
                display_qty: -1,
                price: 0,
                ..ok
            },
            3001,
        ),
        (
            Command {
                display_qty: 10,
                price: 0,
                ..ok
            },
            3010,
        ),
        (
            Command {
                ord_type: 2,
                display_qty: 5,
                ..ok
            },
            3010,
        ),
        (
            Command {
                price: 111,
                stop_price: 5,
                ..ok
            },
            3002,
        ),
        (
            Command {
                ord_type: 2,
                tif: 4,
                price: -1,
                ..ok
            },
            3002,
        ),
        (
            Command {
                stop_price: 100,
                tif: 4,
                ..ok
            },
            3011,
        ),
        (
            Command {
                ord_type: 3,
                tif: 4,
                price: 0,
                stop_price: 89,
                ..ok
            },
            3011,
        ),
        (
            Command {
                ord_type: 2,
                tif: 1,
                price: 0,
                expire_ts: 0,
                ..ok
            },
            3014,
        ),
        (
            Command {
                ord_type: 3,
                tif: 3,
                price: 0,
                stop_price: 100,
                ..ok
            },
            3014,
        ),
        (
            Command {
                tif: 3,
                expire_ts: 5,
                flags: FLAG_POST_ONLY,
                ..ok
            },
            3012,
        ),
        (
            Command {
                tif: 4,
                flags: FLAG_POST_ONLY,
                ..ok
            },
            3017,
        ),
        (
            Command {
                ord_type: 4,
                stop_price: 100,
                flags: FLAG_POST_ONLY,
                ..ok
            },
            3017,
        ),
    ];
    for (cmd, code) in cases {
        let mut h = Harness::new();
        let out = h.raw(Command { ts: 10, ..cmd });
        assert_eq!(out.len(), 1, "{cmd:?}");
        assert_eq!(
            (out[0].kind, out[0].code),
            (EventKind::Rejected as u8, code),
            "{cmd:?}"
        );
    }
}

#[test]
fn test_rejected_event_echoes_the_command_and_changes_nothing() {
    let mut h = Harness::new();
    h.run(buy(100, 5));
    let bad = Command {
        client_id: 7,
        order_id: 44,
        side: 2,
        price: 120,
        qty: 3,
        ..buy(0, 0)
    };
    let out = h.raw(bad);
    let expected = Event {
        kind: EventKind::Rejected as u8,
        code: 3002,
        seq: 2,
        side: 2,
        order_id: 44,
        account: 1,
        client_id: 7,
        price: 120,
        qty: 3,
        ..Event::default()
    };
    assert_eq!(out, vec![expected]);
    assert_eq!(h.queue(Side::Buy, 100), vec![(1, 5, 0)]);
    // The rejected explicit id 44 did not move the id counter.
    assert_eq!(h.run_quiet(sell(105, 1)), vec!["A#2 S 105 q1"]);
}

#[test]
fn test_invalid_command_kind_is_rejected_with_code_3015() {
    let mut h = Harness::new();
    assert_eq!(
        h.run(Command {
            kind: 0,
            ..buy(100, 1)
        }),
        vec!["R3015"]
    );
    assert_eq!(
        h.run(Command {
            kind: 6,
            ..buy(100, 1)
        }),
        vec!["R3015"]
    );
}

#[test]
fn test_order_ids_come_from_next_id_and_explicit_ids_raise_it() {
    let mut h = Harness::new();
    assert_eq!(h.run_quiet(buy(95, 1)), vec!["A#1 B 95 q1"]);
    assert_eq!(
        h.run_quiet(Command {
            order_id: 10,
            ..buy(95, 1)
        }),
        vec!["A#10 B 95 q1"]
    );
    assert_eq!(
        h.run_quiet(Command {
            order_id: 5,
            ..buy(95, 1)
        }),
        vec!["A#5 B 95 q1"]
    );
    assert_eq!(h.run_quiet(buy(95, 1)), vec!["A#11 B 95 q1"]);
    assert_eq!(
        h.run_quiet(Command {
            order_id: 10,
            ..buy(95, 1)
        }),
        vec!["R3005"]
    );
    h.run(cancel(1, 10));
    // A done order's id may be used again.
    assert_eq!(
        h.run_quiet(Command {
            order_id: 10,
            ..buy(95, 1)
        }),
        vec!["A#10 B 95 q1"]
    );
    assert_eq!(h.run_quiet(buy(0, 1)), vec!["R3002"]);
    assert_eq!(h.run_quiet(buy(95, 1)), vec!["A#12 B 95 q1"]);
}

#[test]
fn test_saturated_id_counter_rejects_instead_of_reusing_a_live_id() {
    let mut h = Harness::new();
    assert_eq!(
        h.run_quiet(Command {
            order_id: u64::MAX - 1,
            ..buy(95, 1)
        })
        .len(),
        1
    );
    assert_eq!(
        h.run_quiet(buy(95, 1)),
        vec![format!("A#{} B 95 q1", u64::MAX)]
    );
    assert_eq!(h.run_quiet(buy(95, 1)), vec!["R3005"]);
    h.run(cancel(1, u64::MAX));
    assert_eq!(
        h.run_quiet(buy(95, 1)),
        vec![format!("A#{} B 95 q1", u64::MAX)]
    );
}

#[test]
fn test_duplicate_client_id_is_per_account_and_per_live_order() {
    let mut h = Harness::new();
    h.run(Command {
        client_id: 7,
        ..buy(95, 1)
    });
    assert_eq!(
        h.run_quiet(Command {
            client_id: 7,
            ..buy(96, 1)
        }),
        vec!["R3004"]
    );
    assert_eq!(
        h.run_quiet(acct(
            2,
            Command {
                client_id: 7,
                ..buy(96, 1)
            }
        )),
        vec!["A#2 B 96 q1"]
    );
    h.run(cancel(1, 1));
    assert_eq!(
        h.run_quiet(Command {
            client_id: 7,
            ..buy(96, 1)
        }),
        vec!["A#3 B 96 q1"]
    );
}

#[test]
fn test_post_only_rests_or_is_rejected_when_it_would_take() {
    let mut h = Harness::new();
    h.run(sell(101, 1));
    assert_eq!(
        h.run(Command {
            flags: FLAG_POST_ONLY,
            ..buy(101, 1)
        }),
        vec!["R3009"]
    );
    assert_eq!(
        h.run(Command {
            flags: FLAG_POST_ONLY,
            tif: Tif::Day as u8,
            ..buy(100, 1)
        }),
        vec!["A#2 B 100 q1", "LB100 1/1"]
    );
}
