"""Sharding: two shard daemons on this machine, one client routing by symbol, the shard map's
checks at start (docs/operations.md, "Sharding")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Daemon, symbol, toml_dumps
from services import free_port

from engine import config
from engine.config import ConfigError
from engine.hostinfo import Host
from engine.router import ShardedClient, discover
from engine.shardmap import UnknownSymbolError, load_map

SYMBOLS = {"a": ["AAPL", "MSFT"], "b": ["NVDA"]}


def _cores() -> dict[str, list[int]]:
    """One online core per shard where the machine has two (else unpinned shards)."""
    usable = sorted(os.sched_getaffinity(0) & (Host().online_cpus() or set()))
    if len(usable) < 2:
        return {"a": [], "b": []}
    return {"a": [usable[0]], "b": [usable[1]]}


def write_map(path: Path, shards: dict[str, dict[str, Any]]) -> Path:
    path.write_text(toml_dumps({"shards": [{"name": n, **s} for n, s in shards.items()]}))
    return path


def map_entries(cores: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "gateway": f"127.0.0.1:{free_port()}",
            "http": f"127.0.0.1:{free_port()}",
            "cores": cores[name],
            "symbols": SYMBOLS[name],
        }
        for name in SYMBOLS
    }


def shard_overrides(name: str, entry: dict[str, Any], map_file: Path) -> dict[str, Any]:
    return {
        "shard": {"name": name, "map": str(map_file)},
        "gateway": {"port": int(entry["gateway"].rsplit(":", 1)[1])},
        "http": {"port": int(entry["http"].rsplit(":", 1)[1])},
        "symbols": [symbol(s) for s in entry["symbols"]],
    }


@pytest.fixture
def two_shards(
    tmp_path: Path, start_daemon: Callable[..., Daemon]
) -> Iterator[tuple[Path, dict[str, Daemon]]]:
    entries = map_entries(_cores())
    map_file = write_map(tmp_path / "shards.toml", entries)
    daemons = {n: start_daemon(shard_overrides(n, e, map_file)) for n, e in entries.items()}
    yield map_file, daemons


def allowed_cpus(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return ""


async def test_one_client_trades_symbols_on_both_shards(
    two_shards: tuple[Path, dict[str, Daemon]],
) -> None:
    map_file, daemons = two_shards
    shard_map = load_map(map_file)
    async with ShardedClient(shard_map, account=1, token="t1") as c:
        fills: dict[str, list[int]] = {}
        for sym in ("AAPL", "NVDA", "MSFT"):
            rest = await c.new_order(sym, "sell", 10, 10_000)
            ack = await c.wait_for(lambda r, cid=rest: r.client_order_id == cid)
            assert (ack.kind, ack.symbol) == ("ack", sym)
            take = await c.new_order(sym, "buy", 4, 10_000)
            got = await c.wait_until(
                lambda r, cid=take: r.kind == "fill" and r.client_order_id == cid
            )
            fills[sym] = [r.qty for r in got if r.kind == "fill"]
        # Both sides of each trade came back through the one client: maker then taker.
        assert fills == {"AAPL": [4, 4], "NVDA": [4, 4], "MSFT": [4, 4]}
        with pytest.raises(UnknownSymbolError, match="no shard serves symbol 'ZZZ'"):
            await c.new_order("ZZZ", "buy", 1, 10_000)
        assert (await c.symbol_info("NVDA")).price_precision == 2
        await c.mass_cancel()  # every symbol on every shard: the rests' remaining 6 each
        cancelled = await c.wait_until(
            lambda r: r.kind == "cancelled" and r.symbol == "NVDA", timeout=5
        )
        assert any(r.kind == "cancelled" for r in cancelled)
        # A heartbeat round trip on both sessions collects what is left, then both log out.
        assert all(r.kind != "heartbeat" for r in await c.sync())
        await c.logout()
        assert c.ended == {"a", "b"}

    # A shard serves only its own symbols: NVDA sent straight to shard a is refused there.
    direct = await daemons["a"].client(3)
    await direct.new_order("NVDA", "buy", 1, 10_000)
    refused = await direct.wait_for(lambda r: r.kind in ("ack", "reject"))
    assert (refused.kind, refused.code) == ("reject", 2001)
    # Each trade happened on the daemon that owns the symbol, and nowhere else.
    trades = {
        name: {s["name"]: s["trades"] for s in d.json("/status")["symbols"]}
        for name, d in daemons.items()
    }
    assert trades == {"a": {"AAPL": 1, "MSFT": 1}, "b": {"NVDA": 1}}
    # Each shard pinned itself to its cores in the map (cpu_affinity left empty).
    for name, d in daemons.items():
        cores = shard_map.shard(name).cores  # type: ignore[union-attr]
        if cores:
            assert allowed_cpus(d.pid) == ",".join(str(c) for c in sorted(cores))
        assert d.json("/status")["shard"] == name


async def test_a_client_that_knows_one_shard_discovers_the_rest(
    two_shards: tuple[Path, dict[str, Daemon]],
) -> None:
    map_file, daemons = two_shards
    found = await discover(f"127.0.0.1:{daemons['b'].http_port}")
    assert found.shards == load_map(map_file).shards
    async with ShardedClient(found, account=2, token="t2") as c:
        cid = await c.new_order("AAPL", "buy", 1, 9_000)
        ack = await c.wait_for(lambda r: r.client_order_id == cid)
        assert ack.kind == "ack"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def test_the_cli_routes_by_symbol_and_lists_the_shards(
    two_shards: tuple[Path, dict[str, Daemon]],
) -> None:
    map_file, daemons = two_shards
    m = str(map_file)
    r = cli("order", "NVDA", "buy", "5", "99.00", "--token", "t1", "--shard-map", m)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("accepted   NVDA") and "buy 5 @ 99.00" in r.stdout
    r = cli("book", "NVDA", "--json", env={"CIFT_SHARD_MAP": m})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bids"] == [[9_900, 5, 1]]
    r = cli("order", "ZZZ", "buy", "1", "1.00", "--shard-map", m)
    assert r.returncode == 2 and "no shard serves symbol 'ZZZ'" in r.stderr
    r = cli("status", "--json", "--shard-map", m)
    assert r.returncode == 0, r.stderr
    assert {n: d["shard"] for n, d in json.loads(r.stdout).items()} == {"a": "a", "b": "b"}
    r = cli("shards", "--http", f"127.0.0.1:{daemons['a'].http_port}", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["shards"]
    assert [(x["name"], x["up"], x["symbols"]) for x in rows] == [
        ("a", True, ["AAPL", "MSFT"]),
        ("b", True, ["NVDA"]),
    ]
    daemons["b"].stop()
    r = cli("shards", "--shard-map", m)
    assert r.returncode == 1 and "DOWN" in r.stdout


# ---------------------------------------------------------------- the checks at start


def setup_shard(tmp_path: Path, entries: dict[str, dict[str, Any]], **over: Any) -> Path:
    """Shard a's config file against a map of `entries` (its overrides merged over)."""
    map_file = write_map(tmp_path / "shards.toml", entries)
    c = shard_overrides("a", entries["a"], map_file)
    c["shard"]["map"] = "shards.toml"  # relative: to the config file's directory
    for section, values in over.items():
        c[section] = {**c.get(section, {}), **values} if isinstance(values, dict) else values
    f = tmp_path / "a.toml"
    f.write_text(toml_dumps(c))
    return f


