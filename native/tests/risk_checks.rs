//! Every pre-trade check at its boundary: just inside passes, just outside is rejected with its
//! code, and a rejected command changes nothing (the state digest is unchanged).

mod risk_support;

use cift_native::risk::{
    risk_reject_text, AccountLimits, Band, RateLimit, RiskReject, SymbolRisk, TradingState,
};
use cift_native::types::Command;
use risk_support::*;

fn sym() -> SymbolRisk {
    SymbolRisk::new(SYM)
}

fn limits() -> AccountLimits {
    AccountLimits::UNLIMITED
}

/// `outside` is rejected with `code` and changes nothing; then `inside` passes.
fn boundary(h: &mut H, inside: Command, outside: Command, code: u16) {
    let before = h.risk.digest();
    assert_eq!(h.code(outside), code, "outside: {outside:?}");
    assert_eq!(
        h.risk.digest(),
        before,
        "a rejected command changed the risk state"
    );
    assert_eq!(h.code(inside), 0, "inside: {inside:?}");
}

#[test]
fn test_every_code_has_a_text_and_round_trips() {
    for r in RiskReject::ALL {
        assert_eq!(RiskReject::from_code(r.code()), Some(r));
        assert_eq!(
            risk_reject_text(r.code()).as_deref(),
            Some(r.to_string().as_str())
        );
    }
    let codes: Vec<u16> = RiskReject::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(codes, (2001..=2025).collect::<Vec<u16>>());
    assert_eq!(risk_reject_text(2000), None);
    assert_eq!(risk_reject_text(3001), None);
}

#[test]
fn test_unknown_symbol_is_rejected_with_code_2001() {
    let mut h = H::one(sym(), limits());
    assert_eq!(
        h.risk.check(99, &lim(1, BUY, 100, 1)),
        Err(RiskReject::UnknownSymbol)
    );
    assert_eq!(
        h.risk.check(99, &cancel(1, 1)),
        Err(RiskReject::UnknownSymbol)
    );
}

#[test]
fn test_closed_symbol_rejects_orders_amends_and_cancels_with_2002() {
    let mut h = H::one(sym(), limits());
    let id = accepted_id(&h.send(lim(1, BUY, 100, 1)).unwrap());
    h.risk.set_symbol_state(SYM, TradingState::Closed).unwrap();
    for c in [
        lim(1, BUY, 100, 1),
        amend(1, id, 101, 1),
        cancel(1, id),
        mass_cancel(1, 0),
    ] {
        assert_eq!(h.code(c), 2002);
    }
    h.risk.set_symbol_state(SYM, TradingState::Open).unwrap();
    assert_eq!(h.code(cancel(1, id)), 0);
}

#[test]
fn test_halted_symbol_rejects_orders_and_amends_with_2003_but_allows_cancels() {
    let mut h = H::one(sym(), limits());
    let a = accepted_id(&h.send(lim(1, BUY, 100, 1)).unwrap());
    let b = accepted_id(&h.send(lim(1, BUY, 100, 1)).unwrap());
    h.risk.set_symbol_state(SYM, TradingState::Halted).unwrap();
    assert_eq!(h.code(lim(1, SELL, 100, 1)), 2003);
    assert_eq!(h.code(amend(1, a, 99, 1)), 2003);
    assert_eq!(h.code(cancel(1, a)), 0);
    assert_eq!(h.code(mass_cancel(1, 0)), 0);
    assert_eq!(
        h.risk.account(1).unwrap().open_orders,
        0,
        "cancels freed both orders"
    );
    let _ = b;
    h.risk.set_symbol_state(SYM, TradingState::Open).unwrap();
    assert_eq!(h.code(lim(1, SELL, 100, 1)), 0);
}

#[test]
fn test_disabled_account_is_rejected_with_2004_and_may_still_cancel() {
    let mut h = H::one(sym(), limits());
    let id = accepted_id(&h.send(lim(1, BUY, 100, 1)).unwrap());
    h.risk.set_enabled(1, false).unwrap();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2004);
    assert_eq!(h.code(amend(1, id, 100, 2)), 2004);
    assert_eq!(h.code(lim(2, BUY, 100, 1)), 0, "other accounts unaffected");
    assert_eq!(h.code(cancel(1, id)), 0);
    h.risk.set_enabled(1, true).unwrap();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 0);
}

