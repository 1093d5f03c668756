"""Prometheus metrics of the daemon, cheap per order: nothing is updated per message.

Counters that the native code keeps (frames decoded by type, reports encoded by type, rejects by
code, commands sequenced) are read at scrape time by a collector; actors report once per batch
(batch size histogram, end-to-end latency histogram, journal fsync time). Served on the HTTP port
at /metrics (engine/http_api.py), in the engine's own registry.

Names (label): cift_commands_in_total (type), cift_events_out_total (type), cift_rejects_total
(code, stage), cift_commands_sequenced_total, cift_queue_depth / cift_queue_capacity (actor),
cift_batch_size (actor), cift_e2e_latency_seconds, cift_journal_bytes_total,
cift_journal_fsync_seconds, cift_gateway_bytes_total (direction), cift_gateway_frames_total,
cift_sessions, cift_session_disconnects_total (reason), cift_gateway_backpressure_total,
cift_dropped_total (edge), cift_book_orders (symbol), cift_loop_lag_seconds,
cift_loop_heartbeat_timestamp_seconds; with NATS / Redis on, the cift_nats_* and cift_redis_*
families of engine/metrics_nats.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.codes import stage
from engine.histogram import HistogramCollector
from engine.metrics_nats import ServicesCollector

if TYPE_CHECKING:
    from engine.daemon import Engine, Services

__all__ = ["Metrics"]

_BATCH_BUCKETS = tuple(float(1 << i) for i in range(16))
_LATENCY_BUCKETS = (
    10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 0.1, 1.0,
)  # fmt: skip
_DECODED = {
    "new_order": "new",
    "cancel": "cancel",
    "replace": "replace",
    "mass_cancel": "mass_cancel",
    "logon": "logon",
    "heartbeat": "heartbeat",
    "logout": "logout",
}
_REPORTS = (
    "ack",
    "reject",
    "fill",
    "cancelled",
    "replaced",
    "triggered",
    "logon_ack",
    "heartbeat",
    "logout",
)


def _int(v: int | dict[int, int]) -> int:
    return v if isinstance(v, int) else 0


def _codes(v: int | dict[int, int]) -> dict[int, int]:
    return v if isinstance(v, dict) else {}


class _EngineCollector(Collector):
    """Reads the engine's counters at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # More edges of cift_dropped_total, (edge, count) each (the services' collector).
        self.dropped: list[Callable[[], list[tuple[str, int]]]] = []

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        e = self.engine
        dec = e.decoder.stats()
        pub = e.publisher.stats()
        seq = e.sequencer.stats()
        c = CounterMetricFamily(
            "cift_commands_in", "Messages decoded by the gateway", labels=["type"]
        )
        for key, label in _DECODED.items():
            c.add_metric([label], _int(dec.get(key, 0)))
        yield c
        c = CounterMetricFamily("cift_events_out", "Reports sent to sessions", labels=["type"])
        for key in _REPORTS:
            c.add_metric([key], _int(pub.get(key, 0)))
        yield c
        c = CounterMetricFamily(
            "cift_rejects", "Rejects by code, every stage", labels=["code", "stage"]
        )
        for code, n in sorted(_codes(pub.get("rejects", {})).items()):
            c.add_metric([str(code), stage(code)], n)
        yield c
        yield CounterMetricFamily(
            "cift_commands_sequenced",
            "Commands given a sequence number",
            value=_int(seq["sequenced"]),
        )
        yield CounterMetricFamily(
            "cift_gateway_frames", "Frames received", value=_int(dec.get("frames", 0))
        )
        c = CounterMetricFamily("cift_gateway_bytes", "Gateway bytes", labels=["direction"])
        c.add_metric(["in"], e.gateway.bytes_in)
        c.add_metric(["out"], e.gateway.bytes_out)
        yield c
        yield GaugeMetricFamily(
            "cift_sessions", "Connected sessions", value=len(e.gateway.sessions)
        )
        yield CounterMetricFamily(
            "cift_gateway_backpressure",
            "Times the gateway stopped reading sockets (risk inbox full)",
            value=e.gateway.pauses,
        )
        yield CounterMetricFamily(
            "cift_lane_reads",
            "Reads that went through risk and the books in one native call (actors/lane.py)",
            value=e.lane.runs if e.lane is not None else 0,
        )
        c = CounterMetricFamily("cift_dropped", "Records dropped by policy", labels=["edge"])
        c.add_metric(["reports_unroutable"], _int(pub.get("unroutable", 0)))
        c.add_metric(["clock_tick"], e.clock_ticks_dropped)
        for more in self.dropped:
            for edge, n in more():
                c.add_metric([edge], n)
        yield c
        yield CounterMetricFamily(
            "cift_journal_bytes", "Bytes appended to the journal", value=e.persistence.bytes
        )
        yield GaugeMetricFamily(
            "cift_journal_durable_seq",
            "Last sequence number the journal holds durably (per journal.fsync)",
            value=e.persistence.durable_seq,
        )
        yield GaugeMetricFamily(
            "cift_snapshot_seq",
            "Sequence number of the newest snapshot",
            value=e.snapshots.last_seq,
        )
        yield CounterMetricFamily(
            "cift_journal_sink_retention_exceeded",
            "Journal prunes that went past what a sink follower had applied (it lost data)",
            value=e.snapshots.retention_exceeded,
        )
        depth = GaugeMetricFamily("cift_queue_depth", "Records queued", labels=["actor"])
        cap = GaugeMetricFamily(
            "cift_queue_capacity", "Inbox capacity in records", labels=["actor"]
        )
        for a in e.actors():
            depth.add_metric([a.name], a.inbox.size)
            cap.add_metric([a.name], a.inbox.capacity)
        yield depth
        yield cap
        orders = GaugeMetricFamily("cift_book_orders", "Live orders", labels=["symbol"])
        for b in e.books:
            orders.add_metric([b.symbol], b.book.order_count())
        yield orders


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Observed once per batch (at idle, once per order): plain-Python buckets exported at
        # scrape time, a fraction of a microsecond each (engine/histogram.py).
        self.batch_size = HistogramCollector(
            "cift_batch_size", "Records per actor batch", _BATCH_BUCKETS, ["actor"]
        )
        self.e2e_latency = HistogramCollector(
            "cift_e2e_latency_seconds",
            "Receive to reply written; one observation per publishing batch, from the earliest "
            "receive in the batch",
            _LATENCY_BUCKETS,
        )
        self.fsync = HistogramCollector(
            "cift_journal_fsync_seconds",
            "Journal fdatasync time, one observation per fsync (per batch under fsync=always)",
            _LATENCY_BUCKETS,
        )
        for h in (self.batch_size, self.e2e_latency, self.fsync):
            r.register(h)
        self.disconnects = Counter(
            "cift_session_disconnects", "Sessions ended, by reason", ["reason"], registry=r
        )
        self.loop_lag = Gauge("cift_loop_lag_seconds", "Event loop lag (last sample)", registry=r)
        self.loop_heartbeat = Gauge(
            "cift_loop_heartbeat_timestamp_seconds",
            "Last time the event loop ran the probe",
            registry=r,
        )

    def bind(self, engine: Engine) -> None:
        """Hook the per-batch observations into the engine's actors."""
        self._engine = _EngineCollector(engine)
        self.registry.register(self._engine)
        for a in engine.actors():
            a.on_batch = self.batch_size.labels(a.name).observe
        engine.publishing.on_latency = self.e2e_latency.labels().observe
        engine.persistence.on_fsync = self.fsync.labels().observe
        engine.gateway.on_disconnect = lambda reason: self.disconnects.labels(reason=reason).inc()

    def bind_services(self, services: Services) -> None:
        """The NATS entry, NATS publisher and Redis cache counters (engine/metrics_nats.py),
        after `bind` and once the services are started."""
        collector = ServicesCollector(services)
        self._engine.dropped.append(collector.dropped)
        self.registry.register(collector)

    async def probe_loop(self, interval: float = 0.25) -> None:
        """Measure event-loop lag forever (a long batch or a blocking call shows up here)."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(interval)
            self.loop_lag.set(max(0.0, loop.time() - start - interval))
            self.loop_heartbeat.set(time.time())
