"""`cift-engine` (and `python -m engine`): run the daemon, check a config, talk to a daemon.

    cift-engine run [--config FILE] [--data-dir DIR]
    cift-engine check-config FILE
    cift-engine order SYMBOL buy|sell QTY [PRICE] [--type ...] [--tif ...] ...
    cift-engine cancel SYMBOL (--order-id N | --client-id N)
    cift-engine book SYMBOL [--depth N] [--watch SECONDS]
    cift-engine risk show ACCOUNT
    cift-engine status
    cift-engine shards [--shard-map FILE | --http HOST:PORT]
    cift-engine journal verify|stats DATA_DIR
    cift-engine journal dump DATA_DIR [--from SEQ] [--limit N]
    cift-engine journal replay DATA_DIR [--config FILE] [--digest] [--from-scratch] [--events PATH]

Every command takes `--json` (machine-readable output). The talking commands find the daemon
from `--config`/`--data-dir` (the ports it bound, from DATA_DIR/daemon.json, else the configured
ones) unless `--host`/`--port`/`--http` say where. With a shard map (`--shard-map FILE`, or
$CIFT_SHARD_MAP when no --config/--data-dir is given) order, cancel and book go to the shard
serving the symbol, status to every shard (or `--shard NAME`). Exit codes: 0 ok, 1 failure (a
rejected order, a daemon that failed), 2 bad usage or configuration (an unknown symbol).
"""

from __future__ import annotations

import argparse
import asyncio
import decimal
import importlib
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import Any

import orjson

from engine import config as cfg
from engine.protocol import Report
from engine.shardmap import Shard, ShardMap, UnknownSymbolError