#[test]
fn test_kill_switch_blocks_with_2005_and_names_symbols_to_mass_cancel() {
    let other = 8;
    let mut h = H::new(vec![sym(), SymbolRisk::new(other)], limits());
    h.send(lim(1, BUY, 100, 1)).unwrap();
    h.send_to(other, lim(1, SELL, 200, 1)).unwrap();
    h.send(lim(2, BUY, 100, 1)).unwrap();
    assert_eq!(h.risk.set_killed(1, true).unwrap(), vec![SYM, other]);
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2005);
    // The daemon's mass cancels, one per named symbol: allowed, and they free the exposure.
    h.send(mass_cancel(1, 0)).unwrap();
    h.send_to(other, mass_cancel(1, 0)).unwrap();
    assert_eq!(h.risk.account(1).unwrap().open_orders, 0);
    assert_eq!(h.risk.live_symbols(1), Vec::<u32>::new());
    assert_eq!(h.risk.account(2).unwrap().open_orders, 1);
    assert_eq!(h.risk.set_killed(1, false).unwrap(), Vec::<u32>::new());
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 0);
}

#[test]
fn test_price_off_the_tick_is_rejected_with_2006() {
    let mut h = H::one(SymbolRisk { tick: 5, ..sym() }, limits());
    boundary(&mut h, lim(1, BUY, 1005, 1), lim(1, BUY, 1004, 1), 2006);
    boundary(
        &mut h,
        stop_lim(1, BUY, 1010, 1015, 1),
        stop_lim(1, BUY, 1011, 1015, 1),
        2006,
    );
    boundary(&mut h, mkt(1, BUY, 1020, 1), mkt(1, BUY, 1021, 1), 2006);
    let id = accepted_id(&h.send(lim(1, SELL, 2000, 1)).unwrap());
    boundary(&mut h, amend(1, id, 1995, 1), amend(1, id, 1996, 1), 2006);
}

#[test]
fn test_quantity_off_the_lot_is_rejected_with_2007() {
    let mut h = H::one(
        SymbolRisk {
            lot: 10,
            min_qty: 10,
            ..sym()
        },
        limits(),
    );
    boundary(&mut h, lim(1, BUY, 100, 20), lim(1, BUY, 100, 25), 2007);
    let iceberg = |display| Command {
        display_qty: display,
        ..lim(1, BUY, 100, 50)
    };
    boundary(&mut h, iceberg(10), iceberg(15), 2007);
    let id = accepted_id(&h.send(lim(1, SELL, 200, 30)).unwrap());
    boundary(&mut h, amend(1, id, 0, 40), amend(1, id, 0, 41), 2007);
}

#[test]
fn test_quantity_below_minimum_is_rejected_with_2008() {
    let mut h = H::one(
        SymbolRisk {
            min_qty: 20,
            ..sym()
        },
        limits(),
    );
    boundary(&mut h, lim(1, BUY, 100, 20), lim(1, BUY, 100, 19), 2008);
    assert_eq!(
        h.code(lim(1, BUY, 100, 0)),
        2008,
        "zero is below any minimum"
    );
}

#[test]
fn test_quantity_above_maximum_is_rejected_with_2009() {
    let mut h = H::one(
        SymbolRisk {
            max_qty: 1000,
            ..sym()
        },
        limits(),
    );
    boundary(&mut h, lim(1, BUY, 100, 1000), lim(1, BUY, 100, 1001), 2009);
    let id = accepted_id(&h.send(lim(1, SELL, 200, 10)).unwrap());
    boundary(&mut h, amend(1, id, 0, 1000), amend(1, id, 0, 1001), 2009);
}

