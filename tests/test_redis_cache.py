"""The Redis market-data cache against a real redis-server: keys and values, coalescing, and
an outage (killed, restarted empty) that matching does not notice and the cache recovers from."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import orjson
import redis.asyncio as aioredis
from services import RedisServer, redis_server, until  # noqa: F401

from engine.book import COMMAND_SIZE, Book
from engine.redis_cache import RedisCache, RedisCacheConfig

from engine._native import synthetic_flow  # type: ignore[attr-defined]  # isort: skip


class Reports(NamedTuple):
    events: bytes
    symbol: int
    symbols: bytes


class Flow:
    """Two native books (symbols A and B) fed from a synthetic flow, batch by batch."""

    def __init__(self) -> None:
        self.books = [Book(), Book()]
        self.flows = [synthetic_flow(s, 4000, 200) for s in (1, 2)]
        self.pos = [0, 0]

    def step(
        self, cache: RedisCache, commands: int = 50, symbols: tuple[int, ...] = (0, 1)
    ) -> None:
        batch = []
        for i in symbols:
            start = self.pos[i]
            chunk = self.flows[i][start * COMMAND_SIZE : (start + commands) * COMMAND_SIZE]
            self.pos[i] += commands
            batch.append(Reports(self.books[i].apply(chunk), i, b""))
        cache.update(batch)


async def matches(r: Any, name: str, book: Book, depth: int) -> bool:
    """Redis holds exactly the book's current values for `name`."""
    top = await r.hgetall(f"book:top:{name}")
    raw = await r.get(f"book:depth:{name}")
    last = await r.get(f"price:latest:{name}")
    if not top or raw is None:
        return False
    bid = book.best_bid() or (0, 0, 0)
    ask = book.best_ask() or (0, 0, 0)
    want_top = (bid[0], bid[1], ask[0], ask[1])
    got_top = tuple(int(top[k]) for k in (b"bid", b"bid_size", b"ask", b"ask_size"))
    d = orjson.loads(raw)
    want_depth = [[list(x) for x in book.depth(s, depth)] for s in (1, 2)]
    last_ok = int(last or 0) == book.stats()[0]
    return got_top == want_top and [d["bids"], d["asks"]] == want_depth and last_ok


async def test_cache_holds_top_depth_and_last_price(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    config = RedisCacheConfig(url=f"redis://127.0.0.1:{redis_server.port}/0", depth=5)
    cache = RedisCache(["A", "B"], config)
    cache.start()
    r = aioredis.Redis(port=redis_server.port)
    flow = Flow()
    try:
        for _ in range(30):
            flow.step(cache)
            await asyncio.sleep(0)
        for i, name in enumerate(("A", "B")):
            await until(lambda i=i, n=name: matches(r, n, flow.books[i], 5), f"{name} cached")
        top = await r.hgetall("book:top:A")
        assert set(top) == {b"bid", b"bid_size", b"ask", b"ask_size", b"seq", b"time"}
        assert int(top[b"seq"]) > 0 and int(top[b"time"]) > 0
        # 30 batches, far fewer writes: a burst coalesces into one pipeline per write.
        for _ in range(30):
            flow.step(cache)
        await until(lambda: matches(r, "A", flow.books[0], 5), "the burst cached")
        assert cache.stats["writes"] < cache.stats["batches"]
        assert cache.stats["failures"] == 0
    finally:
        await cache.close()
        await r.aclose()


async def test_redis_outage_matching_goes_on_and_values_are_rewritten_on_reconnect(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    config = RedisCacheConfig(
        url=f"redis://127.0.0.1:{redis_server.port}/0", retry_min_s=0.02, retry_max_s=0.2
    )
    cache = RedisCache(["A", "B"], config)
    cache.start()
    flow = Flow()
    try:
        for _ in range(10):
            flow.step(cache)
            await asyncio.sleep(0)
        await until(lambda: cache.up and not cache.dirty, "the first writes")
        redis_server.kill()
        for _ in range(20):  # update never waits for Redis
            flow.step(cache)
            await asyncio.sleep(0)
        await until(lambda: cache.stats["failures"] >= 2, "failures counted (with retries)")
        assert not cache.up
        redis_server.start()  # empty: it saves nothing
        r = aioredis.Redis(port=redis_server.port)
        try:
            for i, name in enumerate(("A", "B")):
                await until(lambda i=i, n=name: matches(r, n, flow.books[i], 10), f"{name} back")
            assert cache.stats["rewrites"] >= 1
        finally:
            await r.aclose()
    finally:
        await cache.close()


async def test_a_redis_restart_between_writes_is_noticed_and_rewritten(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    config = RedisCacheConfig(url=f"redis://127.0.0.1:{redis_server.port}/0")
    cache = RedisCache(["A", "B"], config)
    cache.start()
    flow = Flow()
    r = aioredis.Redis(port=redis_server.port)
    try:
        flow.step(cache)
        await until(lambda: matches(r, "B", flow.books[1], 10), "B cached")
        await r.flushall()  # as if Redis restarted empty while we were idle
        flow.step(cache, symbols=(0,))  # touches A only
        await until(lambda: matches(r, "B", flow.books[1], 10), "B rewritten")
        assert cache.stats["rewrites"] >= 1
    finally:
        await cache.close()
        await r.aclose()
