"""HdrHistogram helpers for the replay tools (the `hdrhistogram` package does the counting).

Histograms have `perf._stats.histogram`'s range (1 ns .. 60 s, 3 significant digits). The
replay figures are p50, p90, p99, p99.9, p99.99 and max, plus the mean; a histogram travels in
JSON as HdrHistogram's own compressed base64 encoding, so that runs can be re-plotted and
merged later.

Speed: the package records in pure Python (~20 µs a value), too slow for a million samples.
`record_all` first counts equal *equivalent* values (with 2048 sub-buckets, a value v of bit
length L > 11 shares its bucket with every value of the same top 11 bits) and records each
distinct one once with its count -- the same histogram, bucket for bucket. The mean and the
maximum are computed from the raw values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from perf._stats import histogram as empty_histogram_of
from perf._stats import percentile_key

__all__ = [
    "REPLAY_PERCENTILES",
    "decode",
    "encode",
    "histogram",
    "latency_summary",
    "merged",
    "percentile_curve",
    "percentile_key",
    "summarize",
]

REPLAY_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9, 99.99)
_LOWEST, _HIGHEST = 1, 60_000_000_000
_SUB_BUCKET_BITS = 11  # 3 significant digits -> 2048 sub-buckets


def _equivalent(v: int) -> int:
    shift = v.bit_length() - _SUB_BUCKET_BITS
    return (v >> shift) << shift if shift > 0 else v


def record_all(h: HdrHistogram, values_ns: Iterable[int]) -> None:
    """Record every value (clamped into the histogram's range), counting equals first."""
    counts = Counter(_equivalent(min(max(v, _LOWEST), _HIGHEST)) for v in values_ns)
    for v, n in counts.items():
        h.record_value(v, n)


def histogram(values_ns: Iterable[int]) -> HdrHistogram:
    h = empty_histogram_of(())
    record_all(h, values_ns)
    return h


def latency_summary(
    h: HdrHistogram,
    raw: Sequence[int] | None = None,
    percentiles: Iterable[float] = REPLAY_PERCENTILES,
) -> dict[str, float]:
    """{"p50": ns, ..., "max": ns, "mean": ns, "samples": n}; zeros for no samples. With the
    raw values, mean and max are exact; else they come from the histogram."""
    count = h.get_total_count()
    out = {
        percentile_key(p): float(h.get_value_at_percentile(p)) if count else 0.0
        for p in percentiles
    }
    if raw is not None:
        out["max"] = float(max(raw, default=0))
        out["mean"] = sum(raw) / len(raw) if raw else 0.0
        for k in list(out)[:-2]:  # a bucket's value may lie above the largest raw value
            out[k] = min(out[k], out["max"])
    else:
        out["max"] = float(h.get_max_value()) if count else 0.0
        out["mean"] = float(h.get_mean_value()) if count else 0.0
    out["samples"] = float(count)
    return out


def summarize(values_ns: Sequence[int]) -> tuple[dict[str, float], HdrHistogram]:
    """The replay figures of `values_ns` and their histogram."""
    h = histogram(values_ns)
    return latency_summary(h, values_ns), h


def percentile_curve(h: HdrHistogram, ticks_per_half: int = 5) -> list[tuple[float, int]]:
    """(percentile, value ns) points of the HDR percentile distribution, for plotting on the
    1 / (1 - percentile) axis; ends at the maximum."""
    if h.get_total_count() == 0:
        return []
    points = [
        (float(it.percentile_level_iterated_to), int(it.value_iterated_to))
        for it in h.get_percentile_iterator(ticks_per_half)
    ]
    return [p for p in points if p[0] < 100.0] + [(100.0, int(h.get_max_value()))]


def encode(h: HdrHistogram) -> str:
    data: bytes = h.encode()
    return data.decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merged(parts: Iterable[dict[str, Any]]) -> HdrHistogram:
    """One histogram from several encoded ones (the `histogram` field of replay results)."""
    total = empty_histogram_of(())
    for part in parts:
        total.add(decode(part["histogram"]))
    return total
