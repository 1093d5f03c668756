"""One client for many shards: orders routed by symbol, reports merged (engine/shardmap.py).

    shard_map = load_map("/etc/cift-engine/shards.toml")   # or: await discover("host:9201")
    async with ShardedClient(shard_map, account=1, token="demo") as c:
        cid = await c.new_order("AAPL", "buy", 10, 19000)  # to the shard serving AAPL
        ack = await c.wait_for(lambda r: r.client_order_id == cid and r.kind in ("ack", "reject"))
        async for report in c.reports():                     # every shard's, as they arrive
            ...

It holds one `engine.client.Client` session per shard, opened on first use (the same account and
token on each). A symbol no shard serves raises `UnknownSymbolError` before anything is sent.
After logon it checks that the shard's symbol table holds every symbol the map gives it (a map
that disagrees with the running shards raises `ShardMapError`).

Client order ids come from one counter for all shards, so an id names one order wherever it went.
Reports from all sessions are merged into one bounded queue (`max_reports`) by one forwarding task
per session; when it is full the forwarders wait, each session's own queue fills and its socket is
no longer read: the same backpressure as one `Client` (read your reports). Per shard, reports keep
their session order; between shards there is no order. `reports()` ends when every open session
has ended; `ended` names the shards whose session did.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from engine import protocol
from engine.client import Client, ClosedError
from engine.protocol import Report, SymbolInfo
from engine.shardmap import Shard, ShardMap, fetch_map

__all__ = ["ShardMapError", "ShardedClient", "discover"]


class ShardMapError(Exception):
    """The map and a running shard disagree (its symbol table lacks a symbol the map gives it)."""


async def discover(http: str, timeout: float = 5.0) -> ShardMap:
    """The shard map a running shard serves at `GET /shards` on its HTTP endpoint (HOST:PORT);
    ConfigError when none answers or it has no map (`shardmap.fetch_map`, off the loop)."""
    return await asyncio.to_thread(fetch_map, http, timeout)


class ShardedClient:
    def __init__(
        self,
        shard_map: ShardMap,
        account: int,
        token: str,
        *,
        timeout: float = 5.0,
        max_reports: int = 100_000,
    ) -> None:
        self.map = shard_map
        self.account = account
        self._token = token
        self._timeout = timeout
        self._max_reports = max_reports
        self._clients: dict[str, Client] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._forwarders: list[asyncio.Task[None]] = []
        # (shard, report); None: that shard's session ended.
        self._merged: asyncio.Queue[tuple[str, Report | None]] = asyncio.Queue(max_reports)
        self._ids = itertools.count(time.time_ns() // 1000)
        self.ended: set[str] = set()

    async def __aenter__(self) -> ShardedClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---------------------------------------------------------------- sessions

    async def session(self, shard: Shard) -> Client:
        """The logged-on session to `shard`, opened on first use."""
        client = self._clients.get(shard.name)
        if client is not None:
            return client
        lock = self._opening.setdefault(shard.name, asyncio.Lock())
        async with lock:
            client = self._clients.get(shard.name)
            if client is not None:
                return client
            client = await Client.connect(
                shard.gateway.host,
                shard.gateway.port,
                self.account,
                self._token,
                timeout=self._timeout,
                max_reports=self._max_reports,
            )
            missing = set(shard.symbols) - set(client.symbols)
            if missing:
                await client.close()
                raise ShardMapError(
                    f"shard {shard.name} at {shard.gateway} does not serve "
                    f"{', '.join(sorted(missing))}, which the shard map {self.map.source} gives it"
                )
            self._clients[shard.name] = client
            task = asyncio.get_running_loop().create_task(
                self._forward(shard.name, client), name=f"shard-{shard.name}"
            )
            self._forwarders.append(task)
            return client

    async def for_symbol(self, symbol: str) -> Client:
        """The session of the shard serving `symbol` (UnknownSymbolError if none does)."""
        return await self.session(self.map.owner(symbol))

    async def symbol_info(self, symbol: str) -> SymbolInfo:
        """`symbol`'s tick, lot, precision and limits, as its shard announced them at logon."""
        return (await self.for_symbol(symbol)).symbols[symbol]

    async def connect_all(self) -> None:
        """Open every shard's session now (rather than on first use)."""
        await asyncio.gather(*(self.session(s) for s in self.map.shards))

    async def _forward(self, name: str, client: Client) -> None:
        try:
            async for report in client.reports():
                await self._merged.put((name, report))
        finally:
            self.ended.add(name)
            with contextlib.suppress(asyncio.QueueFull):
                self._merged.put_nowait((name, None))

    # ---------------------------------------------------------------- sending

    def next_client_order_id(self) -> int:
        return next(self._ids)

    async def new_order(
        self,
        symbol: str,
        side: str,
        qty: int,
        price: int = 0,
        *,
        client_order_id: int | None = None,
        ord_type: str = "limit",
        tif: str = "gtc",
        stop_price: int = 0,
        display_qty: int = 0,
        expire_ts: int = 0,
        stp: str = "none",
        stp_group: int = 0,
        post_only: bool = False,
    ) -> int:
        """Send a new order to `symbol`'s shard (as `Client.new_order`); returns its client
        order id (a fresh one unless given)."""
        cid = self.next_client_order_id() if client_order_id is None else client_order_id
        client = await self.for_symbol(symbol)
        await client.new_order(
            symbol,
            side,
            qty,
            price,
            client_order_id=cid,
            ord_type=ord_type,
            tif=tif,
            stop_price=stop_price,
            display_qty=display_qty,
            expire_ts=expire_ts,
            stp=stp,
            stp_group=stp_group,
            post_only=post_only,
        )
        return cid

    async def cancel(self, symbol: str, order_id: int = 0, client_order_id: int = 0) -> None:
        await (await self.for_symbol(symbol)).cancel(symbol, order_id, client_order_id)

    async def replace(
        self, symbol: str, qty: int, price: int = 0, *, order_id: int = 0, client_order_id: int = 0
    ) -> None:
        client = await self.for_symbol(symbol)
        await client.replace(symbol, qty, price, order_id=order_id, client_order_id=client_order_id)

    async def mass_cancel(self, symbol: str = "", side: str = "none") -> None:
        """Cancel the account's orders in `symbol`, or with "" in every symbol of every shard."""
        if symbol:
            await (await self.for_symbol(symbol)).mass_cancel(symbol, side)
            return
        await self.connect_all()
        for client in list(self._clients.values()):
            await client.mass_cancel("", side)

    # ---------------------------------------------------------------- receiving

    async def _next(self, timeout: float | None) -> tuple[str, Report]:
        while True:
            if self._clients and len(self.ended) == len(self._clients) and self._merged.empty():
                raise ClosedError(None)
            async with asyncio.timeout(timeout):
                name, report = await self._merged.get()
            if report is not None:
                return name, report

    async def next_report(self, timeout: float | None = 5.0) -> Report:
        """The next report from any shard; TimeoutError, or ClosedError once all ended."""
        return (await self._next(timeout))[1]

    async def wait_until(
        self, pred: Callable[[Report], bool], timeout: float = 5.0
    ) -> list[Report]:
        """Reports (from all shards) up to and including the first one matching `pred`."""
        got: list[Report] = []
        async with asyncio.timeout(timeout):
            while True:
                report = await self.next_report(None)
                got.append(report)
                if pred(report):
                    return got

    async def wait_for(self, pred: Callable[[Report], bool], timeout: float = 5.0) -> Report:
        """The first report matching `pred` (earlier ones are skipped)."""
        return (await self.wait_until(pred, timeout))[-1]

    async def reports(self) -> AsyncIterator[Report]:
        """Every report of every shard, until every open session has ended."""
        while True:
            try:
                yield await self.next_report(None)
            except ClosedError:
                return

    async def sync(self, timeout: float = 5.0) -> list[Report]:
        """A heartbeat round trip on every open session: the reports (all shards) that arrived
        before the last echo, i.e. everything each shard had written when its heartbeat got
        there."""
        pending = {name: await c.heartbeat() for name, c in self._clients.items()}
        got: list[Report] = []
        async with asyncio.timeout(timeout):
            while pending:
                name, report = await self._next(None)
                if report.kind == "heartbeat" and pending.get(name) == report.heartbeat_id:
                    del pending[name]
                else:
                    got.append(report)
        return got

    # ---------------------------------------------------------------- ending

    async def logout(self, timeout: float = 5.0) -> None:
        """Log out of every open session (each waits for its engine's Logout)."""
        for client in list(self._clients.values()):
            with contextlib.suppress(ClosedError, OSError):
                await client.send(protocol.logout())
        with contextlib.suppress(TimeoutError, ClosedError):
            async with asyncio.timeout(timeout):
                while len(self.ended) < len(self._clients):
                    await self._next(None)

    async def close(self) -> None:
        """Close every session (no logout; see `logout`)."""
        for client in list(self._clients.values()):
            await client.close()
        for task in self._forwarders:
            task.cancel()
        for task in self._forwarders:
            with contextlib.suppress(asyncio.CancelledError):
                await task