__all__ = ["main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="the daemon's config file (to find its ports)")
    p.add_argument("--data-dir", help="the daemon's data directory (to find its ports)")


def _session(p: argparse.ArgumentParser) -> None:
    _where(p)
    p.add_argument("--host", help="gateway host (default: from the config)")
    p.add_argument("--port", type=int, help="gateway port (default: from the config)")
    p.add_argument("--account", type=int, default=1, help="account id (default 1)")
    p.add_argument("--token", default="demo", help="logon token (default 'demo')")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the engine")


def _http(p: argparse.ArgumentParser) -> None:
    _where(p)
    p.add_argument("--http", help="HOST:PORT of the daemon's HTTP endpoint (default: from config)")


def _routed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard-map",
        help="the host's shard map: go to the shard serving the symbol (default: $CIFT_SHARD_MAP "
        "unless --config or --data-dir is given)",
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="cift-engine",
        description="The CIFT order-matching engine.",
        epilog="more commands (each with its own --help): " + ", ".join(sorted(_DELEGATED)),
    )
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the daemon (embedded defaults without --config)")
    p.add_argument("--config", help="TOML config file (overrides config/default.toml)")
    p.add_argument("--data-dir", help="data directory (overrides process.data_dir)")

    p = sub.add_parser("check-config", help="validate a config file without starting")
    p.add_argument("file")
    _common(p)

    p = sub.add_parser("order", help="send one order and print its reports")
    p.add_argument("symbol")
    p.add_argument("side", choices=["buy", "sell"])
    p.add_argument("qty", type=int)
    p.add_argument(
        "price",
        nargs="?",
        default="0",
        help="limit price: 150.25 (decimal, the symbol's display precision) or 15025 (integer "
        "price units)",
    )
    p.add_argument(
        "--type", default="limit", choices=["limit", "market", "stop-market", "stop-limit"]
    )
    p.add_argument("--tif", default=None, choices=["gtc", "day", "gtd", "ioc", "fok"])
    p.add_argument("--stop-price", default="0", help="trigger price (decimal or integer units)")
    p.add_argument("--display-qty", type=int, default=0, help="iceberg display size")
    p.add_argument("--expire-ts", type=int, default=0, help="GTD expiry (ns since the epoch)")
    p.add_argument("--post-only", action="store_true")
    p.add_argument(
        "--stp",
        default="none",
        choices=["none", "cancel-incoming", "cancel-resting", "cancel-both", "decrement-cancel"],
    )
    p.add_argument("--client-id", type=int, default=0, help="client order id (default: none)")
    _session(p)
    _routed(p)
    _common(p)

    p = sub.add_parser("cancel", help="cancel one order and print the result")
    p.add_argument("symbol")
    p.add_argument("--order-id", type=int, default=0)
    p.add_argument("--client-id", type=int, default=0)
    _session(p)
    _routed(p)
    _common(p)

    p = sub.add_parser("book", help="L2 depth of a symbol as a table")
    p.add_argument("symbol")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--watch", type=float, default=0.0, help="refresh every N seconds (Ctrl-C)")
    _http(p)
    _routed(p)
    _common(p)

    p = sub.add_parser("status", help="symbols, sessions, queue depths, orders/s")
    _http(p)
    _routed(p)
    p.add_argument("--shard", help="with a shard map: only this shard (default: every shard)")
    _common(p)

    p = sub.add_parser("risk", help="the risk engine's view of an account")
    rsub = p.add_subparsers(dest="risk_command", required=True)
    r = rsub.add_parser("show", help="limits, usage, positions and P&L, live orders")
    r.add_argument("account", type=int)
    _http(r)
    _common(r)

    p = sub.add_parser("journal", help="inspect, verify and replay a data directory offline")
    jsub = p.add_subparsers(dest="journal_command", required=True)
    j = jsub.add_parser("verify", help="check every journal record and snapshot (exit 1: damage)")
    j.add_argument("data_dir")
    _common(j)
    j = jsub.add_parser("stats", help="files, records, commands, sequence range, snapshots")
    j.add_argument("data_dir")
    _common(j)
    j = jsub.add_parser("dump", help="one line per journaled command")
    j.add_argument("data_dir")
    j.add_argument("--from", dest="from_seq", type=int, default=1, help="first seq (default 1)")
    j.add_argument("--limit", type=int, default=0, help="at most N commands (0: all)")
    _common(j)
    j = jsub.add_parser("replay", help="rebuild the books offline, print the state digest")
    j.add_argument("data_dir")
    j.add_argument("--config", help="the daemon's config file (its symbols; default: built in)")
    j.add_argument("--digest", action="store_true", help="print the state digest")
    j.add_argument("--from-scratch", action="store_true", help="ignore snapshots: the journal only")
    j.add_argument("--events", help="write the replay's event records, concatenated, to PATH")
    _common(j)
    return ap


# ---------------------------------------------------------------- finding the daemon


def _load(args: argparse.Namespace) -> cfg.Config:
    config = cfg.load(args.config)
    if getattr(args, "data_dir", None):
        config = config.with_data_dir(args.data_dir)
    return config


def _runtime(config: cfg.Config) -> dict[str, Any]:
    from engine.daemon import RUNTIME_FILE

    try:
        info: dict[str, Any] = orjson.loads((config.data_dir / RUNTIME_FILE).read_bytes())
        return info
    except (OSError, ValueError):
        return {}


def _shard_map(args: argparse.Namespace) -> ShardMap | None:
    """The shard map to route by: --shard-map, else $CIFT_SHARD_MAP unless the command names a
    daemon (--config, --data-dir, --host, --port, --http). ConfigError when it is wrong."""
    import os

    from engine.shardmap import load_map

    path = getattr(args, "shard_map", None)
    named = any(getattr(args, k, None) for k in ("config", "data_dir", "host", "port", "http"))
    if path is None and not named:
        path = os.environ.get("CIFT_SHARD_MAP") or None
    return load_map(path) if path else None


def _owner(args: argparse.Namespace) -> Shard | None:
    """The shard serving args.symbol when routing by a map (--host/--port/--http win)."""
    if any(getattr(args, k, None) for k in ("host", "port", "http")):
        return None
    shard_map = _shard_map(args)
    return shard_map.owner(args.symbol) if shard_map is not None else None