#[test]
fn test_market_order_without_protection_or_reference_is_rejected_with_2010() {
    let mut h = H::one(sym(), limits());
    assert_eq!(h.code(mkt(1, BUY, 0, 1)), 2010);
    assert_eq!(
        h.code(mkt(1, BUY, 105, 1)),
        0,
        "a protection price is enough"
    );
    let mut h = H::one(
        SymbolRisk {
            reference_price: 100,
            ..sym()
        },
        limits(),
    );
    assert_eq!(
        h.code(mkt(1, BUY, 0, 1)),
        0,
        "a configured reference is enough"
    );
    let mut h = H::one(sym(), limits());
    h.send(lim(1, SELL, 100, 1)).unwrap();
    h.send(lim(2, BUY, 100, 1)).unwrap();
    assert_eq!(h.code(mkt(1, SELL, 0, 1)), 0, "a last trade is enough");
}

#[test]
fn test_order_notional_above_maximum_is_rejected_with_2011() {
    let mut h = H::one(
        SymbolRisk {
            max_notional: 100_000,
            ..sym()
        },
        limits(),
    );
    boundary(&mut h, lim(1, BUY, 1000, 100), lim(1, BUY, 1000, 101), 2011);
    boundary(&mut h, lim(1, BUY, 2500, 40), lim(1, BUY, 2501, 40), 2011);
    // Stop-market without protection: notional at the stop price.
    boundary(
        &mut h,
        stop_mkt(1, BUY, 1000, 0, 100),
        stop_mkt(1, BUY, 1001, 0, 100),
        2011,
    );
    let id = accepted_id(&h.send(lim(1, SELL, 5000, 10)).unwrap());
    boundary(&mut h, amend(1, id, 0, 20), amend(1, id, 0, 21), 2011);
    boundary(&mut h, amend(1, id, 4000, 25), amend(1, id, 4005, 25), 2011);
}

#[test]
fn test_unprotected_market_order_notional_is_taken_at_the_market_band_edge() {
    // Reference 1000, market band 10 %: a buy may reach 1100, a sell 900.
    let cfg = SymbolRisk {
        reference_price: 1000,
        market_band: Band::Bps(1000),
        max_notional: 110_000,
        ..sym()
    };
    let mut h = H::one(cfg, limits());
    boundary(&mut h, mkt(1, BUY, 0, 100), mkt(1, BUY, 0, 101), 2011);
    let mut h = H::one(
        SymbolRisk {
            max_notional: 90_000,
            ..cfg
        },
        limits(),
    );
    boundary(&mut h, mkt(1, SELL, 0, 100), mkt(1, SELL, 0, 101), 2011);
}

#[test]
fn test_limit_price_outside_the_tick_band_is_rejected_with_2012() {
    let mut h = H::one(
        SymbolRisk {
            reference_price: 1000,
            band: Band::Ticks(50),
            ..sym()
        },
        limits(),
    );
    boundary(&mut h, lim(1, BUY, 1050, 1), lim(1, BUY, 1051, 1), 2012);
    boundary(&mut h, lim(1, SELL, 950, 1), lim(1, SELL, 949, 1), 2012);
}

#[test]
fn test_limit_price_outside_the_percent_band_is_rejected_with_2012() {
    // 250 bp = 2.5 % of 1000 = 25 ticks.
    let mut h = H::one(
        SymbolRisk {
            reference_price: 1000,
            band: Band::Bps(250),
            ..sym()
        },
        limits(),
    );
    boundary(&mut h, lim(1, BUY, 1025, 1), lim(1, BUY, 1026, 1), 2012);
    boundary(&mut h, lim(1, SELL, 975, 1), lim(1, SELL, 974, 1), 2012);
}

#[test]
fn test_band_follows_the_last_trade_and_is_off_without_a_reference() {
    let mut h = H::one(
        SymbolRisk {
            band: Band::Ticks(10),
            ..sym()
        },
        limits(),
    );
    assert_eq!(
        h.code(lim(1, SELL, 5000, 1)),
        0,
        "no reference yet: no band"
    );
    assert_eq!(h.code(lim(2, BUY, 5000, 1)), 0);
    assert_eq!(h.risk.symbol(SYM).unwrap().reference_price, 5000);
    boundary(&mut h, lim(1, BUY, 5010, 1), lim(1, BUY, 5011, 1), 2012);
    boundary(&mut h, lim(1, SELL, 4990, 1), lim(1, SELL, 4989, 1), 2012);
}

