"""The databases' own ingest ceiling on this machine: the sinks' exact rows, and only the writes.

    python -m perf.sink_floor [--commands N] [--postgres DSN] [--no-postgres] [--json PATH]

`perf.sinks` times a sink end to end (conversion of events to rows, then COPY / Native insert
and checkpoint). This takes the same trade-heavy synthetic journal, converts it to rows first
(untimed, `Converter`, in flushes of about 250k rows as the sink makes them) and then times only
`Backend.write` of those flushes: PostgreSQL binary COPY into fresh tables (a throwaway server
from tests/pg_harness.py, fsync on, unless `--postgres DSN`), ClickHouse Native inserts into
embedded chDB (with the materialized views that fill the pre-aggregated tables, as in
production). Its fills/s is the most any sink can reach here with these databases, whatever the
engine does; `perf.sinks`' figure divided by this one is the share the database leaves to us.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.sinks import ClickHouseBackend, PostgresBackend
from engine.sinks.backend import Backend
from engine.sinks.convert import Converter, Flush
from engine.sinks.tail import ENTRY_DTYPE
from perf._stats import write_args_json
from perf.sinks import TARGET_FILLS_PER_S, batches_of, journal, postgres

FLUSH_ROWS = 250_000


def flushes(commands: int) -> tuple[list[Flush], int]:
    """The journal's rows as the sink would write them, and the number of commands."""
    entries = journal(commands)
    conv = Converter()
    out: list[Flush] = []
    for batch in batches_of(entries):
        conv.add(batch)
        if conv.pending_rows >= FLUSH_ROWS:
            f = conv.take()
            if f is not None:
                out.append(f)
    last = conv.take()
    if last is not None:
        out.append(last)
    return out, len(entries) // ENTRY_DTYPE.itemsize


async def write_only(db: Backend, data: list[Flush]) -> dict[str, Any]:
    await db.connect()
    await db.migrate()
    start = time.perf_counter()
    for f in data:
        await db.write("floor", f)
    wall = time.perf_counter() - start
    await db.close()
    fills = sum(f.rows("trades") for f in data)
    rows = sum(f.total_rows for f in data)
    return {
        "sink": db.name,
        "seconds": wall,
        "fills": fills,
        "rows": rows,
        "fills_per_s": fills / wall,
        "rows_per_s": rows / wall,
    }


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data, commands = flushes(args.commands)
    rows = sum(f.total_rows for f in data)
    print(f"journal: {commands} commands -> {len(data)} flushes, {rows} rows (converted first)")
    results: dict[str, Any] = {"commands": commands, "machine_cpus": os.cpu_count(), "sinks": []}
    server, dsn = postgres(args)
    try:
        if dsn is not None:
            results["sinks"].append(await write_only(PostgresBackend(dsn), data))
    finally:
        if server is not None:
            server.destroy()
    ch = ClickHouseBackend(f"chdb://{tmp / 'floor'}")
    try:
        results["sinks"].append(await write_only(ch, data))
    finally:
        ch.shutdown()
    for s in results["sinks"]:
        print(f"{s['sink']:>10}: {s['fills_per_s']:>10,.0f} fills/s  {s['rows_per_s']:>10,.0f} "
              f"rows/s  (writes only: {s['fills']} fills, {s['rows']} rows in "
              f"{s['seconds']:.2f} s; target {TARGET_FILLS_PER_S:,} fills/s)")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m perf.sink_floor", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--commands", type=int, default=400_000, help="journal size (all symbols)")
    ap.add_argument("--postgres", help="an existing PostgreSQL (default: start one)")
    ap.add_argument("--no-postgres", action="store_true", help="ClickHouse only")
    ap.add_argument("--json", help="write the results as JSON here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cift-sink-floor-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    write_args_json(args, "perf.sink_floor", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
