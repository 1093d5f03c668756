//! Determinism and recovery: snapshot/restore round trips (including commands in flight), limits
//! and controls survive a restart, corrupt snapshots are errors, and a property test drives
//! random flows through risk and real books, cross-checking live orders against the books and
//! positions against a simple model of the trades.

mod risk_support;

use std::collections::BTreeMap;

use cift_native::risk::{
    AccountLimits, Band, RateLimit, RiskEngine, RiskError, SnapshotError, SymbolRisk, TradingState,
};
use cift_native::types::{Command, Event, OrderBook};
use proptest::prelude::*;
use risk_support::*;

fn tight() -> AccountLimits {
    AccountLimits {
        max_open_orders: 8,
        max_open_buy_notional: 5_000,
        max_open_sell_notional: 5_000,
        credit_limit: 20_000,
        max_position: 60,
        rate: Some(RateLimit {
            per_sec: 2_000,
            burst: 20,
        }),
    }
}

fn symbol() -> SymbolRisk {
    SymbolRisk {
        reference_price: 100,
        band: Band::Ticks(6),
        market_band: Band::Bps(500),
        max_qty: 40,
        ..SymbolRisk::new(SYM)
    }
}

/// Restoring the snapshot gives the same bytes and the same views (so the usage totals kept
/// incrementally equal the ones recomputed from orders and positions).
fn assert_round_trip(e: &RiskEngine) -> RiskEngine {
    let bytes = e.snapshot();
    let r = RiskEngine::restore(&bytes).expect("own snapshot restores");
    assert_eq!(r.snapshot(), bytes);
    assert_eq!(r.digest(), e.digest());
    assert_eq!(r.account_ids(), e.account_ids());
    for id in e.account_ids() {
        assert_eq!(r.account(id), e.account(id), "account {id}");
        assert_eq!(r.positions(id), e.positions(id), "positions {id}");
        assert_eq!(r.orders(id), e.orders(id), "orders {id}");
    }
    r
}

#[test]
fn test_snapshot_round_trips_with_commands_in_flight() {
    let mut h = H::one(symbol(), tight());
    h.send(lim(1, SELL, 101, 5)).unwrap();
    h.send(with_client(lim(2, BUY, 99, 5), 7)).unwrap();
    let id = accepted_id(&h.send(lim(2, BUY, 98, 5)).unwrap());
    h.send(ioc(2, BUY, 101, 3)).unwrap();
    // Checked but not yet answered by the book: a new order and an amend up.
    let new = Command {
        seq: 1000,
        ts: h.ts + 1,
        ..with_client(lim(3, SELL, 104, 4), 11)
    };
    let up = Command {
        seq: 1001,
        ts: h.ts + 2,
        ..amend(2, id, 0, 9)
    };
    h.risk.check(SYM, &new).unwrap();
    h.risk.check(SYM, &up).unwrap();
    assert!(h.risk.orders(3)[0].in_flight);
    let mut restored = assert_round_trip(&h.risk);
    // The book answers; both engines take the same events and stay equal.
    let mut events = Vec::new();
    h.books[0].1.apply(&new, &mut events);
    h.books[0].1.apply(&up, &mut events);
    for e in &events {
        h.risk.on_event(SYM, e).unwrap();
        restored.on_event(SYM, e).unwrap();
    }
    assert_eq!(restored.digest(), h.risk.digest());
    assert_eq!(
        h.risk.account(2).unwrap().open_buy_notional,
        99 * 5 + 98 * 9
    );
    assert!(!h.risk.orders(3)[0].in_flight);
    assert_round_trip(&h.risk);
}

