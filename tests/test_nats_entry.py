"""Order entry over NATS request/reply (`orders.<symbol>`), against a real nats-server: the
order life cycle in Cap'n Proto and in JSON, identity, and the TCP gateway's reject codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from services import EngineRig, NatsServer, nats_server  # noqa: F401

from engine import protocol


@pytest.fixture
async def rig(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[EngineRig]:  # noqa: F811
    r = await EngineRig(nats_server.url, tmp_path / "data").start()
    yield r
    await r.stop()


async def test_new_order_is_acked_in_the_reply(rig: EngineRig) -> None:
    [ack] = await rig.request(protocol.new_order("AAPL", "buy", 10, 100, client_order_id=7))
    assert (ack.kind, ack.symbol, ack.client_order_id, ack.side) == ("ack", "AAPL", 7, "buy")
    assert (ack.price, ack.qty, ack.leaves, ack.seq) == (100, 10, 10, 1)
    assert ack.order_id == ack.cmd_seq > 0


async def test_order_life_cycle_fill_replace_cancel(rig: EngineRig) -> None:
    [ack] = await rig.request(protocol.new_order("AAPL", "sell", 10, 101, client_order_id=1), 2)
    # A crossing buy: its ack and its own fill come back in one reply.
    taker = await rig.request(protocol.new_order("AAPL", "buy", 4, 105, client_order_id=1), 1)
    assert [r.kind for r in taker] == ["ack", "fill"]
    fill = taker[1]
    assert (fill.price, fill.qty, fill.leaves, fill.aggressor) == (101, 4, 0, True)
    [replaced] = await rig.request(protocol.replace("AAPL", 3, order_id=ack.order_id), 2)
    assert (replaced.kind, replaced.qty, replaced.old_qty, replaced.priority_kept) == (
        "replaced",
        3,
        6,
        True,
    )
    [cancelled] = await rig.request(protocol.cancel("AAPL", client_order_id=1), 2)
    assert (cancelled.kind, cancelled.reason, cancelled.qty) == ("cancelled", "user", 3)
    [again] = await rig.request(protocol.cancel("AAPL", client_order_id=1), 2)
    assert (again.kind, again.code) == ("reject", 3003)


async def test_several_orders_in_one_request_get_one_reply_with_every_report(
    rig: EngineRig,
) -> None:
    payload = b"".join(
        protocol.new_order("AAPL", "buy", 1, 100 + i, client_order_id=100 + i) for i in range(50)
    )
    reports = await rig.request(payload)
    assert [r.client_order_id for r in reports] == list(range(100, 150))
    assert all(r.kind == "ack" for r in reports)
    assert [r.seq for r in reports] == list(range(1, 51))


async def test_mass_cancel_is_answered_once_durable_and_cancels_only_own_orders(
    rig: EngineRig,
) -> None:
    await rig.request(protocol.new_order("AAPL", "buy", 5, 90, client_order_id=1), 1)
    await rig.request(protocol.new_order("AAPL", "buy", 5, 91, client_order_id=2), 1)
    await rig.request(protocol.new_order("AAPL", "buy", 5, 92, client_order_id=1), 3)
    assert await rig.request(protocol.mass_cancel("AAPL"), 1) == []
    [kept] = rig.engine.books[0].depth(1, 10)
    assert kept == (92, 5, 1)


async def test_a_client_cannot_act_for_another_account(rig: EngineRig) -> None:
    [ack] = await rig.request(protocol.new_order("AAPL", "buy", 5, 90), 1)
    # Account 2 (with its own token) names account 1's order: refused by the book.
    [rej] = await rig.request(protocol.cancel("AAPL", order_id=ack.order_id), 2)
    assert (rej.kind, rej.code) == ("reject", 3019)
    # Account 2 claiming to be account 1 with the wrong token: refused at the door.
    [rej] = await rig.request(protocol.cancel("AAPL", order_id=ack.order_id), 1, token="t2")
    assert (rej.kind, rej.code) == ("reject", 1006)
    assert rig.engine.books[0].order(ack.order_id) is not None


async def test_a_request_without_identity_is_rejected_1005(rig: EngineRig) -> None:
    msg = await rig.client.request("orders.AAPL", protocol.new_order("AAPL", "buy", 1, 1))
    [rej] = [protocol.decode_report(b) for b in protocol.split_frames(bytearray(msg.data))]
    assert (rej.kind, rej.code) == ("reject", 1005)


async def test_bad_input_gets_the_tcp_reject_codes(rig: EngineRig) -> None:
    # Malformed body (1003), unknown symbol (risk 2001), zero quantity (book 3001), a
    # control message that means nothing here (1004): each rejected, the good order goes on.
    garbage = (16).to_bytes(4, "little") + bytes(range(16))
    payload = (
        garbage
        + protocol.new_order("NOPE", "buy", 1, 100, client_order_id=2)
        + protocol.new_order("AAPL", "buy", 0, 100, client_order_id=3)
        + protocol.heartbeat(5)
        + protocol.new_order("AAPL", "buy", 1, 100, client_order_id=4)
    )
    reports = await rig.request(payload)
    codes = sorted((r.client_order_id, r.code) for r in reports if r.kind == "reject")
    assert codes == [(0, 1003), (0, 1004), (2, 2001), (3, 3001)]
    assert [r.client_order_id for r in reports if r.kind == "ack"] == [4]


async def test_a_payload_ending_inside_a_frame_is_rejected_1003(rig: EngineRig) -> None:
    frame = protocol.new_order("AAPL", "buy", 1, 100, client_order_id=9)
    reports = await rig.request(frame + frame[:10])
    assert [(r.kind, r.code) for r in reports] == [("reject", 1003), ("ack", 0)]


async def test_json_variant_round_trip(rig: EngineRig) -> None:
    new = {
        "type": "newOrder",
        "symbol": "AAPL",
        "clientOrderId": 11,
        "side": "sell",
        "ordType": "limit",
        "tif": "gtc",
        "price": 120,
        "qty": 8,
    }
    [ack] = await rig.request_json(new, 2)
    assert ack["kind"] == "ack" and ack["clientOrderId"] == 11 and ack["side"] == "sell"
    assert (ack["price"], ack["qty"], ack["leaves"], ack["seq"]) == (120, 8, 8, 1)
    buy = new | {"side": "buy", "tif": "ioc", "qty": 3, "clientOrderId": 12}
    reports = await rig.request_json(buy, 1)
    assert [r["kind"] for r in reports] == ["ack", "fill"]
    fill = reports[1]
    assert (fill["price"], fill["qty"], fill["aggressor"], fill["tradeId"]) == (120, 3, True, 1)
    [replaced] = await rig.request_json(
        {"type": "replace", "symbol": "AAPL", "orderId": ack["orderId"], "qty": 2}, 2
    )
    assert (replaced["kind"], replaced["oldQty"], replaced["qty"]) == ("replaced", 5, 2)
    [cancelled] = await rig.request_json(
        {"type": "cancel", "symbol": "AAPL", "clientOrderId": 11}, 2
    )
    assert (cancelled["kind"], cancelled["reason"], cancelled["qty"]) == ("cancelled", "user", 2)


LIMIT = {
    "type": "newOrder",
    "symbol": "AAPL",
    "side": "buy",
    "ordType": "limit",
    "tif": "gtc",
    "qty": 1,
    "price": 1,
}


async def test_json_bad_objects_are_rejected_and_the_rest_goes_on(rig: EngineRig) -> None:
    docs = [
        {"type": "newOrder", "symbol": "AAPL", "side": "buy", "qty": 1, "price": 1, "bogus": 1},
        {"type": "teleport", "clientOrderId": 5},
        LIMIT | {"side": 7, "clientOrderId": 6},
        LIMIT | {"clientOrderId": 7},
    ]
    reports = await rig.request_json(docs)
    got = sorted((r["kind"], r.get("code", 0), r["clientOrderId"]) for r in reports)
    # bogus field: 1003; unknown type: 1004; raw side 7: the book's 3006.
    assert got == [("ack", 0, 7), ("reject", 1003, 0), ("reject", 1004, 5), ("reject", 3006, 6)]
    assert await rig.request_json(b"{not json") == [
        {
            "kind": "reject",
            "seq": 1,
            "symbol": "",
            "orderId": 0,
            "clientOrderId": 0,
            "side": "none",
            "price": 0,
            "qty": 0,
            "code": 1003,
            "text": "malformed message",
            "cmdSeq": 0,
        }
    ]
