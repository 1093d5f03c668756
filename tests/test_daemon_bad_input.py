"""Bad input: every case gets a clear reject or disconnect reason, a metric, and never disturbs
other sessions. Also the risk actor's basic checks, and floods (memory stays bounded)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

import pytest
from conftest import Daemon, wait_until

from engine import protocol
from engine.client import Client, ClosedError


async def expect_logout(c: Client, code: int) -> str:
    """The engine's Logout with `code`, then the end of the connection; returns its text."""
    logout = await c.wait_for(lambda r: r.kind == "logout")
    assert logout.code == code, logout
    with pytest.raises(ClosedError):
        await c.next_report()
    return logout.text


async def test_an_oversized_frame_disconnects_with_1001(daemon: Daemon) -> None:
    bystander = await daemon.client(2)
    c = await daemon.client(1)
    await c.send(struct.pack("<I", 1 << 20) + b"\0" * 64)
    text = await expect_logout(c, 1001)
    assert "exceeds the maximum of 65536 bytes" in text
    assert await bystander.sync() == []
    assert daemon.metric("cift_session_disconnects_total", reason="frame_too_large") == 1


async def test_garbage_bytes_disconnect_with_a_reason(daemon: Daemon) -> None:
    c = await daemon.raw()
    await c.send(b"\x05\x00\x00\x00hello world")
    await expect_logout(c, 1002)
    c = await daemon.raw()
    await c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # reads as a 542 MB length
    await expect_logout(c, 1001)


async def test_a_malformed_message_is_rejected_and_the_session_goes_on(daemon: Daemon) -> None:
    c = await daemon.client(1)
    await c.send(struct.pack("<I", 16) + bytes([0, 0, 0, 0, 200, 0, 0, 0]) + b"\x01" * 8)
    rej = await c.next_report()
    assert (rej.kind, rej.code, rej.text) == ("reject", 1003, "malformed message")
    assert await c.sync() == []


async def test_an_unknown_message_type_is_rejected_with_1004(daemon: Daemon) -> None:
    c = await daemon.client(1)
    frame = bytearray(protocol.heartbeat(1))
    frame[20] = 42  # the union discriminant: 4 length + 8 segment table + 8 root pointer
    await c.send(bytes(frame))
    rej = await c.next_report()
    assert (rej.kind, rej.code) == ("reject", 1004)
    assert await c.sync() == []


async def test_a_connection_closed_inside_a_frame_is_counted(daemon: Daemon) -> None:
    c = await daemon.client(1)
    frame = protocol.new_order("AAPL", "buy", 1, 10_000)
    await c.send(frame[: len(frame) // 2])
    await c.close()
    wait_until(
        lambda: daemon.metric("cift_session_disconnects_total", reason="truncated_frame") == 1,
        5,
        "the truncated frame to be counted",
    )


@pytest.mark.parametrize(
    ("symbol", "qty", "price", "kw", "code"),
    [
        ("NOPE", 10, 10_000, {}, 2001),
        ("LOT", 10, 10_003, {}, 2006),
        ("LOT", 15, 10_000, {}, 2007),
        ("LOT", 2_000, 10_000, {}, 2009),
        ("LOT", 10, 12_000, {}, 2012),
        ("LOT", 10, 50, {}, 2012),
        ("LOT", 10, 12_000, {"ord_type": "market", "tif": "ioc"}, 2013),
        ("LOT", 10, 10_005, {"display_qty": 5}, 2007),
    ],
)
async def test_basic_risk_checks_reject_with_their_codes(
    daemon: Daemon, symbol: str, qty: int, price: int, kw: dict[str, str], code: int
) -> None:
    c = await daemon.client(1)
    cid = await c.new_order(symbol, "buy", qty, price, **kw)  # type: ignore[arg-type]
    rej = await c.next_report()
    assert (rej.kind, rej.client_order_id, rej.code, rej.cmd_seq) == ("reject", cid, code, 0)
    assert daemon.metric("cift_rejects_total", code=str(code), stage="risk") == 1


async def test_valid_orders_on_a_checked_symbol_pass(daemon: Daemon) -> None:
    c = await daemon.client(1)
    await c.new_order("LOT", "buy", 20, 10_005, display_qty=10)
    assert (await c.next_report()).kind == "ack"


async def test_a_client_that_does_not_read_is_disconnected_and_memory_stays_bounded(
    start_daemon: Callable[..., Daemon],
) -> None:
    d = start_daemon({"gateway": {"output_buffer_bytes": 65536}})
    bystander = await d.client(2)
    baseline = d.rss_kb()
    # A connection that sends orders and never reads its reports (small receive buffer).
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", d.gateway_port))
    _, writer = await asyncio.open_connection(sock=sock)
    writer.write(protocol.logon(1, "t1"))
    chunk = b"".join(protocol.new_order("AAPL", "buy", 1, 5_000 + i % 1000) for i in range(2000))
    peak = 0
    try:
        for _ in range(100):  # up to 200k orders, ~30 MB of acks unread
            writer.write(chunk)
            await writer.drain()
            peak = max(peak, d.rss_kb())
            if d.metric("cift_session_disconnects_total", reason="slow_consumer"):
                break
    except ConnectionError:
        pass
    finally:
        writer.close()
    wait_until(
        lambda: d.metric("cift_session_disconnects_total", reason="slow_consumer") == 1,
        10,
        "the slow consumer to be disconnected",
    )
    assert peak - baseline < 50_000, f"RSS grew by {peak - baseline} kB"
    assert await bystander.sync() == []
    assert "slow consumer" in d.log()


async def test_a_flood_that_reads_is_throttled_by_backpressure_not_memory(
    start_daemon: Callable[..., Daemon],
) -> None:
    # fsync after every batch makes persistence the slow stage: queues fill up to the gateway.
    d = start_daemon(
        {
            "queues": {"risk": 512, "book": 512, "persistence": 512, "publishing": 2048},
            "journal": {"fsync": "batch"},
        }
    )
    c = await d.client(1)
    baseline = d.rss_kb()
    n, per_write = 30_000, 1_500
    chunk = b"".join(
        protocol.new_order("AAPL", "buy", 1, 5_000 + i % 500) for i in range(per_write)
    )
    acks = 0
    peak = 0

    async def read() -> None:
        nonlocal acks
        while acks < n:
            r = await c.next_report(30)
            acks += r.kind == "ack"

    reading = asyncio.create_task(read())
    for _ in range(n // per_write):
        await c.send(chunk)
        peak = max(peak, d.rss_kb())
    await asyncio.wait_for(reading, 60)
    assert acks == n
    assert d.metric("cift_gateway_backpressure_total") > 0
    assert peak - baseline < 50_000, f"RSS grew by {peak - baseline} kB"
