"""Risk checks through the batch API, in process: checks per second, cost per check, and what the
risk engine adds to the book's batch path.

    python -m perf.risk [--commands N] [--seed S] [--depth D] [--batch B] [--repeat R]
                        [--service-batch S ...] [--json PATH]

What is measured (the tool prints this next to its figures):

- **workload**: `engine._native.synthetic_flow(seed, N, depth)` for one symbol, checked with
  every check on (tick and lot multiples, quantity range, order notional, a 10 % price band and a
  20 % market band around a configured reference; per account: open orders, open notional per
  side, credit, position and an order-rate bucket), with limits loose enough that every command
  passes (the tool verifies it: a reject would change what the book sees).
- **prepare** (untimed): the stream runs once through risk and book in batches of B, recording
  each batch's event records, so the timed risk runs get the book's events without the book.
- **risk throughput**: wall time of the loop `check_batch(symbol, batch)` then
  `on_events(symbol, events)` over the whole stream on a fresh engine (best/median of R runs);
  checks/s per wall second and per CPU second of the thread (`time.thread_time_ns`, which leaves
  out the time the thread waited for a core on a busy machine).
- **cost per check**: each `check_batch` call on s commands (default 1 and 64) timed on its own
  with `perf_counter_ns` and divided by s; percentiles from an HdrHistogram of those samples. The
  same for `on_events` per command of the batch. Samples include the Python call.
- **pipeline**: the book alone (`Book.apply` per batch) against check + apply + on_events on the
  same batches, fresh engine and book each run: commands/s of both and the drop in %.

Targets: risk adds under 100 ns per order (check plus post-trade, per command, batch B) and
costs the batch path less than 10 % of its throughput. Every run must end in the same risk state
(digest): the tool checks it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine._native import (
    COMMAND_SIZE,
    AccountLimits,
    Book,
    RiskEngine,
    SymbolRisk,
    synthetic_flow,
)
from perf._stats import PERCENTILES, fmt_ns, histogram, percentile_key, summary, write_json

SYMBOL = 1
# synthetic_flow's defaults: prices around 100_000 ticks, quantities 1..100, 100 accounts.
REFERENCE_PRICE = 100_000
TARGET_ADDED_NS = 100.0
TARGET_DROP_PCT = 10.0


def risk_engine() -> RiskEngine:
    """Every check on, set so that the synthetic flow passes them all."""
    symbol = SymbolRisk(
        SYMBOL,
        tick=1,
        lot=1,
        min_qty=1,
        max_qty=1_000_000,
        max_notional=10**15,
        reference_price=REFERENCE_PRICE,
        band_bps=1_000,
        market_band_bps=2_000,
    )
    limits = AccountLimits(
        max_open_orders=1_000_000,
        max_open_buy_notional=10**18,
        max_open_sell_notional=10**18,
        credit_limit=10**19,
        max_position=10**12,
        rate_per_sec=1_000_000_000,
        rate_burst=1_000_000,
    )
    return RiskEngine([symbol], limits)


@dataclass(frozen=True)
class Workload:
    name: str
    fill: bytes
    """The synthetic fill (resting orders), applied untimed before each run."""
    batches: list[bytes]
    events: list[bytes]
    """The book's event records for each batch (from the untimed prepare pass)."""
    fill_events: bytes

    @property
    def commands(self) -> int:
        return sum(len(b) for b in self.batches) // COMMAND_SIZE


def split(records: bytes, batch: int) -> list[bytes]:
    step = batch * COMMAND_SIZE
    return [records[i : i + step] for i in range(0, len(records), step)]


def prepare(seed: int, commands: int, depth: int, batch: int) -> Workload:
    flow = synthetic_flow(seed, commands, depth)
    cut = depth * COMMAND_SIZE
    fill, timed = flow[:cut], flow[cut:]
    risk, book = risk_engine(), Book()
    fill_events = run_batch(risk, book, fill)
    batches = split(timed, batch)
    events = [run_batch(risk, book, b) for b in batches]
    return Workload(f"synthetic seed={seed} depth={depth}", fill, batches, events, fill_events)


