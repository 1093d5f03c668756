//! Post-trade: positions and P&L against a hand-computed ledger, exposure freed by every way an
//! order ends, and the controls (kill switch, halt) in the middle of a flow.

mod risk_support;

use cift_native::risk::{
    calculate_position_stats, calculate_sharpe, AccountLimits, Position, SymbolRisk, TradingState,
};
use cift_native::types::{Command, Side};
use risk_support::*;

fn unlimited() -> H {
    H::one(SymbolRisk::new(SYM), AccountLimits::UNLIMITED)
}

#[test]
fn test_position_ledger_matches_hand_computation() {
    let mut p = Position::default();
    let steps: [(Side, i64, i64, i64, i128, i128); 5] = [
        // side, qty, price -> net, cost, realized
        (Side::Buy, 10, 100, 10, 1000, 0),
        (Side::Buy, 5, 130, 15, 1650, 0),     // avg 110
        (Side::Sell, 6, 120, 9, 990, 60),     // 6 x (120 - 110)
        (Side::Sell, 12, 90, -3, -270, -120), // 9 x (90 - 110), then short 3 at 90
        (Side::Buy, 1, 80, -2, -180, -110),   // 1 x (90 - 80)
    ];
    for (side, qty, price, net, cost, realized) in steps {
        p.fill(side, qty, price);
        assert_eq!(
            (p.net, p.cost, p.realized),
            (net, cost, realized),
            "after {side:?} {qty} @ {price}"
        );
    }
    assert_eq!(p.avg_price(), Some(90.0));
    assert_eq!(p.unrealized(85), 10);
    assert_eq!((p.bought, p.sold), (16, 18));
}

#[test]
fn test_position_ledger_rounds_partial_closes_but_realizes_exactly_when_flat() {
    let mut p = Position::default();
    p.fill(Side::Buy, 3, 10);
    p.fill(Side::Buy, 1, 11); // cost 41 for 4: avg 10.25
    p.fill(Side::Sell, 1, 12); // takes 41 / 4 = 10 (toward zero)
    assert_eq!((p.net, p.cost, p.realized), (3, 31, 2));
    p.fill(Side::Sell, 3, 12);
    assert_eq!((p.net, p.cost, p.realized), (0, 0, 7)); // 48 sold - 41 paid
    assert_eq!(p.avg_price(), None);
    assert_eq!(p.unrealized(100), 0);
}

#[test]
fn test_engine_positions_and_pnl_from_book_trades_match_the_ledger() {
    let mut h = unlimited();
    for (maker_side, taker_side, qty, price) in [
        (SELL, BUY, 10, 100),
        (SELL, BUY, 5, 130),
        (BUY, SELL, 6, 120),
        (BUY, SELL, 12, 90),
        (SELL, BUY, 1, 80),
    ] {
        h.send(lim(2, maker_side, price, qty)).unwrap();
        h.send(ioc(1, taker_side, price, qty)).unwrap();
    }
    let p1 = h.risk.positions(1);
    assert_eq!(p1.len(), 1);
    let v = p1[0];
    assert_eq!(
        (
            v.symbol,
            v.position.net,
            v.position.cost,
            v.position.realized
        ),
        (SYM, -2, -180, -110)
    );
    assert_eq!(
        (v.mark_price, v.unrealized, v.avg_price),
        (80, 20, Some(90.0))
    );
    let v2 = h.risk.positions(2)[0];
    assert_eq!(
        (
            v2.position.net,
            v2.position.cost,
            v2.position.realized,
            v2.unrealized
        ),
        (2, 180, 110, -20)
    );
    assert_eq!(h.risk.account(1).unwrap().position_cost, 180);
    assert_eq!(h.risk.account(1).unwrap().open_orders, 0);
    // The same fills through the analytics function.
    let fills = [
        (Side::Buy, 10, 100),
        (Side::Buy, 5, 130),
        (Side::Sell, 6, 120),
        (Side::Sell, 12, 90),
        (Side::Buy, 1, 80),
    ];
    let s = calculate_position_stats(&fills, 80);
    assert_eq!(s.position, v.position);
    assert_eq!((s.unrealized, s.total_pnl, s.fills), (20, -90, 5));
    assert_eq!(
        (s.buy_notional, s.sell_notional),
        (1000 + 650 + 80, 720 + 1080)
    );
    assert_eq!(s.vwap_buy, Some(1730.0 / 16.0));
}

