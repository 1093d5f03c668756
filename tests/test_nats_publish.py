"""Publishing to NATS after durability, against a real nats-server: execution reports on
exec.<account> and exec.all, coalesced market data, cancellations, snapshots, and a NATS outage
that neither stops matching nor loses an execution report."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from services import EngineRig, NatsServer, nats_server, subscribed, until  # noqa: F401

from engine import protocol
from engine.book import Command, EventKind, Side, cancel, decode_events, encode_command, new_order
from engine.nats_publish import NatsPublishConfig

AAPL = struct.pack("<I", 0)


def records(*cmds: Command) -> tuple[bytes, bytes]:
    return b"".join(encode_command(c) for c in cmds), AAPL * len(cmds)


class Collect:
    """Messages of a core subscription, by subject."""

    def __init__(self) -> None:
        self.msgs: list[tuple[str, bytes, dict[str, str]]] = []

    async def start(self, rig: EngineRig, subject: str) -> Collect:
        async def on(msg: Any) -> None:
            self.msgs.append((msg.subject, msg.data, dict(msg.headers or {})))

        await subscribed(rig.client, subject, on)
        return self

    def on(self, subject: str) -> list[bytes]:
        return [d for s, d, _ in self.msgs if s == subject]


@pytest.fixture
async def rig(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[EngineRig]:  # noqa: F811
    r = await EngineRig(nats_server.url, tmp_path / "data").start()
    yield r
    await r.stop()


def reports(payloads: list[bytes]) -> list[protocol.Report]:
    return [
        protocol.decode_report(f) for p in payloads for f in protocol.split_frames(bytearray(p))
    ]


async def test_exec_reports_per_account_and_the_drop_copy(rig: EngineRig) -> None:
    got = await Collect().start(rig, "exec.>")
    await rig.engine.apply(
        *records(
            new_order(Side.SELL, 100, 10, account=2, client_id=1),
            new_order(Side.BUY, 100, 4, account=1, client_id=2),
        )
    )
    await until(lambda: len(got.msgs) >= 4, "two accounts x (exec.<a> + exec.all)")
    mine = reports(got.on("exec.1"))
    theirs = reports(got.on("exec.2"))
    assert [(r.kind, r.client_order_id, r.seq) for r in mine] == [("ack", 2, 1), ("fill", 2, 2)]
    assert [(r.kind, r.client_order_id, r.seq) for r in theirs] == [("ack", 1, 1), ("fill", 1, 2)]
    copies = [(h["Cift-Account"], d) for s, d, h in got.msgs if s == "exec.all"]
    assert sorted(copies) == sorted(
        [("1", d) for d in got.on("exec.1")] + [("2", d) for d in got.on("exec.2")]
    )


async def test_level_changes_of_a_batch_are_published_once_with_the_final_value(
    rig: EngineRig,
) -> None:
    got = await Collect().start(rig, "md.AAPL.>")
    cancelled = await Collect().start(rig, "orders.cancelled.AAPL")
    # One batch: three orders at 100, one cancelled, a trade at 101, a level that comes and goes.
    await rig.engine.apply(
        *records(
            new_order(Side.BUY, 100, 5, account=1, client_id=1),
            new_order(Side.BUY, 100, 6, account=1, client_id=2),
            new_order(Side.BUY, 100, 7, account=2, client_id=3),
            cancel(account=1, client_id=2),
            new_order(Side.SELL, 101, 3, account=3, client_id=4),
            new_order(Side.BUY, 101, 3, account=1, client_id=5),
            new_order(Side.SELL, 105, 1, account=3, client_id=6),
            cancel(account=3, client_id=6),
        )
    )
    await until(lambda: got.on("md.AAPL.book") and got.on("md.AAPL.trades"), "market data")
    [book] = [orjson.loads(m) for m in got.on("md.AAPL.book")]
    assert book["seq"] == 1 and book["symbol"] == "AAPL"
    assert book["bids"] == [[100, 12, 2]]  # touched five times, sent once
    assert book["asks"] == [[101, 0, 0], [105, 0, 0]]  # came and went within the batch
    [trades] = [orjson.loads(m) for m in got.on("md.AAPL.trades")]
    assert [(t["tradeId"], t["price"], t["qty"], t["aggressor"]) for t in trades["trades"]] == [
        (1, 101, 3, "buy")
    ]
    await until(lambda: len(cancelled.msgs) == 2, "two cancellations")
    first = orjson.loads(cancelled.msgs[0][1])
    assert (first["clientOrderId"], first["account"], first["reason"], first["qty"]) == (
        2,
        1,
        "user",
        6,
    )
    snap = orjson.loads((await rig.client.request("md.AAPL.snapshot", b"", timeout=5)).data)
    assert (snap["seq"], snap["bids"], snap["asks"], snap["lastPrice"]) == (
        1,
        [[100, 12, 2]],
        [],
        101,
    )


def expected_reports(batch: list[Any], counts: Counter[int]) -> None:
    """How many execution reports each account gets for a batch of events."""
    for r in batch:
        for e in decode_events(r.events):
            if e.kind == EventKind.TRADE:
                counts[e.account] += 1
                counts[e.counter_account] += 1
            elif e.kind != EventKind.LEVEL:
                counts[e.account] += 1


async def read_exec_stream(rig: EngineRig) -> dict[int, list[int]]:
    """Every message stored on exec.<account>: the report `seq`s per account, in order."""
    js = rig.client.jetstream()
    sub = await js.pull_subscribe("exec.*", stream="CIFT_EXEC")
    seqs: dict[int, list[int]] = {}
    while True:
        try:
            msgs = await sub.fetch(500, timeout=1.0)
        except TimeoutError:
            break
        for m in msgs:
            if m.subject != "exec.all":
                account = int(m.subject.split(".")[1])
                seqs.setdefault(account, []).extend(r.seq for r in reports([m.data]))
            await m.ack()
    await sub.unsubscribe()
    return seqs


async def test_nats_outage_never_stops_matching_and_loses_no_execution_report(
    nats_server: NatsServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = NatsPublishConfig(exec_outbox_bytes=2048, ack_timeout_s=0.5)  # spool early
    rig = await EngineRig(nats_server.url, tmp_path / "data", publish_config=config).start()
    counts: Counter[int] = Counter()
    rig.engine.listeners.append(lambda batch: expected_reports(batch, counts))
    try:
        cid = 0

        async def burst(n: int) -> None:
            nonlocal cid
            cmds = []
            for _ in range(n):
                cid += 1
                side = Side.BUY if cid % 2 else Side.SELL
                price = 100 + cid % 7 - 3
                cmds.append(new_order(side, price, 1 + cid % 4, account=1 + cid % 4, client_id=cid))
            before = rig.engine.commands
            await rig.engine.apply(*records(*cmds))
            await until(lambda: rig.engine.commands == before + n, "the burst matched")

        for _ in range(5):
            await burst(40)
        await until(lambda: rig.publisher.stats["exec_acked"] > 0, "reports before the outage")
        nats_server.kill()
        await until(lambda: not rig.nc.is_connected, "the engine to notice")
        for _ in range(10):  # matching goes on: every burst is applied while NATS is down
            await burst(40)
        assert rig.publisher.outbox.spooled > 0  # the outbox overflowed to its spool file
        nats_server.start()
        for _ in range(5):
            await burst(40)
        await until(lambda: not rig.publisher.exec_pending(), "every report acknowledged", 60)
        stored = await read_exec_stream(rig)
        for account, n in counts.items():
            assert stored[account] == list(range(1, n + 1)), f"account {account}"
        assert rig.publisher.stats["md_dropped"] > 0  # market data while down: dropped
    finally:
        await rig.stop()
