"""Durable order entry through JetStream (`orders.durable.<symbol>`), against a real nats-server:
life cycle, dedup of retried messages, poison messages, and an engine crash and restart that
loses and duplicates nothing."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from services import EngineRig, NatsServer, nats_server, subscribed, until  # noqa: F401

from engine import protocol
from engine.book import Book, CmdKind, PyBook, Side
from engine.nats_entry import msg_id
from engine.wire import JOURNAL_ENTRY_SIZE

SUBJECT = "orders.durable.AAPL"


def journaled_orders(rig: EngineRig) -> list[tuple[int, int]]:
    """(account, client order id) of every new order in the journal, in journal order."""
    data = rig.engine.journal()
    out = []
    for off in range(0, len(data) - len(data) % JOURNAL_ENTRY_SIZE, JOURNAL_ENTRY_SIZE):
        if data[off] == CmdKind.NEW:
            account, client_id = struct.unpack_from("<QQ", data, off + 32)
            out.append((account, client_id))
    return out


async def publish(rig: EngineRig, frame: bytes, account: int, ident: str) -> Any:
    headers = rig.headers(account) | {"Nats-Msg-Id": ident}
    return await rig.client.jetstream().publish(SUBJECT, frame, headers=headers)


class ExecFeed:
    """Every execution report on exec.<account>, decoded (core subscription: no outage here);
    the drop copy on exec.all under -account."""

    def __init__(self) -> None:
        self.reports: dict[int, list[protocol.Report]] = {}

    async def start(self, rig: EngineRig) -> ExecFeed:
        async def on(msg: Any) -> None:
            target = msg.subject.split(".")[1]
            account = int(target if target != "all" else -int(msg.headers["Cift-Account"]))
            frames = protocol.split_frames(bytearray(msg.data))
            self.reports.setdefault(account, []).extend(protocol.decode_report(f) for f in frames)

        await subscribed(rig.client, "exec.*", on)
        return self

    def kinds(self, account: int) -> list[tuple[str, int]]:
        return [(r.kind, r.client_order_id) for r in self.reports.get(account, [])]


@pytest.fixture
async def rig(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[EngineRig]:  # noqa: F811
    r = await EngineRig(nats_server.url, tmp_path / "data").start()
    yield r
    await r.stop()


async def consumer_idle(rig: EngineRig) -> bool:
    info = await rig.client.jetstream().consumer_info("CIFT_ORDERS", "cift-engine-AAPL")
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_durable_order_life_cycle_reports_on_exec_subjects(rig: EngineRig) -> None:
    feed = await ExecFeed().start(rig)
    await publish(rig, protocol.new_order("AAPL", "sell", 10, 100, client_order_id=1), 2, "2-1")
    await publish(rig, protocol.new_order("AAPL", "buy", 4, 100, client_order_id=1), 1, "1-1")
    await publish(rig, protocol.cancel("AAPL", client_order_id=1), 2, "2-cancel-1")
    await until(lambda: len(feed.kinds(2)) == 3, "account 2's three reports")
    assert feed.kinds(2) == [("ack", 1), ("fill", 1), ("cancelled", 1)]
    await until(lambda: len(feed.kinds(1)) == 2, "account 1's reports")
    assert feed.kinds(1) == [("ack", 1), ("fill", 1)]
    assert [r.seq for r in feed.reports[2]] == [1, 2, 3]  # numbered per account
    await until(lambda: rig.entry.stats["durable_acked"] == 3, "three acks")
    info = await rig.client.jetstream().stream_info("CIFT_ORDERS")
    assert info.state.messages == 0  # a work queue: acknowledged = gone


async def test_a_retried_message_is_stored_and_applied_once(rig: EngineRig) -> None:
    frame = protocol.new_order("AAPL", "buy", 5, 100, client_order_id=42)
    first = await publish(rig, frame, 3, msg_id(3, 42))
    retry = await publish(rig, frame, 3, msg_id(3, 42))  # "the first one timed out"
    assert retry.duplicate and retry.seq == first.seq
    await publish(rig, protocol.new_order("AAPL", "buy", 1, 99, client_order_id=43), 3, "3-43")
    await until(lambda: len(journaled_orders(rig)) == 2, "both orders journaled")
    assert journaled_orders(rig) == [(3, 42), (3, 43)]
    assert rig.engine.books[0].depth(1, 5) == [(100, 5, 1), (99, 1, 1)]


async def test_poison_messages_are_acked_with_a_reject_and_never_redelivered(
    rig: EngineRig,
) -> None:
    feed = await ExecFeed().start(rig)
    js = rig.client.jetstream()
    garbage = (8).to_bytes(4, "little") + b"\xff" * 8
    await publish(rig, garbage, 1, "1-garbage")
    await publish(rig, protocol.new_order("AAPL", "buy", 1, 100), 1, "1-0")  # no client id
    await publish(rig, protocol.new_order("AAPL", "buy", 1, 100, client_order_id=5), 1, "1-6")
    two = protocol.new_order("AAPL", "buy", 1, 100, client_order_id=7)
    await publish(rig, two + two, 1, "1-7")  # one command per message
    bad_token = rig.headers(1, token="wrong") | {"Nats-Msg-Id": "1-8"}
    await js.publish(SUBJECT, protocol.new_order("AAPL", "buy", 1, 1), headers=bad_token)
    await publish(rig, protocol.new_order("AAPL", "buy", 1, 100, client_order_id=9), 1, "1-9")
    await until(lambda: ("ack", 9) in feed.kinds(1), "the good order's ack")
    await until(lambda: rig.entry.stats["poison"] == 5, "five poison messages")
    rejects = [(r.kind, r.code, r.client_order_id) for r in feed.reports[1] if r.kind == "reject"]
    assert sorted(rejects) == [
        ("reject", 1003, 0),
        ("reject", 1003, 0),
        ("reject", 1003, 5),
        ("reject", 1003, 7),
    ]
    await until(lambda: consumer_idle(rig), "consumer idle")
    info = await js.consumer_info("CIFT_ORDERS", "cift-engine-AAPL")
    assert info.num_redelivered == 0
    assert journaled_orders(rig) == [(1, 9)]


def flow(n: int, start: int = 1) -> list[tuple[int, int, bytes]]:
    """(account, client id, frame): alternating accounts and sides, crossing now and then."""
    out = []
    for cid in range(start, start + n):
        account = 1 + cid % 2
        side = "buy" if cid % 3 else "sell"
        price = 100 + (cid * 7) % 11 - 5
        frame = protocol.new_order("AAPL", side, 1 + cid % 5, price, client_order_id=cid)
        out.append((account, cid, frame))
    return out


def reference_digest(orders: list[tuple[int, int, bytes]]) -> int:
    book = PyBook(Book(1, 1_000_000_000))  # the rig's symbol config
    for account, cid, _ in orders:
        side = Side.BUY if cid % 3 else Side.SELL
        price = 100 + (cid * 7) % 11 - 5
        book.new_order(side, price, 1 + cid % 5, account=account, client_id=cid, order_id=0)
    return book.native.digest()


@pytest.mark.parametrize("point", ["sequenced", "journaled"])
async def test_restart_mid_stream_loses_and_duplicates_nothing(
    nats_server: NatsServer,  # noqa: F811
    tmp_path: Path,
    point: str,
) -> None:
    """The engine dies after the tie log (before the journal write) or after the journal write
    (before the acks); messages keep coming while it is down; the restarted engine applies
    every order exactly once, in stream order."""
    data = tmp_path / "data"
    orders = flow(150)
    a = await EngineRig(
        nats_server.url, data, crash=lambda at, last: at == point and last >= 40
    ).start()
    for account, cid, frame in orders[:120]:
        await publish(a, frame, account, msg_id(account, cid))
    await until(lambda: a.engine.crashed, "the crash")
    before = journaled_orders(a)
    await a.stop(graceful=False)
    ties = list(struct.iter_unpack("<QQ", (data / "nats-entry.tie").read_bytes()))
    if point == "sequenced":  # tied to engine seqs the journal never got
        assert max(engine for _, engine in ties) > len(before)

    b = await EngineRig(nats_server.url, data).start()
    try:
        for account, cid, frame in orders[120:]:
            await publish(b, frame, account, msg_id(account, cid))
        await until(lambda: len(journaled_orders(b)) >= 150, "150 orders journaled")
        await until(lambda: consumer_idle(b), "consumer idle")
        got = journaled_orders(b)
        assert got == [(account, cid) for account, cid, _ in orders]  # once each, in order
        assert got[: len(before)] == before
        if point == "journaled":  # the journaled, unacknowledged batch came again: skipped
            assert b.entry.stats["durable_skipped"] > 0
        assert b.engine.books[0].digest() == reference_digest(orders)
    finally:
        await b.stop()
