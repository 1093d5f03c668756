"""NATS order entry: request/reply on `orders.<symbol>` and durable entry through JetStream
(`orders.durable.<symbol>`), producing the same command records as the TCP gateway.

Payloads are the TCP protocol's: one or more frames (u32 LE length + one Cap'n Proto
ClientMessage, engine/schema/cift.capnp), decoded by the same Rust `WireDecoder`, so bad input
gets the same reject codes. With header `Cift-Format: json` the payload is a JSON object (or a
list of them) in the schema's names, `{"type": "newOrder", "symbol": "AAPL", "side": "buy", ...}`,
turned into the same frames first. Identity: headers `Cift-Account` and `Cift-Token` (the
account's token from the config's [[accounts]]); every command acts for that account only.

Commands go to the pipeline in batches (`EntryBatch`, through the `submit` coroutine given at
construction; it waits while the pipeline is full, and then so does intake). The pipeline calls
`EntryBatch.sequenced(journal, rejects)` when risk has sequenced the batch (alone, before the
journal write): that is how replies and JetStream messages are tied to engine sequence numbers.
Then `mark_durable(seq)` (journal) and `on_reports(batch)` (released event batches) drive acks
and replies. docs/nats.md has the protocol, the JetStream design and the wiring.

Request/reply: the reply is every report the request's commands caused for the account (frames,
or a JSON list, numbered 1..n by `seq`), sent once each command's events are released; a mass
cancel counts as answered once durable (its Cancelled reports go to `exec.<account>`).

JetStream: stream `stream` over `orders.durable.>` (work queue, file storage, dedup window),
one durable pull consumer per symbol, explicit acks. A message is acked once its command is
durable in the journal; before the journal write, `(stream seq, engine seq)` is appended to the
tie log (`nats-entry.tie`). At start, a tie whose engine seq the journal has marks that stream
message as applied: if it comes again it is acked and skipped; every other message is applied.
Poison (undecodable, unknown account) is acked with AckTerm, never redelivered; its reject goes to
`on_rejects` (-> exec.<account>) when the account is known.

Request/reply messages are only collected by nats-py's callback and decoded once per
event-loop turn, all of them as one batch (one hand-over to the pipeline per turn).

Bounds: at most `max_pending` requests collected and `max_pending` commands decoded but not yet
handed on (then the NATS callbacks wait, nats-py's subscription limit drops beyond it, and
JetStream keeps the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from engine.book import COMMAND_SIZE, EVENT_SIZE, CmdKind
from engine.codes import GatewayCode
from engine.nats_codec import json_frames, reject_record
from engine.nats_publish import ReportsLike, SymbolSpec, ensure_stream
from engine.nats_replies import ReplyEncoder, Request
from engine.nats_ties import TieLog, match_seqs
from engine.wire import WireDecoder

__all__ = [
    "HEADER_ACCOUNT",
    "HEADER_FORMAT",
    "HEADER_TOKEN",
    "EntryBatch",
    "NatsEntry",
    "NatsEntryConfig",
    "msg_id",
]

log = logging.getLogger(__name__)

HEADER_ACCOUNT = "Cift-Account"
HEADER_TOKEN = "Cift-Token"
HEADER_FORMAT = "Cift-Format"

_NEW = int(CmdKind.NEW)
_MASS_CANCEL = int(CmdKind.MASS_CANCEL)


def msg_id(account: int, client_order_id: int) -> str:
    """The `Nats-Msg-Id` of a JetStream new order: JetStream stores a retry of it only once."""
    return f"{account}-{client_order_id}"


@dataclass(frozen=True)
class NatsEntryConfig:
    subject_prefix: str = "orders"
    durable_prefix: str = "orders.durable"
    stream: str = "CIFT_ORDERS"
    # Durable consumer name prefix; one consumer per symbol: "<consumer>-<symbol>".
    consumer: str = "cift-engine"
    ack_wait_s: float = 30.0
    # JetStream messages delivered and not yet acknowledged, per symbol (the server waits).
    max_ack_pending: int = 20_000
    duplicate_window_s: float = 600.0
    max_frame_bytes: int = 65_536
    # Commands decoded but not yet handed to the pipeline; then intake waits.
    max_pending: int = 65_536
    # fsync the tie log before the journal write (set unless journal.fsync = "none").
    fsync: bool = False
    # Every this often: forget ties the consumers' ack floors have passed; rewrite the tie log
    # once it is bigger than `tie_compact_bytes`.
    maintain_interval_s: float = 10.0
    tie_compact_bytes: int = 16 << 20


class _Durable:
    """A JetStream message in flight."""

    __slots__ = ("account", "msg", "stream_seq")

    def __init__(self, msg: Msg, stream_seq: int, account: int) -> None:
        self.msg = msg
        self.stream_seq = stream_seq
        self.account = account


_Origin = Request | _Durable


class EntryBatch:
    """Commands handed to the pipeline: `commands` (COMMAND_SIZE records, account set),
    `symbols` (one u32 symbol index each), `t_recv`. The pipeline calls `sequenced` once risk
    has sequenced this batch, alone, before the journal write."""

    __slots__ = ("_entry", "_origins", "commands", "count", "symbols", "t_recv")

    def __init__(
        self,
        entry: NatsEntry,
        commands: bytes,
        symbols: bytes,
        origins: list[_Origin],
        t_recv: float,
    ) -> None:
        self._entry = entry
        self._origins = origins
        self.commands = commands
        self.symbols = symbols
        self.count = len(origins)
        self.t_recv = t_recv

    def sequenced(self, journal: bytes, rejects: bytes, reject_symbols: bytes = b"") -> None:
        """`journal`: this batch's journal entries (JOURNAL_ENTRY_SIZE each, seq order);
        `rejects`: risk `Rejected` event records of the others, in order."""
        self._entry._sequenced(self, journal, rejects, reject_symbols)


Submit = Callable[[EntryBatch], Awaitable[None]]


# ---------------------------------------------------------------- the entry


class NatsEntry:
    """Order entry over NATS. Construct, `start()`, wire `mark_durable` and `on_reports`;
    `stop_intake()` then `close()` to stop."""

    def __init__(
        self,
        nc: NATS,
        symbols: Sequence[SymbolSpec],
        accounts: Mapping[int, str],
        submit: Submit,
        state_dir: Path,
        last_seq: int,
        config: NatsEntryConfig | None = None,
        on_rejects: Callable[[bytes, bytes], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.nc = nc
        self.config = c = config or NatsEntryConfig()
        self.names = [s[0] for s in symbols]
        self.accounts = {a: t.encode() for a, t in accounts.items()}
        self.submit = submit
        self.on_rejects = on_rejects or (lambda _events, _symbols: None)
        self.clock = clock
        self.last_seq = last_seq
        self.decoder = WireDecoder(self.names, c.max_frame_bytes)
        self.replies = ReplyEncoder(symbols)
        self.ties = TieLog(state_dir / "nats-entry.tie", c.fsync)
        # Stream seq -> engine seq of JetStream messages the journal has (from the tie log at
        # start, then as they become durable), until the consumers' ack floors pass them.
        self.applied: dict[int, int] = {}
        self._known: dict[int, _Durable] = {}  # stream seq -> message in flight
        self._incoming: list[Msg] = []
        self._arrived = asyncio.Event()
        # Request/reply messages not yet decoded: taken whole once per event-loop turn.
        self._requests: list[Msg] = []
        self._requested = asyncio.Event()
        self._room = asyncio.Event()  # set: fewer than max_pending collected
        self._identities: dict[tuple[str, str], int] = {}  # (account, token) seen valid
        self._consumers: list[str] = []
        self._unacked: deque[tuple[int, _Durable]] = deque()  # (engine seq, message)
        self._by_seq: dict[int, Request] = {}
        self._mass_cancels: deque[tuple[int, Request]] = deque()  # mass cancels
        self._durable_seq = 0
        self._pending: list[tuple[bytes, bytes, list[_Origin], float]] = []
        self._pending_count = 0
        self._space = asyncio.Event()
        self._space.set()
        self._work = asyncio.Event()
        self._out: deque[tuple[str, bytes, dict[str, str] | None]] = deque()  # replies
        self._acks: deque[tuple[Msg, bool]] = deque()  # (message, term)
        self._out_signal = asyncio.Event()
        self._subs: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "requests",
                "replies",
                "commands",
                "gateway_rejects",
                "durable_messages",
                "durable_acked",
                "durable_skipped",
                "durable_redelivered",
                "poison",
            ),
            0,
        )

    # ---------------------------------------------------------------- lifecycle

    def _consumer_name(self, symbol: str) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in symbol)
        return f"{self.config.consumer}-{safe}"

    async def start(self) -> list[asyncio.Task[None]]:
        """Stream, consumers (fresh, from the oldest unacknowledged message), the tie log, the
        subscriptions and the tasks (returned for the supervisor)."""
        c = self.config
        js = self.nc.jetstream()
        await ensure_stream(
            self.nc,
            StreamConfig(
                name=c.stream,
                subjects=[f"{c.durable_prefix}.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                duplicate_window=c.duplicate_window_s,
            ),
        )
        info = await js.stream_info(c.stream)
        self.applied = self.ties.load(self.last_seq, floor=info.state.first_seq - 1)
        loop = asyncio.get_running_loop()
        self._running = True
        self._tasks = [
            loop.create_task(self._hand_on(), name="nats-entry-intake"),
            loop.create_task(self._send(), name="nats-entry-replies"),
            loop.create_task(self._take_incoming(), name="nats-entry-durable"),
            loop.create_task(self._take_requests(), name="nats-entry-requests"),
            loop.create_task(self._maintain(), name="nats-entry-maintenance"),
        ]
        for name in self.names:
            # A fresh push consumer: every unacknowledged message is delivered again now (a
            # work queue keeps exactly those), the tie log says which are applied already.
            durable = self._consumer_name(name)
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(c.stream, durable)
            config = ConsumerConfig(
                durable_name=durable,
                deliver_subject=self.nc.new_inbox(),
                filter_subject=f"{c.durable_prefix}.{name}",
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=c.ack_wait_s,
                max_ack_pending=c.max_ack_pending,
                max_deliver=-1,
            )
            await js.add_consumer(c.stream, config)
            self._consumers.append(durable)
            # Never dropped by nats-py: the server sends at most max_ack_pending unacked.
            self._subs.append(
                await js.subscribe_bind(
                    c.stream,
                    config,
                    durable,
                    cb=self._on_durable,
                    manual_ack=True,
                    pending_msgs_limit=c.max_ack_pending + 1024,
                    pending_bytes_limit=0,
                )
            )
            self._subs.append(
                await self.nc.subscribe(
                    f"{c.subject_prefix}.{name}",
                    cb=self._on_request,
                    pending_msgs_limit=c.max_pending,
                )
            )
        return list(self._tasks)

    async def stop_intake(self) -> None:
        """No new requests or JetStream messages (what is in flight still completes)."""
        self._running = False
        for sub in self._subs:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        self._subs = []

    async def close(self, timeout: float = 5.0) -> None:
        """After the pipeline has drained: send the last replies and acks, stop the tasks."""
        await self.stop_intake()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._out or self._acks or self.intake_pending():
                    await asyncio.sleep(0.01)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.ties.close()

    def reject_counts(self) -> dict[int, int]:
        """Every reject the entry answered (request/reply, either format) or refused a
        JetStream message with, by code (a metrics collector reads it)."""
        return self.replies.reject_counts()

    def intake_pending(self) -> bool:
        """Messages taken from NATS and not yet handed to the pipeline."""
        return bool(self._requests or self._pending)

    # ---------------------------------------------------------------- intake

    def _identity(self, msg: Msg) -> int | bytes:
        """The account of a message, or a reject record saying why there is none."""
        h = msg.headers or {}
        raw, token = h.get(HEADER_ACCOUNT), h.get(HEADER_TOKEN)
        if raw is None or token is None:
            return reject_record(GatewayCode.NOT_LOGGED_ON, 0)
        known = self._identities.get((raw, token))
        if known is not None:
            return known
        try:
            account = int(raw)
        except ValueError:
            return reject_record(GatewayCode.LOGON_REFUSED, 0)
        want = self.accounts.get(account)
        if want is None or not hmac.compare_digest(want, token.encode()):
            return reject_record(GatewayCode.LOGON_REFUSED, 0)
        if len(self._identities) < 4 * len(self.accounts) + 16:  # spellings of valid pairs
            self._identities[(raw, token)] = account
        return account

    def _decode(self, msg: Msg, account: int) -> tuple[bytes, bytes, bytes]:
        """(command records, u32 symbol indexes, reject records) of a message's payload."""
        h = msg.headers or {}
        rejects: list[bytes] = []
        buf = msg.data
        if h.get(HEADER_FORMAT, "").lower() == "json":
            buf, bad = json_frames(buf, account)
            rejects.append(bad)
        commands: list[bytes] = []
        symbols: list[bytes] = []
        while buf:
            consumed, cmds, syms, rej, control, error = self.decoder.decode(buf, account)
            commands.append(cmds)
            symbols.append(syms)
            rejects.append(rej)
            if error is not None:
                rejects.append(reject_record(error[0], account))
                break
            if control is None:
                if consumed < len(buf):  # ends inside a frame
                    rejects.append(reject_record(GatewayCode.MALFORMED_MESSAGE, account))
                break
            rejects.append(reject_record(GatewayCode.UNKNOWN_MESSAGE, account))  # no sessions here
            buf = buf[consumed:]
        return b"".join(commands), b"".join(symbols), b"".join(rejects)

    async def _on_request(self, msg: Msg) -> None:
        """nats-py's callback: only collect (decoded per event-loop turn, `_take_requests`);
        waits while `max_pending` requests are collected (then nats-py's own limit applies)."""
        requests = self._requests
        requests.append(msg)
        if len(requests) == 1:
            self._requested.set()
        if len(requests) >= self.config.max_pending:
            self._room.clear()
            await self._room.wait()

    async def _take_requests(self) -> None:
        """Every request collected since the last turn: decoded and queued as one batch."""
        while True:
            if not self._requests:
                self._requested.clear()
                await self._requested.wait()
                continue
            msgs, self._requests = self._requests, []
            self._room.set()
            commands: list[bytes] = []
            symbols: list[bytes] = []
            origins: list[_Origin] = []
            for msg in msgs:
                decoded = self._request(msg)
                if decoded is not None:
                    commands.append(decoded[0])
                    symbols.append(decoded[1])
                    origins += decoded[2]
            self.stats["requests"] += len(msgs)
            if origins:
                await self._queue(b"".join(commands), b"".join(symbols), origins)

    def _request(self, msg: Msg) -> tuple[bytes, bytes, list[_Origin]] | None:
        """A request's commands (and one origin per command), or None when it is answered
        already (only rejects, or nothing to do)."""
        if not msg.reply:
            return None
        fmt_json = (msg.headers or {}).get(HEADER_FORMAT, "").lower() == "json"
        who = self._identity(msg)
        if isinstance(who, bytes):
            req = Request(msg.reply, 0, fmt_json)
            req.rejects.append((who, None))
            self._finish(req)
            return None
        commands, symbols, rejects = self._decode(msg, who)
        req = Request(msg.reply, who, fmt_json)
        if rejects:
            req.rejects.append((rejects, None))
            self.stats["gateway_rejects"] += len(rejects) // EVENT_SIZE
        n = len(symbols) // 4
        if not n:
            self._finish(req)
            return None
        return commands, symbols, [req] * n

    async def _on_durable(self, msg: Msg) -> None:
        self._incoming.append(msg)
        self._arrived.set()

    async def _take_incoming(self) -> None:
        """JetStream deliveries, everything that has arrived as one batch."""
        while True:
            if not self._incoming:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            msgs, self._incoming = self._incoming, []
            if self._running:
                await self._take_durable(msgs)

    async def _take_durable(self, msgs: list[Msg]) -> None:
        commands: list[bytes] = []
        symbols: list[bytes] = []
        origins: list[_Origin] = []
        for msg in msgs:
            stream_seq = msg.metadata.sequence.stream
            known = self._known.get(stream_seq)
            if known is not None:  # redelivered while in flight: ack the newest delivery
                known.msg = msg
                self.stats["durable_redelivered"] += 1
                continue
            if stream_seq in self.applied:  # in the journal already
                self.stats["durable_skipped"] += 1
                self._ack(msg)
                continue
            self.stats["durable_messages"] += 1
            cmd, sym = self._durable_command(msg)
            if cmd is None:
                self._ack(msg, term=True)
                continue
            item = _Durable(msg, stream_seq, int.from_bytes(cmd[32:40], "little"))
            self._known[stream_seq] = item
            commands.append(cmd)
            symbols.append(sym)
            origins.append(item)
        if origins:
            await self._queue(b"".join(commands), b"".join(symbols), origins)

    def _durable_command(self, msg: Msg) -> tuple[bytes | None, bytes]:
        """The one command of a JetStream message, or None (poison: rejected, to be termed)."""
        who = self._identity(msg)
        if isinstance(who, bytes):  # nobody to tell: counted and logged
            self.stats["poison"] += 1
            log.info("JetStream message %s refused: no valid identity", msg.subject)
            return None, b""
        commands, symbols, rejects = self._decode(msg, who)
        ident = (msg.headers or {}).get("Nats-Msg-Id", "")
        if len(symbols) == 4 and not rejects:
            kind, client_id = commands[0], int.from_bytes(commands[40:48], "little")
            ok = ident == msg_id(who, client_id) if kind == _NEW else ident.startswith(f"{who}-")
            if ok and (kind != _NEW or client_id):
                return commands, symbols
            rejects = reject_record(GatewayCode.MALFORMED_MESSAGE, who, client_id)
        elif not rejects:  # not exactly one command per message
            client_id = int.from_bytes(commands[40:48], "little")
            rejects = reject_record(GatewayCode.MALFORMED_MESSAGE, who, client_id)
        self.stats["poison"] += 1
        self.stats["gateway_rejects"] += len(rejects) // EVENT_SIZE
        self.replies.count_codes(memoryview(rejects).cast("H")[2 :: EVENT_SIZE // 2].tolist())
        self.on_rejects(rejects, b"\xff\xff\xff\xff" * (len(rejects) // EVENT_SIZE))
        return None, b""

    async def _queue(self, commands: bytes, symbols: bytes, origins: list[_Origin]) -> None:
        while self._pending_count >= self.config.max_pending:
            self._space.clear()
            await self._space.wait()
        self._pending.append((commands, symbols, origins, self.clock()))
        self._pending_count += len(origins)
        self.stats["commands"] += len(origins)
        self._work.set()

    async def _hand_on(self) -> None:
        """Everything decoded so far, as one batch to the pipeline (it may wait: backpressure)."""
        while True:
            if not self._pending:
                self._work.clear()
                await self._work.wait()
                continue
            items, self._pending = self._pending, []
            self._pending_count = 0
            self._space.set()
            origins: list[_Origin] = []
            for _, _, o, _ in items:
                origins += o
            batch = EntryBatch(
                self,
                b"".join(i[0] for i in items),
                b"".join(i[1] for i in items),
                origins,
                min(i[3] for i in items),
            )
            await self.submit(batch)

    # ---------------------------------------------------------------- the pipeline's calls

    def _sequenced(self, batch: EntryBatch, journal: bytes, rejects: bytes, rsyms: bytes) -> None:
        origins = batch._origins
        seqs = match_seqs(batch.commands, batch.symbols, journal, len(origins))
        ties: list[tuple[int, int]] = []
        r = 0
        for i, (origin, seq) in enumerate(zip(origins, seqs, strict=True)):
            if seq:
                if isinstance(origin, _Durable):
                    ties.append((origin.stream_seq, seq))
                    self._unacked.append((seq, origin))
                elif batch.commands[i * COMMAND_SIZE] == _MASS_CANCEL:
                    origin.waiting += 1
                    self._mass_cancels.append((seq, origin))
                else:
                    origin.waiting += 1
                    self._by_seq[seq] = origin
                continue
            record = rejects[r * EVENT_SIZE : (r + 1) * EVENT_SIZE]
            sym = rsyms[r * 4 : (r + 1) * 4] or b"\xff\xff\xff\xff"
            r += 1
            if isinstance(origin, _Durable):  # risk reject: published by the pipeline
                self._known.pop(origin.stream_seq, None)
                self._ack(origin.msg)
            else:
                origin.rejects.append((record, sym))
        if ties:
            self.ties.append(ties)  # before the journal write: see the module docstring
        for origin in dict.fromkeys(o for o in origins if isinstance(o, Request)):
            origin.waiting -= 1  # handed on
            if not origin.waiting:
                self._finish(origin)

    def mark_durable(self, seq: int) -> None:
        """The journal has every command up to `seq`: ack those JetStream messages."""
        if seq <= self._durable_seq:
            return
        self._durable_seq = seq
        unacked = self._unacked
        applied = self.applied
        while unacked and unacked[0][0] <= seq:
            engine_seq, item = unacked.popleft()
            self._known.pop(item.stream_seq, None)
            applied[item.stream_seq] = engine_seq  # an ack can be lost: remember it
            self._ack(item.msg)
            self.stats["durable_acked"] += 1
        waiting = self._mass_cancels
        while waiting and waiting[0][0] <= seq:
            _, req = waiting.popleft()
            req.waiting -= 1
            if not req.waiting:
                self._finish(req)

    async def _maintain(self) -> None:
        """Forget applied messages below every consumer's ack floor (the server has their acks:
        they cannot come again); rewrite the tie log when it has grown."""
        c = self.config
        js = self.nc.jetstream()
        while True:
            await asyncio.sleep(c.maintain_interval_s)
            try:
                floors = [
                    (await js.consumer_info(c.stream, name)).ack_floor.stream_seq
                    for name in self._consumers
                ]
            except (NatsError, TimeoutError, AttributeError) as e:
                log.debug("JetStream consumer info: %r", e)
                continue
            floor = min(floors, default=0) or 0
            if floor:
                self.applied = {s: e for s, e in self.applied.items() if s > floor}
            if self.ties.size > c.tie_compact_bytes:
                keep = list(self.applied.items())
                keep += [(i.stream_seq, s) for s, i in self._unacked]
                self.ties.compact(keep)

    def on_reports(self, batch: Sequence[ReportsLike]) -> None:
        """A released batch of events: answer the requests whose commands are all reported."""
        by_seq = self._by_seq
        if not by_seq:
            return
        for r in batch:
            if r.symbol < 0 or not r.events:
                continue
            events = r.events
            seqs = memoryview(events).cast("Q")[1 :: EVENT_SIZE // 8].tolist()
            n = len(seqs)
            i = 0
            while i < n:
                s = seqs[i]
                j = i + 1
                while j < n and seqs[j] == s:
                    j += 1
                req = by_seq.pop(s, None)
                if req is not None:
                    req.chunks.append((r.symbol, events[i * EVENT_SIZE : j * EVENT_SIZE]))
                    req.waiting -= 1
                    if not req.waiting:
                        self._finish(req)
                i = j

    # ---------------------------------------------------------------- output

    def _finish(self, req: Request) -> None:
        self._out.append((req.reply, self.replies.payload(req), None))
        self.stats["replies"] += 1
        self._out_signal.set()

    def _ack(self, msg: Msg, term: bool = False) -> None:
        self._acks.append((msg, term))
        self._out_signal.set()

    async def _send(self) -> None:
        """Replies and acks, in order (publishing is buffered by nats-py; this rarely waits)."""
        nc = self.nc
        while True:
            if not self._out and not self._acks:
                self._out_signal.clear()
                await self._out_signal.wait()
                continue
            try:
                while self._out:
                    subject, payload, headers = self._out[0]
                    await nc.publish(subject, payload, headers=headers)
                    self._out.popleft()
                while self._acks:
                    msg, term = self._acks[0]
                    if msg.reply:
                        await nc.publish(msg.reply, b"+TERM" if term else b"+ACK")
                    self._acks.popleft()
            except NatsError as e:  # disconnected: replies wait, acks are redone by JetStream
                log.debug("NATS entry output: %r", e)
                self._out.clear()
                self._acks.clear()
