"""Async client library for the engine's TCP order entry (pycapnp, asyncio/uvloop).

    async with await Client.connect("127.0.0.1", 7001, account=1, token="demo") as c:
        cid = await c.new_order("AAPL", "buy", 10, 19000)
        ack = await c.wait_for(lambda r: r.client_order_id == cid and r.kind in ("ack", "reject"))
        async for report in c.reports():
            ...

Reports (`engine.protocol.Report`) arrive in the session's output order (`seq` 1, 2, ...). The
client reads them into a bounded queue (`max_reports`); when it is full the client stops reading
the socket, and an engine whose output for the session then grows past its limit disconnects
the session: read your reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType

from engine import protocol
from engine.protocol import FRAME_HEADER, Report, SymbolInfo

__all__ = ["Client", "ClosedError", "LogonError"]


class LogonError(Exception):
    """The engine refused the logon (its Logout code and text)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"logon refused: {code} {text}")
        self.code = code
        self.text = text


class ClosedError(ConnectionError):
    """The session is closed; `logout` is the engine's Logout if it sent one."""

    def __init__(self, logout: Report | None) -> None:
        why = f"{logout.code} {logout.text}" if logout is not None else "connection closed"
        super().__init__(f"session closed: {why}")
        self.logout = logout


class Client:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_reports: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._queue: asyncio.Queue[Report | None] = asyncio.Queue(max_reports)
        self._task = asyncio.get_running_loop().create_task(self._read(), name="client-read")
        # Fresh client order ids: a counter from the current time in microseconds, so ids stay
        # unique across reconnects of the same account (the book refuses a live duplicate).
        self._ids = itertools.count(time.time_ns() // 1000)
        self._heartbeats = itertools.count(1)
        self._requests = itertools.count(1)  # admin request ids
        self._ended = False
        self.account = 0
        self.session_id = 0
        self.idle_timeout_ms = 0
        self.symbols: dict[str, SymbolInfo] = {}
        self.logout_report: Report | None = None

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        account: int,
        token: str,
        *,
        timeout: float = 5.0,
        max_reports: int = 100_000,
    ) -> Client:
        """Connect and log on; LogonError if the engine refuses."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer, max_reports)
        try:
            await client.send(protocol.logon(account, token))
            first = await client.next_report(timeout)
            if first.kind == "logout":
                raise LogonError(first.code, first.text)
            if first.kind != "logonAck":
                raise LogonError(0, f"unexpected first message {first.kind}")
        except BaseException:
            await client.close()
            raise
        client.account = first.account
        client.session_id = first.session_id
        client.idle_timeout_ms = first.idle_timeout_ms
        client.symbols = {s.name: s for s in first.symbols}
        return client

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float = 5.0) -> Client:
        """Connect without logging on (tools and tests of the session rules)."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, 100_000)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---------------------------------------------------------------- sending

    async def send(self, data: bytes) -> None:
        """Send raw bytes (one or more frames, or anything: tests send garbage too)."""
        self._writer.write(data)
        await self._writer.drain()

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
        """Send a new order; returns its client order id (a fresh one unless given)."""
        cid = self.next_client_order_id() if client_order_id is None else client_order_id
        await self.send(
            protocol.new_order(
                symbol,
                side,
                qty,
                price,
                ord_type=ord_type,
                tif=tif,
                client_order_id=cid,
                stop_price=stop_price,
                display_qty=display_qty,
                expire_ts=expire_ts,
                stp=stp,
                stp_group=stp_group,
                post_only=post_only,
            )
        )
        return cid

    async def cancel(self, symbol: str, order_id: int = 0, client_order_id: int = 0) -> None:
        await self.send(protocol.cancel(symbol, order_id, client_order_id))

    async def replace(
        self, symbol: str, qty: int, price: int = 0, *, order_id: int = 0, client_order_id: int = 0
    ) -> None:
        await self.send(
            protocol.replace(symbol, qty, price, order_id=order_id, client_order_id=client_order_id)
        )

    async def mass_cancel(self, symbol: str = "", side: str = "none") -> None:
        await self.send(protocol.mass_cancel(symbol, side))

    async def admin(
        self,
        action: str,
        *,
        account: int = 0,
        symbol: str = "",
        side: str = "none",
        limit: str = "none",
        value: int = 0,
        timeout: float = 5.0,
    ) -> Report:
        """Send a trading control (the session must be an admin account's) and wait for its
        AdminReply: `code` 0 = done (sequenced as `cmd_seq` and durable), else the reject code
        and text. Actions and limit keys: `protocol.ADMIN_ACTIONS`, `protocol.LIMIT_KEYS`."""
        rid = next(self._requests)
        await self.send(
            protocol.admin(
                action,
                request_id=rid,
                account=account,
                symbol=symbol,
                side=side,
                limit=limit,
                value=value,
            )
        )
        got = await self.wait_until(
            lambda r: r.kind == "adminReply" and r.request_id == rid, timeout
        )
        return got[-1]

    async def heartbeat(self) -> int:
        """Send a heartbeat; returns its id (the engine echoes it)."""
        hid = next(self._heartbeats)
        await self.send(protocol.heartbeat(hid))
        return hid

    async def sync(self, timeout: float = 5.0) -> list[Report]:
        """A heartbeat round trip: returns every report that arrived before its echo, i.e.
        everything the engine had written to this session when the heartbeat got there."""
        hid = await self.heartbeat()
        got = await self.wait_until(
            lambda r: r.kind == "heartbeat" and r.heartbeat_id == hid, timeout
        )
        return got[:-1]

    async def logout(self, timeout: float = 5.0) -> Report | None:
        """Log out and wait for the engine's Logout; None if the connection ended first."""
        await self.send(protocol.logout())
        with contextlib.suppress(ClosedError):
            await self.wait_until(lambda r: r.kind == "logout", timeout)
        return self.logout_report

    # ---------------------------------------------------------------- receiving

    async def _read(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(FRAME_HEADER.size)
                (n,) = FRAME_HEADER.unpack(header)
                body = await self._reader.readexactly(n)
                report = protocol.decode_report(body)
                if report.kind == "logout":
                    self.logout_report = report
                await self._queue.put(report)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)  # end marker
            self._ended = True

    async def next_report(self, timeout: float | None = 5.0) -> Report:
        """The next report; TimeoutError, or ClosedError once the session has ended."""
        if self._ended and self._queue.empty():
            raise ClosedError(self.logout_report)
        async with asyncio.timeout(timeout):
            report = await self._queue.get()
        if report is None:
            self._ended = True
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(None)  # keep the end visible to later calls
            raise ClosedError(self.logout_report)
        return report

    async def wait_until(
        self, pred: Callable[[Report], bool], timeout: float = 5.0
    ) -> list[Report]:
        """Reports up to and including the first one matching `pred` (TimeoutError after
        `timeout` seconds in all)."""
        got: list[Report] = []
        async with asyncio.timeout(timeout):
            while True:
                r = await self.next_report(None)
                got.append(r)
                if pred(r):
                    return got

    async def wait_for(self, pred: Callable[[Report], bool], timeout: float = 5.0) -> Report:
        """The first report matching `pred` (earlier ones are skipped)."""
        return (await self.wait_until(pred, timeout))[-1]

    async def reports(self) -> AsyncIterator[Report]:
        """Every report until the session ends."""
        while True:
            try:
                yield await self.next_report(None)
            except ClosedError:
                return

    @property
    def closed(self) -> bool:
        return self._ended

    async def close(self) -> None:
        """Close the connection (no logout; see `logout`)."""
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