def test_a_shard_matching_the_map_loads_with_it(tmp_path: Path) -> None:
    entries = map_entries({"a": [0], "b": []})
    c = config.load(setup_shard(tmp_path, entries))
    assert c.shard.name == "a" and c.shard_map is not None
    assert [s.name for s in c.shard_map.shards] == ["a", "b"]


def _offline_core() -> int:
    return max(Host().online_cpus() or {0}) + 1


@pytest.mark.parametrize(
    ("change", "in_map", "key", "message"),
    [
        (
            {"b": {"cores": [0]}},
            True,
            "shards[1].cores",
            "shards a (shards[0]) and b share cores 0",
        ),
        ({"a": {"cores": ["offline"]}}, True, "shards[0].cores", "are not online on this host"),
        (
            {"b": {"symbols": ["NVDA", "MSFT"]}},
            True,
            "shards[1].symbols",
            "MSFT owned by two shards: a (shards[0]) and b",
        ),
        (
            {"a": {"symbols": ["AAPL", "NVDA2"]}},
            False,
            "symbols",
            "only in this config: MSFT; only in the map: NVDA2",
        ),
        ({"a": {"gateway": "127.0.0.1:1"}}, False, "gateway.port", "is not the port"),
        ({"a": {"name": "c"}}, False, "shard.name", "shard 'a' is not in the shard map"),
        ({"b": {"bogus": 1}}, True, "shards[1].bogus", "unknown key"),
    ],
)
def test_a_shard_that_disagrees_with_the_map_is_refused(
    tmp_path: Path, change: dict[str, dict[str, Any]], in_map: bool, key: str, message: str
) -> None:
    entries = map_entries({"a": [0], "b": []})
    config_file = setup_shard(tmp_path, entries)  # the config written from the good map
    for name, values in change.items():
        if values.get("cores") == ["offline"]:
            values = {"cores": [_offline_core()]}
        entries[name].update(values)
    write_map(tmp_path / "shards.toml", entries)
    with pytest.raises(ConfigError) as e:
        config.load(config_file)
    assert e.value.key == key and message in e.value.message
    assert e.value.file == str(tmp_path / ("shards.toml" if in_map else "a.toml"))


def test_cpu_affinity_outside_the_shards_cores_is_refused(tmp_path: Path) -> None:
    entries = map_entries({"a": [0], "b": []})
    f = setup_shard(tmp_path, entries, process={"cpu_affinity": [1]})
    with pytest.raises(ConfigError, match=r"process.cpu_affinity: CPUs 1 are not among shard a"):
        config.load(f)


def test_the_daemon_refuses_to_start_with_overlapping_cores(tmp_path: Path) -> None:
    entries = map_entries({"a": [0], "b": [0]})
    f = setup_shard(tmp_path, entries)
    r = cli("run", "--config", str(f))
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"config error: {tmp_path / 'shards.toml'}: shards[1].cores: "
        "shards a (shards[0]) and b share cores 0"
    )
    r = cli("check-config", str(f), "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["key"] == "shards[1].cores"


def test_the_example_map_is_valid() -> None:
    example = load_map(REPO / "config" / "shards" / "example.toml")
    assert [(s.name, sorted(s.cores)) for s in example.shards] == [
        ("eq-a", [2, 3]),
        ("eq-b", [4, 5]),
    ]
    assert example.owner("BTC-USD").gateway.port == 7102
