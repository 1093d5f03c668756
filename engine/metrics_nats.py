"""Prometheus metrics of the NATS entry, the NATS publisher and the Redis cache, read from
their counters at scrape time (nothing is updated per message for the metrics' sake).
Registered by `Metrics.bind_services` (engine/metrics.py) once the services are started.

Names (label), docs/nats.md "Metrics":
- entry: cift_nats_requests_total, cift_nats_replies_total, cift_nats_commands_total,
  cift_nats_rejects_total (code, stage), cift_nats_jetstream_messages_total,
  cift_nats_jetstream_acks_total, cift_nats_jetstream_redeliveries_total (state),
  cift_nats_poison_total;
- publisher: cift_nats_published_total (kind), cift_nats_exec_pending,
  cift_nats_exec_retries_total, cift_nats_exec_spooled_total, cift_nats_exec_republished_total,
  cift_nats_published_through_seq, and cift_dropped_total{edge="nats_md"} (in the engine's
  cift_dropped family, through `dropped()`);
- the connection: cift_nats_connected, cift_nats_reconnects_total;
- Redis: cift_redis_writes_total, cift_redis_failures_total, cift_redis_reconnects_total,
  cift_redis_rewrites_total, cift_redis_up, cift_redis_dirty_symbols.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.codes import stage

if TYPE_CHECKING:
    from engine.daemon import Services
    from engine.nats_entry import NatsEntry
    from engine.nats_publish import NatsPublisher
    from engine.redis_cache import RedisCache

__all__ = ["ServicesCollector"]

_Family = CounterMetricFamily | GaugeMetricFamily


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class ServicesCollector(Collector):
    """Reads the counters of whichever services the config enabled."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[_Family]:
        s = self.services
        if s.entry is not None:
            yield from _entry(s.entry)
        if s.publisher is not None:
            yield from _publisher(s.publisher)
        if s.nc is not None:
            yield GaugeMetricFamily(
                "cift_nats_connected", "1 while the NATS connection is up", value=s.nc.is_connected
            )
            yield _counter(
                "cift_nats_reconnects",
                "Times the NATS connection was re-established",
                s.nc.stats["reconnects"],
            )
        if s.cache is not None:
            yield from _cache(s.cache)

    def dropped(self) -> list[tuple[str, int]]:
        """(edge, count) for the engine's cift_dropped_total."""
        p = self.services.publisher
        return [] if p is None else [("nats_md", p.stats["md_dropped"])]


def _entry(entry: NatsEntry) -> Iterator[_Family]:
    st = entry.stats
    yield _counter("cift_nats_requests", "Order-entry requests (request/reply)", st["requests"])
    yield _counter("cift_nats_replies", "Replies sent to order-entry requests", st["replies"])
    yield _counter(
        "cift_nats_commands", "Commands from NATS handed to the pipeline", st["commands"]
    )
    c = CounterMetricFamily(
        "cift_nats_rejects",
        "Rejects answered to NATS requests or given to refused JetStream messages, by code",
        labels=["code", "stage"],
    )
    for code, n in sorted(entry.reject_counts().items()):
        c.add_metric([str(code), stage(code)], n)
    yield c
    yield _counter(
        "cift_nats_jetstream_messages",
        "JetStream order messages delivered for the first time in this run",
        st["durable_messages"],
    )
    yield _counter(
        "cift_nats_jetstream_acks",
        "JetStream order messages acknowledged once their command was durable",
        st["durable_acked"],
    )
    c = CounterMetricFamily(
        "cift_nats_jetstream_redeliveries",
        "JetStream order messages delivered again: while in flight, or already applied",
        labels=["state"],
    )
    c.add_metric(["in_flight"], st["durable_redelivered"])
    c.add_metric(["applied"], st["durable_skipped"])
    yield c
    yield _counter(
        "cift_nats_poison",
        "JetStream order messages that cannot be a command (acknowledged, never redelivered)",
        st["poison"],
    )


def _publisher(p: NatsPublisher) -> Iterator[_Family]:
    st = p.stats
    c = CounterMetricFamily(
        "cift_nats_published",
        "Messages published: exec (acknowledged by JetStream), md (market data, cancellations)",
        labels=["kind"],
    )
    c.add_metric(["exec"], st["exec_acked"])
    c.add_metric(["md"], st["md_messages"])
    yield c
    yield GaugeMetricFamily(
        "cift_nats_exec_pending",
        "Execution-report messages not yet acknowledged by JetStream",
        value=p.exec_pending(),
    )
    yield _counter(
        "cift_nats_exec_retries",
        "Exec windows sent again (not acknowledged in time)",
        st["exec_retries"],
    )
    yield _counter(
        "cift_nats_exec_spooled",
        "Exec messages that went to the spool file (outbox memory full)",
        p.outbox.spooled,
    )
    yield _counter(
        "cift_nats_exec_republished",
        "Exec messages re-made from the journal at start (after the published-through mark)",
        st["exec_republished"],
    )
    yield GaugeMetricFamily(
        "cift_nats_published_through_seq",
        "Engine seq through which JetStream has every execution report",
        value=p.published_seq,
    )


def _cache(cache: RedisCache) -> Iterator[_Family]:
    st = cache.stats
    yield _counter("cift_redis_writes", "Redis pipelines written", st["writes"])
    yield _counter("cift_redis_failures", "Redis writes that failed", st["failures"])
    yield _counter(
        "cift_redis_reconnects", "Times Redis answered again after failures", st["reconnects"]
    )
    yield _counter("cift_redis_rewrites", "Whole rewrites (Redis came back empty)", st["rewrites"])
    yield GaugeMetricFamily("cift_redis_up", "1 while Redis writes go through", value=cache.up)
    yield GaugeMetricFamily(
        "cift_redis_dirty_symbols", "Symbols changed since their last write", value=cache.dirty
    )