#[test]
fn test_stop_limit_price_is_banded_around_its_stop_price() {
    let mut h = H::one(
        SymbolRisk {
            reference_price: 1000,
            band: Band::Ticks(20),
            ..sym()
        },
        limits(),
    );
    boundary(
        &mut h,
        stop_lim(1, BUY, 2000, 2020, 1),
        stop_lim(1, BUY, 2000, 2021, 1),
        2012,
    );
    let id = accepted_id(&h.send(stop_lim(1, SELL, 500, 490, 1)).unwrap());
    boundary(&mut h, amend(1, id, 480, 1), amend(1, id, 479, 1), 2012);
}

#[test]
fn test_amended_limit_price_outside_the_band_is_rejected_with_2012() {
    let mut h = H::one(
        SymbolRisk {
            reference_price: 1000,
            band: Band::Ticks(50),
            ..sym()
        },
        limits(),
    );
    let id = accepted_id(&h.send(lim(1, BUY, 990, 5)).unwrap());
    boundary(&mut h, amend(1, id, 950, 5), amend(1, id, 949, 5), 2012);
    assert_eq!(
        h.code(amend(1, id, 0, 4)),
        0,
        "a quantity-only amend is not banded"
    );
}

#[test]
fn test_market_protection_price_outside_the_market_band_is_rejected_with_2013() {
    let cfg = SymbolRisk {
        reference_price: 1000,
        market_band: Band::Ticks(30),
        ..sym()
    };
    let mut h = H::one(cfg, limits());
    boundary(&mut h, mkt(1, BUY, 1030, 1), mkt(1, BUY, 1031, 1), 2013);
    boundary(&mut h, mkt(1, SELL, 970, 1), mkt(1, SELL, 969, 1), 2013);
    // Stop-market protection against its stop price.
    boundary(
        &mut h,
        stop_mkt(1, BUY, 2000, 2030, 1),
        stop_mkt(1, BUY, 2000, 2031, 1),
        2013,
    );
}

#[test]
fn test_order_rate_above_the_bucket_is_rejected_with_2014() {
    let rate = Some(RateLimit {
        per_sec: 10,
        burst: 3,
    });
    let mut h = H::one(sym(), AccountLimits { rate, ..limits() });
    h.step = 0; // all at the same sequenced time
    for _ in 0..3 {
        assert_eq!(h.code(lim(1, BUY, 100, 1)), 0);
    }
    let before = h.risk.digest();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2014);
    assert_eq!(h.code(amend(1, 1, 0, 2)), 2014, "amends count too");
    assert_eq!(h.risk.digest(), before);
    assert_eq!(h.code(cancel(1, 1)), 0, "cancels are never rate limited");
    assert_eq!(h.code(lim(2, BUY, 100, 1)), 0, "buckets are per account");
    // 10 per second: one message every 100 ms of sequenced time.
    h.ts += 99_999_999;
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2014);
    h.ts += 1;
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 0);
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2014);
    // A long pause refills to the burst, no more.
    h.ts += 10_000_000_000;
    for _ in 0..3 {
        assert_eq!(h.code(lim(1, BUY, 100, 1)), 0);
    }
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2014);
}

#[test]
fn test_too_many_open_orders_is_rejected_with_2015_until_one_is_done() {
    let mut h = H::one(
        sym(),
        AccountLimits {
            max_open_orders: 2,
            ..limits()
        },
    );
    let a = accepted_id(&h.send(lim(1, BUY, 100, 1)).unwrap());
    let b = accepted_id(&h.send(lim(1, SELL, 200, 5)).unwrap());
    let before = h.risk.digest();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2015);
    assert_eq!(h.risk.digest(), before);
    h.send(cancel(1, a)).unwrap();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 0, "a cancel frees a slot");
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2015);
    h.send(ioc(2, BUY, 200, 5)).unwrap();
    assert_eq!(
        h.risk.account(1).unwrap().open_orders,
        1,
        "a fill frees a slot"
    );
    let _ = b;
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 0);
}