#[test]
fn test_exposure_is_freed_by_cancel_fill_ioc_and_expiry() {
    let mut h = unlimited();
    let usage = |h: &H| {
        let a = h.risk.account(1).unwrap();
        (a.open_orders, a.open_buy_notional, a.open_sell_notional)
    };
    let id = accepted_id(&h.send(lim(1, BUY, 100, 10)).unwrap());
    assert_eq!(usage(&h), (1, 1000, 0));
    h.send(amend(1, id, 101, 20)).unwrap();
    assert_eq!(usage(&h), (1, 2020, 0), "amend up");
    h.send(lim(2, SELL, 101, 5)).unwrap();
    assert_eq!(usage(&h), (1, 1515, 0), "partial fill");
    h.send(cancel(1, id)).unwrap();
    assert_eq!(usage(&h), (0, 0, 0), "cancel");
    h.send(ioc(1, SELL, 50, 7)).unwrap(); // nothing to trade: IOC remainder cancelled
    assert_eq!(usage(&h), (0, 0, 0), "IOC remainder");
    h.send(Command {
        tif: 5,
        ..lim(1, SELL, 50, 7)
    })
    .unwrap(); // FOK unfilled
    assert_eq!(usage(&h), (0, 0, 0), "FOK unfilled");
    let gtd = Command {
        tif: 3,
        expire_ts: h.ts + 5_000,
        ..lim(1, SELL, 300, 4)
    };
    h.send(gtd).unwrap();
    h.send(Command {
        tif: 2,
        ..lim(1, BUY, 90, 3)
    })
    .unwrap(); // DAY
    assert_eq!(usage(&h), (2, 270, 1200));
    h.ts += 10_000;
    h.send(Command {
        kind: 5,
        ..Command::default()
    })
    .unwrap(); // GTD expires
    assert_eq!(usage(&h), (1, 270, 0), "GTD expiry");
    h.send(end_of_day()).unwrap();
    assert_eq!(usage(&h), (0, 0, 0), "DAY expiry at end of day");
    let p = h.risk.positions(1)[0];
    assert_eq!((p.open_buy_qty, p.open_sell_qty, p.position.net), (0, 0, 5));
}

#[test]
fn test_iceberg_and_market_orders_track_open_quantity_from_the_book() {
    let mut h = unlimited();
    let ice = Command {
        display_qty: 10,
        ..lim(1, SELL, 100, 50)
    };
    h.send(ice).unwrap();
    h.send(ioc(2, BUY, 100, 15)).unwrap(); // two slices
    let a = h.risk.account(1).unwrap();
    assert_eq!((a.open_orders, a.open_sell_notional), (1, 3500));
    // A market buy with protection: notional reserved at 105, freed when done.
    h.send(mkt(2, BUY, 105, 100)).unwrap();
    let (a1, a2) = (h.risk.account(1).unwrap(), h.risk.account(2).unwrap());
    assert_eq!(
        (a1.open_orders, a2.open_orders, a2.open_buy_notional),
        (0, 0, 0)
    );
    assert_eq!(h.risk.positions(2)[0].position.net, 50);
    assert_eq!(h.risk.positions(1)[0].position.net, -50);
}

#[test]
fn test_stop_orders_count_as_open_and_follow_their_trigger() {
    let mut h = unlimited();
    let id = accepted_id(&h.send(stop_lim(1, BUY, 110, 112, 5)).unwrap());
    assert_eq!(h.risk.account(1).unwrap().open_buy_notional, 560);
    h.send(lim(2, SELL, 110, 1)).unwrap();
    h.send(lim(2, SELL, 112, 2)).unwrap();
    h.send(ioc(3, BUY, 110, 1)).unwrap(); // trade at 110 triggers the stop, which buys 2 @ 112
    let p = h.risk.positions(1)[0];
    assert_eq!((p.position.net, p.open_buy_qty), (2, 3));
    assert_eq!(h.risk.account(1).unwrap().open_buy_notional, 336);
    h.send(cancel(1, id)).unwrap();
    assert_eq!(h.risk.account(1).unwrap().open_orders, 0);
}

#[test]
fn test_self_trade_prevention_decrement_frees_the_decremented_quantity() {
    let mut h = unlimited();
    h.send(lim(1, SELL, 100, 10)).unwrap();
    h.send(Command {
        stp: 4,
        ..lim(1, BUY, 100, 4)
    })
    .unwrap();
    let a = h.risk.account(1).unwrap();
    assert_eq!(
        (a.open_orders, a.open_buy_notional, a.open_sell_notional),
        (1, 0, 600)
    );
    assert_eq!(h.risk.positions(1)[0].position.net, 0);
}

