"""The daemon: THE one place that wires the pipeline, top to bottom.

    TCP sessions ─> 1 gateway ─> 2 risk ─┬─> 3 book actor per symbol ─┐
                                         ├─> 4 persistence ───────────┼─> 5 publishing ─> sessions
                                         └──── rejects ───────────────┘   (once durable)

`Engine` builds and connects the stages (no sockets: `perf/pipeline.py` drives it in-process);
`serve(config)` runs it as the long-running process: CPU affinity, the TCP listener, the HTTP
endpoint (metrics, status, book), signals, supervision and the graceful drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import struct
import time
from pathlib import Path
from typing import Any

import orjson

import engine
from actors.base import Actor, State
from actors.book import BookActor
from actors.gateway import Gateway
from actors.items import Intake
from actors.persistence import LOG_NAME, CommandLog, PersistenceActor
from actors.publishing import PublishingActor
from actors.risk import RiskActor
from engine.book import Book, Side, advance_time, encode_command
from engine.codes import GatewayCode
from engine.config import Config
from engine.http_api import HttpApi
from engine.metrics import Metrics
from engine.wire import ALL_SYMBOLS, Publisher, Sequencer, WireDecoder

__all__ = ["RUNTIME_FILE", "Engine", "StartError", "serve"]

log = logging.getLogger(__name__)

RUNTIME_FILE = "daemon.json"  # in the data dir while running: pid and the ports bound
_ALL = struct.pack("<I", ALL_SYMBOLS)


class StartError(Exception):
    """The daemon cannot start (port in use, bad data directory, ...): a message, no traceback."""


class Engine:
    """The pipeline, wired. Start with `start()`, stop with `shutdown()` or `abort()`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        symbols = config.symbols
        queues, batch = config.queues, config.batch.max_records
        self.command_log = CommandLog(config.data_dir / LOG_NAME)

        # 1. Gateway: TCP sessions; each read is decoded whole in Rust into command records
        #    (account from the session, a symbol index beside each); replies go out through it.
        self.decoder = WireDecoder([s.name for s in symbols], config.gateway.max_frame_bytes)
        self.publisher = Publisher([s.spec() for s in symbols])
        self.gateway = Gateway(config, self.decoder, self.publisher)

        # 2. Risk: basic checks, global sequence number + timestamp, per-symbol routing; one
        #    Rust call per batch. Sequence numbers continue after the command log's last one.
        self.sequencer = Sequencer([s.rules() for s in symbols], self.command_log.last_seq + 1)
        self.risk = RiskActor(self.sequencer, queues.risk, batch)

        # 3. Books: one actor per symbol, each owning one native order book.
        self.books = [
            BookActor(
                s.name, i, Book(s.min_price, s.max_price, s.max_order_qty), queues.book, batch
            )
            for i, s in enumerate(symbols)
        ]

        # 4. Persistence: appends each sequenced batch to the command log (write-ahead).
        self.persistence = PersistenceActor(
            self.command_log, config.journal.fsync == "batch", queues.persistence, batch
        )

        # 5. Publishing: execution reports to their sessions, released only once durable.
        self.publishing = PublishingActor(self.publisher, queues.publishing, batch)
        self.publishing.mark_durable(self.command_log.last_seq)  # what the log already holds

        # The edges, and what each does when the next stage is full:
        self.gateway.connect(self.risk)  # risk full: stop reading every socket
        self.risk.connect(self.books, self.persistence, self.publishing)  # full: risk waits
        for book in self.books:
            book.connect(self.publishing)  # publishing full: the book waits
        self.persistence.connect(self.publishing)  # mark_durable(seq): opens the gate
        self.publishing.connect(self.gateway)  # session output > limit: disconnect (1009)

        self.clock_ticks_dropped = 0
        self.started = time.time()
        self._rate = (time.monotonic(), 0, 0.0)  # (when, sequenced, orders/s)

    def actors(self) -> list[Actor[Any]]:
        """Every queue-driven stage, in pipeline order."""
        return [self.risk, *self.books, self.persistence, self.publishing]

    def start(self) -> dict[asyncio.Future[None], str]:
        """Start the actors, sinks first; returns what to supervise (future -> stage name)."""
        watched = {a.start(): a.name for a in reversed(self.actors())}
        loop = asyncio.get_running_loop()
        watched[loop.create_task(self._sample_rate(), name="rate")] = "rate"
        if self.config.clock.advance_interval_ms > 0:
            watched[loop.create_task(self._clock(), name="clock")] = "clock"
        return watched

    async def shutdown(self) -> None:
        """Graceful stop in pipeline order: intake off, drain every stage, close sessions."""
        await self.gateway.stop_intake()
        for actor in self.actors():
            await actor.drain()
        self.gateway.flush()
        await self.gateway.close_sessions(
            GatewayCode.SHUTTING_DOWN, self.config.shutdown.drain_timeout_s
        )
        self.command_log.close()

    async def abort(self) -> None:
        """Stop at once (after a failure): queued work is dropped, sessions are cut."""
        self.gateway.state = State.STOPPED
        if self.gateway.server is not None:
            self.gateway.server.close()
        for s in list(self.gateway.sessions.values()):
            if s.transport is not None:
                s.transport.abort()
        for actor in self.actors():
            await actor.stop()
        self.command_log.close()

    async def _clock(self) -> None:
        """Sequence an AdvanceTime (GTD expiry) every `clock.advance_interval_ms`. Policy when
        the risk inbox is full: skip this tick and count it (the next tick covers it)."""
        record = encode_command(advance_time(0))
        interval = self.config.clock.advance_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            if self.risk.inbox.full():
                self.clock_ticks_dropped += 1
                continue
            self.risk.submit(Intake(record, _ALL, time.perf_counter()), 1)

    async def _sample_rate(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now, done = time.monotonic(), self.sequenced()
            then, before, _ = self._rate
            self._rate = (now, done, (done - before) / (now - then) if now > then else 0.0)

    def sequenced(self) -> int:
        n = self.sequencer.stats()["sequenced"]
        return n if isinstance(n, int) else 0

    # ---------------------------------------------------------------- queries (HTTP)

    def status(self) -> dict[str, Any]:
        def level(v: tuple[int, int, int] | None) -> list[int] | None:
            return list(v) if v is not None else None

        symbols = []
        for b, s in zip(self.books, self.config.symbols, strict=True):
            last, volume, _, trades = b.book.stats()
            symbols.append(
                {
                    "name": b.symbol,
                    "price_precision": s.price_precision,
                    "orders": b.book.order_count(),
                    "best_bid": level(b.book.best_bid()),
                    "best_ask": level(b.book.best_ask()),
                    "last_price": last,
                    "volume": volume,
                    "trades": trades,
                }
            )
        queues = [
            {
                "actor": a.name,
                "state": a.state.value,
                "depth": a.inbox.size,
                "capacity": a.inbox.capacity,
                "batches": a.batches,
            }
            for a in self.actors()
        ]
        return {
            "version": engine.__version__,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 3),
            "state": self.gateway.state.value,
            "gateway": {
                "host": self.config.gateway.host,
                "port": self.gateway.port,
                "backpressure": self.gateway.paused,
            },
            "orders_per_s": round(self._rate[2], 1),
            "sequenced": self.sequenced(),
            "next_seq": self.sequencer.next_seq,
            "durable_seq": self.publishing.durable_seq,
            "symbols": symbols,
            "sessions": self.gateway.status(),
            "queues": queues,
        }

    def book_depth(self, symbol: str, depth: int) -> dict[str, Any] | None:
        for b, s in zip(self.books, self.config.symbols, strict=True):
            if b.symbol == symbol:
                return {
                    "symbol": symbol,
                    "price_precision": s.price_precision,
                    "last_price": b.book.stats()[0],
                    "bids": [list(x) for x in b.book.depth(Side.BUY, depth)],
                    "asks": [list(x) for x in b.book.depth(Side.SELL, depth)],
                }
        return None