#[test]
fn test_open_buy_notional_above_limit_is_rejected_with_2016() {
    let mut h = H::one(
        sym(),
        AccountLimits {
            max_open_buy_notional: 10_000,
            ..limits()
        },
    );
    h.send(lim(1, BUY, 100, 60)).unwrap(); // 6_000 open
    boundary(&mut h, lim(1, BUY, 100, 40), lim(1, BUY, 100, 41), 2016);
    assert_eq!(
        h.code(lim(1, SELL, 100_000, 1)),
        0,
        "the sell side has its own limit"
    );
}

#[test]
fn test_open_sell_notional_above_limit_is_rejected_with_2017() {
    let mut h = H::one(
        sym(),
        AccountLimits {
            max_open_sell_notional: 10_000,
            ..limits()
        },
    );
    let id = accepted_id(&h.send(lim(1, SELL, 100, 60)).unwrap());
    boundary(&mut h, lim(1, SELL, 100, 40), lim(1, SELL, 100, 41), 2017);
    h.send(cancel(1, id)).unwrap();
    // Amend up by the delta only: the order alone is 4_000, room for 6_000 more.
    let id = accepted_id(&h.send(lim(1, SELL, 200, 20)).unwrap());
    assert_eq!(h.risk.account(1).unwrap().open_sell_notional, 8_000);
    boundary(&mut h, amend(1, id, 0, 30), amend(1, id, 0, 31), 2017);
}

#[test]
fn test_position_above_limit_counting_open_orders_is_rejected_with_2018() {
    let mut h = H::one(
        sym(),
        AccountLimits {
            max_position: 100,
            ..limits()
        },
    );
    h.send(lim(2, SELL, 100, 30)).unwrap();
    h.send(ioc(1, BUY, 100, 30)).unwrap(); // account 1 long 30
    h.send(lim(1, BUY, 90, 50)).unwrap(); // worst case long 80
    boundary(&mut h, lim(1, BUY, 90, 20), lim(1, BUY, 90, 21), 2018);
    // Sell side worst case: 30 - 130 = -100.
    boundary(&mut h, lim(1, SELL, 200, 130), lim(1, SELL, 200, 131), 2018);
}

#[test]
fn test_credit_above_limit_is_rejected_with_2019_but_reducing_orders_pass() {
    let mut h = H::one(
        sym(),
        AccountLimits {
            credit_limit: 10_000,
            ..limits()
        },
    );
    h.send(lim(2, SELL, 100, 30)).unwrap();
    h.send(ioc(1, BUY, 100, 30)).unwrap(); // position cost 3_000
    h.send(lim(1, BUY, 100, 20)).unwrap(); // open buy 2_000
    assert_eq!(h.risk.account(1).unwrap().credit_used, 5_000);
    boundary(&mut h, lim(1, BUY, 100, 50), lim(1, BUY, 100, 51), 2019);
    // At the limit, a sell that only reduces the long position still passes...
    assert_eq!(h.code(lim(1, SELL, 200, 30)), 0);
    // ...but not one that would go short.
    assert_eq!(h.code(lim(1, SELL, 200, 1)), 2019);
}

