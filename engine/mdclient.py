"""Market-data client: a local L2 book of one symbol from NATS, with gap detection and resync,
and `watch_main` (`cift-engine watch SYMBOL`: the book live in the terminal).

The feed (engine.nats_publish, docs/nats.md): `md.<symbol>.book` carries coalesced level
changes numbered `seq` 1, 2, ... per symbol (and heartbeats with the current `seq` and no
levels); `md.<symbol>.snapshot` answers with every level and the `seq` it covers.

`BookFeed` subscribes first, then asks for a snapshot; messages arriving meanwhile wait in the
subscription, in order. Then, per message: `seq` <= the book's: already covered (or a
heartbeat), ignored; `seq` = book's + 1: applied; higher, or another `boot` (the engine
restarted): a gap, counted, and the book is rebuilt from a fresh snapshot the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from engine.nats_publish import L2Book, connect

__all__ = ["BookFeed", "render", "watch_main"]


class BookFeed:
    """The L2 book of `symbol`, kept from the NATS feed. `start()`, read `book`, `close()`."""

    def __init__(
        self,
        nc: NATS,
        symbol: str,
        on_update: Callable[[BookFeed], None] | None = None,
        snapshot_timeout_s: float = 2.0,
    ) -> None:
        self.nc = nc
        self.symbol = symbol
        self.on_update = on_update or (lambda _feed: None)
        self.snapshot_timeout_s = snapshot_timeout_s
        self.book = L2Book()
        self.seq = 0
        self.boot = 0
        self.synced = False
        self.last_price = 0
        self.precision = 0
        self.trades = 0
        self.gaps = 0
        self.resyncs = 0
        self._subs: list[Any] = []

    async def start(self) -> None:
        self._subs = [
            await self.nc.subscribe(f"md.{self.symbol}.book", cb=self._on_book),
            await self.nc.subscribe(f"md.{self.symbol}.trades", cb=self._on_trades),
        ]
        await self.nc.flush()
        await self.resync()

    async def close(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        self._subs = []

    async def resync(self) -> None:
        """Rebuild the book from a snapshot (retrying until one comes)."""
        self.synced = False
        self.resyncs += 1
        wait = 0.05
        while True:
            try:
                msg = await self.nc.request(
                    f"md.{self.symbol}.snapshot", b"", timeout=self.snapshot_timeout_s
                )
                snap = orjson.loads(msg.data)
                if "seq" in snap:
                    break
            except (TimeoutError, NatsError, orjson.JSONDecodeError):
                pass
            await asyncio.sleep(wait)
            wait = min(wait * 2, 1.0)
        book = L2Book()
        for side, key in ((1, "bids"), (2, "asks")):
            for price, qty, count in snap[key]:
                book.apply(side, price, qty, count)
        self.book = book
        self.seq = snap["seq"]
        self.boot = snap["boot"]
        self.last_price = snap.get("lastPrice", 0)
        self.precision = snap.get("pricePrecision", 0)
        self.synced = True
        self.on_update(self)

    async def _on_book(self, msg: Msg) -> None:
        try:
            m = orjson.loads(msg.data)
            seq, boot = m["seq"], m["boot"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if not self.synced:
            await self.resync()
        if boot == self.boot and seq <= self.seq:
            return  # covered by the snapshot, or a heartbeat
        if boot != self.boot or seq != self.seq + 1:
            self.gaps += 1
            await self.resync()
            if boot != self.boot or seq <= self.seq:
                return
            if seq != self.seq + 1:  # still ahead of the fresh snapshot: wait for the next
                return
        for side, key in ((1, "bids"), (2, "asks")):
            for price, qty, count in m[key]:
                self.book.apply(side, price, qty, count)
        self.seq = seq
        self.on_update(self)

    async def _on_trades(self, msg: Msg) -> None:
        with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            trades = orjson.loads(msg.data)["trades"]
            self.trades += len(trades)
            self.last_price = trades[-1]["price"]
            self.on_update(self)


# ---------------------------------------------------------------- cift-engine watch


def _price(p: int, precision: int) -> str:
    return f"{p / 10**precision:.{precision}f}" if precision else str(p)


def render(feed: BookFeed, depth: int) -> str:
    """The book as text: asks (worst of the shown first), a spread line, bids."""
    prec = feed.precision
    asks = feed.book.depth(2, depth)
    bids = feed.book.depth(1, depth)
    lines = [
        f"{feed.symbol}  seq {feed.seq}  last {_price(feed.last_price, prec)}  "
        f"trades {feed.trades}  gaps {feed.gaps}  resyncs {feed.resyncs}",
        f"{'':>8}{'price':>14}{'qty':>12}{'orders':>8}",
    ]
    for price, qty, count in reversed(asks):
        lines.append(f"{'ask':>8}{_price(price, prec):>14}{qty:>12}{count:>8}")
    if asks and bids:
        lines.append(f"{'spread':>8}{_price(asks[0][0] - bids[0][0], prec):>14}")
    else:
        lines.append(f"{'':>8}{'-':>14}")
    for price, qty, count in bids:
        lines.append(f"{'bid':>8}{_price(price, prec):>14}{qty:>12}{count:>8}")
    return "\n".join(lines) + "\n"


async def _watch(args: argparse.Namespace, out: TextIO) -> int:
    try:
        nc = await connect(args.nats, "cift-watch", max_reconnect_attempts=-1)
    except (NatsError, OSError) as e:
        print(f"watch: cannot connect to {args.nats}: {e}", file=sys.stderr)
        return 1
    changed = asyncio.Event()
    feed = BookFeed(nc, args.symbol, on_update=lambda _f: changed.set())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.timeout(args.timeout if args.once else None):
            await feed.start()
        if args.once:
            out.write(render(feed, args.depth))
            return 0
        interval = 1.0 / args.fps
        while not stop.is_set():
            out.write("\x1b[H\x1b[2J" + render(feed, args.depth))
            out.flush()
            changed.clear()
            waiter = asyncio.ensure_future(changed.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            await asyncio.sleep(interval)  # at most `fps` redraws per second
        return 0
    except TimeoutError:
        print(f"watch: no snapshot of {args.symbol} within {args.timeout} s", file=sys.stderr)
        return 1
    finally:
        await feed.close()
        with contextlib.suppress(NatsError):
            await nc.close()


def watch_main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """`cift-engine watch SYMBOL [--nats URL] [--depth N] [--once]`: the live book."""
    p = argparse.ArgumentParser(prog="cift-engine watch", description=watch_main.__doc__)
    p.add_argument("symbol")
    p.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS server URL")
    p.add_argument("--depth", type=int, default=10, help="levels shown per side")
    p.add_argument("--fps", type=float, default=10.0, help="most redraws per second")
    p.add_argument("--once", action="store_true", help="print the book once and exit")
    p.add_argument("--timeout", type=float, default=10.0, help="--once: wait this long")
    args = p.parse_args(argv)
    return asyncio.run(_watch(args, out or sys.stdout))
