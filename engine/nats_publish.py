"""NATS publishing: execution reports and market data, after durability (docs/nats.md).

Input: the batches the publishing actor releases (`publish(batch)`: items with `events` (event
records, EVENT_SIZE each), `symbol` (the symbol index, or -1 with one u32 index per event in
`symbols`)); the caller guarantees every seq in them is durable. `publish` is synchronous and
never waits for NATS: it encodes and queues, the sender tasks do the I/O.

Out:
- `exec.<account>`: that account's execution reports, Cap'n Proto ServerMessage frames (the TCP
  encoding, made by the Rust `Publisher`, one session per configured account: `seq` counts the
  account's reports 1, 2, 3, ... per engine boot); one message per account per batch, header
  `Cift-Account`, `Cift-Boot`. `exec.all`: the same messages for every account (drop copy).
  Both go to the JetStream stream `exec_stream` (subjects `exec.>`), published with a
  `Nats-Msg-Id` and retried until the server acknowledges them: never dropped.
- `md.<symbol>.book`: the L2 level changes of a batch, coalesced (a level touched several times
  is sent once with its final value), numbered per symbol (`seq` 1, 2, ...); a heartbeat with
  the current `seq` and no levels every `md_heartbeat_s`. `md.<symbol>.trades`: the trades of
  a batch. `md.<symbol>.snapshot` (request/reply): every level, stamped with the `seq` it covers.
  `orders.cancelled.<symbol>`: one message per order cancellation. JSON (orjson).

Overflow policies:
- execution reports: an outbox of at most `exec_outbox_bytes` in memory; beyond it (NATS down
  for long) reports are appended to a spool file and sent from it, in order, once NATS is back.
  Nothing is dropped and matching never waits.
- market data: a queue of at most `md_queue` messages; when it is full, or NATS is disconnected,
  a message is dropped and counted (`stats["md_dropped"]`). Subscribers see the gap in `seq`
  and resync from a snapshot (engine.mdclient does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import nats
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from engine.book import EVENT_SIZE, Book, CancelReason, EventKind
from engine.nats_republish import MARK_FILE, PublishedMark
from engine.wire import Publisher

__all__ = [
    "REASON_NAMES",
    "L2Book",
    "NatsPublishConfig",
    "NatsPublisher",
    "Outbox",
    "ReportsLike",
    "SymbolSpec",
    "connect",
    "ensure_stream",
    "side_name",
]

log = logging.getLogger(__name__)

SymbolSpec = tuple[str, int, int, int, int, int, int]

# Event record fields (native/src/types.rs): the whole record, and the Level view of it.
_EVENT = struct.Struct("<4BH2x4Q3q3Q2q")
_LEVEL = struct.Struct("<xB6xQ24xqq32xq8x")  # side, seq, price, qty, aux (order count)
assert _EVENT.size == EVENT_SIZE and _LEVEL.size == EVENT_SIZE
_SEQ = struct.Struct("<Q")

_TRADE = int(EventKind.TRADE)
_CANCELLED = int(EventKind.CANCELLED)
_LEVEL_KIND = int(EventKind.LEVEL)
_ADMIN = int(EventKind.ADMIN)
# Admin actions that change a symbol's trading state (engine/schema/cift.capnp AdminAction).
_STATES = {6: "halted", 7: "open", 8: "closed"}
_ADMIN_REC = struct.Struct("<BxBxHxxQ")  # kind, action (reason), code, seq
# Cancel reasons by value, named as in the schema's CancelReason.
REASON_NAMES = (
    "none",
    "user",
    "iocRemainder",
    "fokUnfilled",
    "selfTrade",
    "expired",
    "massCancel",
    "marketProtection",
)
assert len(REASON_NAMES) == max(CancelReason) + 1


def side_name(side: int) -> str:
    return {1: "buy", 2: "sell"}.get(side, "none")


class _Rejects(NamedTuple):
    events: bytes
    symbol: int
    symbols: bytes


class ReportsLike(Protocol):
    """What the publishing actor hands on (actors.items.Reports fits)."""

    @property
    def events(self) -> bytes: ...
    @property
    def symbol(self) -> int: ...
    @property
    def symbols(self) -> bytes: ...


async def connect(servers: str | list[str], name: str, **options: Any) -> NATS:
    """A nats-py connection that reconnects forever (outages are the publishers' business)."""
    opts: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.25,
        "allow_reconnect": True,
    }
    opts.update(options)
    return await nats.connect(servers, **opts)