#[test]
fn test_duplicate_client_id_within_the_day_is_rejected_with_2020() {
    let mut h = H::one(sym(), limits());
    let id = accepted_id(&h.send(with_client(lim(1, BUY, 100, 1), 55)).unwrap());
    boundary(
        &mut h,
        with_client(lim(1, BUY, 100, 1), 56),
        with_client(lim(1, BUY, 100, 1), 55),
        2020,
    );
    h.send(cancel(1, id)).unwrap();
    assert_eq!(
        h.code(with_client(lim(1, BUY, 100, 1), 55)),
        2020,
        "still used today"
    );
    assert_eq!(
        h.code(with_client(lim(2, BUY, 100, 1), 55)),
        0,
        "per account"
    );
    h.send(end_of_day()).unwrap();
    assert_eq!(h.code(with_client(ioc(1, BUY, 100, 1), 55)), 0, "a new day");
    assert_eq!(
        h.code(with_client(ioc(1, BUY, 100, 1), 55)),
        2020,
        "used today"
    );
    // The daemon may broadcast AdvanceTime with a symbol the engine does not know.
    assert_eq!(h.risk.check(u32::MAX, &end_of_day()), Ok(()));
    assert_eq!(
        h.code(with_client(ioc(1, BUY, 100, 1), 55)),
        0,
        "another new day"
    );
}

#[test]
fn test_amend_in_the_same_batch_as_its_order_is_checked_against_it() {
    // The sequencer gives new orders explicit engine ids, so an amend can follow in the batch.
    let mut h = H::one(
        sym(),
        AccountLimits {
            max_open_buy_notional: 1_000,
            ..limits()
        },
    );
    let new = |id| Command {
        order_id: id,
        ..lim(1, BUY, 100, 5)
    };
    assert_eq!(
        h.batch(&[(SYM, new(500)), (SYM, amend(1, 500, 0, 11))]),
        vec![0, 2016]
    );
    assert_eq!(h.batch(&[(SYM, cancel(1, 500))]), vec![0]);
    assert_eq!(
        h.batch(&[(SYM, new(501)), (SYM, amend(1, 501, 0, 10))]),
        vec![0, 0]
    );
    assert_eq!(h.risk.account(1).unwrap().open_buy_notional, 1_000);
    h.send(amend(1, 501, 0, 5)).unwrap();
    let before = h.risk.digest();
    assert_eq!(h.code(new(501)), 2022, "a live order id");
    assert_eq!(h.risk.digest(), before);
}

#[test]
fn test_client_id_of_a_live_order_from_an_earlier_day_is_a_duplicate() {
    let mut h = H::one(sym(), limits());
    h.send(with_client(lim(1, BUY, 100, 1), 8)).unwrap(); // GTC: lives on
    h.send(with_client(
        Command {
            tif: 2,
            ..lim(1, BUY, 100, 1)
        },
        9,
    ))
    .unwrap(); // DAY
    h.send(end_of_day()).unwrap();
    assert_eq!(h.code(with_client(lim(1, BUY, 100, 1), 8)), 2020);
    assert_eq!(
        h.code(with_client(lim(1, BUY, 100, 1), 9)),
        0,
        "expired at the end of day"
    );
    // In one batch with the end of day that frees it, the id still counts as live: risk cannot
    // know the book will free it first, and must not let an unreserved order through.
    h.send(with_client(
        Command {
            tif: 2,
            ..lim(1, BUY, 100, 1)
        },
        10,
    ))
    .unwrap();
    let v = h.batch(&[
        (SYM, end_of_day()),
        (SYM, with_client(lim(1, BUY, 100, 1), 10)),
    ]);
    assert_eq!(v, vec![0, 2020]);
}

#[test]
fn test_client_id_of_an_order_the_book_rejected_is_free_again() {
    let mut h = H::one(sym(), limits());
    // The book rejects a GTD without expiry after the command time (3012).
    let bad = Command {
        tif: 3,
        expire_ts: 1,
        ..with_client(lim(1, BUY, 100, 1), 9)
    };
    let events = h.send(bad).unwrap();
    assert_eq!((events[0].kind, events[0].code), (2, 3012));
    assert_eq!(h.risk.account(1).unwrap().open_orders, 0);
    assert_eq!(h.code(with_client(lim(1, BUY, 100, 1), 9)), 0);
}

