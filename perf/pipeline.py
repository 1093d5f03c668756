"""The whole in-process pipeline at full speed: orders/s, and the ratio to the book alone.

    python -m perf.pipeline [--commands N] [--seed S] [--depth D] [--chunk BYTES] [--cpu N]
                            [--repeat R] [--breakdown] [--json PATH]

A recorded stream (the synthetic flow of `engine._native.synthetic_flow`, one account, cancels
and amends addressed by client order id) is encoded as request frames once, then fed to a
logged-on gateway session in `--chunk`-byte reads, as a socket would deliver them, through the
real actors on uvloop: gateway decode (Rust) -> risk sequencing and checks (Rust) -> book ->
persistence (the command log, in a temporary directory) -> publishing (reply frames in Rust) ->
the session's transport (an in-memory sink). The clock stops when every stage has drained.
The feeder reads the next chunk whenever the gateway reads, so backpressure paces it exactly
like a fast client.

The baseline is the native book alone on the same commands (`Book.apply` in batches of the
pipeline's batch limit). Both run on one core (`--cpu` pins it). `--breakdown` adds the cost of
each native step alone (decode, sequence, book, encode) per command.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import struct
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import uvloop

from actors.gateway import Session
from engine._native import synthetic_flow
from engine.book import COMMAND_SIZE, Book, CmdKind
from engine.config import AccountConfig, ClockConfig, Config, SymbolConfig, load
from engine.daemon import Engine
from engine.wire import (
    Publisher,
    Sequencer,
    WireDecoder,
    encode_logon,
    encode_requests,
)
from perf._stats import write_args_json

SYMBOL = SymbolConfig("BENCH", 1, 1, 2, 1, 1 << 40, 0, 0, 1 << 40)
_ZERO8 = bytes(8)


def record_stream(seed: int, commands: int, depth: int) -> bytes:
    """The synthetic flow with cancels/amends addressed by client order id: the pipeline gives
    its own engine order ids (= sequence numbers), so the flow's explicit ids become client ids."""
    buf = bytearray(synthetic_flow(seed, commands, depth, accounts=1))
    for off in range(0, len(buf), COMMAND_SIZE):
        if buf[off] in (CmdKind.NEW, CmdKind.CANCEL, CmdKind.AMEND):
            buf[off + 40 : off + 48] = buf[off + 24 : off + 32]
            buf[off + 24 : off + 32] = _ZERO8
    return bytes(buf)


def bench_config(
    data_dir: Path, risk: bool = True, fsync: str | None = None, lane: bool = True
) -> Config:
    """One symbol, one account, no clock ticks; `fsync` None: the default policy."""
    base = load()
    return dataclasses.replace(
        base.with_data_dir(data_dir),
        symbols=(SYMBOL,),
        accounts=(AccountConfig(1, "bench", False),),
        clock=ClockConfig(0),
        risk=dataclasses.replace(base.risk, enabled=risk),
        journal=dataclasses.replace(base.journal, fsync=fsync or base.journal.fsync),
        batch=dataclasses.replace(base.batch, lane=lane),
    )


class SinkTransport:
    """The session's socket: counts what is written, honours pause/resume_reading."""

    def __init__(self) -> None:
        self.bytes = 0
        self.paused = False
        self.resumed = asyncio.Event()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        self.paused = True
        self.resumed.clear()

    def resume_reading(self) -> None:
        self.paused = False
        self.resumed.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def logged_on(eng: Engine, transport: SinkTransport) -> Session:
    """A gateway session of the started `eng` that writes to `transport` (no socket), logged
    on as the bench account."""
    eng.gateway.start_detached()
    session = eng.gateway.session()
    session.connection_made(transport)  # type: ignore[arg-type]
    session.data_received(encode_logon(1, "bench"))
    return session


async def stop_engine(eng: Engine, watched: Iterable[asyncio.Future[None]]) -> None:
    """Cancel what `Engine.start` gave to supervise and close the journal."""
    for f in watched:
        f.cancel()
    await asyncio.gather(*watched, return_exceptions=True)
    eng.persistence.close()


