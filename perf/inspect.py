"""What is in a recorded flow (or a replies file)?

    python -m perf.inspect FILE [--json] [--buckets N]

For a flow: source, symbols, sessions, messages by type (new orders by type and time in force),
per symbol and the busiest sessions, the planned rate over time, and the expected final book.
For a replies file (`perf.replay --record-replies`): replies by kind, rejects by code, per session.
Exit status 2 for a file that is neither.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from engine.book import COMMAND_SIZE, CmdKind, OrdType, Tif
from engine.wire import code_text
from perf.flow import FLOW_MAGIC, Flow, FlowError, read_flow
from perf.replay_engine import decode_flow
from perf.replay_replies import REPLIES_MAGIC, read_replies, read_replies_header

__all__ = ["flow_summary", "main", "replies_summary"]

_KIND = {CmdKind.NEW: "newOrder", CmdKind.CANCEL: "cancel", CmdKind.AMEND: "replace"}
_KIND[CmdKind.MASS_CANCEL] = "massCancel"


def flow_summary(flow: Flow, buckets: int = 20) -> dict[str, Any]:
    d = decode_flow(flow)
    names = [s.name for s in flow.symbols]
    types: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    per_symbol: Counter[str] = Counter()
    per_session: Counter[int] = Counter()
    for i in range(len(flow)):
        per_session[flow.sessions[flow.session_of[i]].account] += 1
        if not d.ok[i]:
            types["malformed"] += 1
            continue
        rec = d.commands[i * COMMAND_SIZE : (i + 1) * COMMAND_SIZE]
        types[_KIND.get(CmdKind(rec[0]), str(rec[0]))] += 1
        if rec[0] == CmdKind.NEW:
            ord_type = OrdType(rec[2]).name.lower() if 1 <= rec[2] <= 4 else f"type {rec[2]}"
            tif = Tif(rec[3]).name.lower() if 1 <= rec[3] <= 5 else f"tif {rec[3]}"
            orders[f"{ord_type} {tif}"] += 1
        sym = int.from_bytes(d.symbols[i * 4 : i * 4 + 4], "little")
        per_symbol[names[sym] if sym < len(names) else "(all or unknown)"] += 1
    duration = flow.duration_ns
    step = max(1, -(-duration // buckets))
    rate = [0] * buckets
    for t in flow.times:
        rate[min(t // step, buckets - 1)] += 1
    return {
        "source": flow.source,
        "messages": len(flow),
        "duration_s": duration / 1e9,
        "mean_rate_per_s": len(flow) / (duration / 1e9) if duration else None,
        "symbols": [s.name for s in flow.symbols],
        "sessions": len(flow.sessions),
        "types": dict(types.most_common()),
        "new_orders": dict(orders.most_common()),
        "per_symbol": dict(per_symbol.most_common()),
        "busiest_accounts": {str(a): n for a, n in per_session.most_common(10)},
        "rate_over_time": {
            "bucket_s": step / 1e9,
            "per_s": [n / (step / 1e9) for n in rate],
        },
        "expected_levels": flow.levels,
        "expected": {k: v.to_json() for k, v in (flow.expected or {}).items()},
        "extra": flow.extra,
    }


def replies_summary(path: str | Path) -> dict[str, Any]:
    header = read_replies_header(path)
    kinds: Counter[str] = Counter()
    rejects: Counter[int] = Counter()
    per_session: Counter[int] = Counter()
    last = 0
    for t, session, r in read_replies(path):
        kinds[r.kind] += 1
        per_session[session] += 1
        last = t
        if r.kind == "reject":
            rejects[r.code] += 1
    return {
        "flow": header.get("flow"),
        "target": header.get("target"),
        "replies": dict(kinds.most_common()),
        "rejects": {str(c): {"count": n, "text": code_text(c) or ""} for c, n in rejects.items()},
        "per_session": {str(a): n for a, n in per_session.most_common(10)},
        "last_reply_s": last / 1e9,
    }


def _bar(value: float, top: float, width: int = 40) -> str:
    return "#" * round(width * value / top) if top > 0 else ""


def print_flow(path: str, s: dict[str, Any]) -> None:
    src = s["source"]
    print(f"{path}: recorded flow, {s['messages']:,} messages over {s['duration_s']:.3f} s")
    print(f"  source     {orjson.dumps(src).decode()}")
    print(f"  symbols    {len(s['symbols'])}: {', '.join(s['symbols'][:20])}")
    print(f"  sessions   {s['sessions']}")
    print("  types      " + ", ".join(f"{k} {v:,}" for k, v in s["types"].items()))
    print("  new orders " + ", ".join(f"{k} {v:,}" for k, v in s["new_orders"].items()))
    print("  per symbol " + ", ".join(f"{k} {v:,}" for k, v in s["per_symbol"].items()))
    print(
        "  busiest accounts " + ", ".join(f"{k}: {v:,}" for k, v in s["busiest_accounts"].items())
    )
    r = s["rate_over_time"]
    top = max(r["per_s"], default=0)
    print(f"  planned rate over time ({r['bucket_s']:.3g} s buckets, messages/s):")
    for i, v in enumerate(r["per_s"]):
        print(f"    {i * r['bucket_s']:10.3f} s {v:12,.0f} {_bar(v, top)}")
    print(f"  expected final book (top {s['expected_levels']} levels):")
    for name, b in s["expected"].items():
        bid = b["bids"][0] if b["bids"] else None
        ask = b["asks"][0] if b["asks"] else None
        print(
            f"    {name}: best bid {bid and f'{bid[1]}@{bid[0]}'}, best ask"
            f" {ask and f'{ask[1]}@{ask[0]}'}, {len(b['bids'])}+{len(b['asks'])} levels,"
            f" {b['trades']:,} trades, volume {b['volume']:,}"
        )


def print_replies(path: str, s: dict[str, Any]) -> None:
    print(f"{path}: replies of a replay of {s['flow']} against {s['target']}")
    print("  replies " + ", ".join(f"{k} {v:,}" for k, v in s["replies"].items()))
    for code, r in s["rejects"].items():
        print(f"  reject {code} x{r['count']:,}: {r['text']}")
    print("  busiest sessions " + ", ".join(f"{k}: {v:,}" for k, v in s["per_session"].items()))
    print(f"  last reply at {s['last_reply_s']:.3f} s")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.inspect", description=__doc__.split("\n")[0])
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--buckets", type=int, default=20, help="rate-over-time buckets")
    args = p.parse_args(argv)
    try:
        with open(args.file, "rb") as f:
            magic = f.read(8)
        if magic == FLOW_MAGIC:
            summary = flow_summary(read_flow(args.file), max(1, args.buckets))
            show = print_flow
        elif magic == REPLIES_MAGIC:
            summary = replies_summary(args.file)
            show = print_replies
        else:
            raise FlowError(f"{args.file}: neither a flow nor a replies file")
    except (OSError, ValueError) as e:
        print(f"perf.inspect: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        show(args.file, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