def run_batch(risk: RiskEngine, book: Book, records: bytes) -> bytes:
    """Check, apply, feed back; every command must pass."""
    verdicts = risk.check_batch(SYMBOL, records)
    if any(verdicts):
        raise RuntimeError("the workload must pass every check (a reject changes the book's input)")
    events = book.apply(records)
    risk.on_events(SYMBOL, events)
    return events


def fresh_risk(w: Workload) -> RiskEngine:
    risk = risk_engine()
    risk.check_batch(SYMBOL, w.fill)
    risk.on_events(SYMBOL, w.fill_events)
    return risk


def risk_run(w: Workload) -> tuple[float, float, int]:
    """(checks per wall second, per CPU second, final digest) of check + on_events."""
    risk = fresh_risk(w)
    check, feed = risk.check_batch, risk.on_events
    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
    for records, events in zip(w.batches, w.events, strict=True):
        check(SYMBOL, records)
        feed(SYMBOL, events)
    wall, cpu = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
    rate = w.commands * 1e9
    return rate / max(wall, 1), rate / max(cpu, 1), risk.digest()


def pipeline_run(w: Workload, with_risk: bool) -> tuple[float, float]:
    """(commands per wall second, per CPU second) of the batch path, with or without risk."""
    book = Book()
    book.apply(w.fill)
    risk = fresh_risk(w)
    apply, check, feed = book.apply, risk.check_batch, risk.on_events
    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
    if with_risk:
        for records in w.batches:
            check(SYMBOL, records)
            feed(SYMBOL, apply(records))
    else:
        for records in w.batches:
            apply(records)
    wall, cpu = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
    rate = w.commands * 1e9
    return rate / max(wall, 1), rate / max(cpu, 1)


def service_time(w_args: tuple[int, int, int], per_sample: int) -> dict[str, Any]:
    """Cost per command of check_batch and of on_events, calls of `per_sample` commands."""
    seed, commands, depth = w_args
    w = prepare(seed, commands, depth, per_sample)
    risk = fresh_risk(w)
    check, feed = risk.check_batch, risk.on_events
    check_ns: list[int] = []
    events_ns: list[int] = []
    now = time.perf_counter_ns
    for records, events in zip(w.batches, w.events, strict=True):
        t0 = now()
        check(SYMBOL, records)
        t1 = now()
        feed(SYMBOL, events)
        t2 = now()
        if len(records) == per_sample * COMMAND_SIZE:
            check_ns.append(t1 - t0)
            events_ns.append(t2 - t1)
    return {
        "commands_per_sample": per_sample,
        "check": summary(histogram(check_ns), divide_by=per_sample),
        "on_events": summary(histogram(events_ns), divide_by=per_sample),
    }


