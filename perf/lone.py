"""CPU per lone order through the daemon's pipeline, in process: one request frame per read.

The cost of an order when nothing batches it (the latency-bound case of `perf.tcp` at moderate
rates): gateway decode, risk sequencing and checks, journal append (fsync policy `none` by
default: the append is on the event loop, the reply does not wait for a disk), book, publishing,
the reply written to an in-memory transport. No sockets, no load generator: what remains is the
pipeline's own Python glue and native work, as CPU time per order. Compare it with the daemon's
CPU per order under `perf.tcp` to see what the kernel's socket path adds.

    python -m perf.lone [--orders N] [--fsync none|interval|always] [--risk on|off]
                        [--lane on|off] [--json P]

With `--lane on` (the default config) every read takes the lane (actors/lane.py): one native
call for risk and book (with fsync `none` the journal append and the replies too); `--lane off`
sends it through the actors' queues as under load.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from engine.book import COMMAND_SIZE
from engine.daemon import Engine
from engine.wire import encode_requests
from perf._stats import write_args_json
from perf.pipeline import SYMBOL, SinkTransport, bench_config, logged_on, record_stream, stop_engine

WARMUP = 2000


def frame_bounds(frames: bytes) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(frames):
        (n,) = struct.unpack_from("<I", frames, pos)
        out.append((pos, pos + 4 + n))
        pos += 4 + n
    return out


async def run(orders: int, fsync: str, risk: bool, lane: bool = True) -> dict[str, Any]:
    records = record_stream(1, orders, 1000)
    n = len(records) // COMMAND_SIZE
    frames = encode_requests(records, struct.pack("<I", 0) * n, [SYMBOL.name])
    bounds = frame_bounds(frames)
    with tempfile.TemporaryDirectory(prefix="cift-lone-") as tmp:
        config = bench_config(Path(tmp), risk)
        journal = dataclasses.replace(
            config.journal, fsync=fsync, snapshot_every_commands=0, snapshot_interval_s=0.0
        )
        batch = dataclasses.replace(config.batch, lane=lane)
        eng = Engine(dataclasses.replace(config, journal=journal, batch=batch))
        watched = eng.start()
        transport = SinkTransport()
        session = logged_on(eng, transport)
        for a, b in bounds[:WARMUP]:
            session.data_received(frames[a:b])
        await asyncio.sleep(0)
        timed = bounds[WARMUP:]
        cpu0, wall0 = time.thread_time_ns(), time.perf_counter_ns()
        for a, b in timed:
            before = transport.bytes
            session.data_received(frames[a:b])
            if transport.bytes == before:  # the reply waits (fsync): let the loop run
                await asyncio.sleep(0)
        for actor in eng.actors():
            await actor.drain()
        cpu, wall = time.thread_time_ns() - cpu0, time.perf_counter_ns() - wall0
        sequenced = eng.sequenced()
        lane_reads = eng.lane.runs if eng.lane is not None else 0
        await stop_engine(eng, watched)
    if sequenced != len(bounds):
        raise RuntimeError(f"sequenced {sequenced} of {len(bounds)} orders")
    return {
        "lane_reads": lane_reads,
        "orders": len(timed),
        "cpu_us_per_order": cpu / len(timed) / 1000,
        "wall_us_per_order": wall / len(timed) / 1000,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m perf.lone", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=20_000)
    p.add_argument("--fsync", default="none", choices=["none", "interval", "always"])
    p.add_argument("--risk", default="on", choices=["on", "off"])
    p.add_argument("--lane", default="on", choices=["on", "off"], help="[batch] lane")
    p.add_argument("--json", default=None, help="write the figures and machine facts here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    r = uvloop.run(run(args.orders, args.fsync, args.risk == "on", args.lane == "on"))
    print(
        f"{r['orders']} lone orders (fsync {args.fsync}, risk {args.risk}, lane {args.lane}: "
        f"{r['lane_reads']} reads took it): "
        f"{r['cpu_us_per_order']:.1f} µs CPU, {r['wall_us_per_order']:.1f} µs wall per order"
    )
    write_args_json(args, "perf.lone", r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
