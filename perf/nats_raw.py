"""A bare NATS protocol client for load generation (perf.nats_bench, the nats:// replay
target): CONNECT, SUB, HPUB and MSG/HMSG on one socket, writes batched by the caller. nats-py
spends some 100 us of Python per request round trip, more than the engine does; this spends a
few, so the figures are the engine's."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

__all__ = ["RawNats", "headers_block", "hpub", "raw_connect"]


class RawNats(asyncio.Protocol):
    """`on_msg(subject, payload without headers, arrival ns)` for every MSG/HMSG."""

    def __init__(self, on_msg: Callable[[bytes, bytes, int], None]) -> None:
        self.on_msg = on_msg
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.pong = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    async def sync(self) -> None:
        self.pong.clear()
        self.write(b"PING\r\n")
        await self.pong.wait()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self.buf
        buf += data
        pos = 0
        while (end := buf.find(b"\r\n", pos)) >= 0:
            line = bytes(buf[pos:end])
            if line.startswith((b"MSG ", b"HMSG ")):
                parts = line.split()
                size = int(parts[-1])
                skip = int(parts[-2]) if parts[0] == b"HMSG" else 0
                start = end + 2
                if len(buf) < start + size + 2:
                    break
                self.on_msg(parts[1], bytes(buf[start + skip : start + size]), now)
                pos = start + size + 2
                continue
            if line == b"PING":
                self.write(b"PONG\r\n")
            elif line == b"PONG":
                self.pong.set()
            elif line.startswith(b"-ERR"):
                print(f"nats: {line.decode()}", file=sys.stderr)
            pos = end + 2
        del buf[:pos]


async def raw_connect(url: str, on_msg: Callable[[bytes, bytes, int], None]) -> RawNats:
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: RawNats(on_msg), host, int(port))
    connect = b'{"verbose":false,"pedantic":false,"headers":true,"protocol":1,"name":"bench"}'
    proto.write(b"CONNECT " + connect + b"\r\n")
    await proto.sync()
    return proto


def hpub(subject: bytes, reply: bytes, headers: bytes, payload: bytes) -> bytes:
    sizes = b"%d %d" % (len(headers), len(headers) + len(payload))
    return b"HPUB " + subject + b" " + reply + b" " + sizes + b"\r\n" + headers + payload + b"\r\n"


def headers_block(**fields: str) -> bytes:
    lines = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in fields.items())
    return f"NATS/1.0\r\n{lines}\r\n".encode()
