"""Trading controls in a real daemon (docs/risk.md, "Controls"): kill switch and halts under
load, account switch, admin mass cancel, limit changes at run time through the client and the
`cift-engine control` CLI, refusals, and every control surviving SIGKILL / clean restarts
(journal replay, snapshots) while an edited config file wins for what it changed."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Daemon, code_of, place, symbol, wait_until

from engine.client import Client
from engine.protocol import Report

ADMIN = 100
ACCOUNTS: list[dict[str, Any]] = [
    {"id": 3, "token": "t3"},
    {"id": 7, "token": "t7"},
    {"id": 8, "token": "t8"},
    {"id": ADMIN, "token": "t100", "admin": True},
]
CONFIG: dict[str, Any] = {
    "symbols": [symbol("AAPL"), symbol("MSFT")],
    "accounts": ACCOUNTS,
    "clock": {"advance_interval_ms": 0},
}


_ADMINS: dict[tuple[int, int], Client] = {}  # (daemon pid, port) -> its admin session


async def control(d: Daemon, action: str, **kw: Any) -> Report:
    """A control through the daemon's one admin session (one session per account)."""
    key = (d.pid, d.gateway_port)
    if key not in _ADMINS or _ADMINS[key].closed:
        _ADMINS[key] = await d.client(ADMIN)
    return await _ADMINS[key].admin(action, **kw)


def live_orders(d: Daemon, account: int) -> int:
    n: int = d.json(f"/risk/{account}")["usage"]["open_orders"]
    return n


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon(CONFIG)


async def test_kill_switch_under_load_cancels_everything_and_blocks_until_off(
    daemon: Daemon,
) -> None:
    trader, other = await daemon.client(7), await daemon.client(8)
    assert await code_of(other, "AAPL", "buy", 1, 9_000) == 0
    # The trader streams 300 resting orders without waiting; the kill lands in the middle.
    ids = [await trader.new_order("AAPL", "buy", 1, 9_000 + i % 50) for i in range(150)]
    kill = asyncio.ensure_future(control(daemon, "killSwitchOn", account=7))
    ids += [await trader.new_order("MSFT", "sell", 1, 20_000 + i % 50) for i in range(150)]
    reply = await kill
    assert (reply.code, reply.account, reply.action) == (0, 7, "killSwitchOn")
    answers: dict[int, Report] = {}
    while len(answers) < len(ids):
        r = await trader.next_report()
        if r.kind in ("ack", "reject") and r.client_order_id in ids:
            answers[r.client_order_id] = r
    for r in answers.values():
        # Sequenced before the kill: acknowledged (and cancelled by it); after: refused.
        if r.kind == "ack":
            assert r.cmd_seq < reply.cmd_seq
        else:
            assert (r.code, r.cmd_seq) == (2005, 0), r
    # Every acknowledged order of the trader was cancelled; nobody else's.
    wait_until(lambda: live_orders(daemon, 7) == 0, 10, "the trader's orders cancelled")
    assert live_orders(daemon, 8) == 1
    assert await code_of(other, "AAPL", "sell", 1, 9_000) == 0, "others trade on"
    assert await code_of(trader, "AAPL", "buy", 1, 9_000) == 2005
    off = await control(daemon, "killSwitchOff", account=7)
    assert off.code == 0 and off.cmd_seq > reply.cmd_seq
    assert await code_of(trader, "AAPL", "buy", 1, 9_000) == 0


