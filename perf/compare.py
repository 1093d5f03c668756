"""Compare two result files (perf.suite, perf.replay, perf.sweep, perf.book, perf.pipeline).

    python -m perf.compare A.json B.json [--all] [--threshold 0.05]

Every figure present in both files is shown with its value in A, in B and the ratio B / A, and
marked better or worse when the ratio moves more than the threshold in the figure's direction
(rates: higher is better; latencies and durations: lower is better). By default only figures
(percentiles, means, maxima, rates, durations) are listed; --all lists every number. The
machines and commits of both runs are printed first: ratios between different machines mean
little.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

__all__ = ["compare", "flatten", "main"]

_SKIP = {"histogram", "trace", "timeline", "table", "calibration", "send_lag_ns", "params"}
_LOWER = ("p50", "p90", "p95", "p99", "p99.9", "p99.99", "max", "mean", "_s", "seconds", "_ns")
_HIGHER = ("per_s", "ratio")


def flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(dotted path, value) for every number under `node` (booleans and skipped keys aside)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k not in _SKIP:
                yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from flatten(v, f"{prefix}[{i}]")
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield prefix, float(node)


def direction(path: str) -> int:
    """+1 higher is better, -1 lower is better, 0 neither (counts)."""
    last = path.rsplit(".", 1)[-1]
    if any(last.endswith(h) or f"{h}_" in last for h in _HIGHER):
        return 1
    if last in _LOWER or any(last.endswith(x) for x in ("_s", "_ns", "seconds")):
        return -1
    return 0


def compare(
    a: dict[str, Any], b: dict[str, Any], *, everything: bool, threshold: float
) -> list[tuple[str, float, float, float | None, str]]:
    fa = dict(flatten(a.get("results", a)))
    fb = dict(flatten(b.get("results", b)))
    rows = []
    for path in fa:
        if path not in fb:
            continue
        d = direction(path)
        if not everything and d == 0:
            continue
        va, vb = fa[path], fb[path]
        ratio = vb / va if va else None
        verdict = ""
        if ratio is not None and d and abs(ratio - 1) > threshold:
            verdict = "better" if (ratio > 1) == (d > 0) else "worse"
        rows.append((path, va, vb, ratio, verdict))
    return rows


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.compare", description=__doc__.split("\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--all", action="store_true", help="every number, not just the figures")
    p.add_argument("--threshold", type=float, default=0.05, help="ratio change to call out")
    args = p.parse_args(argv)
    try:
        a = orjson.loads(Path(args.a).read_bytes())
        b = orjson.loads(Path(args.b).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        print(f"perf.compare: {e}", file=sys.stderr)
        return 2
    for name, doc in (("A", a), ("B", b)):
        m = doc.get("machine") or {}
        print(
            f"{name}: {doc.get('tool', '?')} {doc.get('when', '')} commit {m.get('commit')}"
            f" on {m.get('cpu_model')} ({m.get('cores_usable')} cores)"
        )
    rows = compare(a, b, everything=args.all, threshold=args.threshold)
    if not rows:
        print("no figure in common")
        return 1
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'A':>14}  {'B':>14}  {'B/A':>7}")
    for path, va, vb, ratio, verdict in rows:
        r = f"{ratio:7.3f}" if ratio is not None else "    n/a"
        print(f"{path:<{width}}  {_fmt(va):>14}  {_fmt(vb):>14}  {r}  {verdict}")
    worse = sum(1 for r in rows if r[4] == "worse")
    better = sum(1 for r in rows if r[4] == "better")
    print(f"{len(rows)} figures: {better} better, {worse} worse (threshold {args.threshold:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
