"""Configuration: TOML files -> frozen dataclasses, every default in config/default.toml.

`load(path)` reads the defaults, overlays the file key by key (a `[[symbols]]` or `[[accounts]]`
list in the file replaces the default list), and checks everything: an unknown key, a value of
the wrong type or out of range raises `ConfigError` naming the file and the key — the CLI prints
it and exits 2, never a traceback. `load(None)` is the embedded defaults.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from engine.shardmap import ShardMap

__all__ = [
    "DEFAULT_FILE",
    "AccountConfig",
    "BatchConfig",
    "ClockConfig",
    "Config",
    "ConfigError",
    "GatewayConfig",
    "HttpConfig",
    "JournalConfig",
    "NatsConfig",
    "ProcessConfig",
    "QueueConfig",
    "RedisConfig",
    "RiskConfig",
    "ServicesConfig",
    "ShardConfig",
    "ShutdownConfig",
    "SymbolConfig",
    "load",
]

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "default.toml"


class ConfigError(Exception):
    """A configuration problem: which file, which key, what is wrong."""

    def __init__(self, file: str, key: str, message: str) -> None:
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")
        self.file = file
        self.key = key
        self.message = message


Check = Callable[[Any], str | None]


def _check(check: Check, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field validated by `check` (returns an error message or None). A `default`
    here serves code that builds the dataclass directly; files get theirs from default.toml."""
    return field(default=default, metadata={"check": check})


def _range(lo: float, hi: float | None = None) -> Check:
    def check(v: Any) -> str | None:
        if v < lo or (hi is not None and v > hi):
            return f"must be in {lo}..{hi}" if hi is not None else f"must be >= {lo}"
        return None

    return check


def _one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _false(v: Any) -> str | None:
    return None if v is False else "not available in this build yet (must be false)"


def _any(_v: Any) -> str | None:
    return None


def _cpus(v: Any) -> str | None:
    return None if all(c >= 0 for c in v) else "CPU ids must be >= 0"


def _name(v: Any) -> str | None:
    ok = 0 < len(v) <= 32 and all(c.isalnum() or c in "-_./" for c in v)
    return None if ok else "must be 1..32 characters of letters, digits, - _ . /"


@dataclass(frozen=True)
class ProcessConfig:
    data_dir: str
    cpu_affinity: tuple[int, ...] = _check(_cpus)
    log_level: str = _check(_one_of("debug", "info", "warning", "error"))
    log_format: str = _check(_one_of("text", "json"))


def _shard_name(v: Any) -> str | None:
    from engine.shardmap import SHARD_NAME

    ok = v == "" or SHARD_NAME.match(v) is not None
    return None if ok else "must be empty or 1..64 letters, digits, - and _ (not first)"


@dataclass(frozen=True)
class ShardConfig:
    """This process as one shard of a host (docs/operations.md, "Sharding"); "" = not sharded."""

    name: str = _check(_shard_name, "")
    # The host's shard map (engine/shardmap.py); relative to the config file's directory.
    map: str = _check(_any, "")


@dataclass(frozen=True)
class GatewayConfig:
    host: str
    port: int = _check(_range(0, 65535))
    max_frame_bytes: int = _check(_range(64, 16 << 20))
    max_sessions: int = _check(_range(1))
    output_buffer_bytes: int = _check(_range(4096))
    idle_timeout_s: float = _check(_range(0))


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool
    host: str
    port: int = _check(_range(0, 65535))


@dataclass(frozen=True)
class QueueConfig:
    risk: int = _check(_range(1))
    book: int = _check(_range(1))
    persistence: int = _check(_range(1))
    publishing: int = _check(_range(1))


@dataclass(frozen=True)
class BatchConfig:
    max_records: int = _check(_range(1))
    lane: bool = True


@dataclass(frozen=True)
class JournalConfig:
    # "batch" is the former name of "always", still accepted.
    fsync: str = _check(_one_of("always", "interval", "none", "batch"))
    fsync_interval_us: int = _check(_range(50, 10_000_000), 2000)
    roll_bytes: int = _check(_range(1 << 16, 1 << 40), 64 << 20)
    snapshot_every_commands: int = _check(_range(0), 1_000_000)
    snapshot_interval_s: float = _check(_range(0), 300.0)
    snapshots_keep: int = _check(_range(1, 1000), 2)
    prune_journal: bool = True
    # Journal kept for sink followers (docs/sinks.md): at most this many commands behind the
    # head; past it a lagging sink loses data (error log + metric). 0: no bound.
    sink_retention_max_commands: int = _check(_range(0), 50_000_000)

    @property
    def policy(self) -> str:
        """The fsync policy with the legacy alias resolved: always | interval | none."""
        return "always" if self.fsync == "batch" else self.fsync


