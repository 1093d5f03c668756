"""The daemon: THE one place that wires the pipeline, top to bottom.

    TCP sessions ─> 1 gateway ─> 2 risk ─┬─> 3 book actor per symbol ─┐
    NATS entry ────────────────┘         ├─> 4 persistence ───────────┼─> 5 publishing ─> sessions
                                         └──── rejects ───────────────┘   (once durable)
                                                                      └─> NATS, Redis (optional)

`Engine` recovers the books (newest snapshot + journal replay, engine/recovery.py), then builds
and connects the stages (no sockets: `perf/pipeline.py` drives it in-process); `serve(config)`
runs it as the long-running process: CPU affinity, recovery before any port opens, the TCP
listener, the HTTP endpoint (metrics, status, book), signals, sd_notify, supervision, periodic
snapshots and the graceful drain (which ends with a final snapshot). With `services.nats` /
`services.redis`, `Services` adds NATS order entry, execution reports and market data, and the
Redis cache (docs/nats.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import logging
import os
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

import engine
from actors.base import Actor, InboxClosed, State
from actors.book import BookActor
from actors.gateway import Gateway
from actors.items import Intake
from actors.lane import Lane
from actors.persistence import PersistenceActor, Snapshotter
from actors.publishing import PublishingActor
from actors.risk import (
    RISK_CONFIG_SECTION,
    RISK_SECTION,
    RiskActor,
    changed_risk_config,
    configure_risk,
    new_risk_engine,
    risk_config_items,
)
from engine import sdnotify, shardmap
from engine.book import Book, Side, advance_time, encode_command, mass_cancel
from engine.codes import GatewayCode
from engine.config import Config
from engine.http_api import HttpApi
from engine.metrics import Metrics
from engine.nats_entry import EntryBatch, NatsEntry, NatsEntryConfig
from engine.nats_publish import NatsPublishConfig, NatsPublisher
from engine.nats_publish import connect as nats_connect
from engine.nats_republish import replay_reports
from engine.recovery import (
    KIND_COMMANDS,
    SNAPSHOT_DIR,
    Recovered,
    RecoveryError,
    book_section,
    recover,
    snapshot_of,
    state_digest,
)
from engine.redis_cache import RedisCache, RedisCacheConfig
from engine.snapshot import Snapshot, write_snapshot
from engine.wire import ALL_SYMBOLS, Publisher, Sequencer, WireDecoder

if TYPE_CHECKING:
    from engine._native_risk import RiskEngine
else:
    from engine._native import RiskEngine

__all__ = ["RUNTIME_FILE", "Engine", "StartError", "serve"]

log = logging.getLogger(__name__)

RUNTIME_FILE = "daemon.json"  # in the data dir while running: pid and the ports bound
_ALL = struct.pack("<I", ALL_SYMBOLS)


class StartError(Exception):
    """The daemon cannot start (port in use, bad data directory, ...): a message, no traceback."""


class Engine:
    """The pipeline, wired. Start with `start()`, stop with `shutdown()` or `abort()`."""

    def __init__(self, config: Config, progress: Callable[[int], None] | None = None) -> None:
        self.config = config
        symbols = config.symbols
        queues, batch = config.queues, config.batch.max_records
        names = [s.name for s in symbols]

        # 0. Recovery, before anything else: the books from config, restored from the newest
        #    valid snapshot, then every journaled command after it re-applied (no replies).
        #    RecoveryError (corruption before the journal's last record) stops the start.
        #    The risk engine (when on) is restored from the same snapshot, configured from
        #    this config, and replay drives it as the pipeline does.
        books = [Book(s.min_price, s.max_price, s.max_order_qty) for s in symbols]
        self.recovered: Recovered = recover(
            config.data_dir,
            names,
            books,
            progress,
            risk=self._risk_engine if config.risk.enabled else None,
        )
        self.risk_engine: RiskEngine | None = self.recovered.risk
        next_seq = self.recovered.next_seq
        snapshot_seq = self.recovered.snapshot_seq
        if self.risk_engine is not None:
            snapshot_seq = self._configure_risk(self.risk_engine, names, books, next_seq - 1)

        # 1. Gateway: TCP sessions; each read is decoded whole in Rust into command records
        #    (account from the session, a symbol index beside each); replies go out through it.
        self.decoder = WireDecoder([s.name for s in symbols], config.gateway.max_frame_bytes)
        self.publisher = Publisher([s.spec() for s in symbols])
        self.gateway = Gateway(config, self.decoder, self.publisher)

        # 2. Risk: basic checks, the risk engine's checks (account limits, positions, ...),
        #    global sequence number + timestamp, per-symbol routing; one Rust call per batch.
        #    Refused commands take no sequence number and are never journaled. Sequence
        #    numbers continue after the journal's last one.
        on = self.risk_engine is not None
        self.sequencer = Sequencer([s.rules(on) for s in symbols], next_seq, self.recovered.last_ts)
        self.risk = RiskActor(self.sequencer, queues.risk, batch, risk=self.risk_engine)

        # 3. Books: one actor per symbol, each owning one native order book.
        self.books = [
            BookActor(s.name, i, book, queues.book, batch)
            for i, (s, book) in enumerate(zip(symbols, books, strict=True))
        ]

        # 4. Persistence: one journal record per sequenced batch (write-ahead, group commit),
        #    durable per `journal.fsync`; snapshots at consistent cuts.
        j = config.journal
        self.persistence = PersistenceActor(
            config.data_dir,
            j.roll_bytes,
            next_seq,
            j.policy,
            j.fsync_interval_us,
            queues.persistence,
            batch,
        )
        self.snapshots = Snapshotter(
            config.data_dir,
            names,
            j.snapshots_keep,
            self.persistence,
            snapshot_seq,
            j.prune_journal,
            j.sink_retention_max_commands,
            engine_time=lambda: self.sequencer.last_ts,
        )
        if self.risk_engine is not None:
            self.snapshots.static_sections[RISK_CONFIG_SECTION] = self._risk_config

        # 5. Publishing: execution reports to their sessions, released only once durable.
        self.publishing = PublishingActor(self.publisher, queues.publishing, batch)
        self.publishing.mark_durable(next_seq - 1)  # what the journal already holds

        # The edges, and what each does when the next stage is full:
        # The lane (actors/lane.py): a read that finds risk and every book idle runs through
        # them in one native call (with fsync "none" the append and the replies too); otherwise
        # it goes to risk.
        self.lane = (
            Lane(self.risk, self.books, self.persistence, self.publishing, KIND_COMMANDS)
            if config.batch.lane
            else None
        )
        self.gateway.connect(self.risk, self.lane)  # risk full: stop reading every socket
        self.risk.connect(self.books, self.persistence, self.publishing)  # full: risk waits
        for book in self.books:
            # publishing full: the book waits; its events go back to the risk engine
            book.connect(self.publishing, self.risk_engine)
        self.persistence.connect(self.publishing)  # mark_durable(seq): opens the gate
        self.publishing.connect(self.gateway)  # session output > limit: disconnect (1009)

        self.clock_ticks_dropped = 0
        self.started = time.time()
        self._rate = (time.monotonic(), 0, 0.0)  # (when, sequenced, orders/s)

    def _risk_engine(self, snapshot: bytes | None) -> RiskEngine:
        """The risk engine: restored from a snapshot's section, or new from the config."""
        if snapshot is None:
            return new_risk_engine(self.config)
        return RiskEngine.restore(snapshot)

    def _configure_risk(
        self, engine: RiskEngine, names: list[str], books: list[Book], seq: int
    ) -> int:
        """After recovery: apply the risk config items that changed since the state was last
        configured (all of them for a snapshot without that record), so runtime controls
        (journaled limit changes, switches, halts) survive restarts and an edited config file
        wins for what it changed. Then, if anything was applied or there was no snapshot, write
        a snapshot of the state at `seq` at once, so that a crash before the next snapshot
        replays the journal from this configured state. Returns the newest snapshot's seq."""
        self._risk_config = orjson.dumps(risk_config_items(self.config))
        sections = self.recovered.sections
        if sections is None:
            changed: list[str] = []  # new from this config, replayed from the journal's start
        else:
            changed = changed_risk_config(self.config, sections.get(RISK_CONFIG_SECTION))
            configure_risk(engine, self.config, changed)
        if changed:
            log.info("risk config changed since the last snapshot, applied: %s", ", ".join(changed))
        if sections is not None and not changed:
            return self.recovered.snapshot_seq
        snap = snapshot_of(names, books, seq, self.recovered.last_ts)
        sections = {
            **snap.sections,
            RISK_SECTION: engine.snapshot(),
            RISK_CONFIG_SECTION: self._risk_config,
        }
        write_snapshot(self.config.data_dir / SNAPSHOT_DIR, Snapshot(seq, sections))
        return seq

    def actors(self) -> list[Actor[Any]]:
        """Every queue-driven stage, in pipeline order."""
        return [self.risk, *self.books, self.persistence, self.publishing]

    def start(self) -> dict[asyncio.Future[None], str]:
        """Start the actors, sinks first; returns what to supervise (future -> stage name).
        Cancel-on-disconnect covers every way a session ends, the previous process's end too
        (SIGKILL, a crash, a power cut): each such account with live orders gets a mass cancel
        of every symbol, sequenced before any session can log on."""
        watched = {a.start(): a.name for a in reversed(self.actors())}
        for acc in self.config.accounts:
            if acc.cancel_on_disconnect and (
                self.risk_engine is None or self.risk_engine.live_symbols(acc.id)
            ):
                record = encode_command(mass_cancel(acc.id))
                self.risk.submit(Intake(record, _ALL, time.perf_counter()), 1)
        loop = asyncio.get_running_loop()
        watched[loop.create_task(self._sample_rate(), name="rate")] = "rate"
        if self.config.clock.advance_interval_ms > 0:
            watched[loop.create_task(self._clock(), name="clock")] = "clock"
        j = self.config.journal
        if j.snapshot_every_commands > 0 or j.snapshot_interval_s > 0:
            watched[loop.create_task(self._snapshot_timer(), name="snapshots")] = "snapshots"
        return watched

    async def shutdown(self) -> None:
        """Graceful stop in pipeline order: intake off, drain every stage (the journal made
        durable before publishing drains), close sessions, then a final snapshot so the next
        start replays nothing."""
        await self.gateway.stop_intake()
        upstream: list[Actor[Any]] = [self.risk, *self.books, self.persistence]
        for actor in upstream:
            await actor.drain()
        await self.persistence.flush()
        await self.publishing.drain()
        self.gateway.flush()
        await self.gateway.close_sessions(
            GatewayCode.SHUTTING_DOWN, self.config.shutdown.drain_timeout_s
        )
        await self.final_snapshot()
        self.persistence.close()

    async def final_snapshot(self) -> None:
        """Every stage drained and the journal durable: snapshot the books as they are."""
        seq = self.sequencer.next_seq - 1
        sections = {book_section(b.symbol): b.book.snapshot() for b in self.books}
        if self.risk_engine is not None:
            sections[RISK_SECTION] = self.risk_engine.snapshot()
        await self.snapshots.final(seq, sections)

    def snapshot_now(self) -> int | None:
        """Start a snapshot at the last sequenced seq (the barrier through the book actors);
        returns that seq, or None when one is in progress or nothing is new."""
        return self.risk.snapshot_barrier(self.snapshots.mark, self._add_section)

    def _add_section(self, name: str, data: bytes) -> None:
        """A section for the cut in progress (the risk engine's state at the barrier)."""
        cut = self.snapshots.pending
        if cut is not None:
            cut.sections[name] = data

    async def _snapshot_timer(self) -> None:
        j = self.config.journal
        period = min(0.25, j.snapshot_interval_s) if j.snapshot_interval_s > 0 else 0.25
        while True:
            await asyncio.sleep(period)
            last = self.snapshots.last_seq
            new = self.sequencer.next_seq - 1 - last
            if new <= 0 or self.snapshots.pending is not None:
                continue
            due_count = 0 < j.snapshot_every_commands <= new
            age = time.monotonic() - self.snapshots.last_time
            due_time = 0 < j.snapshot_interval_s <= age
            if due_count or due_time:
                self.snapshot_now()

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
        self.persistence.close()

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
        states = {1: "open", 2: "halted", 3: "closed"}
        for i, (b, s) in enumerate(zip(self.books, self.config.symbols, strict=True)):
            last, volume, _, trades = b.book.stats()
            view = self.risk_engine.symbol(i) if self.risk_engine is not None else None
            symbols.append(
                {
                    "name": b.symbol,
                    # trading state (docs/risk.md "Controls"); always open without risk engine
                    "state": states.get(view["state"], "?") if view is not None else "open",
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
            "shard": self.config.shard.name,
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
            "durable_seq": self.persistence.durable_seq,
            "state_digest": state_digest([b.book for b in self.books]),
            # the risk engine's state (FNV-1a 64 of its snapshot; `journal replay` prints it too)
            "risk_digest": (
                f"{self.risk_engine.digest():016x}" if self.risk_engine is not None else None
            ),
            "journal": {
                "fsync": self.config.journal.policy,
                "written_seq": self.persistence.written_seq,
                "bytes": self.persistence.bytes,
                "fsyncs": self.persistence.fsyncs,
                "snapshot_seq": self.snapshots.last_seq,
                "snapshots_written": self.snapshots.written,
            },
            "recovery": {
                "snapshot_seq": self.recovered.snapshot_seq,
                "replayed": self.recovered.replayed,
                "torn_bytes": self.recovered.torn_bytes,
                "seconds": round(self.recovered.seconds, 6),
            },
            "risk": self._risk_status(),
            "symbols": symbols,
            "sessions": self.gateway.status(),
            "queues": queues,
        }

    def _risk_status(self) -> dict[str, Any]:
        engine = self.risk_engine
        if engine is None:
            return {"enabled": False}
        return {
            "enabled": True,
            "accounts": len(engine.account_ids()),
            "live_orders": engine.live_orders(),
            "replay_refused": self.recovered.risk_refused,
        }

    def risk_view(self, account: int) -> dict[str, Any] | None:
        """The risk engine's view of one account (`cift-engine risk show`): limits and usage,
        positions with P&L, live orders; None without the risk engine. Amounts are in price
        units x quantity units."""
        engine = self.risk_engine
        if engine is None:
            return None
        names = [s.name for s in self.config.symbols]
        precision = {s.name: s.price_precision for s in self.config.symbols}

        def named(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            out = []
            for r in rows:
                sym = r.get("symbol")
                name = names[sym] if isinstance(sym, int) and sym < len(names) else str(sym)
                out.append({**r, "symbol": name, "price_precision": precision.get(name, 0)})
            return out

        view: dict[str, Any] = _json_safe(
            {
                "account": account,
                # limits and usage; None: the engine has not seen the account yet
                "usage": engine.account(account),
                "default_limits": _limits_dict(engine),
                "positions": named(engine.positions(account)),
                "orders": named(engine.orders(account)),
            }
        )
        return view

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


class Services:
    """NATS order entry and publishing, the Redis cache (docs/nats.md), per `[services]`: built
    on the recovered engine, started after it (the entry last: it takes orders), stopped in
    pipeline order around the engine's drain."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.nc: Any = None
        self.entry: NatsEntry | None = None
        self.publisher: NatsPublisher | None = None
        self.cache: RedisCache | None = None
        self._submitting = 0

    async def start(self) -> list[asyncio.Task[None]]:
        """Connect and start what the config enables; returns the tasks to supervise. Raises
        StartError when NATS (with JetStream) cannot be used."""
        eng, config = self.eng, self.eng.config
        last_seq = eng.recovered.next_seq - 1
        tasks: list[asyncio.Task[None]] = []
        if config.services.nats:
            tasks += await self._start_nats(last_seq)
        if config.services.redis:
            r = config.redis
            self.cache = RedisCache(
                [s.name for s in config.symbols], RedisCacheConfig(url=r.url, depth=r.depth)
            )
            for i, b in enumerate(eng.books):
                self.cache.load(i, b.book, last_seq)
            eng.publishing.listeners.append(self.cache.update)
            tasks.append(self.cache.start())
        if self.entry is not None:
            try:
                tasks += await self.entry.start()  # last: it starts taking orders
            except Exception as e:
                raise StartError(f"NATS order entry at {config.nats.url}: {e!r}") from None
        return tasks

    async def _start_nats(self, last_seq: int) -> list[asyncio.Task[None]]:
        eng, config = self.eng, self.eng.config
        n = config.nats
        try:
            self.nc = await nats_connect(n.url, f"cift-engine-{os.getpid()}")
        except Exception as e:
            raise StartError(f"cannot connect to NATS at {n.url}: {e!r}") from None
        specs = [s.spec() for s in config.symbols]
        tokens = {a.id: a.token for a in config.accounts}
        self.publisher = publisher = NatsPublisher(
            self.nc,
            specs,
            tokens,
            config.data_dir,
            NatsPublishConfig(
                exec_stream=n.exec_stream,
                exec_max_age_s=n.exec_max_age_s,
                exec_outbox_bytes=n.exec_outbox_bytes,
                md_queue=n.md_queue,
                md_heartbeat_s=n.md_heartbeat_s,
            ),
        )
        for i, b in enumerate(eng.books):
            publisher.load(i, b.book)  # the recovered book, for snapshots
        self._republish(publisher, last_seq)
        self.entry = entry = NatsEntry(
            self.nc,
            specs,
            tokens,
            self._submit,
            config.data_dir,
            last_seq,
            NatsEntryConfig(
                subject_prefix=n.subject_prefix,
                durable_prefix=n.durable_prefix,
                stream=n.stream,
                consumer=n.consumer,
                ack_wait_s=n.ack_wait_s,
                max_ack_pending=n.max_ack_pending,
                duplicate_window_s=n.duplicate_window_s,
                max_frame_bytes=config.gateway.max_frame_bytes,
                max_pending=n.max_pending,
                fsync=config.journal.policy != "none",
            ),
            on_rejects=publisher.publish_rejects,
        )
        eng.publishing.listeners += [entry.on_reports, publisher.publish]
        eng.publishing.durable_listeners.append(entry.mark_durable)
        try:
            return await publisher.start()
        except Exception as e:
            raise StartError(f"NATS publishing at {n.url}: {e!r}") from None

    def _republish(self, publisher: NatsPublisher, last_seq: int) -> None:
        """The execution reports of journaled commands the previous run may not have got to
        JetStream (after its published-through mark), queued before any new report."""
        config = self.eng.config
        after = publisher.resume(last_seq)
        if after >= last_seq:
            return
        books = [Book(s.min_price, s.max_price, s.max_order_qty) for s in config.symbols]
        names = [s.name for s in config.symbols]
        start, n = replay_reports(config.data_dir, names, books, after, publisher.republish)
        log.info(
            "NATS: re-publishing the execution reports of %d journaled commands (seq %d..%d) "
            "in %d messages",
            n,
            start + 1,
            last_seq,
            publisher.stats["exec_republished"],
        )

    async def _submit(self, b: EntryBatch) -> None:
        """NatsEntry's hand-over: waits while risk is full (backpressure up to NATS)."""
        self._submitting += 1
        try:
            item = Intake(b.commands, b.symbols, b.t_recv, b.sequenced)
            await self.eng.risk.inbox.put(item, b.count)
        except InboxClosed:
            pass  # stopping: not sequenced, so never journaled (JetStream delivers it again)
        finally:
            self._submitting -= 1

    async def stop_intake(self, timeout: float = 2.0) -> None:
        """No new NATS orders; what was decoded already is handed to risk (up to `timeout`)."""
        entry = self.entry
        if entry is None:
            return
        await entry.stop_intake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while entry.intake_pending() or self._submitting:
                    await asyncio.sleep(0.005)

    async def close(self, timeout: float = 2.0) -> None:
        """After the engine drained: last replies, acks, reports and cache writes (each given
        up to `timeout`: with a service down, what is unsent is given up, the journal has it)."""
        for part in (self.entry, self.publisher, self.cache):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.close(timeout)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(timeout):
                    await self.nc.close()

    async def abort(self) -> None:
        """Stop at once (after a failure or a failed start)."""
        if self.entry is not None:
            with contextlib.suppress(Exception):
                await self.entry.stop_intake()
        await self.close(0.5)


def _limits_dict(engine: RiskEngine) -> dict[str, Any]:
    d = engine.defaults
    keys = (
        "max_open_orders",
        "max_open_buy_notional",
        "max_open_sell_notional",
        "credit_limit",
        "max_position",
        "rate_per_sec",
        "rate_burst",
    )
    return {k: getattr(d, k) for k in keys}


_I64 = 1 << 63


def _json_safe(v: Any) -> Any:
    """Risk amounts are i128: anything outside i64 becomes a string (orjson's integer range)."""
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool) and not -_I64 <= v < _I64:
        return str(v)
    return v


def _apply_affinity(cpus: tuple[int, ...]) -> None:
    if not cpus:
        log.info("CPU affinity: not pinned (may run on CPUs %s)", sorted(os.sched_getaffinity(0)))
        return
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, ValueError) as e:
        raise StartError(f"process.cpu_affinity {list(cpus)}: cannot pin: {e}") from None
    log.info("CPU affinity: pinned to CPUs %s", sorted(os.sched_getaffinity(0)))


