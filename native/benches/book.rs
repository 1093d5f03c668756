//! Criterion benches of the fast book, plus a per-command latency and allocation report.
//!
//! - `book/rest`: new GTC limits that rest (non-crossing, top 50 levels of a filled book);
//! - `book/cancel`: cancels of resting orders by id;
//! - `book/amend_price`: price amends of resting orders (non-crossing);
//! - `book/sweep_5_levels`: one aggressive limit buy taking 5 levels (20 orders);
//! - `book/mixed`: the synthetic mix (book filled to depth, then ~9% GTC limit, ~3% IOC,
//!   ~6% cancel, ~80% amend price, ~2% market; prices follow the last trade). The generator
//!   holds the book near its starting depth by turning an add into a cancel when the book is
//!   deep and a cancel into an add when it is thin; the realized mix is printed.
//!
//! After the criterion groups, `latency_report` times each command of the mixed stream on its
//! own (p50..p99.9..max, timer overhead included) and counts heap allocations while the whole
//! stream runs through `apply_batch`. All inputs come from a tiny xorshift generator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cift_native::book::Book;
use cift_native::types::{BookConfig, Command, Event, EventKind, EVENT_SIZE};
use criterion::{BatchSize, Criterion, Throughput};

/// Counts allocations so the report can show that steady-state order flow does not allocate.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CFG: BookConfig = BookConfig {
    min_price: 1,
    max_price: 1_000_000,
    max_qty: 1_000_000,
};
const MID: i64 = 10_000;
/// Levels per side and orders per level of the pre-filled book.
const DEPTH: i64 = 50;
const PER_LEVEL: i64 = 4;
/// Commands per timed chunk.
const CHUNK: usize = 1024;
/// The mixed stream's length.
const MIXED: usize = 200_000;
/// Live orders the mixed generator aims for (the filled book's size).
const TARGET: usize = (2 * DEPTH * PER_LEVEL) as usize;

/// An output buffer whose pages are already mapped, as in a long-running book actor.
fn warm_buffer(bytes: usize) -> Vec<u8> {
    let mut v = vec![1u8; bytes];
    v.clear();
    v
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn limit(side: u8, price: i64, qty: i64, account: u64, order_id: u64) -> Command {
    Command {
        kind: 1,
        side,
        ord_type: 1,
        tif: 1,
        account,
        order_id,
        price,
        qty,
        ..Command::default()
    }
}

fn encode(cmds: &[Command]) -> Vec<u8> {
    let mut b = Vec::new();
    cmds.iter().for_each(|c| c.encode(&mut b));
    b
}

fn apply(book: &mut Book, cmds: &[Command]) -> Vec<u8> {
    let mut out = Vec::new();
    book.apply_batch(&encode(cmds), &mut out);
    out
}

/// A book with `DEPTH` levels a side around `MID`, `PER_LEVEL` orders of 10 lots each, with
/// explicit ids 1.. (bids first, best level first).
fn filled_book() -> Book {
    let mut book = Book::new(CFG);
    let mut cmds = Vec::new();
    let mut id = 0;
    for side in [1u8, 2] {
        for d in 1..=DEPTH {
            for _ in 0..PER_LEVEL {
                id += 1;
                let price = if side == 1 { MID - d } else { MID + d };
                cmds.push(limit(side, price, 10, 1 + id % 16, id));
            }
        }
    }
    apply(&mut book, &cmds);
    book
}

/// Time only the `timed` part of each chunk; `prepare` makes (setup, timed) commands.
fn chunked(
    iters: u64,
    book: &mut Book,
    mut prepare: impl FnMut(&mut Book, usize) -> Vec<u8>,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut out = warm_buffer(CHUNK * 4 * EVENT_SIZE);
    let mut done = 0u64;
    while done < iters {
        let n = CHUNK.min((iters - done) as usize);
        let timed = prepare(book, n);
        out.clear();
        let t = Instant::now();
        book.apply_batch(black_box(&timed), &mut out);
        total += t.elapsed();
        done += n as u64;
    }
    total
}

fn bench_rest(c: &mut Criterion) {
    let base = filled_book();
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rest", |b| {
        b.iter_custom(|iters| {
            let mut book = base.clone();
            let mut r = Rng(1);
            chunked(iters, &mut book, |book, n| {
                // Clear the previous chunk's orders (untimed), then time n new resting orders.
                apply(
                    book,
                    &[Command {
                        kind: 4,
                        account: 99,
                        ..Command::default()
                    }],
                );
                let cmds: Vec<Command> = (0..n)
                    .map(|_| {
                        let side = 1 + r.below(2) as u8;
                        let d = 1 + r.below(DEPTH as u64) as i64;
                        limit(side, if side == 1 { MID - d } else { MID + d }, 10, 99, 0)
                    })
                    .collect();
                encode(&cmds)
            })
        })
    });
    g.finish();
}

