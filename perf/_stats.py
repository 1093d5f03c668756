"""Shared helpers for the perf tools: latency percentiles (HdrHistogram), machine facts, JSON.

Every tool writes the same JSON shape so that runs can be compared between commits:
`{"tool", "when", "machine", "params", "results"}`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

# The percentiles every latency figure reports.
PERCENTILES: tuple[float, ...] = (50.0, 99.0, 99.9, 99.99)

# Histogram range: 1 ns .. 60 s at 3 significant digits (1 ns resolution below 1 µs).
_LOWEST_NS = 1
_HIGHEST_NS = 60_000_000_000
_DIGITS = 3


def histogram(values_ns: Iterable[int]) -> HdrHistogram:
    """An HdrHistogram of nanosecond samples (values are clamped into its range)."""
    h = HdrHistogram(_LOWEST_NS, _HIGHEST_NS, _DIGITS)
    for v in values_ns:
        h.record_value(min(max(v, _LOWEST_NS), _HIGHEST_NS))
    return h


def percentile_key(p: float) -> str:
    """`50.0` -> `"p50"`, `99.9` -> `"p99.9"`."""
    return f"p{p:g}"


def summary(h: HdrHistogram, divide_by: float = 1.0) -> dict[str, float]:
    """Percentiles, mean and max of `h` in ns, each divided by `divide_by` (for example the number
    of commands per timed sample), plus the sample count."""
    out = {percentile_key(p): h.get_value_at_percentile(p) / divide_by for p in PERCENTILES}
    out["mean"] = h.get_mean_value() / divide_by
    out["max"] = h.get_max_value() / divide_by
    out["samples"] = float(h.get_total_count())
    return out


def fmt_ns(ns: float) -> str:
    """A duration for humans: `850 ns`, `1.25 µs`, `3.10 ms`."""
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def _command_output(*argv: str) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """Facts that make a figure comparable: CPU, cores, OS, Python, rustc, commit, load."""
    root = Path(__file__).resolve().parent.parent
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "rustc": _command_output("rustc", "--version"),
        "commit": _command_output("git", "-C", str(root), "rev-parse", "--short", "HEAD"),
        # Other work on the machine while measuring (1, 5, 15 minute load averages).
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def write_args_json(args: argparse.Namespace, tool: str, results: Mapping[str, Any]) -> None:
    """`write_json` to `args.json`, if given, with every other argument as the parameters."""
    if args.json:
        params = {k: v for k, v in vars(args).items() if k != "json"}
        write_json(args.json, tool, params, results)


def write_json(
    path: str | Path, tool: str, params: Mapping[str, Any], results: Mapping[str, Any]
) -> None:
    doc = {
        "tool": tool,
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "params": dict(params),
        "results": dict(results),
    }
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
