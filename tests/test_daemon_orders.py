"""Order life cycles through a real daemon: TCP, Cap'n Proto, the whole pipeline and back."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from conftest import Daemon, wait_until

from engine.client import Client
from engine.protocol import Report


@pytest.fixture(params=["always", "none"])
def daemon(start_daemon: Callable[..., Daemon], request: pytest.FixtureRequest) -> Daemon:
    """Every life cycle twice: journal fsync `always` (the lane hands the journal batch and the
    reports to persistence and publishing, which wait for the fsync) and `none` (the lane
    appends and replies itself), actors/lane.py."""
    fsync: str = request.param
    return start_daemon({"journal": {"fsync": fsync}})


def mine(cid: int, *kinds: str) -> object:
    return lambda r: r.client_order_id == cid and r.kind in kinds


async def place(c: Client, *args: object, **kw: object) -> tuple[int, Report]:
    """Send a new order, return (client id, its ack or reject)."""
    cid = await c.new_order(*args, **kw)  # type: ignore[arg-type]
    return cid, await c.wait_for(mine(cid, "ack", "reject"))


async def test_limit_order_rests_then_both_sides_get_their_fill(daemon: Daemon) -> None:
    maker, taker = await daemon.client(1), await daemon.client(2)
    cid, ack = await place(maker, "AAPL", "buy", 10, 10_000)
    assert (ack.kind, ack.symbol, ack.side, ack.qty, ack.leaves) == ("ack", "AAPL", "buy", 10, 10)
    assert ack.order_id == ack.cmd_seq > 0

    tcid = await taker.new_order("AAPL", "sell", 4, 9_990)
    got = await taker.wait_until(mine(tcid, "fill"))
    tack, tfill = got[-2], got[-1]
    assert tack.kind == "ack"
    assert (tfill.side, tfill.price, tfill.qty, tfill.leaves) == ("sell", 10_000, 4, 0)
    assert tfill.aggressor and tfill.order_id == tack.order_id

    mfill = await maker.wait_for(mine(cid, "fill"))
    assert (mfill.side, mfill.price, mfill.qty, mfill.leaves) == ("buy", 10_000, 4, 6)
    assert not mfill.aggressor and mfill.order_id == ack.order_id
    assert mfill.trade_id == tfill.trade_id == 1
    book = daemon.json("/book/AAPL")
    assert book["bids"] == [[10_000, 6, 1]] and book["asks"] == []


async def test_market_order_fills_what_is_there_and_cancels_the_rest(daemon: Daemon) -> None:
    maker, taker = await daemon.client(1), await daemon.client(2)
    await place(maker, "AAPL", "sell", 5, 10_000)
    cid = await taker.new_order("AAPL", "buy", 8, ord_type="market", tif="ioc")
    got = await taker.wait_until(mine(cid, "cancelled"))
    kinds = [(r.kind, r.qty) for r in got if r.client_order_id == cid]
    assert kinds == [("ack", 8), ("fill", 5), ("cancelled", 3)]
    assert got[-1].reason == "iocRemainder"


async def test_fok_fills_completely_or_not_at_all(daemon: Daemon) -> None:
    maker, taker = await daemon.client(1), await daemon.client(2)
    await place(maker, "AAPL", "sell", 5, 10_000)
    cid = await taker.new_order("AAPL", "buy", 10, 10_000, tif="fok")
    got = await taker.wait_until(mine(cid, "cancelled"))
    assert [r.kind for r in got] == ["ack", "cancelled"] and got[-1].reason == "fokUnfilled"
    cid = await taker.new_order("AAPL", "buy", 5, 10_000, tif="fok")
    fill = await taker.wait_for(mine(cid, "fill"))
    assert (fill.qty, fill.leaves) == (5, 0)


async def test_ioc_limit_trades_then_cancels_its_remainder(daemon: Daemon) -> None:
    maker, taker = await daemon.client(1), await daemon.client(2)
    await place(maker, "AAPL", "sell", 3, 10_000)
    cid = await taker.new_order("AAPL", "buy", 5, 10_010, tif="ioc")
    got = await taker.wait_until(mine(cid, "cancelled"))
    assert [(r.kind, r.qty) for r in got] == [("ack", 5), ("fill", 3), ("cancelled", 2)]


async def test_stop_market_triggers_on_a_trade_at_its_stop_price(daemon: Daemon) -> None:
    stopper, a, b = await daemon.client(1), await daemon.client(2), await daemon.client(3)
    cid, ack = await place(
        stopper, "AAPL", "sell", 3, ord_type="stop-market", tif="ioc", stop_price=9_900
    )
    assert ack.is_stop and ack.stop_price == 9_900
    await place(a, "AAPL", "buy", 5, 9_900)
    await b.new_order("AAPL", "sell", 1, 9_900)  # trades at 9900: the stop triggers
    got = await stopper.wait_until(mine(cid, "fill"))
    trig, fill = got[-2], got[-1]
    assert trig.kind == "triggered" and trig.last_price == 9_900
    assert (fill.qty, fill.price, fill.aggressor) == (3, 9_900, True)


async def test_stop_limit_rests_at_its_limit_after_triggering(daemon: Daemon) -> None:
    stopper, a, b = await daemon.client(1), await daemon.client(2), await daemon.client(3)
    cid, _ = await place(
        stopper, "AAPL", "buy", 2, 10_050, ord_type="stop-limit", stop_price=10_020
    )
    await place(a, "AAPL", "sell", 1, 10_020)
    await b.new_order("AAPL", "buy", 1, 10_020)
    await stopper.wait_for(mine(cid, "triggered"))
    assert wait_until(lambda: daemon.json("/book/AAPL")["bids"] == [[10_050, 2, 1]], 5, "rest")


async def test_iceberg_shows_only_its_display_quantity(daemon: Daemon) -> None:
    c = await daemon.client(1)
    _, ack = await place(c, "MSFT", "sell", 100, 20_000, display_qty=10)
    assert ack.qty == 100
    assert daemon.json("/book/MSFT")["asks"] == [[20_000, 10, 1]]


async def test_post_only_that_would_take_is_rejected_with_3009(daemon: Daemon) -> None:
    a, b = await daemon.client(1), await daemon.client(2)
    await place(a, "AAPL", "sell", 1, 10_000)
    _, rej = await place(b, "AAPL", "buy", 1, 10_000, post_only=True)
    assert (rej.kind, rej.code) == ("reject", 3009)
    assert rej.text == "post-only order would take liquidity"
    _, ack = await place(b, "AAPL", "buy", 1, 9_999, post_only=True)
    assert ack.kind == "ack"


async def test_gtd_order_expires_when_engine_time_passes_its_expiry(daemon: Daemon) -> None:
    c = await daemon.client(1)
    expiry = time.time_ns() + 200_000_000
    cid, ack = await place(c, "AAPL", "buy", 1, 9_000, tif="gtd", expire_ts=expiry)
    assert ack.kind == "ack"
    cancelled = await c.wait_for(mine(cid, "cancelled"))
    assert cancelled.reason == "expired" and cancelled.cmd_seq > ack.cmd_seq


async def test_cancel_by_order_id_or_client_id_and_unknown_is_3003(daemon: Daemon) -> None:
    c = await daemon.client(1)
    _, a1 = await place(c, "AAPL", "buy", 1, 9_000, client_order_id=77)
    _, a2 = await place(c, "AAPL", "buy", 2, 9_001, client_order_id=78)
    await c.cancel("AAPL", order_id=a1.order_id)
    got = await c.wait_for(lambda r: r.kind == "cancelled")
    assert (got.order_id, got.qty, got.reason) == (a1.order_id, 1, "user")
    await c.cancel("AAPL", client_order_id=78)
    got = await c.wait_for(lambda r: r.kind == "cancelled")
    assert got.order_id == a2.order_id
    await c.cancel("AAPL", order_id=a1.order_id)
    rej = await c.wait_for(lambda r: r.kind == "reject")
    assert rej.code == 3003 and rej.order_id == a1.order_id


async def test_replace_down_keeps_priority_and_a_price_change_loses_it(daemon: Daemon) -> None:
    c = await daemon.client(1)
    _, ack = await place(c, "AAPL", "buy", 10, 9_000)
    await c.replace("AAPL", 6, order_id=ack.order_id)
    rep = await c.wait_for(lambda r: r.kind == "replaced")
    assert (rep.qty, rep.leaves, rep.old_qty, rep.priority_kept) == (6, 6, 10, True)
    await c.replace("AAPL", 6, 9_010, order_id=ack.order_id)
    rep = await c.wait_for(lambda r: r.kind == "replaced")
    assert (rep.price, rep.old_price, rep.priority_kept) == (9_010, 9_000, False)
    assert daemon.json("/book/AAPL")["bids"] == [[9_010, 6, 1]]


async def test_mass_cancel_of_one_symbol_and_of_every_symbol(daemon: Daemon) -> None:
    c = await daemon.client(1)
    for sym in ("AAPL", "AAPL", "MSFT"):
        await place(c, sym, "buy", 1, 9_000)
    await c.mass_cancel("AAPL")
    got = await c.wait_until(lambda r: r.kind == "cancelled" and r.symbol == "AAPL", 5)
    got += await c.sync()
    assert [r.reason for r in got if r.kind == "cancelled"] == ["massCancel", "massCancel"]
    assert daemon.json("/book/MSFT")["bids"] == [[9_000, 1, 1]]
    await c.mass_cancel()
    got = await c.wait_for(lambda r: r.kind == "cancelled")
    assert got.symbol == "MSFT"


async def test_self_trade_prevention_cancels_the_incoming_order(daemon: Daemon) -> None:
    c = await daemon.client(1)
    await place(c, "AAPL", "sell", 5, 10_000)
    cid = await c.new_order("AAPL", "buy", 5, 10_000, stp="cancelIncoming")
    got = await c.wait_until(mine(cid, "cancelled"))
    assert got[-1].reason == "selfTrade" and not any(r.kind == "fill" for r in got)


async def test_order_ids_are_increasing_engine_sequence_numbers(daemon: Daemon) -> None:
    c = await daemon.client(1)
    ids = [(await place(c, "AAPL", "buy", 1, 9_000 + i))[1].order_id for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5


async def test_book_rejects_come_back_with_their_code_and_text(daemon: Daemon) -> None:
    c = await daemon.client(1)
    _, rej = await place(c, "AAPL", "buy", 0, 9_000)
    assert (rej.kind, rej.code) == ("reject", 3001)
    assert rej.text == "quantity must be positive and at most the symbol's maximum"
    _, rej = await place(c, "AAPL", "buy", 1, 9_000, ord_type="market", tif="gtc")
    assert rej.code == 3014


async def test_lone_reads_take_the_lane_under_every_journal_policy(daemon: Daemon) -> None:
    c = await daemon.client(1)
    for i in range(5):
        await place(c, "AAPL", "buy", 1, 9_000 + i)
    assert daemon.metric("cift_lane_reads_total") >= 5
