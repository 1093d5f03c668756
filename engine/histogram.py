"""A histogram cheap enough to observe once per batch when a batch is one order.

`prometheus_client.Histogram.observe` costs several microseconds (a lock, a lookup per bucket,
value objects); at idle load the pipeline's batches are single orders, so the per-batch
observations (batch size per actor, end-to-end latency, fsync time) cost more than the order.
`Buckets.observe` is one `bisect` and two additions on plain Python numbers, single-threaded (the
event loop); `HistogramCollector` turns them into the same Prometheus histogram families at
scrape time (cumulative `_bucket{le=...}`, `_count`, `_sum`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Buckets", "HistogramCollector"]


class Buckets:
    """Counts per bucket (upper bounds inclusive, as Prometheus's `le`) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append((_le(bound), float(total)))
        return out


class HistogramCollector(Collector):
    """One histogram family; `labels(*values)` gives the `Buckets` of one label set."""

    def __init__(
        self, name: str, doc: str, bounds: Sequence[float], labels: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.doc = doc
        self.bounds = tuple(bounds)
        self.label_names = list(labels)
        self._series: dict[tuple[str, ...], Buckets] = {}
        if not self.label_names:
            self._series[()] = Buckets(self.bounds)

    def labels(self, *values: str) -> Buckets:
        key = tuple(values)
        if len(key) != len(self.label_names):
            raise ValueError(f"{self.name}: labels {self.label_names}, got {key}")
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Buckets(self.bounds)
        return found

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.label_names)
        for key, b in self._series.items():
            family.add_metric(list(key), b.cumulative(), b.sum)
        yield family


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it ("+Inf", "0.001", "2.0")."""
    return "+Inf" if bound == float("inf") else repr(float(bound))