fn bench_cancel(c: &mut Criterion) {
    let base = filled_book();
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(1));
    g.bench_function("cancel", |b| {
        b.iter_custom(|iters| {
            let mut book = base.clone();
            let mut r = Rng(2);
            let mut next_id = 1_000_000u64;
            chunked(iters, &mut book, |book, n| {
                let first = next_id;
                let adds: Vec<Command> = (0..n as u64)
                    .map(|i| {
                        let side = 1 + r.below(2) as u8;
                        let d = 1 + r.below(DEPTH as u64) as i64;
                        limit(
                            side,
                            if side == 1 { MID - d } else { MID + d },
                            10,
                            99,
                            first + i,
                        )
                    })
                    .collect();
                next_id += n as u64;
                apply(book, &adds);
                let mut ids: Vec<u64> = (first..next_id).collect();
                for i in (1..ids.len()).rev() {
                    ids.swap(i, r.below(i as u64 + 1) as usize);
                }
                let cancels: Vec<Command> = ids
                    .iter()
                    .map(|&order_id| Command {
                        kind: 2,
                        account: 99,
                        order_id,
                        ..Command::default()
                    })
                    .collect();
                encode(&cancels)
            })
        })
    });
    g.finish();
}

fn bench_amend(c: &mut Criterion) {
    let base = filled_book();
    let total = (2 * DEPTH * PER_LEVEL) as usize;
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(1));
    g.bench_function("amend_price", |b| {
        b.iter_custom(|iters| {
            let mut book = base.clone();
            let mut r = Rng(3);
            // Current price of every order (ids 1..=total; bids first).
            let mut prices: Vec<i64> = (0..total as i64)
                .map(|i| {
                    let d = 1 + (i % (DEPTH * PER_LEVEL)) / PER_LEVEL;
                    if i < DEPTH * PER_LEVEL {
                        MID - d
                    } else {
                        MID + d
                    }
                })
                .collect();
            chunked(iters, &mut book, |_, n| {
                let cmds: Vec<Command> = (0..n)
                    .map(|_| {
                        let i = r.below(total as u64) as usize;
                        let bid = i < total / 2;
                        let mut p = prices[i];
                        while p == prices[i] {
                            let d = 1 + r.below(DEPTH as u64) as i64;
                            p = if bid { MID - d } else { MID + d };
                        }
                        prices[i] = p;
                        let account = 1 + (i as u64 + 1) % 16;
                        Command {
                            kind: 3,
                            account,
                            order_id: i as u64 + 1,
                            price: p,
                            qty: 10,
                            ..Command::default()
                        }
                    })
                    .collect();
                encode(&cmds)
            })
        })
    });
    g.finish();
}

fn bench_sweep(c: &mut Criterion) {
    let base = filled_book();
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sweep_5_levels", |b| {
        b.iter_custom(|iters| {
            let mut book = base.clone();
            let refill: Vec<Command> = (1..=5)
                .flat_map(|d| (0..PER_LEVEL).map(move |_| limit(2, MID + d, 10, 50, 0)))
                .collect();
            let refill = encode(&refill);
            let take = encode(&[limit(1, MID + 5, 10 * PER_LEVEL * 5, 60, 0).tif_ioc()]);
            let mut out = warm_buffer(64 * EVENT_SIZE);
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                out.clear();
                let t = Instant::now();
                book.apply_batch(black_box(&take), &mut out);
                total += t.elapsed();
                book.apply_batch(&refill, &mut out);
            }
            total
        })
    });
    g.finish();
}