async def ensure_stream(nc: NATS, config: StreamConfig) -> None:
    """Create the stream, or update it to `config` if it exists with other settings."""
    js = nc.jetstream()
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


# ---------------------------------------------------------------- the L2 book of a subscriber


class L2Book:
    """Price levels of both sides: price -> (visible qty, order count). A level with qty 0 is
    gone. What engine.mdclient keeps and what the publisher mirrors for its snapshots."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, tuple[int, int]] = {}
        self.asks: dict[int, tuple[int, int]] = {}

    def side(self, side: int) -> dict[int, tuple[int, int]]:
        return self.bids if side == 1 else self.asks

    def apply(self, side: int, price: int, qty: int, count: int) -> None:
        levels = self.bids if side == 1 else self.asks
        if qty:
            levels[price] = (qty, count)
        else:
            levels.pop(price, None)

    def depth(self, side: int, n: int | None = None) -> list[tuple[int, int, int]]:
        """Best `n` levels (all if None) as (price, qty, count), best first."""
        levels = self.bids if side == 1 else self.asks
        prices = sorted(levels, reverse=side == 1)
        if n is not None:
            prices = prices[:n]
        return [(p, *levels[p]) for p in prices]

    def best(self, side: int) -> tuple[int, int, int] | None:
        levels = self.bids if side == 1 else self.asks
        if not levels:
            return None
        p = max(levels) if side == 1 else min(levels)
        return (p, *levels[p])

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, L2Book) and (self.bids, self.asks) == (other.bids, other.asks)

    __hash__ = None  # type: ignore[assignment]


# ---------------------------------------------------------------- exec outbox


class _Item(NamedTuple):
    """One exec message: for `account`, of a batch whose highest engine seq is `through`."""

    account: int
    msg_id: str
    payload: bytes
    through: int


class Outbox:
    """Execution-report messages waiting to be sent: FIFO, in memory up to `max_bytes`, then in
    a spool file (`path`). Once something is spooled, everything after it is spooled too, so
    order is kept; the spool is read back as the memory part empties."""

    _REC = struct.Struct("<QQII")  # account, through seq, msg id length, payload length

    def __init__(self, max_bytes: int, path: Path) -> None:
        self.max_bytes = max_bytes
        self.path = path
        self.mem: deque[_Item] = deque()
        self.mem_bytes = 0
        self.spooled = 0  # messages ever written to the spool
        self._fd = -1
        self._read = 0
        self._write = 0
        self._signal = asyncio.Event()

    def __len__(self) -> int:
        return len(self.mem) + (1 if self._write > self._read else 0)

    @property
    def spooling(self) -> bool:
        return self._write > self._read

    def put(self, item: _Item) -> None:
        if self.spooling or self.mem_bytes + len(item.payload) > self.max_bytes:
            self._spool(item)
        else:
            self.mem.append(item)
            self.mem_bytes += len(item.payload)
        self._signal.set()

    def take(self, max_items: int) -> list[_Item]:
        if not self.mem and self.spooling:
            self._unspool()
        out: list[_Item] = []
        while self.mem and len(out) < max_items:
            item = self.mem.popleft()
            self.mem_bytes -= len(item.payload)
            out.append(item)
        return out

    def head_through(self) -> int | None:
        """The `through` label of the next message `take` would give (None: empty)."""
        if self.mem:
            return self.mem[0].through
        if self.spooling:
            return int(self._REC.unpack(os.pread(self._fd, self._REC.size, self._read))[1])
        return None

    async def wait(self) -> None:
        self._signal.clear()
        if not len(self):
            await self._signal.wait()

    def _spool(self, item: _Item) -> None:
        if self._fd < 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            self._read = self._write = 0
        ident = item.msg_id.encode()
        head = self._REC.pack(item.account, item.through, len(ident), len(item.payload))
        rec = head + ident + item.payload
        os.pwrite(self._fd, rec, self._write)
        self._write += len(rec)
        self.spooled += 1

    def _unspool(self) -> None:
        """Move spooled messages back to memory (up to a quarter of `max_bytes`)."""
        budget = max(1, self.max_bytes // 4)
        while self._read < self._write and self.mem_bytes < budget:
            head = os.pread(self._fd, self._REC.size, self._read)
            account, through, n_id, n_payload = self._REC.unpack(head)
            body = os.pread(self._fd, n_id + n_payload, self._read + self._REC.size)
            self._read += self._REC.size + n_id + n_payload
            self.mem.append(_Item(account, body[:n_id].decode(), body[n_id:], through))
            self.mem_bytes += n_payload
        if self._read >= self._write:
            os.ftruncate(self._fd, 0)
            self._read = self._write = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# ---------------------------------------------------------------- the publisher


@dataclass(frozen=True)
class NatsPublishConfig:
    exec_stream: str = "CIFT_EXEC"
    # How long the exec stream keeps reports (JetStream max_age).
    exec_max_age_s: float = 86_400.0
    # Execution reports waiting for NATS, in memory; beyond: the spool file (never dropped).
    exec_outbox_bytes: int = 64 << 20
    # Exec messages published before waiting for their acknowledgements.
    exec_window: int = 512
    # Market-data messages waiting for NATS; beyond: dropped and counted.
    md_queue: int = 10_000
    md_heartbeat_s: float = 1.0
    # Waiting for JetStream acknowledgements; then the unacknowledged ones are sent again.
    ack_timeout_s: float = 2.0
    # Longest wait between two attempts while NATS is unreachable.
    retry_max_s: float = 1.0


class _Symbol:
    __slots__ = ("book", "cmd_seq", "last_price", "md_seq", "name", "precision", "trades_seen")

    def __init__(self, name: str, precision: int) -> None:
        self.name = name
        self.precision = precision
        self.book = L2Book()
        self.md_seq = 0
        self.cmd_seq = 0
        self.last_price = 0
        self.trades_seen = 0


class NatsPublisher:
    """Execution reports and market data to NATS. `start()` once connected, then `publish`
    every durable batch; `close()` sends what is queued (with a timeout) and stops."""

    def __init__(
        self,
        nc: NATS,
        symbols: Sequence[SymbolSpec],
        accounts: Iterable[int],
        spool_dir: Path,
        config: NatsPublishConfig | None = None,
        boot: int | None = None,
    ) -> None:
        self.nc = nc
        self.config = config or NatsPublishConfig()
        self.boot = boot if boot is not None else time.time_ns()
        self.symbols = [_Symbol(s[0], s[3]) for s in symbols]
        self._index = {s.name: i for i, s in enumerate(self.symbols)}
        self._exec = Publisher(list(symbols))
        for account in accounts:
            self._exec.open_session(account)
            self._exec.bind(account, account)
        self.outbox = Outbox(self.config.exec_outbox_bytes, spool_dir / "nats-exec.spool")
        # Published through: JetStream has the reports of every command up to this engine seq
        # (engine.nats_republish); `_seen`: the highest seq handed to `publish`.
        self.mark = PublishedMark(spool_dir / MARK_FILE)
        self.published_seq = 0
        self._seen = 0
        self._md: deque[tuple[str, bytes]] = deque()
        self._md_signal = asyncio.Event()
        self._next_id = 0
        self._exec_inflight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "batches",
                "exec_messages",
                "exec_acked",
                "exec_retries",
                "exec_republished",
                "md_messages",
                "md_dropped",
                "snapshots",
                "cancels",
            ),
            0,
        )

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> list[asyncio.Task[None]]:
        """Create the exec stream, answer snapshot requests, start the senders."""
        c = self.config
        await ensure_stream(
            self.nc,
            StreamConfig(
                name=c.exec_stream,
                subjects=["exec.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=c.exec_max_age_s,
                duplicate_window=min(120.0, c.exec_max_age_s),
            ),
        )
        for s in self.symbols:
            self._subs.append(await self.nc.subscribe(f"md.{s.name}.snapshot", cb=self._snapshot))
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._send_exec(), name="nats-exec"),
            loop.create_task(self._send_md(), name="nats-md"),
            loop.create_task(self._heartbeat(), name="nats-md-heartbeat"),
        ]
        return list(self._tasks)

    async def close(self, timeout: float = 5.0) -> None:
        """Wait (up to `timeout`) for the outbox to empty, then stop the tasks."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.exec_pending():
                    await asyncio.sleep(0.01)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._advance_mark()
        self.outbox.close()
        self.mark.close()

    def resume(self, last_seq: int) -> int:
        """Before `start`, after recovery: the published-through mark of the previous run
        (`last_seq` when there is none: a first start has nothing to re-publish). The reports
        of the commands after it, up to `last_seq`, are to be given to `republish`."""
        stored = self.mark.load()
        after = last_seq if stored is None else min(stored, last_seq)
        self.published_seq = self._seen = after
        self.mark.store(after)
        return after

    def load(self, index: int, book: Book) -> None:
        """Start symbol `index` from a recovered book (after a restart, before `start`)."""
        sym = self.symbols[index]
        sym.book.clear()
        for side in (1, 2):
            for price, qty, count in book.depth(side, book.order_count() + 1):
                sym.book.apply(side, price, qty, count)
        sym.last_price = book.stats()[0]

    def exec_pending(self) -> int:
        """Execution-report messages not yet acknowledged by JetStream (a metrics gauge)."""
        return len(self.outbox.mem) + self._exec_inflight + (1 if self.outbox.spooling else 0)

    # ---------------------------------------------------------------- the batch step

    def publish(self, batch: Sequence[ReportsLike]) -> None:
        """Encode one durable batch and queue it (never waits)."""
        self.stats["batches"] += 1
        self._queue_exec(batch)
        levels: dict[int, dict[tuple[int, int], tuple[int, int]]] = {}
        trades: dict[int, list[dict[str, Any]]] = {}
        for r in batch:
            events = r.events
            if r.symbol < 0:
                # risk rejects and trading controls: a symbol's state change is market data
                if _ADMIN in events[0::EVENT_SIZE]:
                    self._status(events, r.symbols)
                continue
            kinds = events[0::EVENT_SIZE]
            if _LEVEL_KIND not in kinds and _TRADE not in kinds and _CANCELLED not in kinds:
                continue
            sym = self.symbols[r.symbol]
            touched = levels.setdefault(r.symbol, {})
            for i, kind in enumerate(kinds):
                if kind == _LEVEL_KIND:
                    side, seq, price, qty, count = _LEVEL.unpack_from(events, i * EVENT_SIZE)
                    touched[(side, price)] = (qty, count)
                    sym.cmd_seq = seq
                elif kind == _TRADE:
                    e = _EVENT.unpack_from(events, i * EVENT_SIZE)
                    sym.last_price = e[9]
                    trades.setdefault(r.symbol, []).append(
                        {
                            "tradeId": e[15],
                            "price": e[9],
                            "qty": e[10],
                            "aggressor": side_name(3 - e[1]),
                            "cmdSeq": e[5],
                        }
                    )
                elif kind == _CANCELLED:
                    self._cancelled(sym, _EVENT.unpack_from(events, i * EVENT_SIZE))
        for index, touched in levels.items():
            if touched:
                self._book_update(self.symbols[index], touched)
        for index, ts in trades.items():
            sym = self.symbols[index]
            sym.trades_seen += len(ts)
            self._queue_md(
                f"md.{sym.name}.trades",
                orjson.dumps({"symbol": sym.name, "boot": self.boot, "trades": ts}),
            )

    def _status(self, events: bytes, symbols: bytes) -> None:
        """`md.<symbol>.status` for each done halt / open / close among `events`."""
        for i in range(0, len(events), EVENT_SIZE):
            kind, action, code, seq = _ADMIN_REC.unpack_from(events, i)
            state = _STATES.get(action)
            if kind != _ADMIN or code != 0 or state is None:
                continue
            (index,) = struct.unpack_from("<I", symbols, i // EVENT_SIZE * 4)
            if index >= len(self.symbols):
                continue
            name = self.symbols[index].name
            body = {"symbol": name, "state": state, "cmdSeq": seq, "boot": self.boot}
            self._queue_md(f"md.{name}.status", orjson.dumps(body))

    def republish(self, batch: Sequence[ReportsLike]) -> None:
        """Execution reports of a previous run's journaled commands (engine.nats_republish):
        exec subjects only, numbered on with this boot's reports."""
        self.stats["exec_republished"] += self._queue_exec(batch)

    def _queue_exec(self, batch: Sequence[ReportsLike]) -> int:
        """A batch's execution reports into the outbox, one message per account; returns the
        number of messages."""
        ex = self._exec
        through = 0
        for r in batch:
            events = r.events
            if r.symbol < 0:
                ex.add_events_each(events, r.symbols)
            elif events:
                ex.add_events(events, r.symbol)
                # events are in seq order: the last one has the batch's highest seq for r
                through = max(through, _SEQ.unpack_from(events, len(events) - EVENT_SIZE + 8)[0])
        # items are labelled with the highest seq so far, so labels never decrease in the outbox
        through = self._seen = max(self._seen, through)
        out = ex.drain()
        for sid, frames in out:
            self._next_id += 1
            self.outbox.put(_Item(sid, f"{self.boot}-{self._next_id}", frames, through))
        self.stats["exec_messages"] += len(out)
        return len(out)

    def _advance_mark(self, acked_through: int = 0) -> None:
        """Move the published-through mark: to `acked_through` (an acknowledged window), or to
        everything handed to `publish` when nothing waits for JetStream."""
        seq = max(self.published_seq, acked_through)
        if not self.exec_pending():
            seq = max(seq, self._seen)
        if seq != self.published_seq:
            self.published_seq = seq
            self.mark.store(seq)

    def publish_rejects(self, events: bytes, symbols: bytes) -> None:
        """Rejects of commands that never reached the pipeline (a JetStream message refused by
        the NATS entry): to exec.<account> like any report."""
        self.publish([_Rejects(events, -1, symbols)])

    def _book_update(self, sym: _Symbol, touched: dict[tuple[int, int], tuple[int, int]]) -> None:
        book = sym.book
        bids: list[list[int]] = []
        asks: list[list[int]] = []
        for (side, price), (qty, count) in touched.items():
            book.apply(side, price, qty, count)
            (bids if side == 1 else asks).append([price, qty, count])
        bids.sort(reverse=True)
        asks.sort()
        sym.md_seq += 1
        msg = {
            "symbol": sym.name,
            "boot": self.boot,
            "seq": sym.md_seq,
            "cmdSeq": sym.cmd_seq,
            "bids": bids,
            "asks": asks,
        }
        self._queue_md(f"md.{sym.name}.book", orjson.dumps(msg))

    def _cancelled(self, sym: _Symbol, e: tuple[int, ...]) -> None:
        self.stats["cancels"] += 1
        msg = {
            "symbol": sym.name,
            "orderId": e[6],
            "clientOrderId": e[8],
            "account": e[7],
            "side": side_name(e[1]),
            "price": e[9],
            "qty": e[10],
            "leaves": e[11],
            "reason": REASON_NAMES[e[2]] if e[2] < len(REASON_NAMES) else "none",
            "cmdSeq": e[5],
        }
        self._queue_md(f"orders.cancelled.{sym.name}", orjson.dumps(msg))

    def _queue_md(self, subject: str, payload: bytes) -> None:
        if len(self._md) >= self.config.md_queue or not self.nc.is_connected:
            self.stats["md_dropped"] += 1
            return
        self._md.append((subject, payload))
        self._md_signal.set()

    # ---------------------------------------------------------------- snapshots

    def snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any] | None:
        """The current L2 book of `symbol` and the `seq` it covers (what a request gets)."""
        index = self._index.get(symbol)
        if index is None:
            return None
        sym = self.symbols[index]
        return {
            "symbol": sym.name,
            "boot": self.boot,
            "seq": sym.md_seq,
            "cmdSeq": sym.cmd_seq,
            "lastPrice": sym.last_price,
            "pricePrecision": sym.precision,
            "bids": [list(level) for level in sym.book.depth(1, depth)],
            "asks": [list(level) for level in sym.book.depth(2, depth)],
        }

    async def _snapshot(self, msg: Msg) -> None:
        if not msg.reply:
            return
        symbol = msg.subject[len("md.") : -len(".snapshot")]
        depth: int | None = None
        if msg.data:
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
                got = orjson.loads(msg.data).get("depth")
                depth = got if isinstance(got, int) and got > 0 else None
        snap = self.snapshot(symbol, depth)
        self.stats["snapshots"] += 1
        body = orjson.dumps(snap if snap is not None else {"error": "unknown symbol"})
        with contextlib.suppress(Exception):
            await self.nc.publish(msg.reply, body)

    # ---------------------------------------------------------------- senders

    async def _send_md(self) -> None:
        nc, md = self.nc, self._md
        while True:
            if not md:
                self._md_signal.clear()
                await self._md_signal.wait()
                continue
            subject, payload = md.popleft()
            if not nc.is_connected:
                self.stats["md_dropped"] += 1 + len(md)
                md.clear()
                continue
            try:
                await nc.publish(subject, payload)
                self.stats["md_messages"] += 1
            except (nats.errors.Error, OSError):
                self.stats["md_dropped"] += 1

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.md_heartbeat_s)
            self._advance_mark()  # batches without exec messages move it too
            for sym in self.symbols:
                msg = {
                    "symbol": sym.name,
                    "boot": self.boot,
                    "seq": sym.md_seq,
                    "bids": [],
                    "asks": [],
                }
                self._queue_md(f"md.{sym.name}.book", orjson.dumps(msg))

    async def _send_exec(self) -> None:
        """Publish the outbox in order, `exec_window` messages at a time, each to exec.<account>
        and exec.all; wait for JetStream's acknowledgements; send what was not acknowledged
        again (same Nats-Msg-Id: the stream stores it once) until it is."""
        c = self.config
        js = self.nc.jetstream(publish_async_max_pending=4 * c.exec_window)
        backoff = 0.05
        while True:
            items = self.outbox.take(c.exec_window)
            if not items:
                await self.outbox.wait()
                continue
            self._exec_inflight = len(items)
            pending = [
                (f"exec.{a}", {"Nats-Msg-Id": mid, "Cift-Account": str(a)}, p)
                for a, mid, p, _ in items
            ] + [
                ("exec.all", {"Nats-Msg-Id": f"{mid}-all", "Cift-Account": str(a)}, p)
                for a, mid, p, _ in items
            ]
            while pending:
                if not self.nc.is_connected:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, c.retry_max_s)
                    continue
                pending = await self._publish_window(js, pending)
                if pending:
                    self.stats["exec_retries"] += 1
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, c.retry_max_s)
                else:
                    backoff = 0.05
            self.stats["exec_acked"] += len(items)
            self._exec_inflight = 0
            # Every message of a batch labelled below the next unsent one's label is acked.
            head = self.outbox.head_through()
            done = [i.through for i in items if head is None or i.through < head]
            self._advance_mark(max(done, default=0))

    async def _publish_window(
        self, js: Any, pending: list[tuple[str, dict[str, str], bytes]]
    ) -> list[tuple[str, dict[str, str], bytes]]:
        """Publish `pending`; return the messages not acknowledged in time."""
        futures: list[asyncio.Future[Any] | None] = []
        for subject, headers, payload in pending:
            try:
                futures.append(await js.publish_async(subject, payload, headers=dict(headers)))
            except (nats.errors.Error, OSError):
                futures.append(None)
        live = [f for f in futures if f is not None]
        if live:
            await asyncio.wait(live, timeout=self.config.ack_timeout_s)
        failed = []
        for msg, f in zip(pending, futures, strict=True):
            if f is None or not f.done() or f.cancelled() or f.exception() is not None:
                if f is not None and not f.done():
                    f.cancel()
                failed.append(msg)
        return failed
