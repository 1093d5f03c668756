"""The market-data client against a real nats-server: a native Book drives the publisher
in-process; the client's L2 book must equal the engine's, also after gaps and a restart."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from services import NatsServer, nats_server, until  # noqa: F401

from engine.book import COMMAND_SIZE, Book
from engine.mdclient import BookFeed, watch_main
from engine.nats_publish import L2Book, NatsPublishConfig, NatsPublisher, connect

from engine._native import synthetic_flow  # type: ignore[attr-defined]  # isort: skip

SPECS = [("SYM", 1, 1, 2, 1, 1 << 40, 1 << 40)]


class Reports(NamedTuple):
    events: bytes
    symbol: int
    symbols: bytes


def l2(book: Book) -> L2Book:
    out = L2Book()
    for side in (1, 2):
        for price, qty, count in book.depth(side, book.order_count() + 1):
            out.apply(side, price, qty, count)
    return out


class Rig:
    """A native book, the publisher on its events, and a client feed."""

    def __init__(self, url: str, tmp: Path, config: NatsPublishConfig) -> None:
        self.url, self.tmp, self.config = url, tmp, config
        self.book = Book()
        self.flow = synthetic_flow(7, 6000, 300, center_price=10_000, band=50)
        self.pos = 0
        self.client: Any = None

    async def start(self, boot: int | None = None) -> Rig:
        self.nc = await connect(self.url, "md-engine")
        self.pub = NatsPublisher(self.nc, SPECS, [1], self.tmp, self.config, boot=boot)
        self.pub.load(0, self.book)
        await self.pub.start()
        return self

    async def feed(self) -> BookFeed:
        self.client = await connect(self.url, "md-client")
        f = BookFeed(self.client, "SYM")
        await f.start()
        return f

    def run(self, commands: int, per_batch: int = 25) -> None:
        """Apply the next `commands` of the flow in batches, publishing each (no yielding:
        the publisher's queue sees them all at once)."""
        end = min(self.pos + commands, len(self.flow) // COMMAND_SIZE)
        while self.pos < end:
            n = min(per_batch, end - self.pos)
            chunk = self.flow[self.pos * COMMAND_SIZE : (self.pos + n) * COMMAND_SIZE]
            self.pos += n
            self.pub.publish([Reports(self.book.apply(chunk), 0, b"")])

    async def stop(self) -> None:
        await self.pub.close()
        await self.nc.close()


@pytest.fixture
async def rig(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Rig]:  # noqa: F811
    r = await Rig(nats_server.url, tmp_path, NatsPublishConfig(md_heartbeat_s=0.05)).start()
    yield r
    await r.stop()
    if r.client is not None:
        await r.client.close()


async def test_client_book_equals_engine_book_after_a_random_flow(rig: Rig) -> None:
    for _ in range(40):  # the first part before the client exists
        rig.run(50)
        await asyncio.sleep(0)  # let the publisher's sender run between batches
    feed = await rig.feed()
    for _ in range(60):
        rig.run(50)
        await asyncio.sleep(0)
    await until(lambda: feed.book == l2(rig.book), "the client's book to match")
    assert feed.book.best(1) == rig.book.best_bid()
    assert feed.book.best(2) == rig.book.best_ask()
    assert feed.seq == rig.pub.snapshot("SYM")["seq"]  # type: ignore[index]
    assert feed.gaps == 0 and feed.resyncs == 1
    assert feed.last_price == rig.book.stats()[0]


async def test_gaps_are_detected_and_the_book_resynced(
    nats_server: NatsServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = NatsPublishConfig(md_queue=3, md_heartbeat_s=0.05)  # a tiny queue: drops
    rig = await Rig(nats_server.url, tmp_path, config).start()
    try:
        feed = await rig.feed()
        for _ in range(5):
            rig.run(1000)  # 40 batches at once: all but 3 updates dropped
            await until(lambda: feed.book == l2(rig.book), "a resynced book")
        assert rig.pub.stats["md_dropped"] > 0
        assert feed.gaps > 0 and feed.resyncs > 1
        assert feed.seq == rig.pub.snapshot("SYM")["seq"]  # type: ignore[index]
    finally:
        await rig.stop()
        await rig.client.close()


async def test_an_engine_restart_is_a_new_boot_and_the_client_resyncs(rig: Rig) -> None:
    feed = await rig.feed()
    rig.run(500)
    await until(lambda: feed.book == l2(rig.book), "the first book")
    first_boot = feed.boot
    await rig.stop()
    # "Restart": a new publisher starts from the (recovered) book, its seq from 0 again.
    await rig.start(boot=first_boot + 1)
    rig.run(300)
    await until(lambda: feed.boot == first_boot + 1, "the new boot")
    await until(lambda: feed.book == l2(rig.book), "the book after the restart")


async def test_watch_once_prints_the_book(rig: Rig) -> None:
    rig.run(400)
    out = io.StringIO()
    url = rig.url
    code = await asyncio.to_thread(
        watch_main, ["SYM", "--nats", url, "--once", "--depth", "3"], out
    )
    assert code == 0
    text = out.getvalue()
    bid = rig.book.best_bid()
    ask = rig.book.best_ask()
    assert text.startswith("SYM  seq ")
    assert bid is not None and ask is not None
    lines = text.splitlines()
    assert sum(line.strip().startswith("ask") for line in lines) == 3
    assert sum(line.strip().startswith("bid") for line in lines) == 3
    assert f"{bid[0] / 100:.2f}" in text and f"{ask[0] / 100:.2f}" in text