def _apply_affinity(cpus: tuple[int, ...]) -> None:
    if not cpus:
        log.info("CPU affinity: not pinned (may run on CPUs %s)", sorted(os.sched_getaffinity(0)))
        return
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, ValueError) as e:
        raise StartError(f"process.cpu_affinity {list(cpus)}: cannot pin: {e}") from None
    log.info("CPU affinity: pinned to CPUs %s", sorted(os.sched_getaffinity(0)))


def _write_runtime(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(info))
    tmp.replace(path)


async def serve(config: Config) -> int:
    """Run the daemon until SIGTERM/SIGINT (exit 0 after a clean drain) or a failure (1)."""
    loop = asyncio.get_running_loop()
    _apply_affinity(config.process.cpu_affinity)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        eng = Engine(config)
    except (OSError, ValueError) as e:
        raise StartError(f"data directory {config.data_dir}: {e}") from None
    metrics = Metrics()
    metrics.bind(eng)
    watched = eng.start()
    watched[loop.create_task(metrics.probe_loop(), name="loop-probe")] = "loop-probe"
    http = HttpApi(metrics.registry, eng.status, eng.book_depth)
    try:
        for t in await eng.gateway.start():
            watched[t] = t.get_name()
        if config.http.enabled:
            await http.start(config.http.host, config.http.port)
    except OSError as e:
        await eng.abort()
        for f in watched:
            f.cancel()
        raise StartError(f"cannot listen: {e}") from None

    # Everything built so far lives as long as the process: keep it out of the cyclic GC's scans.
    gc.collect()
    gc.freeze()
    runtime = config.data_dir / RUNTIME_FILE
    _write_runtime(
        runtime,
        {"pid": os.getpid(), "gateway_port": eng.gateway.port, "http_port": http.port},
    )
    log.info(
        "ready: %d symbols, gateway %s:%d, http %s, command log at seq %d",
        len(config.symbols),
        config.gateway.host,
        eng.gateway.port,
        f"{config.http.host}:{http.port}" if config.http.enabled else "off",
        eng.command_log.last_seq,
    )

    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("%s: stopping (drain, then exit)", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

    async def stopped() -> None:
        await stop.wait()

    stopper = loop.create_task(stopped(), name="stop")
    try:
        done, _ = await asyncio.wait([stopper, *watched], return_when=asyncio.FIRST_COMPLETED)
        failed = [f for f in done if f is not stopper]
        if failed:
            for f in failed:
                exc = f.exception() if not f.cancelled() else None
                log.error(
                    "stage %s failed, stopping the daemon: %r",
                    watched.get(f, "?"),
                    exc or "stopped unexpectedly",
                    exc_info=exc,
                )
            await eng.abort()
            return 1
        return await _drain(eng, config)
    finally:
        for f in [*watched, stopper]:
            f.cancel()
        await asyncio.gather(*watched, stopper, return_exceptions=True)
        await http.stop()
        with contextlib.suppress(OSError):
            runtime.unlink()


async def _drain(eng: Engine, config: Config) -> int:
    start = time.monotonic()
    try:
        async with asyncio.timeout(config.shutdown.drain_timeout_s):
            await eng.shutdown()
    except TimeoutError:
        log.error("drain did not finish in %.1f s: exiting", config.shutdown.drain_timeout_s)
        await eng.abort()
        return 1
    except Exception:
        log.exception("a stage failed while draining")
        await eng.abort()
        return 1
    log.info(
        "stopped cleanly in %.3f s: last seq %d", time.monotonic() - start, eng.command_log.last_seq
    )
    return 0
