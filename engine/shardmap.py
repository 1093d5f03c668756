"""The host's shard map: which shard serves which symbols, where, on which cores.

One TOML file per host (e.g. /etc/cift-engine/shards.toml) lists every shard on it:

    [[shards]]
    name = "eq-a"                   # the systemd instance, cift-engine@eq-a
    gateway = "10.0.0.5:7101"       # where clients reach its TCP order entry
    http = "10.0.0.5:9201"          # its HTTP endpoint (status, book, /shards)
    cores = [2, 3]                  # the cores it is pinned to ([] = not pinned)
    symbols = ["AAPL", "MSFT"]

A shard's config names itself and the map (`[shard] name`, `[shard] map`); `engine.config.load`
then checks the shard against the map (`attach`), so a mistake stops `run` and `check-config`
with a `ConfigError` naming the file and the key. Clients route by symbol with `ShardMap.owner`
(engine/router.py, the CLI's `--shard-map`); a daemon serves the map it started with at
`GET /shards` (discovery). `pinned_cores` is what the daemon pins itself to; `host_warnings` what
it logs about isolation. docs/operations.md, "Sharding", has the rules in prose.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from engine.config import ConfigError
from engine.hostinfo import Host, format_cpulist

if TYPE_CHECKING:
    from engine.config import Config

__all__ = [
    "SHARD_NAME",
    "Address",
    "Shard",
    "ShardMap",
    "UnknownSymbolError",
    "attach",
    "fetch_map",
    "host_warnings",
    "inherited_mismatch",
    "instance_mismatch",
    "load_map",
    "parse_map",
    "pinned_cores",
]

SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
"""A shard name: a systemd instance name without escaping (letters, digits, - and _)."""

_SHARD_KEYS = {"name", "gateway", "http", "cores", "symbols"}


class UnknownSymbolError(LookupError):
    """No shard in the map serves this symbol (refused before anything is sent)."""

    def __init__(self, symbol: str, source: str) -> None:
        super().__init__(f"no shard serves symbol {symbol!r} (shard map {source})")
        self.symbol = symbol
        self.source = source


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """``host:port`` or ``[v6]:port``; ValueError when it is neither."""
        host, sep, port = text.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not HOST:PORT")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Shard:
    name: str
    gateway: Address
    http: Address
    cores: frozenset[int]
    symbols: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "gateway": str(self.gateway),
            "http": str(self.http),
            "cores": sorted(self.cores),
            "symbols": list(self.symbols),
        }


@dataclass(frozen=True)
class ShardMap:
    source: str  # the file (or the http://... address) it was read from
    shards: tuple[Shard, ...]

    def owner(self, symbol: str) -> Shard:
        """The shard serving `symbol`; UnknownSymbolError when none does."""
        for shard in self.shards:
            if symbol in shard.symbols:
                return shard
        raise UnknownSymbolError(symbol, self.source)

    def shard(self, name: str) -> Shard | None:
        return next((s for s in self.shards if s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"shards": [s.to_json() for s in self.shards]}


def parse_map(raw: Mapping[str, Any], source: str) -> ShardMap:
    """A map from its TOML (or JSON) tree; ConfigError naming `source` and the key."""

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(source, key, message)

    for key in raw:
        if key != "shards":
            raise fail(key, "unknown key (the map is a list of [[shards]])")
    items = raw.get("shards")
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise fail("shards", "must be a non-empty array of tables ([[shards]])")
    shards = [_parse_shard(item, f"shards[{i}]", fail) for i, item in enumerate(items)]
    _check_disjoint(shards, fail)
    return ShardMap(source, tuple(shards))


def _parse_shard(
    item: Mapping[str, Any], key: str, fail: Callable[[str, str], ConfigError]
) -> Shard:
    for name in item:
        if name not in _SHARD_KEYS:
            raise fail(f"{key}.{name}", "unknown key")
    for name in ("name", "gateway", "http", "symbols"):
        if name not in item:
            raise fail(f"{key}.{name}", "missing")
    name = item["name"]
    if not isinstance(name, str) or not SHARD_NAME.match(name):
        raise fail(f"{key}.name", "must be 1..64 letters, digits, - and _ (not first)")
    addresses = {}
    for field in ("gateway", "http"):
        try:
            if not isinstance(item[field], str):
                raise ValueError("must be a string")
            addresses[field] = Address.parse(item[field])
        except ValueError as e:
            raise fail(f"{key}.{field}", f"{e} (HOST:PORT)") from None
    cores = item.get("cores", [])
    if not isinstance(cores, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in cores
    ):
        raise fail(f"{key}.cores", "must be a list of CPU ids (integers >= 0)")
    symbols = item["symbols"]
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise fail(f"{key}.symbols", "must be a non-empty list of symbol names")
    if len(set(symbols)) != len(symbols):
        raise fail(f"{key}.symbols", "lists a symbol twice")
    return Shard(name, addresses["gateway"], addresses["http"], frozenset(cores), tuple(symbols))


def _check_disjoint(shards: list[Shard], fail: Callable[[str, str], ConfigError]) -> None:
    """No shard name, symbol, core or gateway address belongs to two shards."""
    for j, b in enumerate(shards):
        for i, a in enumerate(shards[:j]):
            key = f"shards[{j}]"
            if a.name == b.name:
                raise fail(f"{key}.name", f"shard {b.name} is listed twice")
            if shared := set(a.symbols) & set(b.symbols):
                raise fail(
                    f"{key}.symbols",
                    f"{', '.join(sorted(shared))} owned by two shards: {a.name} (shards[{i}]) "
                    f"and {b.name}",
                )
            if shared_cores := a.cores & b.cores:
                raise fail(
                    f"{key}.cores",
                    f"shards {a.name} (shards[{i}]) and {b.name} share cores "
                    f"{format_cpulist(shared_cores)}",
                )
            if a.gateway == b.gateway:
                raise fail(f"{key}.gateway", f"{b.gateway} is also shard {a.name}'s")
            if a.http == b.http:
                raise fail(f"{key}.http", f"{b.http} is also shard {a.name}'s")


def load_map(path: str | Path) -> ShardMap:
    """Read and check a map file; ConfigError naming the file (and key) when it is wrong."""
    try:
        with Path(path).open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "shard map not found") from None
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read the shard map: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), "", f"not valid TOML: {e}") from None
    return parse_map(raw, str(path))


def fetch_map(http: str, timeout: float = 5.0) -> ShardMap:
    """The map a running shard serves at `GET /shards` on its HTTP endpoint (HOST:PORT):
    discovery. ConfigError naming the URL when no shard answers or it has no map."""
    url = f"http://{http}/shards"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            raw = orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        raise ConfigError(url, "", e.read().decode().strip() or str(e)) from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ConfigError(url, "", f"no shard answers ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(url, "", "not a shard map")
    return parse_map({"shards": raw.get("shards")}, url)


# ---------------------------------------------------------------- a shard's config vs the map


def _names(symbols: Iterable[str]) -> str:
    return ", ".join(sorted(symbols)) or "none"


def attach(config: Config, origin: Callable[[str], str], online: set[int] | None = None) -> Config:
    """`config` with its shard map loaded and checked against it (called by `config.load` when
    `shard.map` is set). Raises ConfigError: the map itself is wrong (its file and key), or this
    shard does not match it (the config's file and key): name not in the map, other symbols,
    other ports, cores not the map's, or cores not online on this host (`online`: this host's,
    from /sys; None = read them)."""
    path = Path(config.shard.map)
    if not path.is_absolute():  # relative to the directory of the config file that set it
        path = Path(origin("shard.map")).parent / path
    if not config.shard.name:
        raise ConfigError(origin("shard.map"), "shard.name", "needed with shard.map")
    shard_map = load_map(path)
    me = shard_map.shard(config.shard.name)
    if me is None:
        raise ConfigError(
            origin("shard.name"),
            "shard.name",
            f"shard {config.shard.name!r} is not in the shard map {path} "
            f"(it lists {', '.join(s.name for s in shard_map.shards)})",
        )
    mine = {s.name for s in config.symbols}
    if mine != set(me.symbols):
        raise ConfigError(
            origin("symbols"),
            "symbols",
            f"differ from shard {me.name}'s in the shard map {path}: only in this config: "
            f"{_names(mine - set(me.symbols))}; only in the map: {_names(set(me.symbols) - mine)}",
        )
    ports = (
        ("gateway.port", config.gateway.port, me.gateway),
        ("http.port", config.http.port, me.http),
    )
    for key, port, address in ports:
        if key == "http.port" and not config.http.enabled:
            continue
        if port != address.port:
            raise ConfigError(
                origin(key),
                key,
                f"{port} is not the port the shard map {path} gives shard {me.name} ({address})",
            )
    affinity = set(config.process.cpu_affinity)
    if me.cores and not affinity <= me.cores:
        raise ConfigError(
            origin("process.cpu_affinity"),
            "process.cpu_affinity",
            f"CPUs {format_cpulist(affinity - me.cores)} are not among shard {me.name}'s cores "
            f"{format_cpulist(me.cores)} in the shard map {path}",
        )
    for other in shard_map.shards:
        if other is not me and affinity & other.cores:
            raise ConfigError(
                origin("process.cpu_affinity"),
                "process.cpu_affinity",
                f"CPUs {format_cpulist(affinity & other.cores)} belong to shard {other.name} "
                f"in the shard map {path}",
            )
    online = Host().online_cpus() if online is None else online
    if online is not None:
        for i, shard in enumerate(shard_map.shards):
            if offline := shard.cores - online:
                raise ConfigError(
                    str(path),
                    f"shards[{i}].cores",
                    f"shard {shard.name}: cores {format_cpulist(offline)} are not online on "
                    f"this host (online: {format_cpulist(online)})",
                )
    return dataclasses.replace(config, shard_map=shard_map)


def pinned_cores(config: Config) -> tuple[int, ...]:
    """The CPUs the daemon pins itself to: `process.cpu_affinity`, else its cores in the shard
    map, else none (not pinned)."""
    if config.process.cpu_affinity:
        return config.process.cpu_affinity
    me = config.shard_map.shard(config.shard.name) if config.shard_map is not None else None
    return tuple(sorted(me.cores)) if me is not None else ()


def host_warnings(config: Config, host: Host | None = None) -> list[str]:
    """What a shard should be told at start about its placement on this host: not pinned, or
    pinned to cores the kernel does not keep for it (isolcpus / nohz_full)."""
    host = host or Host()
    cores = set(pinned_cores(config))
    shard = f"shard {config.shard.name}" if config.shard.name else "this process"
    if not cores:
        if config.shard.name:
            return [
                f"{shard} is not pinned (process.cpu_affinity and its cores in the shard map "
                "are empty): it may run on any CPU, other shards' included"
            ]
        return []
    isolated = host.cpulist("/sys/devices/system/cpu/isolated")
    nohz = host.cpulist("/sys/devices/system/cpu/nohz_full")
    warnings = []
    if isolated is not None and cores - isolated:
        warnings.append(
            f"{shard} runs without isolation: cores {format_cpulist(cores - isolated)} are not "
            f"isolated (isolcpus: {format_cpulist(isolated) or 'none'}); other tasks may run on "
            "them (docs/operations.md, cift-engine doctor)"
        )
    if nohz is not None and cores - nohz:
        warnings.append(
            f"{shard}: cores {format_cpulist(cores - nohz)} keep the scheduler tick "
            f"(nohz_full: {format_cpulist(nohz) or 'none'})"
        )
    return warnings


def inherited_mismatch(config: Config, inherited: set[int], cores: set[int]) -> str | None:
    """A shard started pinned (systemd's CPUAffinity=, taskset) to CPUs other than its cores:
    what to log, or None. Not pinned at start (every online CPU) is no disagreement."""
    online = Host().online_cpus()
    if not config.shard.name or not cores or inherited in (cores, online):
        return None
    return (
        f"shard {config.shard.name} was started pinned to CPUs {format_cpulist(inherited)} "
        f"(systemd CPUAffinity=?) but its cores are {format_cpulist(cores)}: pinned to "
        f"{format_cpulist(cores)}"
    )


def instance_mismatch(config: Config) -> str | None:
    """Why this process must not start as the systemd instance it runs as (CIFT_SHARD, set by
    cift-engine@.service), or None: a config naming another shard was given to this instance."""
    instance = os.environ.get("CIFT_SHARD", "").strip()
    if instance and config.shard.name and instance != config.shard.name:
        return (
            f"shard.name {config.shard.name!r} in {config.source} but this is the systemd "
            f"instance {instance!r} (cift-engine@{instance})"
        )
    return None
