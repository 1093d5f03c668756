//! The risk engine alone, without Python: what `perf.risk`'s "risk throughput" measures, so
//! that its cost can be counted instruction by instruction (callgrind) and timed without the
//! PyO3 call in the way.
//!
//! Workload: `synth::synthetic_flow` (seed 1, depth 1000, the default mix: ~80 % amends, ~9 %
//! GTC limits, ~6 % cancels, ~3 % IOC, ~2 % market), one symbol, every check on with limits
//! loose enough that every command passes (as `perf.risk`). An untimed pass through risk and
//! the book records each batch's event records; the timed loop is `check_batch` then
//! `on_events` per batch of 256 on a fresh engine, best of `RISK_BENCH_REPEAT` (default 5).
//!
//! The batch path (`perf.risk`'s): `Book::apply_batch` alone against `check_batch`, then
//! `apply_batch`, then `on_events`, per batch on a fresh book and engine: what risk adds to the
//! book, caches shared.
//!
//!     cargo bench -p cift-native --bench risk                      # prints, writes JSON
//!     RISK_BENCH_JSON=path cargo bench -p cift-native --bench risk
//!     valgrind --tool=callgrind target/release/deps/risk-* --once  # one pass, for counting
//!     valgrind --tool=callgrind --cache-sim=yes \
//!         --toggle-collect=risk::path_with_risk target/release/deps/risk-* --path-risk
//!         # (or --toggle-collect=risk::path_book_only ... --path-book)
//!     cargo bench -p cift-native --bench risk -- --client-ids 4000000
//!         # today's client-id set growing to N: median and slowest batch
//!
//! Prints ns per command (check, on_events, both; the batch path with and without risk) and
//! writes them as JSON to `target/risk-bench.json` (or `RISK_BENCH_JSON`).

use std::hint::black_box;
use std::time::Instant;

use cift_native::book::Book;
use cift_native::risk::{AccountLimits, Band, RateLimit, RiskEngine, SymbolRisk};
use cift_native::synth::{synthetic_flow, SynthConfig};
use cift_native::types::{BookConfig, CmdKind, Command, Event, EventKind, OrdType, COMMAND_SIZE};

const SYMBOL: u32 = 1;
const BATCH: usize = 256;

fn engine() -> RiskEngine {
    let symbol = SymbolRisk {
        tick: 1,
        lot: 1,
        min_qty: 1,
        max_qty: 1_000_000,
        max_notional: 10i128.pow(15),
        reference_price: 100_000,
        band: Band::Bps(1_000),
        market_band: Band::Bps(2_000),
        ..SymbolRisk::new(SYMBOL)
    };
    let limits = AccountLimits {
        max_open_orders: 1_000_000,
        max_open_buy_notional: 10i128.pow(18),
        max_open_sell_notional: 10i128.pow(18),
        credit_limit: 10i128.pow(19),
        max_position: 10i64.pow(12),
        rate: Some(RateLimit {
            per_sec: 1_000_000_000,
            burst: 1_000_000,
        }),
    };
    match RiskEngine::new(vec![symbol], limits) {
        Ok(e) => e,
        Err(e) => panic!("bench engine: {e}"),
    }
}

struct Workload {
    fill: Vec<u8>,
    fill_events: Vec<u8>,
    batches: Vec<Vec<u8>>,
    events: Vec<Vec<u8>>,
}

fn run_batch(
    risk: &mut RiskEngine,
    book: &mut Book,
    cmds: &[u8],
    verdicts: &mut Vec<u16>,
) -> Vec<u8> {
    let symbols = vec![SYMBOL; cmds.len() / COMMAND_SIZE];
    if let Err(e) = risk.check_batch(&symbols, cmds, verdicts) {
        panic!("check_batch: {e}");
    }
    assert!(
        verdicts.iter().all(|&v| v == 0),
        "the workload must pass every check"
    );
    let mut out = Vec::new();
    book.apply_batch(cmds, &mut out);
    if let Err(e) = risk.on_events(SYMBOL, &out) {
        panic!("on_events: {e}");
    }
    out
}

fn prepare(commands: usize) -> Workload {
    let depth = 1_000;
    let cfg = SynthConfig {
        seed: 1,
        commands,
        depth,
        ..SynthConfig::default()
    };
    let flow = match synthetic_flow(&cfg) {
        Ok(f) => f,
        Err(e) => panic!("synthetic flow: {e}"),
    };
    let (fill, timed) = flow.split_at(depth * COMMAND_SIZE);
    let (mut risk, mut book) = (engine(), Book::new(BookConfig::default()));
    let mut verdicts = Vec::new();
    let fill_events = run_batch(&mut risk, &mut book, fill, &mut verdicts);
    let batches: Vec<Vec<u8>> = timed
        .chunks(BATCH * COMMAND_SIZE)
        .map(<[u8]>::to_vec)
        .collect();
    let events = batches
        .iter()
        .map(|b| run_batch(&mut risk, &mut book, b, &mut verdicts))
        .collect();
    Workload {
        fill: fill.to_vec(),
        fill_events,
        batches,
        events,
    }
}

