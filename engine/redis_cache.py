"""Redis (or Dragonfly) market-data cache, written from the durable event batches.

Keys (docs/nats.md), per symbol:
- `price:latest:<symbol>`: last trade price (string integer; absent before the first trade);
- `book:top:<symbol>`: hash `bid`, `bid_size`, `ask`, `ask_size` (0 when that side is empty),
  `seq` (engine sequence number of the last command that changed the symbol), `time` (ns since
  the epoch, when written);
- `book:depth:<symbol>`: JSON `{"seq", "time", "bids": [[price, qty, orders], ...], "asks"}`,
  the best `depth` levels of each side, best first.

`update(batch)` is synchronous and cheap: it applies the batch's Level and Trade events to a
mirror of each symbol and marks the symbol dirty. One writer task sends the dirty symbols'
keys in one pipeline (no transaction; only SET, HSET and EXISTS, which Redis and Dragonfly both
have), so a burst of batches coalesces into one write per symbol. Memory is bounded by the
symbol count: nothing queues.

Redis down: matching does not notice. The writer counts the failure (`stats["failures"]`),
retries with exponential backoff (`retry_min_s` .. `retry_max_s`), and once a write goes
through again (`stats["reconnects"]`) rewrites every symbol's current values. A Redis that
restarted empty between two writes is noticed too (the `cift:cache` marker key is gone) and
rewritten whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from engine.book import EVENT_SIZE, Book, EventKind
from engine.nats_publish import L2Book, ReportsLike

__all__ = ["MARKER_KEY", "RedisCache", "RedisCacheConfig"]

log = logging.getLogger(__name__)

MARKER_KEY = "cift:cache"
_LEVEL = struct.Struct("<xB6xQ24xqq32xq8x")  # side, seq, price, qty, order count
_TRADE_PRICE = struct.Struct("<8xQ24xq")  # seq, price
_LEVEL_KIND = int(EventKind.LEVEL)
_TRADE = int(EventKind.TRADE)


@dataclass(frozen=True)
class RedisCacheConfig:
    url: str = "redis://127.0.0.1:6379/0"
    # Levels per side in book:depth:<symbol>.
    depth: int = 10
    timeout_s: float = 1.0
    retry_min_s: float = 0.05
    retry_max_s: float = 2.0


class _Symbol:
    __slots__ = ("book", "last_price", "name", "seq")

    def __init__(self, name: str) -> None:
        self.name = name
        self.book = L2Book()
        self.seq = 0
        self.last_price = 0


class RedisCache:
    """Top of book, depth and last price per symbol in Redis. `start()`, `update()` per
    durable batch, `close()`."""

    def __init__(
        self,
        symbols: Sequence[str],
        config: RedisCacheConfig | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config or RedisCacheConfig()
        self.clock = clock
        self.symbols = [_Symbol(s) for s in symbols]
        self._dirty: set[int] = set()
        self._signal = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._written = False  # a write went through since the last failure
        self.client: Any = aioredis.Redis.from_url(
            self.config.url,
            socket_timeout=self.config.timeout_s,
            socket_connect_timeout=self.config.timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self.stats: dict[str, int] = dict.fromkeys(
            ("batches", "writes", "keys", "failures", "rewrites", "reconnects"), 0
        )
        self.up = False

    @property
    def dirty(self) -> int:
        """Symbols changed since their last write (a metrics gauge)."""
        return len(self._dirty)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> asyncio.Task[None]:
        self._dirty = set(range(len(self.symbols)))  # the current (maybe empty) state, once
        self._signal.set()
        self._task = asyncio.get_running_loop().create_task(self._writer(), name="redis-cache")
        return self._task

    async def close(self, timeout: float = 2.0) -> None:
        """One last write of what is dirty (if Redis answers within `timeout`), then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._dirty and self.up:
                    await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()

    def load(self, index: int, book: Book, seq: int = 0) -> None:
        """Start symbol `index` from a recovered book (after a restart, before `start`)."""
        sym = self.symbols[index]
        sym.book.clear()
        for side in (1, 2):
            for price, qty, count in book.depth(side, book.order_count() + 1):
                sym.book.apply(side, price, qty, count)
        sym.last_price = book.stats()[0]
        sym.seq = seq

    # ---------------------------------------------------------------- the batch step

    def update(self, batch: Sequence[ReportsLike]) -> None:
        """Apply a durable batch to the mirror; the writer sends the touched symbols."""
        self.stats["batches"] += 1
        dirty = self._dirty
        for r in batch:
            if r.symbol < 0:
                continue
            events = r.events
            kinds = events[0::EVENT_SIZE]
            if _LEVEL_KIND not in kinds and _TRADE not in kinds:
                continue
            sym = self.symbols[r.symbol]
            for i, kind in enumerate(kinds):
                if kind == _LEVEL_KIND:
                    side, seq, price, qty, count = _LEVEL.unpack_from(events, i * EVENT_SIZE)
                    sym.book.apply(side, price, qty, count)
                    sym.seq = seq
                elif kind == _TRADE:
                    sym.seq, sym.last_price = _TRADE_PRICE.unpack_from(events, i * EVENT_SIZE)
            dirty.add(r.symbol)
        if dirty:
            self._signal.set()

    # ---------------------------------------------------------------- the writer

    def _values(self, sym: _Symbol, now: int) -> tuple[dict[str, int], bytes]:
        bid = sym.book.best(1) or (0, 0, 0)
        ask = sym.book.best(2) or (0, 0, 0)
        top = {
            "bid": bid[0],
            "bid_size": bid[1],
            "ask": ask[0],
            "ask_size": ask[1],
            "seq": sym.seq,
            "time": now,
        }
        n = self.config.depth
        depth = {
            "seq": sym.seq,
            "time": now,
            "bids": sym.book.depth(1, n),
            "asks": sym.book.depth(2, n),
        }
        return top, orjson.dumps(depth)

    async def _write(self, indexes: set[int]) -> bool:
        """One pipeline for `indexes`; False if Redis had lost our keys (write everything)."""
        now = self.clock()
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(MARKER_KEY)
        for i in sorted(indexes):
            sym = self.symbols[i]
            top, depth = self._values(sym, now)
            if sym.last_price:
                pipe.set(f"price:latest:{sym.name}", sym.last_price)
            pipe.hset(f"book:top:{sym.name}", mapping=top)
            pipe.set(f"book:depth:{sym.name}", depth)
        pipe.set(MARKER_KEY, now)
        results = await pipe.execute()
        self.stats["writes"] += 1
        self.stats["keys"] += len(indexes)
        return bool(results[0]) and self._written

    async def _writer(self) -> None:
        c = self.config
        backoff = c.retry_min_s
        while True:
            if not self._dirty:
                self._signal.clear()
                await self._signal.wait()
                continue
            batch, self._dirty = self._dirty, set()
            try:
                intact = await self._write(batch)
                if not intact:  # a fresh Redis (restarted, flushed): every symbol again
                    self.stats["rewrites"] += 1
                    await self._write(set(range(len(self.symbols))))
                self._written = True
                if not self.up:
                    log.info("redis cache: writing to %s", c.url)
                    if self.stats["failures"]:
                        self.stats["reconnects"] += 1  # back after an outage
                self.up = True
                backoff = c.retry_min_s
            except (RedisError, OSError) as e:
                self.stats["failures"] += 1
                if self.up or self.stats["failures"] == 1:
                    log.warning("redis cache: %s unreachable (%s); retrying", c.url, e)
                self.up = False
                self._written = False
                self._dirty |= batch
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, c.retry_max_s)