def timer_overhead_ns(n: int = 100_000) -> float:
    now = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        t0 = now()
        samples[i] = now() - t0
    return statistics.median(samples)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(prog="python -m perf.risk", description=doc.split("\n\n")[0])
    p.add_argument("--commands", type=int, default=1_000_000, help="timed commands")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--depth", type=int, default=1_000, help="synthetic fill (resting orders)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument(
        "--service-batch", type=int, nargs="+", default=[1, 64], help="commands per timed call"
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default=None, help="write the figures and machine facts here")
    args = p.parse_args(argv)
    if min(args.batch, *args.service_batch) < 1 or args.repeat < 1 or args.depth < 0:
        p.error("batch sizes and --repeat must be >= 1, --depth >= 0")
    if args.commands < 1:
        p.error("--commands must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter_ns()
    w = prepare(args.seed, args.commands, args.depth, args.batch)
    print(
        f"workload: {w.name}: {w.commands:,} timed commands in batches of {args.batch}"
        f" (+{len(w.fill) // COMMAND_SIZE:,} untimed fill), every check on and passed;"
        f" prepared in {fmt_ns(time.perf_counter_ns() - t0)}"
    )
    results: dict[str, Any] = {}

    runs = [risk_run(w) for _ in range(args.repeat)]
    digests = {r[2] for r in runs}
    if len(digests) != 1:
        print(f"perf.risk: runs ended in different risk states: {digests}", file=sys.stderr)
        return 1
    wall = [r[0] for r in runs]
    cpu = [r[1] for r in runs]
    results["risk_throughput"] = {
        "batch": args.batch,
        "checks_per_s_best": max(wall),
        "checks_per_s_median": statistics.median(wall),
        "checks_per_cpu_s_best": max(cpu),
        "ns_per_command_best": 1e9 / max(wall),
    }
    print(
        f"\nrisk throughput: check_batch + on_events over the stream, best/median of"
        f" {args.repeat} runs on fresh engines\n"
        f"  {max(wall) / 1e6:6.2f} M checks/s (median {statistics.median(wall) / 1e6:.2f} M;"
        f" {max(cpu) / 1e6:.2f} M per CPU second) = {1e9 / max(wall):.0f} ns per command"
    )

    overhead = timer_overhead_ns()
    results["timer_overhead_ns"] = overhead
    results["service_time_ns"] = []
    print(
        "\ncost per command: each call on s commands timed with perf_counter_ns, divided by s;\n"
        f"  includes the Python call; timer overhead {overhead:.0f} ns per sample"
        " (not subtracted)"
    )
    for s in args.service_batch:
        r = service_time((args.seed, args.commands, args.depth), s)
        results["service_time_ns"].append(r)
        for part in ("check", "on_events"):
            f = r[part]
            figures = "  ".join(f"{k} {fmt_ns(f[k])}" for k in map(percentile_key, PERCENTILES))
            print(f"  s={s:<4} {part:<9} {figures}  mean {fmt_ns(f['mean'])}")

    book_runs = [pipeline_run(w, with_risk=False) for _ in range(args.repeat)]
    both_runs = [pipeline_run(w, with_risk=True) for _ in range(args.repeat)]
    book_best = max(r[0] for r in book_runs)
    both_best = max(r[0] for r in both_runs)
    book_cpu = max(r[1] for r in book_runs)
    both_cpu = max(r[1] for r in both_runs)
    drop = 100.0 * (1.0 - both_best / book_best)
    added_ns = 1e9 / both_best - 1e9 / book_best
    results["pipeline"] = {
        "batch": args.batch,
        "book_commands_per_s_best": book_best,
        "risk_and_book_commands_per_s_best": both_best,
        "book_commands_per_cpu_s_best": book_cpu,
        "risk_and_book_commands_per_cpu_s_best": both_cpu,
        "throughput_drop_pct": drop,
        "risk_added_ns_per_command": added_ns,
    }
    print(
        f"\nbatch path (batch {args.batch}), best of {args.repeat}: book alone"
        f" {book_best / 1e6:.2f} M commands/s, check + book + on_events {both_best / 1e6:.2f} M"
        f" (per CPU second {book_cpu / 1e6:.2f} M vs {both_cpu / 1e6:.2f} M)\n"
        f"  risk adds {added_ns:.0f} ns per command; throughput drop {drop:.1f} %"
    )

    results["final_digest"] = digests.pop()
    results["targets"] = {
        "added_ns_per_order": TARGET_ADDED_NS,
        "added_ns_met": added_ns < TARGET_ADDED_NS,
        "throughput_drop_pct": TARGET_DROP_PCT,
        "throughput_drop_met_on_batch_path": drop < TARGET_DROP_PCT,
    }
    print(
        f"\ntargets: risk adds < {TARGET_ADDED_NS:.0f} ns per order:"
        f" {'met' if added_ns < TARGET_ADDED_NS else 'NOT met'} ({added_ns:.0f} ns);"
        f" batch-path throughput drop < {TARGET_DROP_PCT:.0f} %:"
        f" {'met' if drop < TARGET_DROP_PCT else 'NOT met'} ({drop:.1f} %; the daemon's full"
        " pipeline does far more per command than the book, see docs/performance.md)"
    )
    if args.json:
        params = {k: v for k, v in vars(args).items() if k != "json"}
        params["timed_commands"] = w.commands
        write_json(args.json, "perf.risk", params, results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
