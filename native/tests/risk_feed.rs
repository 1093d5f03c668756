//! The book feeding the risk engine as it produces events (`Book::apply_batch_with` +
//! `RiskEngine::feed`, the daemon's path) leaves the same risk state as feeding the records
//! afterwards (`on_events`), batch by batch, with and without rejects.

use cift_native::book::Book;
use cift_native::risk::{AccountLimits, Band, RateLimit, RiskEngine, SymbolRisk};
use cift_native::synth::{synthetic_flow, SynthConfig};
use cift_native::types::{BookConfig, COMMAND_SIZE};

const SYM: u32 = 3;

fn engine(tight: bool) -> RiskEngine {
    let symbol = SymbolRisk {
        reference_price: 100_000,
        band: Band::Bps(if tight { 30 } else { 1_000 }),
        market_band: Band::Bps(2_000),
        max_qty: if tight { 90 } else { 1_000_000 },
        ..SymbolRisk::new(SYM)
    };
    let limits = if tight {
        AccountLimits {
            max_open_orders: 40,
            max_open_buy_notional: 200_000_000,
            max_open_sell_notional: 250_000_000,
            credit_limit: 900_000_000,
            max_position: 400,
            rate: Some(RateLimit {
                per_sec: 2_000,
                burst: 50,
            }),
        }
    } else {
        AccountLimits::UNLIMITED
    };
    RiskEngine::new(vec![symbol], limits).unwrap_or_else(|e| panic!("{e}"))
}

/// Check each batch, apply what passed, feed the events one way or the other; returns the
/// final snapshot and every batch's verdicts and events.
fn run(flow: &[u8], tight: bool, fused: bool) -> (Vec<u8>, Vec<u16>, Vec<u8>) {
    let mut risk = engine(tight);
    let mut book = Book::new(BookConfig::default());
    let (mut all_verdicts, mut all_events) = (Vec::new(), Vec::new());
    let mut verdicts = Vec::new();
    for batch in flow.chunks(250 * COMMAND_SIZE) {
        let n = batch.len() / COMMAND_SIZE;
        risk.check_batch(&vec![SYM; n], batch, &mut verdicts)
            .unwrap_or_else(|e| panic!("{e}"));
        let passed: Vec<u8> = batch
            .chunks_exact(COMMAND_SIZE)
            .zip(&verdicts)
            .filter(|(_, v)| **v == 0)
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        let mut events = Vec::new();
        if fused {
            let mut feed = risk.feed(SYM).unwrap_or_else(|e| panic!("{e}"));
            book.apply_batch_with(&passed, &mut events, |e| feed.event(e));
        } else {
            book.apply_batch(&passed, &mut events);
            risk.on_events(SYM, &events)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        all_verdicts.extend_from_slice(&verdicts);
        all_events.extend_from_slice(&events);
    }
    (risk.snapshot(), all_verdicts, all_events)
}

#[test]
fn test_feeding_events_as_the_book_produces_them_equals_on_events_afterwards() {
    for (seed, accounts, tight) in [(1, 1, false), (2, 7, true), (3, 100, true)] {
        let flow = synthetic_flow(&SynthConfig {
            seed,
            commands: 20_000,
            depth: 300,
            accounts,
            ..SynthConfig::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let after = run(&flow, tight, false);
        let fused = run(&flow, tight, true);
        assert_eq!(fused.1, after.1, "verdicts (seed {seed})");
        assert_eq!(fused.2, after.2, "events (seed {seed})");
        assert_eq!(fused.0, after.0, "risk snapshot (seed {seed})");
        if tight {
            assert!(
                after.1.iter().any(|&v| v != 0),
                "the tight run rejects some"
            );
        }
        // The snapshot restores to the same bytes.
        let restored = RiskEngine::restore(&after.0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(restored.snapshot(), after.0);
    }
}

#[test]
fn test_feed_of_an_unknown_symbol_is_an_error() {
    let mut risk = engine(false);
    assert!(risk.feed(SYM + 1).is_err());
}