#[test]
fn test_kill_switch_under_load_blocks_the_account_and_leaves_others_trading() {
    let other = 9;
    let mut h = H::new(
        vec![SymbolRisk::new(SYM), SymbolRisk::new(other)],
        AccountLimits::UNLIMITED,
    );
    let mut cmds = Vec::new();
    for i in 0..200i64 {
        let account = 1 + (i % 4) as u64;
        let symbol = if i % 3 == 0 { other } else { SYM };
        let side = if i % 2 == 0 { BUY } else { SELL };
        let price = if side == BUY {
            100 - i % 7
        } else {
            101 + i % 7
        };
        cmds.push((symbol, lim(account, side, price, 1 + i % 5)));
    }
    assert!(h.batch(&cmds).iter().all(|&v| v == 0));
    let symbols = h.risk.set_killed(1, true).unwrap();
    assert_eq!(symbols, vec![SYM, other]);
    // The next batch: account 1's orders are refused, the mass cancels pass, others trade on.
    let mut next: Vec<(u32, Command)> = symbols.iter().map(|&s| (s, mass_cancel(1, 0))).collect();
    next.extend((0..40).map(|i| (SYM, lim(1 + i % 4, BUY, 99, 1))));
    let v = h.batch(&next);
    assert_eq!(&v[..2], &[0, 0]);
    for (i, &code) in v[2..].iter().enumerate() {
        assert_eq!(code, if i % 4 == 0 { 2005 } else { 0 });
    }
    let a1 = h.risk.account(1).unwrap();
    assert_eq!(
        (a1.open_orders, a1.open_buy_notional, a1.open_sell_notional),
        (0, 0, 0)
    );
    assert!(h.risk.account(2).unwrap().open_orders > 0);
}

#[test]
fn test_halt_under_load_refuses_new_orders_and_lets_cancels_through() {
    let mut h = unlimited();
    let ids: Vec<u64> = (0..50)
        .map(|i| accepted_id(&h.send(lim(1 + i % 3, BUY, 90 + i as i64 % 5, 1)).unwrap()))
        .collect();
    h.risk.set_symbol_state(SYM, TradingState::Halted).unwrap();
    let mut cmds: Vec<(u32, Command)> = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        cmds.push((SYM, cancel(1 + i as u64 % 3, id)));
        cmds.push((SYM, lim(1 + i as u64 % 3, SELL, 50, 1))); // would cross: must not reach the book
    }
    let v = h.batch(&cmds);
    for (i, &code) in v.iter().enumerate() {
        assert_eq!(code, if i % 2 == 0 { 0 } else { 2003 });
    }
    for a in 1..=3 {
        let acct = h.risk.account(a).unwrap();
        assert_eq!(
            (acct.open_orders, h.risk.positions(a)[0].position.net),
            (0, 0)
        );
    }
}

#[test]
fn test_orders_the_engine_did_not_check_are_tracked_from_their_events() {
    use cift_native::book::Book;
    use cift_native::types::{BookConfig, OrderBook};
    let mut h = unlimited();
    let mut book = Book::new(BookConfig::default());
    let mut out = Vec::new();
    let c = Command {
        seq: 1,
        ts: 1,
        ..lim(5, SELL, 200, 3)
    };
    book.apply(&c, &mut out);
    for e in &out {
        h.risk.on_event(SYM, e).unwrap();
    }
    let a = h.risk.account(5).unwrap();
    assert_eq!((a.open_orders, a.open_sell_notional), (1, 600));
}

#[test]
fn test_sharpe_ratio_of_a_return_series() {
    let r = [0.01, -0.02, 0.03, 0.0, 0.015];
    let mean = r.iter().sum::<f64>() / 5.0;
    let var = r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 4.0;
    let expected = mean / var.sqrt() * 252f64.sqrt();
    let got = calculate_sharpe(&r, 0.0, 252.0).unwrap();
    assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    let with_rf = calculate_sharpe(&r, 0.001, 1.0).unwrap();
    assert!((with_rf - (mean - 0.001) / var.sqrt()).abs() < 1e-12);
    assert_eq!(calculate_sharpe(&[0.01], 0.0, 252.0), None);
    assert_eq!(calculate_sharpe(&[0.01, 0.01, 0.01], 0.0, 252.0), None);
    assert_eq!(calculate_sharpe(&[0.01, f64::NAN], 0.0, 252.0), None);
    assert_eq!(calculate_sharpe(&r, 0.0, 0.0), None);
}
