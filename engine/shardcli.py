"""`cift-engine shards`: the shards of a host and whether each is up.

    cift-engine shards [--shard-map FILE | --http HOST:PORT] [--json]

The map comes from the file (default $CIFT_SHARD_MAP), or from a running shard's `GET /shards`
(`--http`, discovery). Each shard's `GET /status` says whether it is up. Exit 0 when every shard
answers, 1 when one does not, 2 for a missing or bad map.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import orjson

from engine.config import ConfigError
from engine.hostinfo import format_cpulist
from engine.shardmap import ShardMap, fetch_map, load_map

__all__ = ["main", "shard_rows"]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return orjson.loads(r.read())


def shard_rows(shard_map: ShardMap) -> list[dict[str, Any]]:
    """One row per shard: the map's entry and its live status (`up`, and when up: pid, state,
    orders/s, sequenced, sessions)."""
    rows = []
    for shard in shard_map.shards:
        row: dict[str, Any] = {**shard.to_json(), "up": False}
        try:
            d = _get(f"http://{shard.http}/status")
        except (urllib.error.URLError, OSError, ValueError) as e:
            row["error"] = str(getattr(e, "reason", e))
        else:
            row.update(
                up=True,
                pid=d["pid"],
                state=d["state"],
                orders_per_s=d["orders_per_s"],
                sequenced=d["sequenced"],
                sessions=len(d["sessions"]),
                reports_as=d.get("shard", ""),
            )
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]], source: str) -> str:
    lines = [
        f"shard map {source}",
        f"{'shard':<12} {'gateway':<22} {'http':<22} {'cores':<8} {'state':<10} "
        f"{'orders/s':>9} {'sessions':>8}  symbols",
    ]
    for r in rows:
        state = r["state"] if r["up"] else "DOWN"
        rate = f"{r['orders_per_s']:.1f}" if r["up"] else "-"
        sessions = str(r["sessions"]) if r["up"] else "-"
        cores = format_cpulist(r["cores"]) or "-"
        lines.append(
            f"{r['name']:<12} {r['gateway']:<22} {r['http']:<22} {cores:<8} {state:<10} "
            f"{rate:>9} {sessions:>8}  {' '.join(r['symbols'])}"
        )
        if r["up"] and r["reports_as"] != r["name"]:
            lines.append(f"  ! the process at {r['http']} says it is shard {r['reports_as']!r}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="cift-engine shards", description="The shards of a host and whether each is up."
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--shard-map", help="the map file (default: $CIFT_SHARD_MAP)")
    where.add_argument("--http", help="HOST:PORT of any shard's HTTP endpoint (discovery)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON output")
    args = p.parse_args(argv)
    path = args.shard_map or os.environ.get("CIFT_SHARD_MAP")
    try:
        if args.http:
            shard_map = fetch_map(args.http)
        elif path:
            shard_map = load_map(path)
        else:
            print("error: give --shard-map FILE or --http HOST:PORT", file=sys.stderr)
            return 2
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    rows = shard_rows(shard_map)
    if args.json:
        print(orjson.dumps({"source": shard_map.source, "shards": rows}).decode())
    else:
        print(_table(rows, shard_map.source))
    return 0 if all(r["up"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
