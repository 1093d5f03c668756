//! Self-trade prevention: the five modes and the STP key.

use super::*;

/// Book for the STP tests: #1 account 2 sells 2 @100, #2 account 1 (own) sells 3 @100,
/// #3 account 2 sells 4 @101.
fn stp_book() -> Harness {
    let mut h = Harness::new();
    h.run(acct(2, sell(100, 2)));
    h.run(sell(100, 3));
    h.run(acct(2, sell(101, 4)));
    h
}

#[test]
fn test_stp_none_allows_self_trade() {
    let mut h = stp_book();
    assert_eq!(
        h.run_quiet(buy(100, 4)),
        vec![
            "A#4 B 100 q4",
            "T1 #1<-#4 2@100 m0 t2",
            "T2 #2<-#4 2@100 m1 t0"
        ]
    );
}

#[test]
fn test_stp_cancel_incoming_keeps_resting() {
    let mut h = stp_book();
    assert_eq!(
        h.run_quiet(Command {
            stp: 1,
            ..buy(101, 6)
        }),
        vec!["A#4 B 101 q6", "T1 #1<-#4 2@100 m0 t4", "C#4 r4 q4 l0"]
    );
    assert_eq!(h.queue(Side::Sell, 100), vec![(2, 3, 0)]);
}

#[test]
fn test_stp_cancel_resting_continues_matching() {
    let mut h = stp_book();
    assert_eq!(
        h.run_quiet(Command {
            stp: 2,
            ..buy(101, 6)
        }),
        vec![
            "A#4 B 101 q6",
            "T1 #1<-#4 2@100 m0 t4",
            "C#2 r4 q3 l0",
            "T2 #3<-#4 4@101 m0 t0"
        ]
    );
}

#[test]
fn test_stp_cancel_both_cancels_resting_then_incoming() {
    let mut h = stp_book();
    assert_eq!(
        h.run_quiet(Command {
            stp: 3,
            ..buy(101, 6)
        }),
        vec![
            "A#4 B 101 q6",
            "T1 #1<-#4 2@100 m0 t4",
            "C#2 r4 q3 l0",
            "C#4 r4 q4 l0"
        ]
    );
    assert_eq!(h.book.depth(Side::Buy, 5), vec![]);
}

#[test]
fn test_stp_decrement_reduces_both_without_trading() {
    let mut h = stp_book();
    // 4 open after #1; d = min(4, 3) = 3: #2 done, incoming left with 1, which trades at 101.
    assert_eq!(
        h.run_quiet(Command {
            stp: 4,
            ..buy(101, 6)
        }),
        vec![
            "A#4 B 101 q6",
            "T1 #1<-#4 2@100 m0 t4",
            "C#2 r4 q3 l0",
            "C#4 r4 q3 l1",
            "T2 #3<-#4 1@101 m3 t0",
        ]
    );
    let mut h = stp_book();
    // Incoming smaller: resting keeps 1, incoming is done.
    assert_eq!(
        h.run_quiet(Command {
            stp: 4,
            ..buy(100, 4)
        }),
        vec![
            "A#4 B 100 q4",
            "T1 #1<-#4 2@100 m0 t2",
            "C#2 r4 q2 l1",
            "C#4 r4 q2 l0"
        ]
    );
    assert_eq!(h.queue(Side::Sell, 100), vec![(2, 1, 0)]);
}

#[test]
fn test_stp_key_is_group_when_set() {
    let mut h = Harness::new();
    h.run(acct(
        2,
        Command {
            stp_group: 9,
            ..sell(100, 2)
        },
    ));
    // Different accounts, same group: self-match. Same account, different group: no self-match.
    assert_eq!(
        h.run_quiet(Command {
            stp: 1,
            stp_group: 9,
            ..buy(100, 1)
        }),
        vec!["A#2 B 100 q1", "C#2 r4 q1 l0"]
    );
    assert_eq!(
        h.run_quiet(acct(
            2,
            Command {
                stp: 1,
                stp_group: 8,
                ..buy(100, 1)
            }
        )),
        vec!["A#3 B 100 q1", "T1 #1<-#3 1@100 m1 t0"]
    );
}

#[test]
fn test_stp_decrement_on_iceberg_takes_reserve_first_and_keeps_priority() {
    let mut h = Harness::new();
    h.run(Command {
        display_qty: 2,
        ..sell(100, 6)
    }); // #1
    h.run(acct(2, sell(100, 1))); // #2
    assert_eq!(
        h.run(Command {
            stp: 4,
            ..buy(99, 3)
        }),
        vec!["A#3 B 99 q3", "LB99 3/1"]
    );
    assert_eq!(
        h.run_quiet(Command {
            stp: 4,
            ..buy(100, 3)
        }),
        vec!["A#4 B 100 q3", "C#1 r4 q3 l3", "C#4 r4 q3 l0"]
    );
    assert_eq!(h.queue(Side::Sell, 100), vec![(1, 2, 1), (2, 1, 0)]);
}
