"""Orders/s through one ShardedClient (engine/router.py) against one shard, then two.

    python -m perf.shards [--orders 40000] [--window 500] [--symbols 4] [--fsync none]
                          [--json PATH]

For each layout it starts the shard daemons (`python -m engine run`, a shard map listing them,
symbols S0..S{n-1} split round-robin over the shards, shard i pinned to CPU i when the machine
has that many), then one ShardedClient (one account) sends `--orders` new orders over the
symbols round-robin, alternately buy and sell at one price (so half of them trade), in windows
of `--window`: send a window, then read reports until every order in it has its ack (or
reject). orders/s = orders / (last ack - first send). Closed loop: it measures throughput, not
latency (perf/tcp.py does latency).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from engine.router import ShardedClient
from engine.shardmap import load_map
from perf._stats import write_args_json
from perf.flow import Session, Symbol
from perf.replay_daemon import TOKEN, DaemonProcess, toml_dumps

PRICE = 10_000


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_shards(root: Path, n: int, symbols: list[str], fsync: str) -> list[DaemonProcess]:
    """n shard daemons serving `symbols` round-robin, with the map at root/shards.toml."""
    cpus = sorted(os.sched_getaffinity(0))
    shards: list[dict[str, Any]] = []
    for i in range(n):
        shards.append(
            {
                "name": f"s{i}",
                "gateway": f"127.0.0.1:{_free_port()}",
                "http": f"127.0.0.1:{_free_port()}",
                "cores": [cpus[i]] if len(cpus) > i else [],
                "symbols": symbols[i::n],
            }
        )
    map_file = root / "shards.toml"
    map_file.write_text(toml_dumps({"shards": shards}))
    daemons = []
    try:
        for s in shards:
            d = DaemonProcess(
                [Symbol(name, reference_price=PRICE) for name in s["symbols"]],
                [Session(1)],
                data_dir=root / s["name"],
                fsync=fsync,
                overrides={
                    "shard": {"name": s["name"], "map": str(map_file)},
                    "gateway": {"port": int(s["gateway"].rsplit(":", 1)[1])},
                    "http": {"port": int(s["http"].rsplit(":", 1)[1])},
                    "clock": {"advance_interval_ms": 0},
                },
            )
            daemons.append(d.start())
    except BaseException:
        for d in daemons:
            d.stop()
        raise
    return daemons


async def load(map_file: Path, symbols: list[str], orders: int, window: int) -> dict[str, Any]:
    async with ShardedClient(load_map(map_file), 1, TOKEN, max_reports=4 * window + 16) as c:
        await c.connect_all()
        acked = rejected = fills = 0
        started = time.perf_counter()
        sent = 0
        while sent < orders:
            batch = min(window, orders - sent)
            for i in range(sent, sent + batch):
                sym = symbols[i % len(symbols)]
                side = "buy" if (i // len(symbols)) % 2 == 0 else "sell"
                await c.new_order(sym, side, 1, PRICE)
            sent += batch
            while acked + rejected < sent:
                r = await c.next_report(30.0)
                if r.kind == "ack":
                    acked += 1
                elif r.kind == "reject":
                    rejected += 1
                elif r.kind == "fill":
                    fills += 1
        seconds = time.perf_counter() - started
    return {
        "orders": orders,
        "acked": acked,
        "rejected": rejected,
        "fills_seen": fills,
        "seconds": round(seconds, 4),
        "orders_per_s": round(orders / seconds, 1),
    }


def run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    symbols = [f"S{i}" for i in range(args.symbols)]
    with tempfile.TemporaryDirectory(prefix="cift-shards-") as tmp:
        daemons = start_shards(Path(tmp), n, symbols, args.fsync)
        try:
            result = uvloop.run(load(Path(tmp) / "shards.toml", symbols, args.orders, args.window))
        finally:
            for d in daemons:
                d.stop()
    return {"shards": n, **result}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m perf.shards", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=40_000, help="new orders per layout")
    p.add_argument("--window", type=int, default=500, help="orders sent before reading acks")
    p.add_argument("--symbols", type=int, default=4, help="symbols, split over the shards")
    p.add_argument("--fsync", default="none", choices=["always", "interval", "none"])
    p.add_argument("--json", default=None, help="write the figures and machine facts here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = {f"shards_{n}": run(n, args) for n in (1, 2)}
    for r in results.values():
        print(
            f"{r['shards']} shard(s): {r['orders']} orders in {r['seconds']:.3f} s = "
            f"{r['orders_per_s']:,.0f} orders/s ({r['rejected']} rejected)"
        )
    ratio = results["shards_2"]["orders_per_s"] / results["shards_1"]["orders_per_s"]
    results["two_vs_one"] = {"ratio": round(ratio, 3)}
    print(f"two shards vs one: x{ratio:.2f}")
    write_args_json(args, "perf.shards", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