def _shards(config: Config) -> Callable[[], dict[str, Any] | None]:
    """GET /shards: the map this shard started with (discovery), None without one."""
    body = (
        {
            "shard": config.shard.name,
            "source": config.shard_map.source,
            **config.shard_map.to_json(),
        }
        if config.shard_map is not None
        else None
    )
    return lambda: body


def _write_runtime(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(info))
    tmp.replace(path)


async def serve(config: Config) -> int:
    """Run the daemon until SIGTERM/SIGINT (exit 0 after a clean drain) or a failure (1)."""
    loop = asyncio.get_running_loop()
    faulthandler.enable()  # a hard crash (segfault, abort) still prints every thread's stack
    if (mismatch := shardmap.instance_mismatch(config)) is not None:
        raise StartError(mismatch)
    inherited = os.sched_getaffinity(0)
    cores = shardmap.pinned_cores(config)
    _apply_affinity(cores)
    if (drift := shardmap.inherited_mismatch(config, inherited, set(cores))) is not None:
        log.warning("%s", drift)
    for warning in shardmap.host_warnings(config):
        log.warning("%s", warning)
    if config.journal.policy == "none":
        log.warning(
            'journal.fsync = "none": acknowledged orders are NOT durable across a machine '
            "crash or power loss (a process crash is survived). Benchmarks only."
        )
    extended = [time.monotonic()]

    def replaying(done: int) -> None:  # keep systemd's start timeout ahead of a long replay
        now = time.monotonic()
        if now - extended[0] > 5.0:
            extended[0] = now
            sdnotify.extend_timeout(30.0)
            sdnotify.status(f"recovering: {done} commands replayed")

    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        eng = Engine(config, replaying)
    except RecoveryError as e:
        raise StartError(f"recovery of {config.data_dir} failed: {e}") from None
    except (OSError, ValueError) as e:
        raise StartError(f"data directory {config.data_dir}: {e}") from None
    r = eng.recovered
    log.info(
        "recovery: snapshot seq %d, %d commands replayed, torn tail %d bytes, %.3f s; "
        "next seq %d; state digest %s",
        r.snapshot_seq,
        r.replayed,
        r.torn_bytes,
        r.seconds,
        r.next_seq,
        state_digest([b.book for b in eng.books]),
    )
    for problem in r.problems:
        log.warning("recovery: skipped snapshot %s", problem)
    if r.risk_refused:
        log.warning(
            "recovery: the risk engine refused %d replayed commands (they were accepted when "
            "sequenced; the books' events still track them): see docs/risk.md",
            r.risk_refused,
        )
    metrics = Metrics()
    metrics.bind(eng)
    watched = eng.start()
    watched[loop.create_task(metrics.probe_loop(), name="loop-probe")] = "loop-probe"
    watchdog = sdnotify.watchdog_task()
    http = HttpApi(metrics.registry, eng.status, eng.book_depth, eng.risk_view, _shards(config))
    services = Services(eng)
    try:
        for t in await services.start():
            watched[t] = t.get_name()
        metrics.bind_services(services)
        for t in await eng.gateway.start():
            watched[t] = t.get_name()
        if config.http.enabled:
            await http.start(config.http.host, config.http.port)
    except (OSError, StartError) as e:
        await services.abort()
        await eng.abort()
        for f in watched:
            f.cancel()
        await sdnotify.stop_watchdog(watchdog)
        if isinstance(e, StartError):
            raise
        raise StartError(f"cannot listen: {e}") from None

    # Everything built so far lives as long as the process: keep it out of the cyclic GC's scans.
    gc.collect()
    gc.freeze()
    # Signal handlers before daemon.json: whoever sees that file may send SIGTERM at once.
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("%s: stopping (drain, then exit)", signal.Signals(signum).name)
        sdnotify.stopping("draining")
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

    runtime = config.data_dir / RUNTIME_FILE
    _write_runtime(
        runtime,
        {
            "pid": os.getpid(),
            "gateway_port": eng.gateway.port,
            "http_port": http.port,
            "shard": config.shard.name,
        },
    )
    log.info(
        "ready: %d symbols, gateway %s:%d, http %s, journal at seq %d (fsync %s)",
        len(config.symbols),
        config.gateway.host,
        eng.gateway.port,
        f"{config.http.host}:{http.port}" if config.http.enabled else "off",
        eng.persistence.written_seq,
        config.journal.policy,
    )
    sdnotify.ready(f"serving {len(config.symbols)} symbols on port {eng.gateway.port}")

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
            await services.abort()
            await eng.abort()
            return 1
        return await _drain(eng, config, services)
    finally:
        for f in [*watched, stopper]:
            f.cancel()
        await asyncio.gather(*watched, stopper, return_exceptions=True)
        await sdnotify.stop_watchdog(watchdog)
        await http.stop()
        with contextlib.suppress(OSError):
            runtime.unlink()


async def _drain(eng: Engine, config: Config, services: Services) -> int:
    start = time.monotonic()
    try:
        async with asyncio.timeout(config.shutdown.drain_timeout_s):
            await services.stop_intake()  # NATS intake off with the gateway's (shutdown)
            await eng.shutdown()
            await services.close()
    except TimeoutError:
        log.error("drain did not finish in %.1f s: exiting", config.shutdown.drain_timeout_s)
        await services.abort()
        await eng.abort()
        return 1
    except Exception:
        log.exception("a stage failed while draining")
        await services.abort()
        await eng.abort()
        return 1
    log.info(
        "stopped cleanly in %.3f s: last seq %d, snapshot at seq %d",
        time.monotonic() - start,
        eng.persistence.written_seq,
        eng.snapshots.last_seq,
    )
    return 0