#[test]
fn test_amend_down_always_passes_and_frees_exposure() {
    let limits = AccountLimits {
        max_open_buy_notional: 1_000,
        max_position: 10,
        ..limits()
    };
    let mut h = H::one(sym(), limits);
    let id = accepted_id(&h.send(lim(1, BUY, 100, 10)).unwrap());
    h.risk
        .set_limits(
            1,
            AccountLimits {
                max_open_buy_notional: 0,
                max_position: 0,
                ..limits
            },
        )
        .unwrap();
    assert_eq!(h.code(amend(1, id, 0, 4)), 0);
    assert_eq!(h.risk.account(1).unwrap().open_buy_notional, 400);
    assert_eq!(h.risk.positions(1)[0].open_buy_qty, 4);
}

#[test]
fn test_batch_commands_see_earlier_reservations_of_the_same_batch() {
    let mut h = H::one(
        sym(),
        AccountLimits {
            max_open_orders: 2,
            ..limits()
        },
    );
    let v = h.batch(&[
        (SYM, lim(1, BUY, 100, 1)),
        (SYM, lim(1, BUY, 100, 1)),
        (SYM, lim(1, BUY, 100, 1)),
    ]);
    assert_eq!(v, vec![0, 0, 2015]);
    // Exposure is freed by the book's events, which come after the whole batch was checked.
    let v = h.batch(&[
        (SYM, cancel(1, 1)),
        (SYM, lim(1, BUY, 100, 1)),
        (99, lim(1, BUY, 100, 1)),
    ]);
    assert_eq!(v, vec![0, 2015, 2001]);
    assert_eq!(h.batch(&[(SYM, lim(1, BUY, 100, 1))]), vec![0]);
}

#[test]
fn test_amend_of_an_order_not_yet_acknowledged_is_rejected_with_2021() {
    // Without explicit ids the book numbers orders 1, 2, ...: a client could guess the id of an
    // order still in flight and amend it in the same batch, before risk could check it.
    let mut h = H::one(
        sym(),
        AccountLimits {
            max_open_sell_notional: 1_000,
            ..limits()
        },
    );
    let v = h.batch(&[
        (SYM, lim(1, SELL, 100, 5)),
        (SYM, amend(1, 1, 0, 50)),
        (SYM, amend(2, 1, 0, 50)),
    ]);
    assert_eq!(
        v,
        vec![0, 2021, 0],
        "another account's guess is the book's to reject (3019)"
    );
    // Acknowledged: the amend is checked.
    assert_eq!(h.code(amend(1, 1, 0, 11)), 2017);
    assert_eq!(h.code(amend(1, 1, 0, 10)), 0);
    assert_eq!(
        h.code(amend(1, 99, 0, 10)),
        0,
        "an unknown id with nothing in flight: the book's 3003"
    );
}

#[test]
fn test_first_failing_check_wins() {
    let cfg = SymbolRisk {
        tick: 5,
        lot: 10,
        min_qty: 10,
        reference_price: 1000,
        band: Band::Ticks(5),
        ..sym()
    };
    let mut h = H::one(
        cfg,
        AccountLimits {
            max_open_orders: 0,
            ..limits()
        },
    );
    assert_eq!(h.code(lim(1, BUY, 2001, 15)), 2006); // tick before lot, band, orders
    assert_eq!(h.code(lim(1, BUY, 2000, 15)), 2007);
    assert_eq!(h.code(lim(1, BUY, 2000, 20)), 2012);
    assert_eq!(h.code(lim(1, BUY, 1000, 20)), 2015);
    h.risk.set_enabled(1, false).unwrap();
    assert_eq!(h.code(lim(1, BUY, 2001, 15)), 2004); // account switches before symbol checks
    h.risk.set_symbol_state(SYM, TradingState::Halted).unwrap();
    assert_eq!(h.code(lim(1, BUY, 2001, 15)), 2003); // symbol state first
}

