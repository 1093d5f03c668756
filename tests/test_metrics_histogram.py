"""engine/histogram.py exports exactly what prometheus_client's own Histogram exports for the
same observations (the daemon's batch-size, latency and fsync histograms use it)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from engine.histogram import HistogramCollector

BOUNDS = (10e-6, 25e-6, 1e-3, 0.1, 1.0, 2.0, 1024.0)


def exposition(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    return [ln for ln in lines if not ln.startswith("#") and "_created" not in ln]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["risk", "book:A"]),
            st.one_of(
                st.sampled_from(BOUNDS),
                st.floats(min_value=0, max_value=5000, allow_nan=False),
            ),
        ),
        max_size=60,
    )
)
def test_the_cheap_histogram_exports_what_prometheus_client_does(
    values: list[tuple[str, float]],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    h = HistogramCollector("x_seconds", "doc", BOUNDS, ["actor"])
    ours.register(h)
    ref = Histogram("x_seconds", "doc", ["actor"], buckets=BOUNDS, registry=theirs)
    for actor in ("risk", "book:A"):  # both label sets exist before any observation
        h.labels(actor)
        ref.labels(actor=actor)
    for actor, v in values:
        h.labels(actor).observe(v)
        ref.labels(actor=actor).observe(v)
    assert exposition(ours) == exposition(theirs)
