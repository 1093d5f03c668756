"""Recovery time: a long journal replayed from scratch, and a snapshot plus a short tail.

    python -m perf.recovery [--commands 10000000] [--symbols 4] [--tail 100000] [--batch 4096]
                            [--dir DIR] [--json PATH]

Writes `--commands` journaled commands (the synthetic flow of `engine._native.synthetic_flow`,
one flow per symbol, wrapped as 104-byte journal entries with global sequence numbers, one
journal record per `--batch` commands as group commit would write them) into a temporary data
directory, then times `engine.recovery.recover` as the daemon runs it at start:

- from scratch: every command replayed through fresh books (target < 10 s for 10M);
- snapshot + tail: the newest snapshot restored, the journal files it covers pruned (as the
  daemon does), then the last `--tail` commands replayed (target < 1 s).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine._native import Book, JournalReader, JournalWriter, synthetic_flow
from engine.recovery import (
    ENTRY_DTYPE,
    JOURNAL_DIR,
    SNAPSHOT_DIR,
    prune_journal,
    recover,
    snapshot_of,
    split_by_symbol,
)
from engine.snapshot import write_snapshot
from perf._stats import write_json

MAX_PRICE = 1 << 40


def books(n: int) -> list[Book]:
    return [Book(1, MAX_PRICE, 1 << 40) for _ in range(n)]


def write(data_dir: Path, commands: int, symbols: int, batch: int) -> tuple[int, float]:
    """Journal `commands` entries; returns (commands written, seconds)."""
    w = JournalWriter(data_dir / JOURNAL_DIR, 64 << 20, 1)  # the default roll_bytes
    seq = 1
    start = time.perf_counter()
    per = commands // symbols
    for s in range(symbols):
        cmds = np.frombuffer(synthetic_flow(1 + s, per, 1000), dtype="V96")
        for off in range(0, len(cmds), batch):
            part = cmds[off : off + batch]
            entries = np.zeros(len(part), dtype=ENTRY_DTYPE)
            entries["cmd"] = part
            entries["symbol"] = s
            entries.view("<u8").reshape(len(part), -1)[:, 1] = np.arange(seq, seq + len(part))
            w.append(1, seq, len(part), entries.tobytes(), False)
            seq += len(part)
    w.sync()
    return seq - 1, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.recovery", description=__doc__.split("\n")[0])
    ap.add_argument("--commands", type=int, default=10_000_000)
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--tail", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--dir", default=None, help="where the temporary data directory goes")
    ap.add_argument("--json", help="write the results as JSON")
    args = ap.parse_args(argv)
    names = [f"S{i}" for i in range(args.symbols)]
    tmp = Path(tempfile.mkdtemp(prefix="cift-recovery-", dir=args.dir))
    try:
        n, write_s = write(tmp, args.commands, args.symbols, args.batch)
        size = sum(p.stat().st_size for p in (tmp / JOURNAL_DIR).iterdir())
        print(f"journal: {n:,} commands, {size / 1e6:,.0f} MB, written in {write_s:.1f} s")

        full = books(args.symbols)
        r = recover(tmp, names, full)
        print(
            f"from scratch:      {r.replayed:>11,} commands replayed in {r.seconds:6.2f} s "
            f"({r.replayed / r.seconds:,.0f}/s)   target < 10 s"
        )
        # A snapshot `--tail` commands before the end: the state there is a replay up to it.
        cut = n - min(args.tail, n)
        partial = books(args.symbols)
        for kind, first, count, payload in JournalReader(tmp / JOURNAL_DIR):
            if kind != 1 or first > cut:
                break
            keep = payload[: max(0, min(count, cut - first + 1)) * ENTRY_DTYPE.itemsize]
            for sym, recs in split_by_symbol(keep, args.symbols):
                partial[sym].apply(recs)
        snap_start = time.perf_counter()
        write_snapshot(tmp / SNAPSHOT_DIR, snapshot_of(names, partial, cut))
        snap_write_s = time.perf_counter() - snap_start
        pruned = prune_journal(tmp / JOURNAL_DIR, cut)  # as the daemon does after a snapshot
        tail = books(args.symbols)
        t = recover(tmp, names, tail)
        same = all(a.digest() == b.digest() for a, b in zip(full, tail, strict=True))
        print(
            f"snapshot + tail:   {t.replayed:>11,} commands replayed in {t.seconds:6.2f} s "
            f"(snapshot written in {snap_write_s:.2f} s, {len(pruned)} journal files pruned)   "
            f"target < 1 s   same state: {same}"
        )
        results: dict[str, Any] = {
            "commands": n,
            "journal_bytes": size,
            "write_s": write_s,
            "scratch_s": r.seconds,
            "scratch_commands_per_s": r.replayed / r.seconds,
            "tail_commands": t.replayed,
            "snapshot_tail_s": t.seconds,
            "snapshot_write_s": snap_write_s,
            "same_state": same,
        }
        if args.json:
            write_json(args.json, "perf.recovery", vars(args), results)
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