def _gateway_address(args: argparse.Namespace) -> tuple[str, int]:
    if (shard := _owner(args)) is not None:
        return shard.gateway.host, shard.gateway.port
    config = _load(args)
    port = args.port or _runtime(config).get("gateway_port") or config.gateway.port
    return args.host or config.gateway.host, int(port)


def _http_address(args: argparse.Namespace) -> str:
    if args.http:
        return str(args.http)
    if getattr(args, "symbol", None) and (shard := _owner(args)) is not None:
        return str(shard.http)
    config = _load(args)
    port = _runtime(config).get("http_port") or config.http.port
    return f"{config.http.host}:{port}"


def _get(address: str, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as r:
            return orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        raise SystemExit(f"error: {e.read().decode().strip() or e}") from None
    except (urllib.error.URLError, OSError) as e:
        raise SystemExit(f"error: no daemon at http://{address} ({e})") from None


# ---------------------------------------------------------------- output


def _price(p: int, precision: int) -> str:
    if precision == 0:
        return str(p)
    sign = "-" if p < 0 else ""
    whole, frac = divmod(abs(p), 10**precision)
    return f"{sign}{whole}.{frac:0{precision}d}"


def _describe(r: Report, precision: int) -> str:
    px = _price(r.price, precision)
    ids = f"order {r.order_id}" + (f" (client {r.client_order_id})" if r.client_order_id else "")
    if r.kind == "ack":
        stop = f" stop {_price(r.stop_price, precision)}" if r.is_stop else ""
        return f"accepted   {r.symbol} {ids}: {r.side} {r.qty} @ {px}{stop}"
    if r.kind == "reject":
        return f"rejected   {r.symbol} {ids}: {r.code} {r.text}"
    if r.kind == "fill":
        role = "taker" if r.aggressor else "maker"
        return (
            f"filled     {r.symbol} {ids}: {r.side} {r.qty} @ {px} ({role}, trade {r.trade_id}),"
            f" {r.leaves} open"
        )
    if r.kind == "cancelled":
        return f"cancelled  {r.symbol} {ids}: {r.qty} ({r.reason}), {r.leaves} open"
    if r.kind == "replaced":
        return f"replaced   {r.symbol} {ids}: {r.qty} @ {px}"
    if r.kind == "triggered":
        return f"triggered  {r.symbol} {ids}: {r.side} {r.qty} @ {px}"
    if r.kind == "logout":
        return f"logout     {r.code} {r.text}"
    return f"{r.kind}"


def _report_json(r: Report) -> dict[str, Any]:
    d = asdict(r)
    d.pop("symbols", None)
    return d


# ---------------------------------------------------------------- commands


async def _send_and_collect(args: argparse.Namespace, send: Any) -> int:
    from engine.client import Client, ClosedError, LogonError

    host, port = _gateway_address(args)
    try:
        client = await Client.connect(host, port, args.account, args.token, timeout=args.timeout)
    except LogonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: no daemon at {host}:{port} ({e})", file=sys.stderr)
        return 1
    async with client:
        precision = {n: s.price_precision for n, s in client.symbols.items()}
        try:
            match = await send(client)
            first = await client.wait_until(match, args.timeout)
            # Everything else this command caused was written with its first report; a
            # heartbeat round trip collects it.
            reports = first + await client.sync(args.timeout)
            await client.logout(args.timeout)
        except (TimeoutError, ClosedError) as e:
            print(f"error: {e or 'no answer from the engine'}", file=sys.stderr)
            return 1
    shown = [r for r in reports if r.kind not in ("heartbeat", "logout")]
    if args.json:
        print(json.dumps([_report_json(r) for r in shown], indent=2))
    else:
        for r in shown:
            print(_describe(r, precision.get(r.symbol, 0)))
    return 1 if any(r.kind == "reject" for r in shown) else 0


def parse_price(text: str, precision: int) -> int:
    """A price typed by a person: "150.25" is a decimal in the symbol's display precision
    (15025 at precision 2); "15025", without a point, is already in integer price units."""
    if "." not in text:
        return int(text)
    d = decimal.Decimal(text)
    units = d.scaleb(precision)
    if units != units.to_integral_value():
        raise ValueError(f"{text} has more than {precision} decimals")
    return int(units)


def _precision(args: argparse.Namespace) -> int:
    """The symbol's display precision (to read "150.25"): from the config, else (a sharded
    symbol the local config does not list) from the serving shard's /book."""
    config = _load(args)
    found = next((s.price_precision for s in config.symbols if s.name == args.symbol), None)
    if found is None and _owner(args) is not None:
        found = int(_get(_http_address(args), f"/book/{args.symbol}?depth=1")["price_precision"])
    return found or 0


def _order(args: argparse.Namespace) -> int:
    tif = args.tif or ("ioc" if args.type in ("market", "stop-market") else "gtc")
    precision = _precision(args)
    try:
        price = parse_price(args.price, precision)
        stop_price = parse_price(args.stop_price, precision)
    except (ValueError, decimal.InvalidOperation) as e:
        print(f"error: bad price: {e}", file=sys.stderr)
        return 2

    async def send(client: Any) -> Any:
        cid = await client.new_order(
            args.symbol,
            args.side,
            args.qty,
            price,
            client_order_id=args.client_id or 0,
            ord_type=args.type,
            tif=tif,
            stop_price=stop_price,
            display_qty=args.display_qty,
            expire_ts=args.expire_ts,
            stp=args.stp,
            post_only=args.post_only,
        )
        # This session sends one order: its first ack or reject is the answer.
        return lambda r: r.client_order_id == cid and r.kind in ("ack", "reject")

    return asyncio.run(_send_and_collect(args, send))


def _cancel(args: argparse.Namespace) -> int:
    if not args.order_id and not args.client_id:
        print("error: give --order-id or --client-id", file=sys.stderr)
        return 2

    async def send(client: Any) -> Any:
        await client.cancel(args.symbol, args.order_id, args.client_id)

        def match(r: Report) -> bool:
            ours = r.order_id == args.order_id if args.order_id else True
            return ours and r.kind in ("cancelled", "reject")

        return match

    return asyncio.run(_send_and_collect(args, send))


def _book_table(d: dict[str, Any]) -> str:
    p = int(d["price_precision"])
    bids, asks = d["bids"], d["asks"]
    lines = [
        f"{d['symbol']}   last {_price(d['last_price'], p) if d['last_price'] else '-'}",
        f"{'orders':>7} {'qty':>10} {'bid':>12} | {'ask':<12} {'qty':<10} {'orders':<7}",
    ]
    for i in range(max(len(bids), len(asks), 1)):
        left = (
            f"{bids[i][2]:>7} {bids[i][1]:>10} {_price(bids[i][0], p):>12}"
            if i < len(bids)
            else " " * 31
        )
        right = (
            f"{_price(asks[i][0], p):<12} {asks[i][1]:<10} {asks[i][2]:<7}" if i < len(asks) else ""
        )
        lines.append(f"{left} | {right}".rstrip())
    return "\n".join(lines)


def _book(args: argparse.Namespace) -> int:
    import time

    address = _http_address(args)
    while True:
        d = _get(address, f"/book/{args.symbol}?depth={args.depth}")
        if args.json:
            print(json.dumps(d))
        else:
            if args.watch:
                print("\x1b[2J\x1b[H", end="")
            print(_book_table(d))
        if not args.watch:
            return 0
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0


def _status_shards(args: argparse.Namespace, shard_map: ShardMap) -> int:
    """`status` with a shard map: every shard's (or --shard NAME's), one after another."""
    shards = [s for s in shard_map.shards if not args.shard or s.name == args.shard]
    if not shards:
        print(f"error: no shard {args.shard} in {shard_map.source}", file=sys.stderr)
        return 2
    out: dict[str, Any] = {}
    down = 0
    for shard in shards:
        if not args.json:
            print(f"{'' if shard is shards[0] else chr(10)}== shard {shard.name} ({shard.http})")
        try:
            d = _get(str(shard.http), "/status")
        except SystemExit as e:
            down += 1
            out[shard.name] = {"error": str(e.code)}
            if not args.json:
                print(e.code)
            continue
        out[shard.name] = d
        if not args.json:
            _status(argparse.Namespace(**{**vars(args), "http": str(shard.http)}))
    if args.json:
        print(json.dumps(out, indent=2))
    return 1 if down else 0


def _status(args: argparse.Namespace) -> int:
    if not args.http and (shard_map := _shard_map(args)) is not None:
        return _status_shards(args, shard_map)
    d = _get(_http_address(args), "/status")
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    g = d["gateway"]
    print(
        f"cift-engine {d['version']}  pid {d['pid']}  {d['state']}  up {d['uptime_s']:.0f} s  "
        f"gateway :{g['port']}{'  BACKPRESSURE' if g['backpressure'] else ''}"
    )
    print(
        f"orders/s {d['orders_per_s']:.1f}   sequenced {d['sequenced']}   "
        f"durable seq {d['durable_seq']}   state digest {d.get('state_digest', '-')}"
    )
    print(
        f"\n{'symbol':<10} {'state':<7} {'orders':>8} {'best bid':>14} {'best ask':>14} "
        f"{'last':>12}"
    )
    for s in d["symbols"]:
        p = s["price_precision"]

        def best(level: list[int] | None, prec: int = p) -> str:
            return f"{level[1]}@{_price(level[0], prec)}" if level else "-"

        last = _price(s["last_price"], p) if s["last_price"] else "-"
        print(
            f"{s['name']:<10} {s.get('state', 'open'):<7} {s['orders']:>8} "
            f"{best(s['best_bid']):>14} "
            f"{best(s['best_ask']):>14} {last:>12}"
        )
    print(f"\n{'queue':<16} {'state':<9} {'depth':>8} {'capacity':>9} {'batches':>9}")
    for q in d["queues"]:
        print(
            f"{q['actor']:<16} {q['state']:<9} {q['depth']:>8} {q['capacity']:>9} {q['batches']:>9}"
        )
    print(f"\nsessions: {len(d['sessions'])}")
    for s in d["sessions"]:
        print(
            f"  #{s['session']:<5} account {s['account']:<8} {s['peer']:<22} "
            f"in {s['bytes_in']} B  out {s['bytes_out']} B"
        )
    return 0


# ---------------------------------------------------------------- risk


def _limit(v: Any) -> str:
    return "-" if v is None else str(v)


def _risk_text(d: dict[str, Any]) -> str:
    usage = d["usage"]
    limits = usage["limits"] if usage is not None else d["default_limits"]
    lines = [f"account {d['account']}"]
    if usage is None:
        lines.append("  no activity yet (default limits)")
    else:
        own = "own" if usage["custom_limits"] else "default"
        lines.append(
            f"  enabled {usage['enabled']}   kill switch {usage['killed']}   limits: {own}"
        )
    lines.append(f"  {'limit':<24} {'value':>16} {'used':>16}")
    used = {
        "max_open_orders": "open_orders",
        "max_open_buy_notional": "open_buy_notional",
        "max_open_sell_notional": "open_sell_notional",
        "credit_limit": "credit_used",
        "rate_burst": "rate_tokens",
    }
    for key, value in limits.items():
        now = usage.get(used.get(key, ""), "") if usage is not None else ""
        label = "rate tokens left" if key == "rate_burst" else ""
        lines.append(f"  {key:<24} {_limit(value):>16} {now!s:>16} {label}".rstrip())
    if usage is not None:
        lines.append(f"  {'position_cost':<24} {'':>16} {usage['position_cost']!s:>16}")
    lines.append("")
    lines.append(
        f"  {'symbol':<10} {'net':>10} {'avg price':>12} {'mark':>12} {'realized':>14} "
        f"{'unrealized':>14} {'bought':>10} {'sold':>10} {'open buy':>9} {'open sell':>9}"
    )
    for p in d["positions"]:
        prec = int(p["price_precision"])
        avg = p["avg_price"]
        avg_text = f"{float(avg) / 10**prec:.{prec}f}" if avg is not None else "-"
        lines.append(
            f"  {p['symbol']:<10} {p['net_qty']:>10} {avg_text:>12} "
            f"{_price(int(p['mark_price']), prec):>12} {p['realized_pnl']!s:>14} "
            f"{p['unrealized_pnl']!s:>14} {p['bought']!s:>10} {p['sold']!s:>10} "
            f"{p['open_buy_qty']!s:>9} {p['open_sell_qty']!s:>9}"
        )
    if not d["positions"]:
        lines.append("  (no positions)")
    lines.append("")
    lines.append(f"  live orders: {len(d['orders'])}")
    for o in d["orders"]:
        side = _SIDES.get(int(o["side"]), "?")
        price = _price(int(o["price"]), int(o["price_precision"]))
        lines.append(
            f"    {o['symbol']:<10} #{o['order_id']:<10} {side:<4} {o['open']} @ {price}"
            f"  client {o['client_id']}{'  (in flight)' if o['in_flight'] else ''}"
        )
    lines.append("  (P&L and notionals in price units x quantity units)")
    return "\n".join(lines)


def _risk(args: argparse.Namespace) -> int:
    d = _get(_http_address(args), f"/risk/{args.account}")
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        print(_risk_text(d))
    return 0


# ---------------------------------------------------------------- journal (offline)

_CMD_KINDS = {
    1: "new",
    2: "cancel",
    3: "amend",
    4: "mass_cancel",
    5: "advance_time",
    6: "admin",
}
_SIDES = {0: "-", 1: "buy", 2: "sell"}


def _journal(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine._native import JournalCorrupt

    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        print(f"error: {data_dir}: no such data directory", file=sys.stderr)
        return 2
    try:
        return _JOURNAL[args.journal_command](args, data_dir)
    except JournalCorrupt as e:
        if args.json:
            print(json.dumps({"ok": False, "error": str(e)}))
        else:
            print(f"journal damaged: {e}", file=sys.stderr)
            print('see docs/durability.md, "When verify reports corruption"', file=sys.stderr)
        return 1


def _snapshot_report(data_dir: Any) -> list[dict[str, Any]]:
    from engine.recovery import SNAPSHOT_DIR
    from engine.snapshot import Snapshot, SnapshotError, list_snapshots

    out: list[dict[str, Any]] = []
    for seq, path in list_snapshots(data_dir / SNAPSHOT_DIR):
        try:
            Snapshot.decode(path.read_bytes())
            out.append({"seq": seq, "file": path.name, "bytes": path.stat().st_size, "ok": True})
        except (OSError, SnapshotError) as e:
            out.append({"seq": seq, "file": path.name, "ok": False, "error": str(e)})
    return out


def _journal_verify(args: argparse.Namespace, data_dir: Any) -> int:
    from engine._native import journal_scan
    from engine.recovery import JOURNAL_DIR

    scan: dict[str, Any] = dict(journal_scan(data_dir / JOURNAL_DIR))
    snaps = _snapshot_report(data_dir)
    bad = [s for s in snaps if not s["ok"]]
    newest_ok = max((s["seq"] for s in snaps if s["ok"]), default=0)
    first = scan["first_seq"]
    gap = first is not None and first > newest_ok + 1
    ok = not gap
    if args.json:
        print(json.dumps({"ok": ok, "journal": scan, "snapshots": snaps, "gap": gap}))
        return 0 if ok else 1
    print(
        f"journal: {scan['files']} files, {scan['records']} records, {scan['commands']} commands,"
        f" seq {first or '-'}..{scan['next_seq'] - 1}, {scan['bytes']} bytes: checksums ok"
    )
    torn = scan["torn"]
    if torn is not None:
        print(
            f"torn tail: {torn['bytes']} bytes at {torn['path']}:{torn['offset']} (never "
            "acknowledged; the next start truncates it)"
        )
    for s in snaps:
        print(f"snapshot {s['file']}: " + ("ok" if s["ok"] else f"UNREADABLE ({s['error']})"))
    if bad:
        print(f"{len(bad)} unreadable snapshot(s): the next start skips them")
    if gap:
        print(
            f"MISSING: the journal starts at seq {first}, the newest readable snapshot covers "
            f"only {newest_ok}",
            file=sys.stderr,
        )
    return 0 if ok else 1


def _journal_stats(args: argparse.Namespace, data_dir: Any) -> int:
    from engine._native import journal_scan
    from engine.recovery import JOURNAL_DIR, journal_files

    scan: dict[str, Any] = dict(journal_scan(data_dir / JOURNAL_DIR))
    records = scan["records"] or 0
    d: dict[str, Any] = {
        **scan,
        "commands_per_record": round(scan["commands"] / records, 2) if records else 0.0,
        "journal_files": [p.name for _, p in journal_files(data_dir / JOURNAL_DIR)],
        "snapshots": _snapshot_report(data_dir),
    }
    if args.json:
        print(json.dumps(d))
        return 0
    print(
        f"files {d['files']}  records {records}  commands {d['commands']}  bytes {d['bytes']}\n"
        f"seq {d['first_seq'] or '-'}..{d['next_seq'] - 1}  "
        f"commands per record (group commit) {d['commands_per_record']}"
    )
    for s in d["snapshots"]:
        print(f"snapshot seq {s['seq']}  {s.get('bytes', '-')} bytes  {'ok' if s['ok'] else 'BAD'}")
    return 0


def _journal_dump(args: argparse.Namespace, data_dir: Any) -> int:
    import struct

    from engine._native import JournalReader
    from engine.book import decode_commands
    from engine.recovery import JOURNAL_DIR, KIND_COMMANDS

    entry = struct.Struct("<96sI4x")
    left = args.limit or -1
    for kind, _first, _count, payload in JournalReader(data_dir / JOURNAL_DIR, args.from_seq):
        if kind != KIND_COMMANDS:
            continue
        for raw, sym in entry.iter_unpack(payload):
            (c,) = decode_commands(raw)
            if c.seq < args.from_seq:
                continue
            if left == 0:
                return 0
            left -= 1
            if args.json:
                print(json.dumps({"symbol": sym, **c._asdict()}))
            else:
                print(
                    f"{c.seq} {c.ts} sym {sym} {_CMD_KINDS.get(c.kind, c.kind)} "
                    f"{_SIDES.get(c.side, c.side)} order {c.order_id} account {c.account} "
                    f"client {c.client_id} price {c.price} qty {c.qty}"
                )
    return 0


def _journal_replay(args: argparse.Namespace, data_dir: Any) -> int:
    from actors.risk import new_risk_engine
    from engine._native import Book, RiskEngine
    from engine.recovery import RecoveryError, recover, state_digest

    try:
        config = cfg.load(args.config)
    except cfg.ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    books = [Book(s.min_price, s.max_price, s.max_order_qty) for s in config.symbols]
    out = open(args.events, "wb") if args.events else None  # noqa: SIM115 - closed below

    def write(_sym: int, events: bytes) -> None:
        if out is not None:
            out.write(events)

    try:
        r = recover(
            data_dir,
            [s.name for s in config.symbols],
            books,
            repair=False,
            use_snapshot=not args.from_scratch,
            events=write if out is not None else None,
            # The risk engine as the daemon rebuilds it: from the snapshot's section, or new
            # from the config; replay re-applies every journaled check, fill and control.
            risk=(
                (lambda sec: new_risk_engine(config) if sec is None else RiskEngine.restore(sec))
                if config.risk.enabled
                else None
            ),
        )
    except RecoveryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if out is not None:
            out.close()
    digest = state_digest(books)
    d = {
        "state_digest": digest,
        "risk_digest": f"{r.risk.digest():016x}" if r.risk is not None else None,
        "risk_refused": r.risk_refused,
        "snapshot_seq": r.snapshot_seq,
        "replayed": r.replayed,
        "next_seq": r.next_seq,
        "torn_bytes": r.torn_bytes,
        "seconds": round(r.seconds, 6),
    }
    if args.json:
        print(json.dumps(d))
    elif args.digest:
        print(digest)
    else:
        print(
            f"snapshot seq {r.snapshot_seq}, {r.replayed} commands replayed in {r.seconds:.3f} s,"
            f" next seq {r.next_seq}, state digest {digest}"
        )
    return 0


_JOURNAL = {
    "verify": _journal_verify,
    "stats": _journal_stats,
    "dump": _journal_dump,
    "replay": _journal_replay,
}


def _check_config(args: argparse.Namespace) -> int:
    try:
        c = cfg.load(args.file)
    except cfg.ConfigError as e:
        if args.json:
            print(json.dumps({"ok": False, "file": e.file, "key": e.key, "error": e.message}))
        else:
            print(f"config error: {e}", file=sys.stderr)
        return 2
    from engine.shardmap import host_warnings

    warnings = host_warnings(c)
    if args.json:
        d = {"ok": True, "file": args.file, "symbols": [s.name for s in c.symbols]}
        print(json.dumps({**d, "shard": c.shard.name, "warnings": warnings}))
    else:
        print(
            f"{args.file}: ok ({len(c.symbols)} symbols, {len(c.accounts)} accounts, "
            f"gateway {c.gateway.host}:{c.gateway.port}"
            + (f", shard {c.shard.name}" if c.shard.name else "")
            + (f" of {len(c.shard_map.shards)} in {c.shard_map.source}" if c.shard_map else "")
            + ")"
        )
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    import uvloop

    from engine import jsonlog
    from engine.daemon import StartError, serve

    try:
        config = _load(args)
    except cfg.ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    jsonlog.configure(config.process.log_level, json=config.process.log_format == "json")
    try:
        return uvloop.run(serve(config))
    except StartError as e:
        logging.getLogger("engine.daemon").error("cannot start: %s", e)
        return 1


_COMMANDS = {
    "run": _run,
    "check-config": _check_config,
    "order": _order,
    "cancel": _cancel,
    "book": _book,
    "status": _status,
    "risk": _risk,
    "journal": _journal,
}


# Commands whose owning module parses its own arguments: name -> (module, passes the name on).
_DELEGATED: dict[str, tuple[str, bool]] = {
    "doctor": ("engine.doctor", False),
    "install-units": ("engine.units", False),
    "db": ("engine.sinks.cli", True),
    "report": ("engine.sinks.cli", True),
    "sink": ("engine.sinks.cli", True),
    "control": ("engine.control", False),
    "shards": ("engine.shardcli", False),
}
# `watch` has its own entry point name in its module.
_WATCH = "watch"


def _delegate(argv: list[str]) -> int | None:
    """Run a delegated command (see `_DELEGATED`); None if `argv` names none."""
    if argv and argv[0] == _WATCH:
        from engine.mdclient import watch_main

        return watch_main(argv[1:])
    if not argv or argv[0] not in _DELEGATED:
        return None
    module, with_name = _DELEGATED[argv[0]]
    entry = importlib.import_module(module).main
    rc: int = entry(argv if with_name else argv[1:])
    return rc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    delegated = _delegate(argv)
    if delegated is not None:
        return delegated
    args = _parser().parse_args(argv)
    if args.command not in ("run", "check-config", "journal"):
        try:
            _load(args)
        except cfg.ConfigError as e:
            print(f"config error: {e}", file=sys.stderr)
            return 2
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UnknownSymbolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except cfg.ConfigError as e:  # the shard map
        print(f"config error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
