"""Snapshots taken by the running daemon (the barrier through the book actors), the fsync
policies as a client sees them, and the `journal` / `status` commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REPO, Daemon, wait_until

from engine import protocol
from engine.client import Client
from engine.recovery import journal_files
from engine.retention import write_sink_mark
from engine.snapshot import list_snapshots

NO_CLOCK: dict[str, Any] = {"clock": {"advance_interval_ms": 0}}  # only the test's commands


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def orders(n: int, first_cid: int = 1) -> bytes:
    return b"".join(
        protocol.new_order(
            "AAPL" if i % 2 else "MSFT",
            "buy" if i % 3 else "sell",
            1 + i % 5,
            9_990 + i % 21,
            client_order_id=i,
        )
        for i in range(first_cid, first_cid + n)
    )


async def send_and_ack(d: Daemon, n: int, first_cid: int = 1, c: Client | None = None) -> Client:
    c = c or await d.client(1)
    await c.send(orders(n, first_cid))
    last = first_cid + n - 1
    await c.wait_until(lambda r: r.kind == "ack" and r.client_order_id == last, 30)
    return c


def restart(d: Daemon) -> Daemon:
    (d.data_dir / "daemon.json").unlink(missing_ok=True)
    return Daemon(d.tmp, d.config).wait_ready()


async def test_periodic_snapshots_are_consistent_and_prune_the_journal(
    start_daemon: Callable[..., Daemon],
) -> None:
    d = start_daemon(
        {
            "journal": {
                "snapshot_every_commands": 500,
                "snapshot_interval_s": 0.0,
                "roll_bytes": 65536,
                "snapshots_keep": 2,
            },
            "clock": {"advance_interval_ms": 0},
        }
    )
    snaps = d.data_dir / "snapshots"
    c = await d.client(1)
    for n in range(6):
        await send_and_ack(d, 500, 1 + n * 500, c)
        wait_until(
            lambda n=n: d.json("/status")["journal"]["snapshots_written"] > n, 20, "a snapshot"
        )
    assert len(list_snapshots(snaps)) == 2
    live = d.json("/status")
    # Journal files wholly covered by the oldest kept snapshot are gone.
    oldest = list_snapshots(snaps)[0][0]
    assert journal_files(d.data_dir / "journal")[0][0] > 1
    assert journal_files(d.data_dir / "journal")[0][0] <= oldest + 1
    # SIGKILL: the next start restores the newest snapshot and replays only the tail.
    d.signal(signal.SIGKILL)
    d.wait()
    d2 = restart(d)
    st = d2.json("/status")
    assert st["state_digest"] == live["state_digest"]
    assert st["recovery"]["snapshot_seq"] > 0
    assert st["recovery"]["replayed"] == live["next_seq"] - 1 - st["recovery"]["snapshot_seq"]
    assert st["next_seq"] == live["next_seq"]
    assert d2.stop() == 0
    log = d2.log_file.read_text()
    assert "snapshot seq" in log and "stopped cleanly" in log


async def test_journal_pruning_keeps_what_a_sink_follower_still_needs(
    start_daemon: Callable[..., Daemon],
) -> None:
    """A follower that applied through seq 10 needs a snapshot at or below 10 and the journal
    after it: pruning keeps both until the follower's mark moves on (engine/retention.py)."""
    journal = {
        "snapshot_every_commands": 500,
        "snapshot_interval_s": 0.0,
        "roll_bytes": 65536,
        "snapshots_keep": 1,
        "sink_retention_max_commands": 0,
    }
    d = start_daemon({"journal": journal, **NO_CLOCK})
    write_sink_mark(d.data_dir, "main-postgres", 10)
    c = await d.client(1)
    for n in range(4):
        await send_and_ack(d, 500, 1 + n * 500, c)
        wait_until(lambda n=n: d.json("/status")["journal"]["snapshots_written"] > n, 20, "snap")
    snaps = [seq for seq, _ in list_snapshots(d.data_dir / "snapshots")]
    assert min(snaps) <= 10 and max(snaps) >= 2000, snaps  # the follower's + the newest
    assert journal_files(d.data_dir / "journal")[0][0] <= 11
    # The follower catches up: the next snapshot prunes what nobody needs any more.
    applied = d.json("/status")["durable_seq"]
    write_sink_mark(d.data_dir, "main-postgres", applied)
    await send_and_ack(d, 500, 2001, c)
    wait_until(lambda: d.json("/status")["journal"]["snapshots_written"] > 4, 20, "snapshot")
    wait_until(lambda: journal_files(d.data_dir / "journal")[0][0] > 11, 10, "pruned")
    snaps = [seq for seq, _ in list_snapshots(d.data_dir / "snapshots")]
    assert min(snaps) <= applied < max(snaps) and len(snaps) == 2, snaps
    assert journal_files(d.data_dir / "journal")[0][0] <= min(snaps) + 1
    assert d.metric("cift_journal_sink_retention_exceeded_total") == 0