#[test]
fn test_malformed_commands_pass_to_the_book_without_touching_risk_state() {
    let mut h = H::one(
        SymbolRisk {
            min_qty: 1,
            ..sym()
        },
        AccountLimits {
            max_open_orders: 1,
            ..limits()
        },
    );
    let before = h.risk.digest();
    for (c, book_code) in [
        (
            Command {
                side: 3,
                ..lim(1, BUY, 100, 1)
            },
            3006,
        ),
        (
            Command {
                ord_type: 9,
                ..lim(1, BUY, 100, 1)
            },
            3007,
        ),
        (lim(0, BUY, 100, 1), 3020),
        (lim(1, BUY, 0, 1), 3002),
        (amend(1, 12345, 100, 1), 3003),
        (amend(1, 1, 100, 0), 3003),
    ] {
        let events = h.send(c).unwrap();
        assert_eq!((events[0].kind, events[0].code), (2, book_code), "{c:?}");
    }
    assert_eq!(h.risk.digest(), before);
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 0, "no slot was used");
}

#[test]
fn test_run_time_limit_changes_apply_to_the_next_command() {
    let mut h = H::one(sym(), limits());
    h.send(lim(1, BUY, 100, 1)).unwrap();
    h.risk
        .set_default_limits(AccountLimits {
            max_open_orders: 1,
            ..limits()
        })
        .unwrap();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2015);
    assert_eq!(
        h.code(lim(2, BUY, 100, 1)),
        0,
        "new accounts get the new defaults"
    );
    assert_eq!(h.code(lim(2, BUY, 100, 1)), 2015);
    h.risk
        .set_limits(
            1,
            AccountLimits {
                max_open_orders: 5,
                ..limits()
            },
        )
        .unwrap();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 0);
    h.risk
        .set_default_limits(AccountLimits {
            max_open_orders: 0,
            ..limits()
        })
        .unwrap();
    assert_eq!(
        h.code(lim(1, BUY, 100, 1)),
        0,
        "own limits are not replaced by defaults"
    );
    h.risk.reset_limits(1).unwrap();
    assert_eq!(h.code(lim(1, BUY, 100, 1)), 2015);
    let cfg = SymbolRisk {
        max_qty: 5,
        ..sym()
    };
    h.risk.set_symbol(cfg).unwrap();
    assert_eq!(h.code(lim(3, BUY, 100, 6)), 2009);
}

#[test]
fn test_bad_configuration_is_an_error_not_a_panic() {
    use cift_native::risk::{RiskEngine, RiskError};
    let bad = |s: SymbolRisk| RiskEngine::new(vec![s], limits()).err();
    assert!(matches!(
        bad(SymbolRisk { tick: 0, ..sym() }),
        Some(RiskError::BadSymbol(SYM, _))
    ));
    assert!(matches!(
        bad(SymbolRisk { lot: -1, ..sym() }),
        Some(RiskError::BadSymbol(SYM, _))
    ));
    assert!(matches!(
        bad(SymbolRisk {
            min_qty: 5,
            max_qty: 4,
            ..sym()
        }),
        Some(RiskError::BadSymbol(..))
    ));
    assert!(matches!(
        bad(SymbolRisk {
            band: Band::Bps(-1),
            ..sym()
        }),
        Some(RiskError::BadSymbol(..))
    ));
    assert_eq!(
        RiskEngine::new(vec![sym(), sym()], limits()).err(),
        Some(RiskError::DuplicateSymbol(SYM))
    );
    let rate = Some(RateLimit {
        per_sec: 0,
        burst: 1,
    });
    assert!(matches!(
        RiskEngine::new(vec![], AccountLimits { rate, ..limits() }).err(),
        Some(RiskError::BadLimits(_))
    ));
    let mut e = RiskEngine::new(vec![sym()], limits()).unwrap();
    assert_eq!(e.set_enabled(0, false), Err(RiskError::ZeroAccount));
    assert_eq!(
        e.set_symbol_state(1, TradingState::Halted),
        Err(RiskError::UnknownSymbol(1))
    );
    let mut v = Vec::new();
    assert!(matches!(
        e.check_batch(&[SYM], &[0u8; 95], &mut v),
        Err(RiskError::BadBuffer { .. })
    ));
    assert!(matches!(
        e.check_batch(&[], &[0u8; 96], &mut v),
        Err(RiskError::BatchMismatch { .. })
    ));
    assert!(matches!(
        e.on_events(SYM, &[0u8; 103]),
        Err(RiskError::BadBuffer { .. })
    ));
}
