"""Journal throughput per fsync policy on this disk, and the pipeline with each policy.

    python -m perf.journal [--dir DIR] [--seconds S] [--batches 1,16,256] [--interval-us N]
                           [--pipeline-commands N] [--json PATH]

1. The journal alone (`engine._native.JournalWriter`, what the persistence actor calls): for each
   policy and batch size, append batches of 104-byte entries for `--seconds`; `always` syncs every
   batch, `interval` syncs when `--interval-us` has passed since the last sync, `none` never.
   Prints commands/s, fsyncs/s and the fsync latency (p50/p99).
2. The in-process pipeline (perf/pipeline.py: gateway -> risk -> book -> persistence ->
   publishing) on the same synthetic stream with `journal.fsync` = none | interval | always,
   and the book alone as the reference: what durability costs end to end (group commit grows
   the batches while an fsync runs).

`--dir` must be on the disk under test (default: a temporary directory in the current one).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from engine._native import JournalWriter
from engine.config import JournalConfig, load
from engine.wire import JOURNAL_ENTRY_SIZE, encode_requests
from perf import pipeline
from perf._stats import write_json

POLICIES = ("always", "interval", "none")


def bench_journal(
    directory: Path, policy: str, batch: int, seconds: float, interval_us: int
) -> dict[str, Any]:
    jdir = Path(tempfile.mkdtemp(prefix="journal-", dir=directory))
    try:
        w = JournalWriter(jdir, 64 << 20, 1)
        payload = bytes(JOURNAL_ENTRY_SIZE * batch)
        interval = interval_us / 1e6
        seq, fsyncs = 1, 0
        lat: list[float] = []
        start = last_sync = time.perf_counter()
        deadline = start + seconds
        while True:
            w.append(1, seq, batch, payload, False)
            seq += batch
            now = time.perf_counter()
            if policy == "always" or (policy == "interval" and now - last_sync >= interval):
                w.sync()
                last_sync = time.perf_counter()
                lat.append(last_sync - now)
                fsyncs += 1
            if now >= deadline:
                break
        elapsed = time.perf_counter() - start
        lat.sort()
        return {
            "policy": policy,
            "batch": batch,
            "commands_per_s": (seq - 1) / elapsed,
            "fsyncs_per_s": fsyncs / elapsed,
            "mb_per_s": (seq - 1) * JOURNAL_ENTRY_SIZE / elapsed / 1e6,
            "fsync_p50_us": lat[len(lat) // 2] * 1e6 if lat else 0.0,
            "fsync_p99_us": lat[int(len(lat) * 0.99)] * 1e6 if lat else 0.0,
        }
    finally:
        shutil.rmtree(jdir, ignore_errors=True)


def bench_pipeline(commands: int, interval_us: int) -> dict[str, Any]:
    records = pipeline.record_stream(1, commands, 1000)
    n = len(records) // 96
    frames = encode_requests(records, struct.pack("<I", 0) * n, [pipeline.SYMBOL.name])
    batch = load().batch.max_records
    out: dict[str, Any] = {
        "commands": n,
        "book_orders_per_s": n / pipeline.run_book(records, batch)[0],
    }
    original = pipeline.bench_config
    try:
        for policy in POLICIES:

            def config(d: Path, p: str = policy) -> Any:
                c = original(d)
                j = JournalConfig(p, fsync_interval_us=interval_us)
                return dataclasses.replace(c, journal=j)

            pipeline.bench_config = config
            r = uvloop.run(pipeline.run_pipeline(frames, n, 65536))
            out[policy] = {
                "orders_per_s": r["orders_per_s"],
                "persistence_mean_batch": r["mean_batch"].get("persistence", 0.0),
            }
    finally:
        pipeline.bench_config = original
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m perf.journal", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=".", help="a directory on the disk under test")
    ap.add_argument("--seconds", type=float, default=1.5, help="per journal case")
    ap.add_argument("--batches", default="1,16,256", help="commands per record")
    ap.add_argument("--interval-us", type=int, default=2000)
    ap.add_argument("--pipeline-commands", type=int, default=200_000, help="0: skip the pipeline")
    ap.add_argument("--json", help="write the results as JSON")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    directory = Path(args.dir)
    rows = [
        bench_journal(directory, p, int(b), args.seconds, args.interval_us)
        for p in POLICIES
        for b in args.batches.split(",")
    ]
    print(f"journal alone in {directory.resolve()} (interval {args.interval_us} us)")
    print(f"{'policy':<9} {'batch':>6} {'commands/s':>12} {'fsyncs/s':>9} {'MB/s':>7} "
          f"{'fsync p50':>10} {'p99':>9}")  # fmt: skip
    for r in rows:
        print(
            f"{r['policy']:<9} {r['batch']:>6} {r['commands_per_s']:>12,.0f} "
            f"{r['fsyncs_per_s']:>9,.0f} {r['mb_per_s']:>7.1f} {r['fsync_p50_us']:>8.0f}us "
            f"{r['fsync_p99_us']:>7.0f}us"
        )
    results: dict[str, Any] = {"journal": rows}
    if args.pipeline_commands:
        p = bench_pipeline(args.pipeline_commands, args.interval_us)
        results["pipeline"] = p
        print(f"\npipeline, {p['commands']} commands (book alone {p['book_orders_per_s']:,.0f}/s)")
        for policy in POLICIES:
            q = p[policy]
            print(
                f"  fsync={policy:<9} {q['orders_per_s']:>12,.0f} orders/s   "
                f"journal batch {q['persistence_mean_batch']:.0f} commands"
            )
    if args.json:
        write_json(args.json, "perf.journal", vars(args), results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
