"""The risk engine inside a real daemon: every check at its boundary through the TCP client (just
inside passes, just outside is refused with its code), positions after fills, `cift-engine risk
show`, and risk state across SIGKILL + restart (docs/risk.md)."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Daemon, code_of, place, symbol, wait_until

RISKY = dict(
    tick_size=5,
    min_price=5,
    lot_size=10,
    min_qty=20,
    max_order_qty=1000,
    max_notional=1_000_000,
    reference_price=10_000,
    price_band_ticks=500,
    market_band_ticks=1000,
)

ACCOUNTS: list[dict[str, Any]] = [
    {"id": 1, "token": "t1", "max_open_orders": 2},
    {"id": 2, "token": "t2", "max_open_buy_notional": 200_000, "max_open_sell_notional": 100_000},
    {"id": 3, "token": "t3", "max_position": 10},
    {"id": 4, "token": "t4", "credit_limit": 100_000},
    {"id": 5, "token": "t5", "enabled": False},
    {"id": 6, "token": "t6", "rate_per_sec": 1, "rate_burst": 3},
    {"id": 7, "token": "t7"},
    {"id": 8, "token": "t8"},
]

CONFIG: dict[str, Any] = {
    "symbols": [symbol("AAPL"), symbol("MSFT"), symbol("RSK", **RISKY), symbol("RSK2", **RISKY)],
    "accounts": ACCOUNTS,
}


@pytest.fixture
def risky(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon(CONFIG)


async def test_symbol_checks_at_their_boundaries(risky: Daemon) -> None:
    c = await risky.client(7)
    # market protection band: 1000 price units around the reference 10 000 (no trade yet; the
    # market orders find no liquidity, nothing trades)
    for side, inside, outside in (("buy", 9_000, 8_995), ("sell", 11_000, 11_005)):
        ok = await place(c, "RSK", side, 20, inside, ord_type="market", tif="ioc")
        assert ok.kind == "ack"
        assert await code_of(c, "RSK", side, 20, outside, ord_type="market", tif="ioc") == 2013
    # minimum quantity 20 (lot 10)
    assert await code_of(c, "RSK", "buy", 20, 10_000) == 0
    assert await code_of(c, "RSK", "buy", 10, 10_000) == 2008
    # tick 5, lot 10 (the sequencer's basic checks, same codes)
    assert await code_of(c, "RSK", "buy", 20, 10_001) == 2006
    assert await code_of(c, "RSK", "buy", 25, 10_000) == 2007
    # order notional <= 1 000 000
    assert await code_of(c, "RSK", "buy", 100, 10_000) == 0
    assert await code_of(c, "RSK", "buy", 110, 10_000) == 2011
    # limit band: 500 price units around the reference (bids only here: nothing trades)
    assert await code_of(c, "RSK", "buy", 20, 10_500) == 0
    assert await code_of(c, "RSK", "buy", 20, 10_505) == 2012
    assert await code_of(c, "RSK2", "sell", 20, 9_500) == 0
    assert await code_of(c, "RSK2", "sell", 20, 9_495) == 2012
    # maximum quantity 1000
    assert await code_of(c, "RSK", "sell", 1010, 10_000) == 2009


async def test_account_limits_at_their_boundaries(risky: Daemon) -> None:
    # max_open_orders = 2
    c = await risky.client(1)
    assert [await code_of(c, "AAPL", "buy", 1, 9_000) for _ in range(3)] == [0, 0, 2015]
    # open notional per side: buys <= 200 000, sells <= 100 000
    c = await risky.client(2)
    assert await code_of(c, "AAPL", "buy", 10, 10_000) == 0
    assert await code_of(c, "AAPL", "buy", 10, 10_000) == 0
    assert await code_of(c, "AAPL", "buy", 1, 10_000) == 2016
    assert await code_of(c, "AAPL", "sell", 5, 20_000) == 0
    assert await code_of(c, "AAPL", "sell", 1, 20_000) == 2017
    # max_position = 10, worst case with live orders
    c = await risky.client(3)
    assert await code_of(c, "AAPL", "buy", 10, 9_000) == 0
    assert await code_of(c, "AAPL", "buy", 1, 9_000) == 2018
    # credit_limit = 100 000
    c = await risky.client(4)
    assert await code_of(c, "AAPL", "buy", 10, 10_000) == 0
    assert await code_of(c, "AAPL", "buy", 1, 10_000) == 2019
    # a disabled account
    c = await risky.client(5)
    assert await code_of(c, "AAPL", "buy", 1, 9_000) == 2004
    # order rate: a burst of 3 at 1 per second
    c = await risky.client(6)
    assert [await code_of(c, "AAPL", "buy", 1, 9_000) for _ in range(4)] == [0, 0, 0, 2014]
    # a client order id used today
    c = await risky.client(8)
    assert await code_of(c, "AAPL", "buy", 1, 9_000, client_order_id=77) == 0
    assert await code_of(c, "AAPL", "buy", 1, 9_000, client_order_id=77) == 2020


async def test_with_the_risk_engine_off_only_the_basic_checks_apply(
    start_daemon: Callable[..., Daemon],
) -> None:
    d = start_daemon({**CONFIG, "risk": {"enabled": False}})
    c = await d.client(1)
    assert [await code_of(c, "AAPL", "buy", 1, 9_000) for _ in range(3)] == [0, 0, 0]
    assert await code_of(c, "RSK", "buy", 10, 10_000) == 0  # min_qty is the risk engine's
    assert await code_of(c, "RSK", "buy", 25, 10_000) == 2007  # lot: the sequencer's
    assert d.json("/status")["risk"] == {"enabled": False}
    with pytest.raises(urllib.error.HTTPError):
        d.http("/risk/1")


async def test_a_cancel_makes_room_again(risky: Daemon) -> None:
    c = await risky.client(1)
    first = await place(c, "AAPL", "buy", 1, 9_000)
    assert await code_of(c, "AAPL", "buy", 1, 9_000) == 0
    assert await code_of(c, "AAPL", "buy", 1, 9_000) == 2015
    await c.cancel("AAPL", order_id=first.order_id)
    await c.wait_for(lambda r: r.kind == "cancelled" and r.order_id == first.order_id)
    assert await code_of(c, "AAPL", "buy", 1, 9_000) == 0


async def trade(d: Daemon) -> None:
    """Account 8 buys 5 MSFT at 10 000 from account 7, then 2 more at 10 100."""
    seller, buyer = await d.client(7), await d.client(8)
    for qty, px in ((5, 10_000), (2, 10_100)):
        await place(seller, "MSFT", "sell", qty, px)
        cid = await buyer.new_order("MSFT", "buy", qty, px)
        await buyer.wait_for(lambda r, c=cid: r.client_order_id == c and r.kind == "fill")
    await place(buyer, "MSFT", "buy", 3, 9_000)  # rests: open buy qty 3


async def test_positions_after_fills_and_risk_show(risky: Daemon) -> None:
    await trade(risky)
    view = risky.json("/risk/8")
    (pos,) = view["positions"]
    assert (pos["symbol"], pos["net_qty"], pos["cost"], pos["bought"], pos["sold"]) == (
        "MSFT",
        7,
        5 * 10_000 + 2 * 10_100,
        7,
        0,
    )
    assert (pos["mark_price"], pos["unrealized_pnl"], pos["open_buy_qty"]) == (10_100, 500, 3)
    assert view["usage"]["open_orders"] == 1
    risk = risky.json("/status")["risk"]
    assert risk["enabled"] and risk["live_orders"] == 1 and risk["replay_refused"] == 0
    assert view["usage"]["open_buy_notional"] == 27_000
    (short,) = risky.json("/risk/7")["positions"]
    assert (short["net_qty"], short["cost"]) == (-7, -70_200)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", *args, "--http", f"127.0.0.1:{risky.http_port}"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=30,
        )

    r = cli("risk", "show", "8")
    assert r.returncode == 0, r.stderr
    assert "account 8" in r.stdout and "MSFT" in r.stdout and "live orders: 1" in r.stdout
    r = cli("risk", "show", "8", "--json")
    assert r.returncode == 0 and '"net_qty": 7' in r.stdout
    r = cli("risk", "show", "0")
    assert r.returncode != 0 and "positive integer" in r.stderr


def _start(tmp: Path, overrides: dict[str, Any]) -> Daemon:
    (tmp / "data" / "daemon.json").unlink(missing_ok=True)
    return Daemon(tmp, overrides).wait_ready()


def _state(d: Daemon) -> list[Any]:
    return [d.json(f"/risk/{a}") for a in (1, 7, 8)]


@pytest.mark.parametrize("snapshots", [False, True], ids=["journal", "snapshot+journal"])
async def test_risk_state_survives_sigkill_and_restart(
    tmp_path: Path, snapshots: bool, _close_clients: None
) -> None:
    # With snapshots: one every 4 commands (the barrier path), so the restart restores a risk
    # section taken mid-run and replays the journal after it.
    journal = {"snapshot_every_commands": 4 if snapshots else 0, "snapshot_interval_s": 0}
    overrides = {**CONFIG, "journal": journal, "clock": {"advance_interval_ms": 0}}
    d = _start(tmp_path, overrides)
    try:
        await trade(d)
        c = await d.client(1)
        assert await code_of(c, "AAPL", "buy", 1, 9_000) == 0
        assert await code_of(c, "AAPL", "buy", 1, 9_000) == 0
        if snapshots:
            wait_until(lambda: d.json("/status")["journal"]["snapshots_written"] > 0, 10, "snap")
        before = _state(d)
        await c.close()
        d.signal(signal.SIGKILL)
        assert d.wait() == -signal.SIGKILL
    finally:
        d.stop()
    d = _start(tmp_path, overrides)
    try:
        assert _state(d) == before
        if snapshots:
            assert d.json("/status")["recovery"]["snapshot_seq"] > 0
        # the live orders came back: account 1 is still at its 2 open orders
        c = await d.client(1)
        assert await code_of(c, "AAPL", "buy", 1, 9_000) == 2015
    finally:
        d.stop()