/// A fresh engine that has checked the fill and seen its events, and a verdict buffer.
fn fresh_risk(w: &Workload) -> (RiskEngine, Vec<u16>) {
    let mut risk = engine();
    let mut verdicts = Vec::with_capacity(BATCH);
    let fill_symbols = vec![SYMBOL; w.fill.len() / COMMAND_SIZE];
    let _ = risk.check_batch(&fill_symbols, &w.fill, &mut verdicts);
    let _ = risk.on_events(SYMBOL, &w.fill_events);
    (risk, verdicts)
}

#[inline(never)]
/// One timed pass on a fresh engine: (ns in check_batch, ns in on_events, digest).
fn pass(w: &Workload) -> (u128, u128, u64) {
    let (mut risk, mut verdicts) = fresh_risk(w);
    let symbols = vec![SYMBOL; BATCH];
    let (mut check_ns, mut events_ns) = (0u128, 0u128);
    for (cmds, events) in w.batches.iter().zip(&w.events) {
        let n = cmds.len() / COMMAND_SIZE;
        let t0 = Instant::now();
        let _ = black_box(risk.check_batch(&symbols[..n], cmds, &mut verdicts));
        let t1 = Instant::now();
        let _ = black_box(risk.on_events(SYMBOL, events));
        let t2 = Instant::now();
        check_ns += (t1 - t0).as_nanos();
        events_ns += (t2 - t1).as_nanos();
    }
    (check_ns, events_ns, risk.digest())
}

#[inline(never)]
/// The batch path on a fresh book (and engine): `apply_batch` alone, or `check_batch`, then
/// `apply_batch`, then `on_events` per batch, as `perf.risk`'s "batch path". Returns the ns of
/// the whole loop and the book's event bytes (a check that the two paths matched the same).
fn path_pass(w: &Workload, with_risk: bool) -> (u128, usize) {
    let mut book = Book::new(BookConfig::default());
    let mut out = Vec::new();
    book.apply_batch(&w.fill, &mut out);
    let (mut risk, mut verdicts) = fresh_risk(w);
    let symbols = vec![SYMBOL; BATCH];
    let mut bytes = 0;
    let t0 = Instant::now();
    if with_risk {
        path_with_risk(
            w,
            &mut book,
            &mut risk,
            &symbols,
            &mut verdicts,
            &mut out,
            &mut bytes,
        );
    } else {
        path_book_only(w, &mut book, &mut out, &mut bytes);
    }
    ((Instant::now() - t0).as_nanos(), bytes)
}

#[inline(never)]
fn path_with_risk(
    w: &Workload,
    book: &mut Book,
    risk: &mut RiskEngine,
    symbols: &[u32],
    verdicts: &mut Vec<u16>,
    out: &mut Vec<u8>,
    bytes: &mut usize,
) {
    for cmds in &w.batches {
        let n = cmds.len() / COMMAND_SIZE;
        let _ = black_box(risk.check_batch(&symbols[..n], cmds, verdicts));
        out.clear();
        book.apply_batch(cmds, out);
        let _ = black_box(risk.on_events(SYMBOL, out));
        *bytes += out.len();
    }
}

#[inline(never)]
fn path_book_only(w: &Workload, book: &mut Book, out: &mut Vec<u8>, bytes: &mut usize) {
    for cmds in &w.batches {
        out.clear();
        book.apply_batch(cmds, out);
        *bytes += black_box(out.len());
    }
}

/// `--client-ids N`: N new orders, each with its own client id, checked in batches of 256,
/// each accepted and cancelled by the book's events: today's set of client ids grows to N. Prints
/// the slowest and the median batch (check + events): a set that rehashes whole shows its
/// doubling as one slow batch.
fn client_ids(n: u64) {
    let mut risk = engine();
    let (mut cmds, mut events, mut verdicts) = (Vec::new(), Vec::new(), Vec::new());
    let symbols = vec![SYMBOL; BATCH];
    let mut batch_ns = Vec::new();
    let mut seq = 0u64;
    while seq < n {
        cmds.clear();
        events.clear();
        for _ in 0..BATCH {
            seq += 1;
            let side = (seq % 2) as u8 + 1;
            Command {
                kind: CmdKind::New as u8,
                side,
                ord_type: OrdType::Limit as u8,
                tif: 1,
                seq,
                ts: seq * 1_000,
                account: 1 + seq % 50,
                client_id: seq,
                price: 100_000,
                qty: 10,
                ..Command::default()
            }
            .encode(&mut cmds);
            let accepted = Event {
                kind: EventKind::Accepted as u8,
                side,
                seq,
                order_id: seq,
                account: 1 + seq % 50,
                client_id: seq,
                price: 100_000,
                qty: 10,
                leaves: 10,
                ..Event::default()
            };
            accepted.encode(&mut events);
            Event {
                kind: EventKind::Cancelled as u8,
                leaves: 0,
                ..accepted
            }
            .encode(&mut events);
        }
        let t0 = Instant::now();
        let _ = black_box(risk.check_batch(&symbols, &cmds, &mut verdicts));
        let _ = black_box(risk.on_events(SYMBOL, &events));
        batch_ns.push((Instant::now() - t0).as_nanos());
        assert!(verdicts.iter().all(|&v| v == 0), "every order passes");
    }
    let worst = batch_ns.iter().copied().max().unwrap_or(0);
    if std::env::var("RISK_BENCH_VERBOSE").is_ok() {
        let mut slow: Vec<(u128, usize)> = batch_ns.iter().copied().zip(0..).collect();
        slow.sort_unstable_by(|a, b| b.cmp(a));
        println!(
            "slowest batches (ns, index): {:?}",
            &slow[..slow.len().min(8)]
        );
    }
    batch_ns.sort_unstable();
    let median = batch_ns.get(batch_ns.len() / 2).copied().unwrap_or(0);
    println!(
        "client ids: {n} new orders with distinct client ids in batches of {BATCH}: median batch {:.1} us, slowest {:.1} us",
        median as f64 / 1e3,
        worst as f64 / 1e3
    );
}

