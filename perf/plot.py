"""PNG plots of the replay figures (matplotlib, Agg backend: no display needed).

- `replay_figure`: latency by percentile, HDR style (x = 1 / (1 - percentile) on a log axis, so
  the tail gets the room; y = latency, log), with the replayer's own send lag beside it; and
  throughput over time, offered vs answered.
- `latency_figure`: several latency curves on one HDR percentile plot (suite runs, A vs B).
- `sweep_figure`: p50/p99/p99.9 against the offered rate, with the bound; achieved vs offered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from perf.hdr import decode, percentile_curve

__all__ = ["latency_figure", "replay_figure", "sweep_figure"]

_PCT_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 99.9999)


def _x(p: float) -> float:
    return 1.0 / max(1.0 - p / 100.0, 1e-7)


def _hdr_axes(ax: Axes, max_pct: float) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [p for p in _PCT_TICKS if p <= max(max_pct, 99.0)]
    ax.xaxis.set_major_locator(FixedLocator([_x(p) for p in ticks]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 - 100 / v:g}%"))
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (µs)")
    ax.grid(True, which="both", alpha=0.3)


def _curve(ax: Axes, points: Sequence[tuple[float, int]], label: str, **kw: Any) -> float:
    if not points:
        return 0.0
    xs = [_x(min(p, 99.9999)) for p, _ in points]
    ys = [max(v, 1) / 1000 for _, v in points]
    ax.plot(xs, ys, label=label, **kw)
    return points[-1][0] if points[-1][0] < 100 else points[-2][0] if len(points) > 1 else 0.0


def _lag_points(summary: Mapping[str, float]) -> list[tuple[float, int]]:
    keys = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("p99.99", 99.99)]
    return [(p, int(summary[k])) for k, p in keys if k in summary]


def replay_figure(result: Mapping[str, Any], path: str) -> None:
    """The latency-percentile plot and throughput over time of one replay result."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    top = _curve(left, percentile_curve(decode(result["histogram"])), "command latency", lw=2)
    _curve(left, _lag_points(result["send_lag_ns"]), "replayer send lag", ls="--", lw=1)
    _hdr_axes(left, top)
    left.legend()
    left.set_title(f"latency from planned send: {result['target']}, {result['schedule']}")
    tl = result["timeline"]
    step = tl["bucket_ms"] / 1000
    xs = [i * step for i in range(len(tl["offered_per_s"]))]
    right.plot(xs, tl["offered_per_s"], label="offered", lw=1)
    right.plot(xs, tl["completed_per_s"], label="answered", lw=1.5)
    right.set_xlabel("time (s)")
    right.set_ylabel("commands / s")
    right.set_title(f"throughput over time ({tl['bucket_ms']:g} ms buckets)")
    right.grid(True, alpha=0.3)
    right.legend()
    fig.suptitle(f"{result['flow']}: {result['commands']['sent']:,} commands")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def latency_figure(curves: Mapping[str, str], path: str, title: str) -> None:
    """HDR percentile curves of several encoded histograms, {label: encoded}."""
    fig, ax = plt.subplots(figsize=(8, 5))
    top = 0.0
    for label, encoded in curves.items():
        top = max(top, _curve(ax, percentile_curve(decode(encoded)), label, lw=1.5))
    _hdr_axes(ax, top)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sweep_figure(
    steps: Sequence[Mapping[str, Any]], bound_ns: float, path: str, title: str
) -> None:
    """`steps`: {"offered_per_s", "achieved_per_s", "latency_ns": {"p50", "p99", "p99.9"}}."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    rates = [s["offered_per_s"] for s in steps]
    for key, style in (("p50", "-o"), ("p99", "-s"), ("p99.9", "-^")):
        left.plot(rates, [max(s["latency_ns"][key], 1) / 1000 for s in steps], style, label=key)
    left.axhline(bound_ns / 1000, color="red", ls="--", label="p99 bound")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("offered rate (commands/s)")
    left.set_ylabel("latency from planned send (µs)")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    left.set_title("latency vs offered rate")
    right.plot(rates, [s["achieved_per_s"] or 0 for s in steps], "-o", label="achieved")
    right.plot(rates, rates, ":", color="gray", label="offered")
    right.set_xlabel("offered rate (commands/s)")
    right.set_ylabel("answered commands/s")
    right.grid(True, alpha=0.3)
    right.legend()
    right.set_title("throughput")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