@dataclass(frozen=True)
class ClockConfig:
    advance_interval_ms: int = _check(_range(0))


@dataclass(frozen=True)
class ShutdownConfig:
    drain_timeout_s: float = _check(_range(0.1))


@dataclass(frozen=True)
class ServicesConfig:
    # nats: order entry + publishing over NATS; redis: the market-data cache (docs/nats.md).
    nats: bool = _check(_any)
    postgres: bool = _check(_false)
    redis: bool = _check(_any)
    clickhouse: bool = _check(_false)


def _subject(v: Any) -> str | None:
    ok = bool(v) and all(t and not any(c in t for c in " *>\t") for t in v.split("."))
    return None if ok else "must be a NATS subject of literal tokens (no spaces, * or >)"


def _url(*schemes: str) -> Check:
    def check(v: Any) -> str | None:
        ok = any(v.startswith(f"{s}://") for s in schemes)
        return None if ok else f"must be a {' or '.join(schemes)}:// URL"

    return check


@dataclass(frozen=True)
class NatsConfig:
    """NATS order entry and publishing (docs/nats.md), used with `services.nats = true`."""

    url: str = _check(_url("nats", "tls"), "nats://127.0.0.1:4222")
    subject_prefix: str = _check(_subject, "orders")
    durable_prefix: str = _check(_subject, "orders.durable")
    stream: str = _check(_name, "CIFT_ORDERS")
    consumer: str = _check(_name, "cift-engine")
    ack_wait_s: float = _check(_range(1), 30.0)
    max_ack_pending: int = _check(_range(1), 20_000)
    duplicate_window_s: float = _check(_range(1), 600.0)
    max_pending: int = _check(_range(1), 65_536)
    exec_stream: str = _check(_name, "CIFT_EXEC")
    exec_max_age_s: float = _check(_range(1), 86_400.0)
    exec_outbox_bytes: int = _check(_range(1 << 16), 64 << 20)
    md_queue: int = _check(_range(1), 10_000)
    md_heartbeat_s: float = _check(_range(0.01), 1.0)


@dataclass(frozen=True)
class RedisConfig:
    """The Redis market-data cache (docs/nats.md), used with `services.redis = true`."""

    url: str = _check(_url("redis", "rediss", "unix"), "redis://127.0.0.1:6379/0")
    depth: int = _check(_range(1, 1000), 10)


@dataclass(frozen=True)
class SymbolConfig:
    name: str = _check(_name)
    tick_size: int = _check(_range(1))
    lot_size: int = _check(_range(1))
    price_precision: int = _check(_range(0, 18))
    min_price: int = _check(_range(1))
    max_price: int = _check(_range(1, (1 << 61) - 1))
    reference_price: int = _check(_range(0))
    price_band_bps: int = _check(_range(0, 1_000_000))
    max_order_qty: int = _check(_range(1))
    # Risk engine checks (docs/risk.md); 0 = off. Defaults here serve files written before them.
    min_qty: int = _check(_range(1), 1)
    max_notional: int = _check(_range(0), 0)
    price_band_ticks: int = _check(_range(0), 0)
    market_band_bps: int = _check(_range(0, 1_000_000), 0)
    market_band_ticks: int = _check(_range(0), 0)

    def rules(self, risk_engine: bool = False) -> tuple[int, int, int, int, int, int, int]:
        """The sequencer's rule tuple (engine._native.Sequencer). With the risk engine on, the
        price band is its (around the last trade), not the sequencer's (around the fixed
        reference price)."""
        return (
            self.tick_size,
            self.lot_size,
            self.min_price,
            self.max_price,
            self.reference_price,
            0 if risk_engine else self.price_band_bps,
            self.max_order_qty,
        )

    def spec(self) -> tuple[str, int, int, int, int, int, int]:
        """What sessions are told at logon (engine._native.Publisher)."""
        return (
            self.name,
            self.tick_size,
            self.lot_size,
            self.price_precision,
            self.min_price,
            self.max_price,
            self.max_order_qty,
        )


LIMIT_KEYS = (
    "max_open_orders",
    "max_open_buy_notional",
    "max_open_sell_notional",
    "credit_limit",
    "max_position",
    "rate_per_sec",
    "rate_burst",
)
"""The per-account risk limits ([risk] defaults, [[accounts]] overrides): docs/risk.md."""

_INHERIT = -1  # an [[accounts]] limit not given: the [risk] default applies