trait Ioc {
    fn tif_ioc(self) -> Command;
}

impl Ioc for Command {
    fn tif_ioc(self) -> Command {
        Command { tif: 4, ..self }
    }
}

/// The mixed workload: the starting book and the command stream, generated by running the
/// stream on a copy of the book (so cancels and amends target live orders).
fn mixed_stream() -> (Book, Vec<Command>, [usize; 5]) {
    let base = filled_book();
    let mut book = base.clone();
    let mut r = Rng(0x5eed);
    // Live order ids with their side, and each id's position in `live`.
    let mut live: Vec<(u64, u8)> = Vec::new();
    let mut pos = rustc_hash::FxHashMap::default();
    for side in [1u8, 2] {
        for l in (1..=DEPTH * PER_LEVEL).map(|i| {
            i as u64
                + if side == 2 {
                    (DEPTH * PER_LEVEL) as u64
                } else {
                    0
                }
        }) {
            pos.insert(l, live.len());
            live.push((l, side));
        }
    }
    let mut mid = MID;
    let mut cmds = Vec::with_capacity(MIXED);
    let mut out = Vec::new();
    // Realized counts: GTC, IOC, cancel, amend, market.
    let mut mix = [0usize; 5];
    for seq in 1..=MIXED as u64 {
        let roll = match r.below(100) {
            0..=8 if live.len() > TARGET * 6 / 5 => 12,
            12..=17 if live.len() < TARGET * 4 / 5 => 0,
            roll => roll,
        };
        let side = 1 + r.below(2) as u8;
        let sign = if side == 1 { -1 } else { 1 };
        let account = 1 + r.below(16);
        let mut c = match roll {
            0..=8 => {
                // GTC limit: mostly passive within 20 ticks, one in ten crossing by up to 2.
                let d = if r.below(10) == 0 {
                    -(r.below(3) as i64)
                } else {
                    1 + r.below(20) as i64
                };
                limit(side, mid + sign * d, 1 + r.below(20) as i64, account, 0)
            }
            9..=11 => limit(side, mid - sign * 2, 1 + r.below(10) as i64, account, 0).tif_ioc(),
            12..=97 if !live.is_empty() => {
                let (order_id, oside) = live[r.below(live.len() as u64) as usize];
                let owner = book_owner(&book, order_id);
                if roll <= 17 {
                    Command {
                        kind: 2,
                        account: owner,
                        order_id,
                        ..Command::default()
                    }
                } else {
                    let s = if oside == 1 { -1 } else { 1 };
                    let price = mid + s * (1 + r.below(20) as i64);
                    Command {
                        kind: 3,
                        account: owner,
                        order_id,
                        price,
                        qty: 1 + r.below(20) as i64,
                        ..Command::default()
                    }
                }
            }
            _ => Command {
                kind: 1,
                side,
                ord_type: 2,
                tif: 4,
                account,
                qty: 1 + r.below(10) as i64,
                ..Command::default()
            },
        };
        c.seq = seq;
        mix[match (c.kind, c.ord_type, c.tif) {
            (1, 1, 1) => 0,
            (1, 1, _) => 1,
            (2, _, _) => 2,
            (3, _, _) => 3,
            _ => 4,
        }] += 1;
        cmds.push(c);
        out.clear();
        book.apply_batch(&encode(&[c]), &mut out);
        for e in out.chunks_exact(EVENT_SIZE).filter_map(Event::decode) {
            let gone = |id: u64,
                        live: &mut Vec<(u64, u8)>,
                        pos: &mut rustc_hash::FxHashMap<u64, usize>| {
                if let Some(i) = pos.remove(&id) {
                    live.swap_remove(i);
                    if let Some(&(moved, _)) = live.get(i) {
                        pos.insert(moved, i);
                    }
                }
            };
            match EventKind::from_u8(e.kind) {
                Some(EventKind::Accepted) => {
                    pos.insert(e.order_id, live.len());
                    live.push((e.order_id, e.side));
                }
                Some(EventKind::Trade) => {
                    mid = e.price;
                    if e.leaves == 0 {
                        gone(e.order_id, &mut live, &mut pos);
                    }
                    if e.aux2 == 0 {
                        gone(e.counter_id, &mut live, &mut pos);
                    }
                }
                Some(EventKind::Cancelled) if e.leaves == 0 => {
                    gone(e.order_id, &mut live, &mut pos)
                }
                _ => {}
            }
        }
    }
    (base, cmds, mix)
}