async def test_halt_refuses_orders_but_not_cancels_and_close_refuses_all(daemon: Daemon) -> None:
    c = await daemon.client(7)
    resting = await place(c, "AAPL", "buy", 5, 9_000)
    spare = await place(c, "AAPL", "buy", 5, 8_000)
    assert (await control(daemon, "haltSymbol", symbol="AAPL")).symbol == "AAPL"
    states = {s["name"]: s["state"] for s in daemon.json("/status")["symbols"]}
    assert states == {"AAPL": "halted", "MSFT": "open"}
    await c.cancel("AAPL", order_id=spare.order_id)
    gone = await c.wait_for(lambda r: r.order_id == spare.order_id)
    assert gone.kind == "cancelled", "cancels are accepted while halted"
    assert await code_of(c, "AAPL", "sell", 5, 9_000) == 2003
    assert await code_of(c, "MSFT", "buy", 1, 9_000) == 0, "the other symbol trades"
    await c.replace("AAPL", 3, order_id=resting.order_id)
    amend = await c.wait_for(lambda r: r.order_id == resting.order_id or r.kind == "reject")
    assert (amend.kind, amend.code) == ("reject", 2003)
    assert daemon.json("/risk/7")["usage"]["open_orders"] == 2
    await control(daemon, "closeSymbol", symbol="AAPL")
    await c.cancel("AAPL", order_id=resting.order_id)
    refused = await c.wait_for(lambda r: r.kind == "reject")
    assert refused.code == 2002
    await control(daemon, "openSymbol", symbol="AAPL")
    other = await daemon.client(8)
    assert await code_of(other, "AAPL", "sell", 5, 9_000) == 0
    fill = await c.wait_for(lambda r: r.kind == "fill")
    assert (fill.order_id, fill.qty) == (resting.order_id, 5)