async def run_pipeline(
    frames: bytes,
    commands: int,
    chunk: int,
    risk: bool = True,
    fsync: str | None = None,
    lane: bool = True,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cift-pipeline-") as tmp:
        config = bench_config(Path(tmp), risk, fsync, lane)
        eng = Engine(config)
        records = {a.name: 0 for a in eng.actors()}
        for a in eng.actors():

            def count(n: int, name: str = a.name) -> None:
                records[name] += n

            a.on_batch = count
        watched = eng.start()
        transport = SinkTransport()
        session = logged_on(eng, transport)
        assert session.account == 1, "logon failed"

        start, cpu0 = time.perf_counter(), time.process_time()
        for off in range(0, len(frames), chunk):
            if transport.paused:
                await transport.resumed.wait()
            session.data_received(frames[off : off + chunk])
            await asyncio.sleep(0)
        for actor in eng.actors():
            await actor.drain()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0

        await stop_engine(eng, watched)
        sequenced = eng.sequenced()
        if sequenced != commands:
            raise RuntimeError(f"sequenced {sequenced} of {commands} commands")
        return {
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "orders_per_s": commands / elapsed,
            "reply_bytes": transport.bytes,
            "backpressure_pauses": eng.gateway.pauses,
            "lane_reads": eng.lane.runs if eng.lane is not None else 0,
            "mean_batch": {
                a.name: round(records[a.name] / a.batches, 1) for a in eng.actors() if a.batches
            },
        }


def run_book(records: bytes, batch: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the book alone on `records`."""
    book = Book(SYMBOL.min_price, SYMBOL.max_price)
    step = batch * COMMAND_SIZE
    chunks = [records[i : i + step] for i in range(0, len(records), step)]
    start, cpu0 = time.perf_counter(), time.process_time()
    for c in chunks:
        book.apply(c)
    return time.perf_counter() - start, time.process_time() - cpu0


def breakdown(frames: bytes, commands: int, chunk: int) -> dict[str, float]:
    """ns per command of each native step alone, on the same reads as the pipeline (one read
    = one batch, streaming: nothing is kept, so memory does not distort the figures)."""
    dec = WireDecoder([SYMBOL.name], 65536)
    seq = Sequencer([SYMBOL.rules()], 1)
    book = Book(SYMBOL.min_price, SYMBOL.max_price)
    pub = Publisher([SYMBOL.spec()])
    pub.open_session(1)
    pub.bind(1, 1)
    spent = [0.0] * 4
    events_total = 0
    pending = b""
    clock = time.perf_counter
    for off in range(0, len(frames), chunk):
        buf = pending + frames[off : off + chunk]
        t0 = clock()
        consumed, cmds, syms, _, _, _ = dec.decode(buf, 1)
        t1 = clock()
        _, per_symbol, _, _, _, _ = seq.sequence(cmds, syms, 1)
        t2 = clock()
        records = per_symbol[0]
        events = book.apply(records) if records is not None else b""
        t3 = clock()
        pub.add_events(events, 0)
        pub.drain()
        t4 = clock()
        pending = buf[consumed:]
        events_total += len(events)
        for i, dt in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[i] += dt
    per = 1e9 / commands
    return {
        "decode_ns": spent[0] * per,
        "sequence_ns": spent[1] * per,
        "book_ns": spent[2] * per,
        "encode_ns": spent[3] * per,
        "events_per_command": events_total / 104 / commands,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m perf.pipeline", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--commands", type=int, default=1_000_000, help="mix commands after the fill")
    p.add_argument("--depth", type=int, default=1_000, help="resting orders placed first")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--chunk", type=int, default=65536, help="bytes per socket read")
    p.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    p.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    p.add_argument("--breakdown", action="store_true", help="also time each native step alone")
    p.add_argument(
        "--risk",
        default="on",
        choices=["on", "off"],
        help="the risk engine ([risk] enabled); off: the sequencer's basic checks only",
    )
    p.add_argument(
        "--fsync",
        default=None,
        choices=["always", "interval", "none"],
        help="journal fsync policy (default: the config's default, always)",
    )
    p.add_argument("--lane", default="on", choices=["on", "off"], help="[batch] lane")
    p.add_argument("--json", default=None, help="write the figures and machine facts here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    records = record_stream(args.seed, args.commands, args.depth)
    n = len(records) // COMMAND_SIZE
    frames = encode_requests(records, struct.pack("<I", 0) * n, [SYMBOL.name])
    batch = load().batch.max_records
    print(f"stream: {n} commands, {len(frames) / n:.0f} bytes per request frame", file=sys.stderr)

    gc.collect()
    gc.freeze()  # as the daemon does once it has started
    book_runs = [run_book(records, batch) for _ in range(args.repeat)]
    book_s, book_cpu = min(r[0] for r in book_runs), min(r[1] for r in book_runs)
    risk = args.risk == "on"
    lane = args.lane == "on"
    runs = [
        uvloop.run(run_pipeline(frames, n, args.chunk, risk, args.fsync, lane))
        for _ in range(args.repeat)
    ]
    best = min(runs, key=lambda r: r["seconds"])
    best_cpu = min(r["cpu_seconds"] for r in runs)
    results: dict[str, Any] = {
        "commands": n,
        "pipeline_orders_per_s": best["orders_per_s"],
        "book_orders_per_s": n / book_s,
        "ratio": book_s / best["seconds"],
        "pipeline_orders_per_cpu_s": n / best_cpu,
        "book_orders_per_cpu_s": n / book_cpu,
        "cpu_ratio": book_cpu / best_cpu,
        "pipeline": best,
    }
    if args.breakdown:
        results["breakdown"] = breakdown(frames, n, args.chunk)

    print(f"pipeline   {results['pipeline_orders_per_s']:>12,.0f} orders/s")
    print(f"book alone {results['book_orders_per_s']:>12,.0f} orders/s")
    print(f"ratio      {results['ratio']:>12.2f}")
    print(
        f"per CPU second: pipeline {results['pipeline_orders_per_cpu_s']:,.0f}, book alone "
        f"{results['book_orders_per_cpu_s']:,.0f}, ratio {results['cpu_ratio']:.2f}"
    )
    print(f"mean batch {best['mean_batch']}; reads through the lane: {best['lane_reads']}")
    if args.breakdown:
        for k, v in results["breakdown"].items():
            print(f"  {k:<20} {v:8.1f}")
    write_args_json(args, "perf.pipeline", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
