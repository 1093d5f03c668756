"""Prometheus metrics of the sinks (label `sink`: "postgres", "clickhouse").

cift_sink_lag_sequences, cift_sink_lag_seconds: how far the database is behind the engine
    (`Sink.lag()`); cift_sink_applied_seq: the sequence number every symbol is applied through;
cift_sink_rows_total (table), cift_sink_flushes_total, cift_sink_errors_total,
cift_sink_dropped_batches_total (live batches refused by a full inbox: caught up later),
cift_sink_gaps_total, cift_sink_catchups_total; cift_sink_retention_exceeded: 1 while the journal
is pruned past what the sink has applied (engine/retention.py; the sink then stops).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["SinkMetrics"]


class SinkMetrics:
    """One set of metric families, shared by every sink of a process (one registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.registry = r
        s = ["sink"]
        self.lag_sequences = Gauge(
            "cift_sink_lag_sequences", "Sequences the sink is behind the engine", s, registry=r
        )
        self.lag_seconds = Gauge(
            "cift_sink_lag_seconds", "Engine time the sink is behind the engine", s, registry=r
        )
        self.applied_seq = Gauge(
            "cift_sink_applied_seq", "Sequence every symbol is applied through", s, registry=r
        )
        self.rows = Counter("cift_sink_rows", "Rows written", [*s, "table"], registry=r)
        self.flushes = Counter("cift_sink_flushes", "Flushes committed", s, registry=r)
        self.errors = Counter("cift_sink_errors", "Database errors (then retried)", s, registry=r)
        self.dropped = Counter(
            "cift_sink_dropped_batches", "Live batches dropped by a full inbox", s, registry=r
        )
        self.gaps = Counter("cift_sink_gaps", "Gaps found in the live stream", s, registry=r)
        self.catchups = Counter("cift_sink_catchups", "Catch-up passes started", s, registry=r)
        self.retention_exceeded = Gauge(
            "cift_sink_retention_exceeded",
            "1 while the journal is pruned past what the sink has applied",
            s,
            registry=r,
        )
