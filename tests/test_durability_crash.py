"""Crash proof: SIGKILL the daemon at many points (some under heavy load), restart it on the same
data directory each time, and check that nothing a client was told is lost or duplicated, nothing
that was never sent appears, and the live books equal an offline replay of the journal."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from conftest import REPO, Daemon
from services import until

from engine import protocol
from engine._native import JournalReader
from engine.book import CmdKind, EventKind, decode_commands, decode_events
from engine.client import Client
from engine.protocol import Report

SYMBOLS = ["AAPL", "MSFT"]  # indexes 0 and 1 in conftest's config
KILL_POINTS = 22
CONFIG: dict[str, Any] = {
    "journal": {
        "fsync": "always",
        "snapshot_every_commands": 1500,  # snapshots (and journal pruning) between the kills
        "snapshot_interval_s": 0.0,
        "roll_bytes": 65536,
        "prune_journal": False,  # the whole history, to check every ack against it
    },
    "clock": {"advance_interval_ms": 0},  # no engine-issued commands: the digests are exact
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def start(tmp: Path, overrides: dict[str, Any] | None = None) -> Daemon:
    """A daemon on `tmp`/data, the same directory every time (a stale daemon.json goes first)."""
    (tmp / "data" / "daemon.json").unlink(missing_ok=True)
    return Daemon(tmp, overrides or CONFIG).wait_ready()


class Ledger:
    """What the client sent and what it was told."""

    def __init__(self) -> None:
        self.sent: dict[int, tuple[int, int, int, int]] = {}  # cid -> (symbol, side, qty, px)
        self.acked: dict[int, int] = {}  # cid -> engine order id
        self.fills: list[tuple[int, int]] = []  # (trade id, order id)
        self.next_cid = 1

    def orders(self, rng: random.Random, n: int) -> bytes:
        frames = []
        for _ in range(n):
            cid = self.next_cid
            self.next_cid += 1
            sym = rng.randrange(len(SYMBOLS))
            side = rng.choice(["buy", "sell"])
            qty, px = rng.randint(1, 20), rng.randint(9_950, 10_050)
            self.sent[cid] = (sym, 1 if side == "buy" else 2, qty, px)
            frames.append(protocol.new_order(SYMBOLS[sym], side, qty, px, client_order_id=cid))
        return b"".join(frames)

    def take(self, r: Report) -> None:
        if r.kind == "ack":
            assert r.client_order_id not in self.acked, f"ack twice: {r}"
            self.acked[r.client_order_id] = r.order_id
        elif r.kind == "fill":
            self.fills.append((r.trade_id, r.order_id))


async def read_all(c: Client, ledger: Ledger, acks: list[int]) -> None:
    async for r in c.reports():
        ledger.take(r)
        if r.kind == "ack":
            acks[0] += 1


def journal_orders(data_dir: Path) -> dict[int, Any]:
    """client order id -> the journaled new-order command (account 1)."""
    out: dict[int, Any] = {}
    for _kind, _first, _count, payload in JournalReader(data_dir / "journal"):
        for off in range(0, len(payload), 104):
            (cmd,) = decode_commands(payload[off : off + 96])
            sym = int.from_bytes(payload[off + 96 : off + 100], "little")
            if cmd.kind == CmdKind.NEW and cmd.account == 1:
                assert cmd.client_id not in out, f"order journaled twice: {cmd}"
                out[cmd.client_id] = (sym, cmd)
    return out


async def test_sigkill_at_many_points_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    ledger = Ledger()
    for point in range(KILL_POINTS):
        d = start(tmp_path)
        assert d.log().count("recovery: snapshot seq") == point + 1
        c = await Client.connect("127.0.0.1", d.gateway_port, 1, "t1")
        acks = [0]
        reader = asyncio.create_task(read_all(c, ledger, acks))
        heavy = point % 3 == 2
        if heavy:  # thousands in flight; kill after the first few acks come back
            await c.send(ledger.orders(rng, 6000))
            kill_after = rng.randint(1, 300)
        else:  # a steady trickle; kill somewhere in it
            n = rng.randint(40, 300)
            kill_after = rng.randint(1, n)
            for _ in range(0, n, 20):
                await c.send(ledger.orders(rng, 20))
        await until(lambda k=kill_after, a=acks: a[0] >= k, f"{kill_after} acks", 30)
        d.signal(signal.SIGKILL)
        assert d.wait() == -signal.SIGKILL
        await reader
        await c.close()
        d.stop()

    # A last start: recovery, then a clean session to the end.
    d = start(tmp_path)
    c = await Client.connect("127.0.0.1", d.gateway_port, 1, "t1")
    acks = [0]
    reader = asyncio.create_task(read_all(c, ledger, acks))
    await c.send(ledger.orders(rng, 200))
    await until(lambda: acks[0] >= 200, "the last 200 acks", 30)
    live = d.json("/status")
    assert live["durable_seq"] == live["next_seq"] - 1

    journaled = journal_orders(d.data_dir)
    # Every acknowledged order is in the journal, under the order id the client was told...
    for cid, oid in ledger.acked.items():
        assert cid in journaled, f"acked order {cid} lost"
        assert journaled[cid][1].order_id == oid
    # ...and nothing is there that was never sent (exactly as sent).
    for cid, (sym, cmd) in journaled.items():
        assert ledger.sent.get(cid) == (sym, cmd.side, cmd.qty, cmd.price), cid
    # No fill reported twice; every fill reported exists in a clean replay's trades.
    assert len(set(ledger.fills)) == len(ledger.fills)
    events = tmp_path / "events.bin"
    cfg = str(d.config_file)
    r = cli("journal", "replay", str(d.data_dir), "--config", cfg, "--from-scratch", "--json",
            "--events", str(events))  # fmt: skip
    assert r.returncode == 0, r.stderr
    trades: set[tuple[int, int]] = set()  # (trade id, maker or taker order id: global ids)
    for e in decode_events(events.read_bytes()):
        if e.kind == EventKind.TRADE:
            trades |= {(e.aux, e.order_id), (e.aux, e.counter_id)}
    assert all(f in trades for f in ledger.fills)
    assert len(ledger.fills) > 0 and len(ledger.acked) > 1000

    # The live books equal a fresh process's replay, from the journal alone and via snapshots.
    scratch = orjson.loads(r.stdout)
    assert scratch["state_digest"] == live["state_digest"]
    assert scratch["risk_digest"] == live["risk_digest"] and scratch["risk_refused"] == 0
    r = cli("journal", "replay", str(d.data_dir), "--config", cfg, "--digest")
    assert r.returncode == 0 and r.stdout.strip() == live["state_digest"]
    # A clean stop writes a final snapshot: the next start replays nothing.
    assert d.stop() == 0
    await reader
    await c.close()
    r = cli("journal", "replay", str(d.data_dir), "--config", cfg, "--json")
    after = orjson.loads(r.stdout)
    assert after["replayed"] == 0 and after["state_digest"] == live["state_digest"]
    assert after["snapshot_seq"] == live["next_seq"] - 1
    r = cli("journal", "verify", str(d.data_dir))
    assert r.returncode == 0, r.stdout + r.stderr