async def test_account_switch_mass_cancel_and_limits_at_run_time(daemon: Daemon) -> None:
    c = await daemon.client(7)
    for px in (9_000, 9_001):
        assert await code_of(c, "AAPL", "buy", 1, px) == 0
    assert await code_of(c, "AAPL", "sell", 1, 9_500) == 0
    assert await code_of(c, "MSFT", "buy", 1, 9_000) == 0
    # Disabled: new orders refused, live ones stay.
    await control(daemon, "disableAccount", account=7)
    assert await code_of(c, "AAPL", "buy", 1, 9_000) == 2004
    assert live_orders(daemon, 7) == 4
    await control(daemon, "enableAccount", account=7)
    # Mass cancel on the trader's behalf: AAPL buys only.
    done = await control(daemon, "massCancel", account=7, symbol="AAPL", side="buy")
    assert done.code == 0
    gone = [await c.wait_for(lambda r: r.kind == "cancelled") for _ in range(2)]
    assert {r.price for r in gone} == {9_000, 9_001} and {r.reason for r in gone} == {"massCancel"}
    wait_until(lambda: live_orders(daemon, 7) == 2, 10, "two orders left")
    # Limits: at most 3 live orders (2 now): one more passes, the next is refused.
    r = await control(daemon, "setLimit", account=7, limit="maxOpenOrders", value=3)
    assert r.code == 0
    assert daemon.json("/risk/7")["usage"]["limits"]["max_open_orders"] == 3
    assert await code_of(c, "MSFT", "buy", 1, 8_000) == 0
    assert await code_of(c, "MSFT", "buy", 1, 8_000) == 2015
    await control(daemon, "setLimit", account=7, limit="maxOpenOrders", value=-1)
    assert await code_of(c, "MSFT", "buy", 1, 8_000) == 0
    await control(daemon, "resetLimits", account=7)
    # The journal alone rebuilds the same risk state and books (controls replayed in place).
    live = daemon.json("/status")
    where = [str(daemon.data_dir), "--config", str(daemon.config_file)]
    r = subprocess.run(
        [sys.executable, "-m", "engine", "journal", "replay", *where, "--from-scratch", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    replay = json.loads(r.stdout)
    assert (replay["risk_digest"], replay["state_digest"]) == (
        live["risk_digest"],
        live["state_digest"],
    )
    assert replay["risk_refused"] == 0


async def test_refusals_have_codes_and_non_admin_sessions_get_1016(
    daemon: Daemon, start_daemon: Callable[..., Daemon]
) -> None:
    trader = await daemon.client(7)
    r = await trader.admin("killSwitchOn", account=8)
    assert (r.kind, r.code, r.cmd_seq) == ("adminReply", 1016, 0)
    assert await code_of(await daemon.client(8), "AAPL", "buy", 1, 9_000) == 0
    assert (await control(daemon, "haltSymbol", symbol="NOPE")).code == 2001
    assert (await control(daemon, "killSwitchOn", account=0)).code == 2024
    bad = await control(daemon, "setLimit", account=7, limit="maxPosition", value=-5)
    assert (bad.code, bad.text) == (2025, "invalid limit value")
    burst = await control(daemon, "setLimit", account=7, limit="rateBurst", value=5)
    assert burst.code == 2025, "a burst needs a rate"
    off = start_daemon({**CONFIG, "risk": {"enabled": False}})
    assert (await control(off, "killSwitchOn", account=7)).code == 2023
    c = await off.client(7)
    assert await code_of(c, "AAPL", "buy", 1, 9_000) == 0
    assert (await control(off, "massCancel", account=7)).code == 0
    await c.wait_for(lambda r: r.kind == "cancelled")


def _cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    session = ["--port", str(d.gateway_port), "--account", str(ADMIN), "--token", "t100"]
    return subprocess.run(
        [sys.executable, "-m", "engine", "control", *args, *session],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )


async def test_control_cli(daemon: Daemon) -> None:
    r = _cli(daemon, "halt", "MSFT")
    assert r.returncode == 0, r.stderr
    assert "haltSymbol MSFT: done" in r.stdout
    r = _cli(daemon, "set-limit", "7", "max_position", "10", "--json")
    assert r.returncode == 0 and '"code": 0' in r.stdout
    assert daemon.json("/risk/7")["usage"]["limits"]["max_position"] == 10
    r = _cli(daemon, "set-limit", "7", "max_position", "-3")
    assert r.returncode == 2 and "integer >= 0" in r.stderr
    r = _cli(daemon, "close", "NOPE")
    assert r.returncode == 1 and "2001" in r.stderr
    c = await daemon.client(7)
    assert await code_of(c, "MSFT", "buy", 1, 9_000) == 2003
    assert await code_of(c, "AAPL", "buy", 11, 9_000) == 2018


def _start(tmp: Path, overrides: dict[str, Any]) -> Daemon:
    (tmp / "data" / "daemon.json").unlink(missing_ok=True)
    return Daemon(tmp, overrides).wait_ready()


async def _expect_controls(d: Daemon, max_open: int) -> None:
    """Account 7: `max_open` live orders allowed (1 live now); 8 disabled; 3 killed; MSFT
    halted."""
    c7 = await d.client(7)
    codes = [await code_of(c7, "AAPL", "buy", 1, 9_000) for _ in range(max_open)]
    assert codes == [0] * (max_open - 1) + [2015]
    assert await code_of(await d.client(8), "AAPL", "buy", 1, 9_000) == 2004
    assert await code_of(await d.client(3), "AAPL", "buy", 1, 9_000) == 2005
    assert await code_of(c7, "MSFT", "buy", 1, 9_000) == 2003


@pytest.mark.parametrize("how", ["sigkill-journal", "sigkill-snapshot", "clean-stop"])
async def test_controls_survive_restarts_and_an_edited_config_wins_where_it_changed(
    tmp_path: Path, how: str, _close_clients: None
) -> None:
    journal = {"snapshot_every_commands": 3 if how == "sigkill-snapshot" else 0}
    overrides = {**CONFIG, "journal": {**journal, "snapshot_interval_s": 0}}
    d = _start(tmp_path, overrides)
    try:
        c7 = await d.client(7)
        assert await code_of(c7, "AAPL", "buy", 1, 9_000) == 0
        await control(d, "setLimit", account=7, limit="maxOpenOrders", value=3)
        await control(d, "disableAccount", account=8)
        await control(d, "killSwitchOn", account=3)
        await control(d, "haltSymbol", symbol="MSFT")
        if how == "sigkill-snapshot":
            wait_until(lambda: d.json("/status")["journal"]["snapshots_written"] > 0, 10, "snap")
        await c7.close()
        if how == "clean-stop":
            assert d.stop() == 0
        else:
            d.signal(signal.SIGKILL)
            assert d.wait() == -signal.SIGKILL
    finally:
        d.stop()
    d = _start(tmp_path, overrides)
    try:
        await _expect_controls(d, 3)
    finally:
        d.stop()
    # The operator edits account 7's limit in the file: that item is applied again, the
    # runtime controls of the other accounts and of MSFT stay.
    accounts = [dict(a, max_open_orders=5) if a["id"] == 7 else a for a in ACCOUNTS]
    d = _start(tmp_path, {**overrides, "accounts": accounts})
    try:
        await _expect_controls(d, 5 - 2)  # 3 live orders of account 7 now: 2 more fit
    finally:
        d.stop()