#[test]
fn test_limits_switches_and_states_survive_a_restart() {
    let mut h = H::new(vec![symbol(), SymbolRisk::new(9)], AccountLimits::UNLIMITED);
    h.risk
        .set_limits(
            1,
            AccountLimits {
                max_open_orders: 1,
                ..AccountLimits::UNLIMITED
            },
        )
        .unwrap();
    h.risk
        .set_default_limits(AccountLimits {
            max_position: 3,
            ..AccountLimits::UNLIMITED
        })
        .unwrap();
    h.risk.set_enabled(2, false).unwrap();
    h.risk.set_killed(3, true).unwrap();
    h.risk.set_symbol_state(9, TradingState::Halted).unwrap();
    h.send(with_client(lim(1, BUY, 100, 1), 5)).unwrap();
    h.risk = assert_round_trip(&h.risk);
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2015);
    assert_eq!(h.code(lim(2, BUY, 100, 1)), 2004);
    assert_eq!(h.code(lim(3, BUY, 100, 1)), 2005);
    assert_eq!(h.code(lim(4, BUY, 100, 4)), 2018);
    assert_eq!(h.code(with_client(lim(4, BUY, 100, 1), 5)), 0);
    assert_eq!(
        h.risk.check(9, &lim(4, BUY, 100, 1)).unwrap_err().code(),
        2003
    );
    h.risk.reset_limits(1).unwrap();
    assert_eq!(
        h.code(with_client(lim(1, BUY, 100, 1), 5)),
        2020,
        "today's client ids survive"
    );
}

#[test]
fn test_replaying_the_same_commands_and_controls_gives_the_same_state() {
    let run = || {
        let mut h = H::one(symbol(), tight());
        for i in 0..300i64 {
            if i == 100 {
                h.risk
                    .set_limits(
                        2,
                        AccountLimits {
                            max_open_orders: 2,
                            ..tight()
                        },
                    )
                    .unwrap();
            }
            if i == 200 {
                h.risk.set_killed(3, true).unwrap();
            }
            let account = 1 + (i % 3) as u64;
            let side = if (i * 7) % 5 < 2 { BUY } else { SELL };
            let _ = h.send(lim(account, side, 97 + (i * 13) % 7, 1 + (i * 11) % 9));
        }
        h.risk
    };
    assert_eq!(run().digest(), run().digest());
}

#[test]
fn test_corrupt_snapshots_are_errors() {
    let mut h = H::one(symbol(), tight());
    h.send(lim(1, BUY, 100, 1)).unwrap();
    let good = h.risk.snapshot();
    let err = |b: &[u8]| RiskEngine::restore(b).err();
    assert_eq!(
        err(&good[..good.len() - 1]),
        Some(RiskError::Snapshot(SnapshotError::Checksum))
    );
    assert_eq!(
        err(&good[..4]),
        Some(RiskError::Snapshot(SnapshotError::Truncated))
    );
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(
        err(&bad),
        Some(RiskError::Snapshot(SnapshotError::BadMagic))
    );
    let mut bad = good.clone();
    bad[8] = 2;
    assert_eq!(
        err(&bad),
        Some(RiskError::Snapshot(SnapshotError::UnsupportedVersion(2)))
    );
    let mut bad = good.clone();
    let n = bad.len();
    bad[n / 2] ^= 1;
    assert_eq!(
        err(&bad),
        Some(RiskError::Snapshot(SnapshotError::Checksum))
    );
}

proptest! {
    #[test]
    fn prop_restore_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = RiskEngine::restore(&bytes);
    }
}

