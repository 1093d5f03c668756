"""Publishing actor: execution reports back to their sessions, only once durable.

Items (event batches from the books, reject batches from risk) wait in the inbox until the
persistence actor has the commands behind them (`mark_durable(seq)` >= the item's `max_seq`):
this hold is the durability gate, and it keeps FIFO order, so each session gets its reports in
pipeline order. Admitted items are turned into reply frames in Rust (`Publisher`: account ->
session routing, per-session output sequence numbers, one buffer per session) and handed to the
outlet (the gateway), one write per session per batch. Market data (Level events) is skipped
here; with NATS / Redis on, `listeners` (NATS entry replies, the NATS publisher, the Redis cache)
get every admitted batch, and `durable_listeners` every new durability mark (docs/nats.md).

Inbox full: the book actors and risk hold (backpressure). A session's own output is bounded by
the gateway (`gateway.output_buffer_bytes`, then disconnect with code 1009).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from actors.base import Actor
from actors.items import Reports
from engine.wire import Publisher

__all__ = ["Outlet", "PublishingActor"]


class Outlet(Protocol):
    def flush(self) -> None:
        """Write every session's pending frames (`Publisher.drain`) to its transport."""


class PublishingActor(Actor[Reports]):
    def __init__(self, publisher: Publisher, capacity: int, batch_max: int) -> None:
        super().__init__("publishing", capacity, batch_max)
        self.publisher = publisher
        self.durable_seq = 0
        self.outlet: Outlet | None = None
        self.on_latency: Callable[[float], None] = lambda _s: None
        self.admit = self._durable
        # Called with every admitted (durable) batch, after the sessions' output.
        self.listeners: list[Callable[[list[Reports]], None]] = []
        # Called with each new durability mark (NATS entry: JetStream acks).
        self.durable_listeners: list[Callable[[int], None]] = []

    def connect(self, outlet: Outlet) -> None:
        self.outlet = outlet

    def _durable(self, item: Reports) -> bool:
        return item.max_seq <= self.durable_seq

    def mark_durable(self, seq: int) -> None:
        """The journal has every command up to `seq`."""
        if seq > self.durable_seq:
            self.durable_seq = seq
            for listener in self.durable_listeners:
                listener(seq)
            if self.inbox._items:  # held items may be admissible now
                self.inbox.wake()

    def handle(self, batch: list[Reports]) -> None:
        assert self.outlet is not None, "not connected"
        publisher = self.publisher
        for r in batch:
            if r.symbol >= 0:
                publisher.add_events(r.events, r.symbol)
            else:
                publisher.add_events_each(r.events, r.symbols)
        self.outlet.flush()
        for listener in self.listeners:
            listener(batch)
        self.on_latency(time.perf_counter() - min(r.t_recv for r in batch))