@dataclass(frozen=True)
class RiskConfig:
    """The risk engine (docs/risk.md) and the default limits of every account; 0 = no limit."""

    enabled: bool = True
    max_open_orders: int = _check(_range(0), 0)
    max_open_buy_notional: int = _check(_range(0), 0)
    max_open_sell_notional: int = _check(_range(0), 0)
    credit_limit: int = _check(_range(0), 0)
    max_position: int = _check(_range(0), 0)
    rate_per_sec: int = _check(_range(0), 0)
    rate_burst: int = _check(_range(0), 0)

    def limits(self) -> dict[str, int | None]:
        """The default limits as `AccountLimits` keyword arguments (None = no limit)."""
        return {k: getattr(self, k) or None for k in LIMIT_KEYS}


@dataclass(frozen=True)
class AccountConfig:
    id: int = _check(_range(1, (1 << 63) - 1))
    token: str = _check(lambda v: None if v else "must not be empty")
    cancel_on_disconnect: bool = False
    # May send trading controls (kill switch, halts, limit changes: docs/risk.md "Controls").
    admin: bool = False
    # Risk: a disabled account's orders and amends are refused (2004). Limits: -1 (or absent) =
    # the [risk] default, 0 = no limit, else this account's own limit.
    enabled: bool = True
    max_open_orders: int = _check(_range(_INHERIT), _INHERIT)
    max_open_buy_notional: int = _check(_range(_INHERIT), _INHERIT)
    max_open_sell_notional: int = _check(_range(_INHERIT), _INHERIT)
    credit_limit: int = _check(_range(_INHERIT), _INHERIT)
    max_position: int = _check(_range(_INHERIT), _INHERIT)
    rate_per_sec: int = _check(_range(_INHERIT), _INHERIT)
    rate_burst: int = _check(_range(_INHERIT), _INHERIT)

    def limits(self, defaults: RiskConfig) -> dict[str, int | None] | None:
        """This account's own limits (its keys over the defaults, None = no limit), or None when
        it has none of its own."""
        own = {k: getattr(self, k) for k in LIMIT_KEYS if getattr(self, k) != _INHERIT}
        if not own:
            return None
        merged = defaults.limits()
        merged.update({k: v or None for k, v in own.items()})
        return merged


@dataclass(frozen=True)
class Config:
    process: ProcessConfig
    gateway: GatewayConfig
    http: HttpConfig
    queues: QueueConfig
    batch: BatchConfig
    journal: JournalConfig
    clock: ClockConfig
    shutdown: ShutdownConfig
    services: ServicesConfig
    risk: RiskConfig
    symbols: tuple[SymbolConfig, ...]
    accounts: tuple[AccountConfig, ...]
    nats: NatsConfig = NatsConfig()
    redis: RedisConfig = RedisConfig()
    shard: ShardConfig = ShardConfig()
    # The shard map named by shard.map, loaded and checked against this config (None: no map).
    shard_map: ShardMap | None = None
    # Where the values came from: the file given, or the defaults file.
    source: str = ""

    @property
    def data_dir(self) -> Path:
        return Path(self.process.data_dir)

    def symbol_index(self) -> dict[str, int]:
        return {s.name: i for i, s in enumerate(self.symbols)}

    def account(self, account_id: int) -> AccountConfig | None:
        for a in self.accounts:
            if a.id == account_id:
                return a
        return None

    def with_data_dir(self, data_dir: str | Path) -> Config:
        process = dataclasses.replace(self.process, data_dir=str(data_dir))
        return dataclasses.replace(self, process=process)


_SECTIONS: dict[str, type[Any]] = {
    "process": ProcessConfig,
    "gateway": GatewayConfig,
    "http": HttpConfig,
    "queues": QueueConfig,
    "batch": BatchConfig,
    "journal": JournalConfig,
    "clock": ClockConfig,
    "shutdown": ShutdownConfig,
    "services": ServicesConfig,
    "risk": RiskConfig,
    "nats": NatsConfig,
    "redis": RedisConfig,
    "shard": ShardConfig,
}
_LISTS: dict[str, type[Any]] = {"symbols": SymbolConfig, "accounts": AccountConfig}

T = TypeVar("T")


def _type_error(want: Any, value: Any) -> str | None:
    """Why `value` is not of the annotated type `want`, or None."""
    origin = typing.get_origin(want)
    if origin is tuple:
        if not isinstance(value, list):
            return "must be a list"
        (item, _) = typing.get_args(want)
        if any(_type_error(item, v) is not None for v in value):
            return f"must be a list of {item.__name__} values"
        return None
    if want is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if want is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be an integer"
    if want is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if want is str:
        return None if isinstance(value, str) else "must be a string"
    raise TypeError(f"unsupported config type {want!r}")  # a bug in this module, not input