fn book_owner(book: &Book, order_id: u64) -> u64 {
    use cift_native::types::OrderBook;
    book.order(order_id).map_or(1, |o| o.account)
}

fn bench_mixed(c: &mut Criterion) {
    let (base, cmds, _) = mixed_stream();
    let bytes = encode(&cmds);
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(cmds.len() as u64));
    g.bench_function("mixed", |b| {
        b.iter_batched_ref(
            || (base.clone(), warm_buffer(cmds.len() * 4 * EVENT_SIZE)),
            |(book, out)| book.apply_batch(black_box(&bytes), out),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn latency_report() {
    let (base, cmds, mix) = mixed_stream();
    let bytes = encode(&cmds);
    let pct = |n: usize| 100.0 * n as f64 / cmds.len() as f64;
    println!(
        "mixed stream mix: GTC {:.1}% IOC {:.1}% cancel {:.1}% amend {:.1}% market {:.1}%",
        pct(mix[0]),
        pct(mix[1]),
        pct(mix[2]),
        pct(mix[3]),
        pct(mix[4])
    );
    // Whole-stream throughput and allocations (best of 5 runs).
    let mut best = Duration::MAX;
    let mut allocs = 0;
    let mut events = 0;
    let mut end = base.clone();
    for _ in 0..5 {
        let mut book = base.clone();
        let mut out = warm_buffer(cmds.len() * 4 * EVENT_SIZE);
        let a0 = ALLOCS.load(Ordering::Relaxed);
        let t = Instant::now();
        book.apply_batch(&bytes, &mut out);
        let el = t.elapsed();
        allocs = ALLOCS.load(Ordering::Relaxed) - a0;
        best = best.min(el);
        events = out.len() / EVENT_SIZE;
        end = book;
    }
    let rate = cmds.len() as f64 / best.as_secs_f64();
    println!(
        "mixed stream: {} commands, {} events, {:.2} M commands/s (best of 5), {} heap allocations in the run, {} orders at start, {} at end",
        cmds.len(),
        events,
        rate / 1e6,
        allocs,
        base.order_count(),
        end.order_count(),
    );
    // Per-command service time, each command timed on its own.
    let mut book = base.clone();
    let mut out = warm_buffer(64 * EVENT_SIZE);
    let mut ns: Vec<u64> = Vec::with_capacity(cmds.len());
    for rec in bytes.chunks_exact(cift_native::types::COMMAND_SIZE) {
        out.clear();
        let t = Instant::now();
        book.apply_batch(black_box(rec), &mut out);
        ns.push(t.elapsed().as_nanos() as u64);
    }
    let timer = {
        let t = Instant::now();
        for _ in 0..1000 {
            black_box(Instant::now());
        }
        t.elapsed().as_nanos() as u64 / 1000
    };
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)];
    println!(
        "service time per command (ns, one command per call, timer ~{timer} ns): p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {}",
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999),
        q(0.9999),
        ns[ns.len() - 1]
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_rest(&mut c);
    bench_cancel(&mut c);
    bench_amend(&mut c);
    bench_sweep(&mut c);
    bench_mixed(&mut c);
    latency_report();
    c.final_summary();
}