async def test_a_sink_beyond_the_retention_bound_is_pruned_past_loudly(
    start_daemon: Callable[..., Daemon],
) -> None:
    journal = {
        "snapshot_every_commands": 500,
        "snapshot_interval_s": 0.0,
        "roll_bytes": 65536,
        "snapshots_keep": 1,
        "sink_retention_max_commands": 1000,
    }
    d = start_daemon({"journal": journal, **NO_CLOCK})
    write_sink_mark(d.data_dir, "stuck", 0)
    c = await d.client(1)
    for n in range(4):
        await send_and_ack(d, 500, 1 + n * 500, c)
    wait_until(lambda: d.metric("cift_journal_sink_retention_exceeded_total") >= 1, 20, "alarm")
    assert "journal pruning goes past what sinks have applied (stuck at 0)" in d.log()
    wait_until(lambda: journal_files(d.data_dir / "journal")[0][0] > 1, 10, "pruned anyway")


@pytest.mark.parametrize("policy", ["interval", "none"])
async def test_every_policy_acknowledges_and_survives_a_process_kill(
    start_daemon: Callable[..., Daemon], policy: str
) -> None:
    d = start_daemon({"journal": {"fsync": policy, "fsync_interval_us": 3000}, **NO_CLOCK})
    if policy == "none":
        assert "NOT durable" in d.log()
    await send_and_ack(d, 1500)
    live = d.json("/status")
    assert live["durable_seq"] == live["next_seq"] - 1
    if policy == "interval":
        assert 0 < live["journal"]["fsyncs"] < 1500
        assert d.metric("cift_journal_fsync_seconds_count") == live["journal"]["fsyncs"]
    d.signal(signal.SIGKILL)
    d.wait()
    d2 = restart(d)
    assert d2.json("/status")["state_digest"] == live["state_digest"]
    d2.stop()


async def test_journal_commands_and_status(start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(NO_CLOCK)
    c = await send_and_ack(daemon, 40)
    await c.cancel("AAPL", client_order_id=1)
    await c.wait_until(lambda r: r.kind in ("cancelled", "reject"), 10)
    st = orjson.loads(cli("status", "--json", "--data-dir", str(daemon.data_dir)).stdout)
    assert st["durable_seq"] == st["next_seq"] - 1 == 41
    assert len(st["state_digest"]) == 16
    assert daemon.metric("cift_journal_durable_seq") == 41
    data = str(daemon.data_dir)

    r = cli("journal", "verify", data)
    assert r.returncode == 0 and "41 commands" in r.stdout and "checksums ok" in r.stdout
    stats = orjson.loads(cli("journal", "stats", data, "--json").stdout)
    assert stats["commands"] == 41 and stats["first_seq"] == 1 and stats["next_seq"] == 42
    lines = cli("journal", "dump", data).stdout.splitlines()
    assert len(lines) == 41
    assert lines[0].split()[0] == "1" and " new " in lines[0] and "client 1 " in lines[0]
    assert " cancel " in lines[-1]
    dumped = [orjson.loads(x) for x in cli("journal", "dump", data, "--from", "10", "--limit", "3",
                                           "--json").stdout.splitlines()]  # fmt: skip
    assert [x["seq"] for x in dumped] == [10, 11, 12]
    assert {"seq", "ts", "symbol", "kind", "side", "order_id", "client_id", "price", "qty"} <= set(
        dumped[0]
    )
    cfg = str(daemon.config_file)
    r = cli("journal", "replay", data, "--config", cfg, "--digest")
    assert r.returncode == 0 and r.stdout.strip() == st["state_digest"]
    r = cli("journal", "replay", data, "--config", cfg, "--from-scratch", "--digest")
    assert r.stdout.strip() == st["state_digest"]
    r = cli("journal", "verify", str(daemon.tmp / "nowhere"))
    assert r.returncode == 2 and "no such data directory" in r.stderr


async def test_determinism_replaying_twice_gives_identical_events_and_digests(
    start_daemon: Callable[..., Daemon], tmp_path: Path
) -> None:
    daemon = start_daemon(NO_CLOCK)
    c = await send_and_ack(daemon, 800)
    await c.mass_cancel("MSFT")
    await c.sync(10)
    cfg = str(daemon.config_file)
    outs: list[dict[str, Any]] = []
    events: list[bytes] = []
    for i in range(2):
        path = tmp_path / f"events{i}.bin"
        r = cli("journal", "replay", str(daemon.data_dir), "--config", cfg, "--from-scratch",
                "--json", "--events", str(path))  # fmt: skip
        assert r.returncode == 0, r.stderr
        outs.append(orjson.loads(r.stdout))
        events.append(path.read_bytes())
    assert events[0] == events[1] and len(events[0]) > 800 * 104
    assert outs[0]["state_digest"] == outs[1]["state_digest"]
    assert outs[0]["state_digest"] == daemon.json("/status")["state_digest"]
