"""The daemon's small HTTP endpoint (loopback by default): metrics and read-only queries.

    GET /metrics           Prometheus text format
    GET /status            JSON: symbols, sessions, queues, orders/s (`cift-engine status`)
    GET /book/SYMBOL?depth=N  JSON: L2 depth of one symbol (`cift-engine book SYMBOL`)
    GET /risk/ACCOUNT      JSON: an account's risk limits, usage, positions, P&L, live orders
                           (`cift-engine risk show ACCOUNT`; 404 with the risk engine off)
    GET /shards            JSON: the shard map this shard started with, and its own name
                           (discovery for engine/router.py; 404 without `[shard] map`)

It runs on the engine's event loop, so a query reads a consistent state between two batches.
One request per connection, 8 KiB request limit, 5 s to send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HttpApi"]

log = logging.getLogger(__name__)

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class HttpApi:
    def __init__(
        self,
        registry: CollectorRegistry,
        status: Callable[[], dict[str, Any]],
        book: Callable[[str, int], dict[str, Any] | None],
        risk: Callable[[int], dict[str, Any] | None] | None = None,
        shards: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self.registry = registry
        self.status = status
        self.book = book
        self.risk = risk
        self.shards = shards
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, limit=8192)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self.server.wait_closed()

    def route(self, method: str, target: str) -> tuple[int, str, bytes]:
        if method != "GET":
            return 405, "text/plain", b"only GET\n"
        path, _, query = target.partition("?")
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == "/status":
            return 200, "application/json", orjson.dumps(self.status())
        if path.startswith("/book/"):
            symbol = unquote(path.removeprefix("/book/"))
            try:
                depth = int(parse_qs(query).get("depth", ["10"])[0])
            except ValueError:
                return 400, "text/plain", b"depth must be an integer\n"
            found = self.book(symbol, max(1, min(depth, 1000)))
            if found is None:
                return 404, "text/plain", f"unknown symbol {symbol}\n".encode()
            return 200, "application/json", orjson.dumps(found)
        if path.startswith("/risk/"):
            text = unquote(path.removeprefix("/risk/"))
            if not text.isdigit() or not 0 < int(text) < 1 << 64:
                return 400, "text/plain", b"account must be a positive integer\n"
            view = self.risk(int(text)) if self.risk is not None else None
            if view is None:
                return 404, "text/plain", b"the risk engine is off\n"
            return 200, "application/json", orjson.dumps(view)
        if path == "/shards":
            found = self.shards() if self.shards is not None else None
            if found is None:
                return 404, "text/plain", b"no shard map ([shard] map)\n"
            return 200, "application/json", orjson.dumps(found)
        return 404, "text/plain", b"not found\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            code, ctype, body = self.route(method, target)
        except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            code, ctype, body = 400, "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        head_out = (
            f"HTTP/1.1 {code} {_REASONS[code]}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head_out.encode() + body)
            await writer.drain()
        writer.close()