/// A number from environment variable `name`, else `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    if let Some(n) = args
        .windows(2)
        .find(|w| w[0] == "--client-ids")
        .and_then(|w| w[1].parse().ok())
    {
        client_ids(n);
        return;
    }
    let once = flag("--once");
    let path_once = if flag("--path-risk") {
        Some(true)
    } else if flag("--path-book") {
        Some(false)
    } else {
        None
    };
    let commands = env_or(
        "RISK_BENCH_COMMANDS",
        if once { 200_000 } else { 1_000_000 },
    );
    let repeat = env_or("RISK_BENCH_REPEAT", 5);
    let w = prepare(commands);
    if let Some(with_risk) = path_once {
        let (_, bytes) = path_pass(&w, with_risk);
        println!(
            "risk bench: batch path of {commands} commands (risk {with_risk}), {bytes} event bytes"
        );
        return;
    }
    if once {
        let (_, _, digest) = pass(&w);
        println!("risk bench: one pass of {commands} commands, digest {digest:016x}");
        return;
    }
    let mut best: Option<(u128, u128)> = None;
    let mut digests = Vec::new();
    for _ in 0..repeat.max(1) {
        let (c, e, d) = pass(&w);
        digests.push(d);
        if best.is_none_or(|(bc, be)| c + e < bc + be) {
            best = Some((c, e));
        }
    }
    assert!(
        digests.windows(2).all(|p| p[0] == p[1]),
        "every pass ends in the same state"
    );
    let (c, e) = best.unwrap_or((0, 0));
    let per = |ns: u128| ns as f64 / commands as f64;
    // The batch path, book alone and with risk interleaved (best of `repeat` each).
    let (mut book_best, mut both_best) = (u128::MAX, u128::MAX);
    for _ in 0..repeat.max(1) {
        let (b, bytes_b) = path_pass(&w, false);
        let (r, bytes_r) = path_pass(&w, true);
        assert_eq!(
            bytes_b, bytes_r,
            "risk passes every command: the book sees the same"
        );
        book_best = book_best.min(b);
        both_best = both_best.min(r);
    }
    println!(
        "risk bench ({commands} commands, batches of {BATCH}, best of {repeat}): check {:.1} ns + on_events {:.1} ns = {:.1} ns per command ({:.2} M commands/s)",
        per(c),
        per(e),
        per(c + e),
        1e3 / per(c + e)
    );
    println!(
        "batch path (best of {repeat}): book alone {:.1} ns, check + book + on_events {:.1} ns per command: risk adds {:.1} ns (throughput drop {:.1} %)",
        per(book_best),
        per(both_best),
        per(both_best) - per(book_best),
        100.0 * (1.0 - book_best as f64 / both_best as f64)
    );
    let path = std::env::var("RISK_BENCH_JSON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/risk-bench.json").into()
    });
    let json = format!(
        "{{\"commands\": {commands}, \"batch\": {BATCH}, \"repeat\": {repeat}, \"check_ns_per_command\": {:.2}, \"on_events_ns_per_command\": {:.2}, \"total_ns_per_command\": {:.2}, \"path_book_ns_per_command\": {:.2}, \"path_risk_ns_per_command\": {:.2}, \"path_added_ns_per_command\": {:.2}, \"digest\": \"{:016x}\"}}\n",
        per(c),
        per(e),
        per(c + e),
        per(book_best),
        per(both_best),
        per(both_best) - per(book_best),
        digests.first().copied().unwrap_or(0)
    );
    if let Err(err) = std::fs::write(&path, json) {
        eprintln!("could not write {path}: {err}");
    } else {
        println!("wrote {path}");
    }
}
