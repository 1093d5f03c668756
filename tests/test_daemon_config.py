"""Configuration: every default pinned, and every kind of mistake named by key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import config
from engine.config import (
    AccountConfig,
    BatchConfig,
    ClockConfig,
    ConfigError,
    GatewayConfig,
    HttpConfig,
    JournalConfig,
    ProcessConfig,
    QueueConfig,
    ServicesConfig,
    ShardConfig,
    ShutdownConfig,
    SymbolConfig,
)


def equity(name: str, reference: int) -> SymbolConfig:
    return SymbolConfig(name, 1, 1, 2, 1, 100_000_000, reference, 0, 1_000_000)


def test_the_embedded_defaults_are_pinned() -> None:
    c = config.load()
    assert c.process == ProcessConfig("./data", (), "info", "text")
    assert c.gateway == GatewayConfig("127.0.0.1", 7001, 65536, 1024, 4194304, 30.0)
    assert c.http == HttpConfig(True, "127.0.0.1", 9101)
    assert c.queues == QueueConfig(65536, 65536, 65536, 262144)
    assert c.batch == BatchConfig(16384)
    assert c.journal == JournalConfig("always", 2000, 67108864, 1_000_000, 300.0, 2, True)
    assert c.clock == ClockConfig(1000)
    assert c.shutdown == ShutdownConfig(10.0)
    assert c.services == ServicesConfig(False, False, False, False)
    assert c.shard == ShardConfig("", "") and c.shard_map is None
    assert c.symbols == (
        equity("AAPL", 19_000),
        equity("MSFT", 42_000),
        equity("NVDA", 12_000),
        SymbolConfig("BTC-USD", 50, 1, 2, 50, 100_000_000_000, 6_500_000, 0, 1_000_000),
    )
    assert c.accounts == (
        AccountConfig(1, "demo", False),
        AccountConfig(2, "demo", False),
        AccountConfig(3, "demo", True),
        AccountConfig(100, "admin-demo", False, admin=True),
    )


def test_a_file_overrides_key_by_key_and_replaces_lists(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[gateway]\nport = 0\n[[symbols]]\nname = "X"\ntick_size = 5\nlot_size = 1\n'
        "price_precision = 0\nmin_price = 5\nmax_price = 100\nreference_price = 0\n"
        "price_band_bps = 0\nmax_order_qty = 10\n"
    )
    c = config.load(f)
    assert c.gateway.port == 0 and c.gateway.host == "127.0.0.1"
    assert [s.name for s in c.symbols] == ["X"]
    assert len(c.accounts) == 4
    assert c.source == str(f)


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ("[gateway]\nprot = 1\n", "gateway.prot", "unknown key"),
        ("[gatewy]\n", "gatewy", "unknown section"),
        ("[gateway]\nport = 70000\n", "gateway.port", "must be in 0..65535"),
        ("[gateway]\nport = true\n", "gateway.port", "must be an integer"),
        ('[gateway]\nport = "80"\n', "gateway.port", "must be an integer"),
        ("[journal]\nfsync = 'rarely'\n", "journal.fsync", "must be one of always, interval"),
        ("[journal]\nsnapshots_keep = 0\n", "journal.snapshots_keep", "must be in 1..1000"),
        ("[journal]\nfsync_every = 1\n", "journal.fsync_every", "unknown key"),
        ("[process]\ncpu_affinity = [-1]\n", "process.cpu_affinity", "CPU ids must be >= 0"),
        ('[process]\ncpu_affinity = ["a"]\n', "process.cpu_affinity", "must be a list of int"),
        ('[shard]\nname = "a b"\n', "shard.name", "must be empty or 1..64 letters"),
        ('[shard]\nmap = "shards.toml"\n', "shard.name", "needed with shard.map"),
        ("[services]\npostgres = true\n", "services.postgres", "not available in this build yet"),
        ('[[symbols]]\nname = "X"\n', "symbols[0].tick_size", "missing"),
        ("symbols = 3\n", "symbols", "must be an array of tables"),
        ('[[accounts]]\nid = 1\ntoken = ""\n', "accounts[0].token", "must not be empty"),
        (
            '[[accounts]]\nid = 1\ntoken = "a"\n[[accounts]]\nid = 1\ntoken = "b"\n',
            "accounts[1].id",
            "duplicate account 1",
        ),
        ("[http]\nport = 7001\n", "http.port", "must differ from gateway.port"),
    ],
)
def test_mistakes_are_named_by_file_and_key(
    tmp_path: Path, body: str, key: str, message: str
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as e:
        config.load(f)
    assert (e.value.file, e.value.key) == (str(f), key)
    assert message in e.value.message


def test_unreadable_and_invalid_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "missing.toml")
    f = tmp_path / "broken.toml"
    f.write_text("[gateway\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(f)


def test_every_example_config_is_valid() -> None:
    examples = sorted((config.DEFAULT_FILE.parent).glob("*.toml"))
    assert len(examples) >= 2
    for f in examples:
        config.load(f)
