"""Order book throughput and service time through the batch API, in process.

    python -m perf.book [--workload synthetic|lobster:PATH] [--commands N] [--seed S]
                        [--batch B] [--json PATH]

What is measured (the tool prints this next to its figures):

- **throughput**: the command stream is split into `bytes` batches of B commands beforehand; the
  wall time (`time.perf_counter_ns`) of the loop calling `Book.apply` on each batch gives
  commands/s. It includes the Python loop, the call, and copying the event records into the
  returned `bytes`. Reported for B (default 256) and a large batch (65536), best and median of
  `--repeat` runs, each on a fresh book, and per CPU second of the thread (`time.thread_time_ns`),
  which leaves out the time the thread waited for a core on a busy machine.
- **service time per command**: the stream again, in batches of s commands (default s = 1 and 16);
  each `apply` call is timed on its own and divided by s, so a sample is the mean per-command cost
  of one call. It includes the call from Python and the timer's own overhead (printed).
  Percentiles come from an HdrHistogram of those samples.

The synthetic workload (`engine._native.synthetic_flow`) first fills the book with `--depth`
resting orders; that fill is applied before each run and not timed. Every run must end in the same
book state (digest), whatever the batch size: the tool checks it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine._native import COMMAND_SIZE, EVENT_SIZE, Book, synthetic_flow
from perf._stats import PERCENTILES, fmt_ns, histogram, percentile_key, summary, write_json

LARGE_BATCH = 65_536
TARGET_COMMANDS_PER_S = 5_000_000
TARGET_P999_NS = 1_000


@dataclass(frozen=True)
class Workload:
    name: str
    warmup: bytes
    """Applied to each fresh book before timing (the synthetic fill)."""
    timed: bytes

    @property
    def commands(self) -> int:
        return len(self.timed) // COMMAND_SIZE


class WorkloadUnavailable(Exception):
    pass


def load_workload(spec: str, commands: int | None, seed: int, depth: int) -> Workload:
    if spec == "synthetic":
        n = commands if commands is not None else 1_000_000
        flow = synthetic_flow(seed, n, depth)
        cut = depth * COMMAND_SIZE
        return Workload(f"synthetic seed={seed} depth={depth}", flow[:cut], flow[cut:])
    if spec.startswith("lobster:"):
        path = spec.removeprefix("lobster:")
        try:
            from perf.lobster import lobster_commands
        except ImportError as e:
            raise WorkloadUnavailable(
                f"the LOBSTER workload needs perf/lobster.py with lobster_commands(): {e}"
            ) from e
        flow = lobster_commands(path)
        if commands is not None:
            flow = flow[: commands * COMMAND_SIZE]
        return Workload(f"lobster {path}", b"", flow)
    raise WorkloadUnavailable(f"unknown workload {spec!r} (synthetic or lobster:PATH)")


def split(records: bytes, batch: int) -> list[bytes]:
    step = batch * COMMAND_SIZE
    return [records[i : i + step] for i in range(0, len(records), step)]


def fresh_book(w: Workload) -> Book:
    book = Book()
    book.apply(w.warmup)
    return book


def throughput_run(w: Workload, chunks: Sequence[bytes]) -> tuple[float, float, int, int]:
    """One timed pass: (commands per wall second, commands per CPU second of this thread,
    events produced, final digest)."""
    book = fresh_book(w)
    apply = book.apply
    events = 0
    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
    for chunk in chunks:
        events += len(apply(chunk))
    wall, cpu = time.perf_counter_ns() - t0, time.thread_time_ns() - c0
    rate = w.commands * 1e9
    return rate / max(wall, 1), rate / max(cpu, 1), events // EVENT_SIZE, book.digest()


def throughput(w: Workload, batch: int, repeat: int) -> tuple[dict[str, Any], int]:
    chunks = split(w.timed, batch)
    runs = [throughput_run(w, chunks) for _ in range(repeat)]
    digests = {r[3] for r in runs}
    if len(digests) != 1:
        raise RuntimeError(f"runs with batch {batch} ended in different states: {digests}")
    wall = [r[0] for r in runs]
    cpu = [r[1] for r in runs]
    result = {
        "batch": batch,
        "commands_per_s_best": max(wall),
        "commands_per_s_median": statistics.median(wall),
        "commands_per_cpu_s_best": max(cpu),
        "events_per_command": runs[0][2] / max(w.commands, 1),
    }
    return result, digests.pop()


def timer_overhead_ns(n: int = 100_000) -> float:
    now = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        t0 = now()
        samples[i] = now() - t0
    return statistics.median(samples)


def service_time(w: Workload, per_sample: int) -> tuple[dict[str, Any], int]:
    chunks = split(w.timed, per_sample)
    book = fresh_book(w)
    apply = book.apply
    now = time.perf_counter_ns
    samples = [0] * len(chunks)
    for i, chunk in enumerate(chunks):
        t0 = now()
        apply(chunk)
        samples[i] = now() - t0
    # The last chunk may be short; keep only full ones so that every sample divides by s.
    full = samples if len(chunks[-1]) == per_sample * COMMAND_SIZE else samples[:-1]
    result: dict[str, Any] = {"commands_per_sample": per_sample}
    result.update(summary(histogram(full), divide_by=per_sample))
    return result, book.digest()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m perf.book", description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="synthetic", help="synthetic | lobster:PATH")
    p.add_argument("--commands", type=int, default=None, help="timed commands (synthetic: 1e6)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--depth", type=int, default=1_000, help="synthetic fill (resting orders)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--large-batch", type=int, default=LARGE_BATCH)
    p.add_argument(
        "--service-batch", type=int, nargs="+", default=[1, 16], help="commands per timed call"
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", default=None, help="write the figures and machine facts here")
    args = p.parse_args(argv)
    sizes = [args.batch, args.large_batch, *args.service_batch]
    if min(sizes) < 1 or args.repeat < 1 or args.depth < 0:
        p.error("batch sizes and --repeat must be >= 1, --depth >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter_ns()
    try:
        w = load_workload(args.workload, args.commands, args.seed, args.depth)
    except WorkloadUnavailable as e:
        print(f"perf.book: {e}", file=sys.stderr)
        return 2
    made_ns = time.perf_counter_ns() - t0
    if w.commands == 0:
        print("perf.book: the workload has no commands", file=sys.stderr)
        return 2
    print(
        f"workload: {w.name}: {w.commands:,} timed commands"
        f" (+{len(w.warmup) // COMMAND_SIZE:,} untimed fill), prepared in {fmt_ns(made_ns)}"
    )

    print(
        "\nthroughput: Book.apply over the whole stream in pre-split batches, wall clock,"
        f" best/median of {args.repeat} runs on fresh books"
    )
    results: dict[str, Any] = {"throughput": [], "service_time_ns": []}
    digests: set[int] = set()
    for batch in dict.fromkeys([args.batch, args.large_batch]):
        r, digest = throughput(w, batch, args.repeat)
        digests.add(digest)
        results["throughput"].append(r)
        print(
            f"  batch {batch:>7,}: {r['commands_per_s_best'] / 1e6:6.2f} M commands/s"
            f" (median {r['commands_per_s_median'] / 1e6:.2f} M;"
            f" {r['commands_per_cpu_s_best'] / 1e6:.2f} M per CPU second),"
            f" {r['events_per_command']:.2f} events/command"
        )

    overhead = timer_overhead_ns()
    results["timer_overhead_ns"] = overhead
    print(
        "\nservice time per command: each Book.apply call on s commands timed with"
        " perf_counter_ns, divided by s;\n  includes the Python call and the bytes result;"
        f" timer overhead {overhead:.0f} ns per sample (not subtracted)"
    )
    for s in args.service_batch:
        r, digest = service_time(w, s)
        digests.add(digest)
        results["service_time_ns"].append(r)
        figures = "  ".join(f"{k} {fmt_ns(r[k])}" for k in map(percentile_key, PERCENTILES))
        print(f"  s={s:<4} {figures}  max {fmt_ns(r['max'])}  ({int(r['samples']):,} samples)")

    if len(digests) != 1:
        print(f"perf.book: batch size changed the final state: {digests}", file=sys.stderr)
        return 1
    results["final_digest"] = digests.pop()
    best = max(r["commands_per_s_best"] for r in results["throughput"])
    p999 = min(r["p99.9"] for r in results["service_time_ns"])
    results["targets"] = {
        "commands_per_s": TARGET_COMMANDS_PER_S,
        "commands_per_s_met": best >= TARGET_COMMANDS_PER_S,
        "p99.9_ns": TARGET_P999_NS,
        "p99.9_met_at_some_batch": p999 < TARGET_P999_NS,
    }
    print(
        f"\ntargets: >= {TARGET_COMMANDS_PER_S / 1e6:.0f} M commands/s:"
        f" {'met' if best >= TARGET_COMMANDS_PER_S else 'NOT met'};"
        f" p99.9 < {fmt_ns(TARGET_P999_NS)}: {'met' if p999 < TARGET_P999_NS else 'NOT met'}"
        f" (best p99.9 {fmt_ns(p999)})"
    )
    if args.json:
        params = {k: v for k, v in vars(args).items() if k != "json"}
        params["timed_commands"] = w.commands
        write_json(args.json, "perf.book", params, results)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
