"""Session rules: logon, one session per account, account isolation, heartbeats, logout, idle
timeout, cancel-on-disconnect, output sequence numbers."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Daemon, wait_until

from engine import protocol
from engine.client import ClosedError, LogonError


async def test_sessions_get_only_their_own_accounts_reports(daemon: Daemon) -> None:
    a, b, c = await daemon.client(1), await daemon.client(2), await daemon.client(3)
    ca = await a.new_order("AAPL", "buy", 5, 10_000)
    cb = await b.new_order("MSFT", "buy", 7, 20_000)
    await a.wait_for(lambda r: r.kind == "ack")
    await b.wait_for(lambda r: r.kind == "ack")
    await c.new_order("AAPL", "sell", 5, 10_000)
    await c.new_order("MSFT", "sell", 7, 20_000)
    fa = await a.wait_for(lambda r: r.kind == "fill")
    fb = await b.wait_for(lambda r: r.kind == "fill")
    assert (fa.symbol, fa.client_order_id, fa.qty) == ("AAPL", ca, 5)
    assert (fb.symbol, fb.client_order_id, fb.qty) == ("MSFT", cb, 7)
    # Nothing else reached a or b: their next reports are the heartbeat echoes.
    assert await a.sync() == [] and await b.sync() == []
    got = await c.wait_until(lambda r: r.kind == "fill" and r.symbol == "MSFT")
    got += await c.sync()
    assert sorted((r.symbol, r.kind) for r in got) == [
        ("AAPL", "ack"),
        ("AAPL", "fill"),
        ("MSFT", "ack"),
        ("MSFT", "fill"),
    ]


async def test_a_session_cannot_touch_another_accounts_order(daemon: Daemon) -> None:
    owner, other = await daemon.client(1), await daemon.client(2)
    cid = await owner.new_order("AAPL", "buy", 5, 9_000, client_order_id=42)
    ack = await owner.wait_for(lambda r: r.kind == "ack" and r.client_order_id == cid)
    await other.cancel("AAPL", order_id=ack.order_id)
    rej = await other.wait_for(lambda r: r.kind == "reject")
    assert rej.code == 3019
    await other.replace("AAPL", 1, order_id=ack.order_id)
    assert (await other.wait_for(lambda r: r.kind == "reject")).code == 3019
    # By client id, the other account's client id 42 is simply not found.
    await other.cancel("AAPL", client_order_id=42)
    assert (await other.wait_for(lambda r: r.kind == "reject")).code == 3003
    assert await owner.sync() == []
    assert daemon.json("/book/AAPL")["bids"] == [[9_000, 5, 1]]


@pytest.mark.parametrize(("account", "token"), [(1, "wrong"), (99, "t99"), (1, "")])
async def test_logon_with_a_wrong_token_or_unknown_account_is_refused_with_1006(
    daemon: Daemon, account: int, token: str
) -> None:
    with pytest.raises(LogonError) as e:
        await daemon.client(account, token)
    assert e.value.code == 1006


async def test_an_account_has_one_session_at_a_time(daemon: Daemon) -> None:
    first = await daemon.client(1)
    with pytest.raises(LogonError) as e:
        await daemon.client(1)
    assert e.value.code == 1008
    assert await first.sync() == []  # the first session is untouched
    await first.logout()
    again = await daemon.client(1)  # free once the first has gone
    assert again.account == 1


async def test_trading_before_logon_is_rejected_with_1005(daemon: Daemon) -> None:
    raw = await daemon.raw()
    await raw.send(protocol.new_order("AAPL", "buy", 1, 10_000, client_order_id=5))
    rej = await raw.next_report()
    assert (rej.kind, rej.code, rej.client_order_id) == ("reject", 1005, 5)
    await raw.send(protocol.logon(1, "t1"))
    assert (await raw.next_report()).kind == "logonAck"


async def test_a_second_logon_is_rejected_with_1007(daemon: Daemon) -> None:
    c = await daemon.client(1)
    await c.send(protocol.logon(2, "t2"))
    rej = await c.next_report()
    assert (rej.kind, rej.code) == ("reject", 1007)
    assert c.account == 1


async def test_logon_ack_tells_the_session_its_symbols(daemon: Daemon) -> None:
    c = await daemon.client(3)
    assert list(c.symbols) == ["AAPL", "MSFT", "LOT"]
    lot = c.symbols["LOT"]
    assert (lot.tick_size, lot.lot_size, lot.max_order_qty, lot.price_precision) == (5, 10, 1000, 2)
    assert c.session_id > 0 and c.idle_timeout_ms == 30_000


async def test_heartbeat_is_echoed_and_logout_ends_the_session(daemon: Daemon) -> None:
    c = await daemon.client(1)
    hid = await c.heartbeat()
    echo = await c.next_report()
    assert (echo.kind, echo.heartbeat_id) == ("heartbeat", hid)
    logout = await c.logout()
    assert logout is not None and logout.code == 1013
    with pytest.raises(ClosedError):
        await c.next_report()


async def test_output_sequence_numbers_count_every_message_without_gaps(daemon: Daemon) -> None:
    a, b = await daemon.client(1), await daemon.client(2)
    for i in range(20):
        await a.new_order("AAPL", "buy", 1, 9_000 + i)
    await b.new_order("AAPL", "sell", 20, 9_000)  # 20 fills for a
    got = await a.wait_until(lambda r: r.kind == "fill" and r.leaves == 0 and r.price == 9_000)
    got += await a.sync()
    # seq 1 was the logon ack.
    assert [r.seq for r in got] == list(range(2, 2 + len(got)))


async def test_a_silent_session_is_disconnected_with_1010(
    start_daemon: Callable[..., Daemon],
) -> None:
    d = start_daemon({"gateway": {"idle_timeout_s": 0.3}})
    quiet = await d.client(1)
    logout = await quiet.wait_for(lambda r: r.kind == "logout", timeout=10)
    assert (logout.code, logout.text) == (1010, "idle timeout")
    assert d.metric("cift_session_disconnects_total", reason="idle_timeout") >= 1


async def test_cancel_on_disconnect_cancels_every_order_of_the_account(daemon: Daemon) -> None:
    c = await daemon.client(9)  # account 9 has cancel_on_disconnect
    for sym in ("AAPL", "MSFT"):
        await c.new_order(sym, "buy", 3, 9_000)
        await c.wait_for(lambda r: r.kind == "ack")
    keeper = await daemon.client(1)
    await keeper.new_order("AAPL", "buy", 1, 8_000)
    await keeper.wait_for(lambda r: r.kind == "ack")
    await c.close()

    def books() -> tuple[object, object]:
        return daemon.json("/book/AAPL")["bids"], daemon.json("/book/MSFT")["bids"]

    assert wait_until(lambda: books() == ([[8_000, 1, 1]], []), 5, "the account's orders to go")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_cancel_on_disconnect_covers_the_end_of_the_process(
    tmp_path: Path, how: str, _close_clients: None
) -> None:
    """The engine's own end ends every session too: a graceful stop cancels the orders of
    cancel-on-disconnect accounts before the Logout; after a SIGKILL, the next start cancels
    them before anyone can log on. Other accounts' orders stay."""
    d = Daemon(tmp_path).wait_ready()
    try:
        c, keeper = await d.client(9), await d.client(1)
        for cl, px in ((c, 9_000), (keeper, 8_000)):
            await cl.new_order("AAPL", "buy", 3, px)
            await cl.wait_for(lambda r: r.kind == "ack")
        if how == "sigterm":
            d.signal(signal.SIGTERM)
            got = await c.wait_until(lambda r: r.kind == "logout", 10)
            kinds = [r.kind for r in got]
            assert kinds.index("cancelled") < kinds.index("logout")
            assert next(r for r in got if r.kind == "cancelled").reason == "massCancel"
            assert d.wait() == 0
        else:
            d.signal(signal.SIGKILL)
            assert d.wait() == -signal.SIGKILL
    finally:
        d.stop()
    (tmp_path / "data" / "daemon.json").unlink(missing_ok=True)
    d = Daemon(tmp_path).wait_ready()
    try:
        assert d.json("/book/AAPL")["bids"] == [[8_000, 3, 1]]
    finally:
        d.stop()