/// One random operation of the property test.
#[derive(Clone, Debug)]
enum Op {
    /// A limit order; `tif` 1 GTC, 2 DAY, 4 IOC.
    Limit {
        account: u64,
        buy: bool,
        price: i64,
        qty: i64,
        tif: u8,
        client: u64,
    },
    Market {
        account: u64,
        buy: bool,
        qty: i64,
        protect: bool,
    },
    Stop {
        account: u64,
        buy: bool,
        stop: i64,
        qty: i64,
    },
    Cancel {
        account: u64,
        id: u64,
    },
    Amend {
        account: u64,
        id: u64,
        price: i64,
        qty: i64,
    },
    Mass {
        account: u64,
    },
    Kill {
        account: u64,
        on: bool,
    },
    Halt {
        on: bool,
    },
    EndOfDay,
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    let account = 1u64..=4;
    let tif = prop::sample::select(vec![1u8, 1, 2, 4]);
    prop_oneof![
        8 => (account.clone(), any::<bool>(), 92i64..=108, 1i64..=45, tif, 0u64..=6).prop_map(
            |(account, buy, price, qty, tif, client)| Op::Limit { account, buy, price, qty, tif, client }
        ),
        1 => (account.clone(), any::<bool>(), 1i64..=30, any::<bool>())
            .prop_map(|(account, buy, qty, protect)| Op::Market { account, buy, qty, protect }),
        1 => (account.clone(), any::<bool>(), 95i64..=105, 1i64..=10)
            .prop_map(|(account, buy, stop, qty)| Op::Stop { account, buy, stop, qty }),
        2 => (account.clone(), 1u64..=60).prop_map(|(account, id)| Op::Cancel { account, id }),
        3 => (account.clone(), 1u64..=60, 0i64..=108, 1i64..=45).prop_map(|(account, id, price, qty)| {
            Op::Amend { account, id, price: if price < 92 { 0 } else { price }, qty }
        }),
        1 => account.clone().prop_map(|account| Op::Mass { account }),
        1 => (account, prop::bool::weighted(0.3)).prop_map(|(account, on)| Op::Kill { account, on }),
        1 => prop::bool::weighted(0.3).prop_map(|on| Op::Halt { on }),
        1 => Just(Op::EndOfDay),
        3 => Just(Op::Flush),
    ]
}

fn command(op: &Op) -> Option<Command> {
    let side = |buy: bool| if buy { BUY } else { SELL };
    Some(match *op {
        Op::Limit {
            account,
            buy,
            price,
            qty,
            tif,
            client,
        } => Command {
            tif,
            ..with_client(lim(account, side(buy), price, qty), client)
        },
        Op::Market {
            account,
            buy,
            qty,
            protect,
        } => {
            let protection = match (protect, buy) {
                (false, _) => 0,
                (true, true) => 104,
                (true, false) => 96,
            };
            mkt(account, side(buy), protection, qty)
        }
        Op::Stop {
            account,
            buy,
            stop,
            qty,
        } => stop_lim(account, side(buy), stop, stop, qty),
        Op::Cancel { account, id } => cancel(account, id),
        Op::Amend {
            account,
            id,
            price,
            qty,
        } => amend(account, id, price, qty),
        Op::Mass { account } => mass_cancel(account, 0),
        Op::EndOfDay => end_of_day(),
        Op::Kill { .. } | Op::Halt { .. } | Op::Flush => return None,
    })
}

/// With `explicit` ids (as the daemon's sequencer gives them), new order `i` carries order id
/// 1000 + i and cancels and amends aim at those ids; else the book numbers orders 1, 2, ...
fn with_ids(c: Command, i: usize, explicit: bool) -> Command {
    match (explicit, c.kind) {
        (true, 1) => Command {
            order_id: 1000 + i as u64,
            ..c
        },
        (true, 2 | 3) => Command {
            order_id: 1000 + c.order_id * 2,
            ..c
        },
        _ => c,
    }
}

/// Net position per account from the trade events alone.
fn model_positions(events: &[Event], net: &mut BTreeMap<u64, i64>) {
    for e in events.iter().filter(|e| e.kind == 3) {
        let maker = if e.side == BUY { e.qty } else { -e.qty };
        *net.entry(e.account).or_default() += maker;
        *net.entry(e.counter_account).or_default() -= maker;
    }
}