def _build(cls: type[T], raw: Mapping[str, Any], key: str, origin: Callable[[str], str]) -> T:
    """Check `raw` against dataclass `cls` (the table at `key`) and build it."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}  # type: ignore[arg-type]
    for name in raw:
        if name not in fields:
            raise ConfigError(origin(f"{key}.{name}"), f"{key}.{name}", "unknown key")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        path = f"{key}.{name}"
        if name not in raw:
            if f.default is not dataclasses.MISSING:
                values[name] = f.default
                continue
            raise ConfigError(origin(path), path, "missing")
        value = raw[name]
        if (msg := _type_error(hints[name], value)) is not None:
            raise ConfigError(origin(path), path, msg)
        if isinstance(value, list):
            value = tuple(value)
        if hints[name] is float:
            value = float(value)
        check: Check | None = f.metadata.get("check")
        if check is not None and (msg := check(value)) is not None:
            raise ConfigError(origin(path), path, msg)
        values[name] = value
    return cls(**values)


def _merge(defaults: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _has(tree: Mapping[str, Any], path: str) -> bool:
    node: Any = tree
    for part in path.replace("[", ".").replace("]", "").split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return False
    return True


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), "", f"not valid TOML: {e}") from None


def load(path: str | Path | None = None) -> Config:
    """The configuration: defaults overlaid with `path` (None: defaults only)."""
    defaults = _read(DEFAULT_FILE)
    overlay = _read(Path(path)) if path is not None else {}
    file = str(path) if path is not None else str(DEFAULT_FILE)

    def origin(key: str) -> str:
        """The file a key's value came from (a list comes whole from one file)."""
        top = key.split(".")[0].split("[")[0]
        found = top in overlay if top in _LISTS else _has(overlay, key)
        return file if path is not None and found else str(DEFAULT_FILE)

    for name in overlay:
        if name not in _SECTIONS and name not in _LISTS:
            raise ConfigError(file, name, "unknown section")
    raw = _merge(defaults, overlay)
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(origin(name), name, "must be a table")
        sections[name] = _build(cls, table, name, origin)
    lists: dict[str, Any] = {}
    for name, cls in _LISTS.items():
        items = raw.get(name, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ConfigError(origin(name), name, "must be an array of tables ([[...]])")
        lists[name] = tuple(
            _build(cls, item, f"{name}[{i}]", origin) for i, item in enumerate(items)
        )
    config = Config(**sections, **lists, source=file)
    _check_whole(config, origin)
    if config.shard.map:
        from engine.shardmap import attach  # it builds on this module

        config = attach(config, origin)
    return config


def _check_whole(config: Config, origin: Callable[[str], str]) -> None:
    """Checks across keys."""
    if not config.symbols:
        raise ConfigError(origin("symbols"), "symbols", "at least one symbol is needed")
    seen: set[str] = set()
    for i, s in enumerate(config.symbols):
        key = f"symbols[{i}]"
        if s.name in seen:
            raise ConfigError(origin(key), f"{key}.name", f"duplicate symbol {s.name!r}")
        seen.add(s.name)
        if s.min_price > s.max_price:
            raise ConfigError(origin(key), f"{key}.min_price", "must be <= max_price")
        if s.min_price % s.tick_size or s.max_price % s.tick_size:
            raise ConfigError(
                origin(key), f"{key}.tick_size", "min_price and max_price must be multiples of it"
            )
        if s.min_qty > s.max_order_qty:
            raise ConfigError(origin(key), f"{key}.min_qty", "must be <= max_order_qty")
        if s.price_band_bps and s.price_band_ticks:
            raise ConfigError(
                origin(key), f"{key}.price_band_ticks", "set price_band_bps or this, not both"
            )
        if s.market_band_bps and s.market_band_ticks:
            raise ConfigError(
                origin(key), f"{key}.market_band_ticks", "set market_band_bps or this, not both"
            )
    if config.risk.rate_burst and not config.risk.rate_per_sec:
        raise ConfigError(origin("risk.rate_burst"), "risk.rate_burst", "needs risk.rate_per_sec")
    ids: set[int] = set()
    for i, a in enumerate(config.accounts):
        key = f"accounts[{i}]"
        if a.id in ids:
            raise ConfigError(origin(key), f"{key}.id", f"duplicate account {a.id}")
        ids.add(a.id)
        own = a.limits(config.risk)
        if own is not None and own["rate_burst"] and not own["rate_per_sec"]:
            raise ConfigError(origin(key), f"{key}.rate_burst", "needs a rate_per_sec")
    if config.http.enabled and config.http.port != 0 and config.http.port == config.gateway.port:
        raise ConfigError(origin("http.port"), "http.port", "must differ from gateway.port")