proptest! {
    // 96 cases by default; PROPTEST_CASES=N runs more.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        ..ProptestConfig::default()
    })]

    #[test]
    fn prop_random_flows_keep_risk_consistent_with_the_books(
        ops in proptest::collection::vec(op(), 1..160),
        cut in 0usize..160,
        explicit_ids in any::<bool>(),
    ) {
        let mut h = H::one(symbol(), tight());
        let mut replica: Option<RiskEngine> = None;
        let mut net = BTreeMap::new();
        let mut pending: Vec<(u32, Command)> = Vec::new();
        let mut verdicts: BTreeMap<u16, usize> = BTreeMap::new();
        let mut trades = 0usize;
        let mut flush = |h: &mut H, pending: &mut Vec<(u32, Command)>, replica: &mut Option<RiskEngine>| {
            if pending.is_empty() {
                return;
            }
            let b = h.batch_full(pending);
            if let Some(r) = replica.as_mut() {
                b.replay(r);
            }
            let events = b.decoded_events();
            model_positions(&events, &mut net);
            trades += events.iter().filter(|e| e.kind == 3).count();
            for v in b.verdicts {
                *verdicts.entry(v).or_default() += 1;
            }
            pending.clear();
        };
        for (i, op) in ops.iter().enumerate() {
            if i == cut {
                flush(&mut h, &mut pending, &mut replica);
                replica = Some(assert_round_trip(&h.risk));
            }
            match op {
                Op::Flush => flush(&mut h, &mut pending, &mut replica),
                Op::Kill { account, on } => {
                    flush(&mut h, &mut pending, &mut replica);
                    let symbols = h.risk.set_killed(*account, *on).expect("kill");
                    if let Some(r) = replica.as_mut() {
                        prop_assert_eq!(r.set_killed(*account, *on).expect("kill"), symbols.clone());
                    }
                    for s in symbols {
                        pending.push((s, mass_cancel(*account, 0)));
                    }
                }
                Op::Halt { on } => {
                    flush(&mut h, &mut pending, &mut replica);
                    let state = if *on { TradingState::Halted } else { TradingState::Open };
                    h.risk.set_symbol_state(SYM, state).expect("known symbol");
                    if let Some(r) = replica.as_mut() {
                        r.set_symbol_state(SYM, state).expect("known symbol");
                    }
                }
                _ => pending.extend(command(op).map(|c| (SYM, with_ids(c, i, explicit_ids)))),
            }
        }
        flush(&mut h, &mut pending, &mut replica);
        if std::env::var_os("RISK_PROP_STATS").is_some() {
            eprintln!("verdicts {verdicts:?} trades {trades}");
        }
        if let Some(r) = &replica {
            prop_assert_eq!(r.digest(), h.risk.digest());
        }
        assert_round_trip(&h.risk);
        // Live orders agree with the book, order by order.
        let book = &h.books[0].1;
        prop_assert_eq!(h.risk.live_orders(), book.order_count());
        for account in h.risk.account_ids() {
            let mut open = [0i64; 2];
            for o in h.risk.orders(account) {
                prop_assert!(!o.in_flight);
                let b = book.order(o.order_id).expect("risk's live order is in the book");
                prop_assert_eq!((b.account, b.side, b.visible + b.hidden), (account, o.side, o.open));
                open[o.side as usize - 1] += o.open;
            }
            let positions = h.risk.positions(account);
            let p = positions.first().map(|p| (p.position.net, p.open_buy_qty, p.open_sell_qty));
            let model_net = net.get(&account).copied().unwrap_or(0);
            prop_assert_eq!(p.unwrap_or((0, 0, 0)), (model_net, open[0], open[1]));
            // Limits held: never more open orders than allowed (kill switch aside).
            let a = h.risk.account(account).expect("known account");
            prop_assert!(a.open_orders <= tight().max_open_orders);
            prop_assert!(a.open_buy_notional <= tight().max_open_buy_notional, "{:?} {:?}", a, h.risk.orders(account));
            prop_assert!(a.open_sell_notional <= tight().max_open_sell_notional);
        }
    }
}
