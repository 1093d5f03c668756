"""The LOBSTER replay model: LOBSTER messages -> book commands, and what the book must then show.

This is the oracle behind `python -m perf.lobster check`: a small order-level model of the part
of the book that the files make knowable (docs/lobster.md defines it). It decides every command
from the files alone — never from the book under test — so the same stream serves the check and
the benchmark (`lobster_commands`). Per message it yields a `Step`: the commands, the trades they
must produce (maker engine id and quantity, in order), what of the orderbook row is knowable,
and the commands that take in what the row newly reveals.

Rules, in short:
- Seeds: one resting order per level stands for orders that pre-date what the model knows (the
  levels of row 1, and levels that later move up from beyond the top N); a message about an
  unknown LOBSTER id acts on the seed order at its price.
- New limit (1): a GTC limit order at the back of its level. Partial cancel (2): amend down
  (keeps priority), or cancel when nothing is left. Delete (3): cancel; on a seed, reduce it.
- Visible execution (4): an IOC order of the opposite side at that price and size that must fill
  the order LOBSTER names. Consecutive executions with the same time, side and price are one
  aggressor's sweep; LOBSTER may list its fills out of queue order, so a sweep is checked as a
  whole. When an execution names an order while orders ahead of it stay (the data breaks FIFO:
  pre-open orders listed at the open, a few cases intraday), the orders passed over go to the
  back of the level first (cancel and re-add each); these are counted as out of priority.
- Hidden executions (5), cross trades (6) and halts (7) change nothing visible: no command.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from engine.book import Command, CommandBatch, Side, Tif, amend, cancel, new_order
from perf.lobster_data import Level, LobsterFormatError, Message, MessageType, Row

__all__ = ["ACCOUNT_RESTING", "ACCOUNT_TAKER", "Fills", "Knowledge", "Replay", "Step"]

ACCOUNT_RESTING = 1
"""Owner of every resting order (LOBSTER's and the seeds). STP mode 0: self-trades allowed."""
ACCOUNT_TAKER = 2
"""Owner of the incoming orders that stand for executions."""


Fills = tuple[tuple[int, int], ...]
_Outcome = tuple[Fills, str | None, bool]  # a message's fills, problem, out-of-priority flag


class Knowledge(NamedTuple):
    """What one side of a row the model can vouch for, after a message."""

    exact: int  # levels 1..exact must equal the model's (and so the book's) levels
    complete: bool  # the model knows the whole side: levels past `exact` must be empty
    bound: int | None  # when not complete: a level past `exact` must lie strictly beyond it


class Step(NamedTuple):
    message: Message
    commands: bytes  # command records for this message (may be empty)
    fills: Fills  # trades these commands must produce: (maker engine id, qty), in order
    row: Row  # the orderbook row after this message (top N levels)
    bids: Knowledge
    asks: Knowledge
    resync: bytes  # commands applied after the row: learn revealed levels, drop levels past N
    reordered: bool  # an out-of-priority execution: the level was re-queued before the fill
    problem: str | None  # the message could not be explained by the model


class _Order:
    __slots__ = ("eid", "lobster_id", "qty")

    def __init__(self, eid: int, lobster_id: int, qty: int) -> None:
        self.eid = eid
        self.lobster_id = lobster_id  # 0 for a seed
        self.qty = qty


class _SideModel:
    """One side: FIFO queues per price, best first, and how far the model's knowledge reaches."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.levels: dict[int, list[_Order]] = {}
        self.keys: list[int] = []  # sort keys, best first (bids: -price, asks: price)
        self.seeds: dict[int, _Order] = {}
        self.complete = False  # every level of the side is known
        self.bound: int | None = None  # worst known price; None (and not complete) = nothing

    def key(self, price: int) -> int:
        return -price if self.side == Side.BUY else price

    def price(self, key: int) -> int:
        return -key if self.side == Side.BUY else key

    def within(self, price: int) -> bool:
        """Whether the model knows the book at `price`."""
        if self.complete:
            return True
        return self.bound is not None and self.key(price) <= self.key(self.bound)

    def best(self) -> int | None:
        return self.price(self.keys[0]) if self.keys else None

    def knowledge(self, n: int) -> Knowledge:
        return Knowledge(min(len(self.keys), n), self.complete, self.bound)

    def add(self, price: int, order: _Order) -> None:
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = []
            bisect.insort(self.keys, self.key(price))
        level.append(order)
        if order.lobster_id == 0:
            self.seeds[price] = order

    def remove(self, price: int, order: _Order) -> None:
        level = self.levels[price]
        level.remove(order)
        if self.seeds.get(price) is order:
            del self.seeds[price]
        if not level:
            del self.levels[price]
            del self.keys[bisect.bisect_left(self.keys, self.key(price))]


def _fifo(level: list[_Order], qty: int) -> tuple[list[tuple[_Order, int]], int]:
    """The fills an incoming order of `qty` gets at this level in queue order, and what is left."""
    fills = []
    for order in level:
        if qty == 0:
            break
        take = min(qty, order.qty)
        fills.append((order, take))
        qty -= take
    return fills, qty


class Replay:
    """Turns one LOBSTER pair into `Step`s; counters describe the run afterwards."""

    def __init__(self, levels: int) -> None:
        if levels < 1:
            raise ValueError("levels must be >= 1")
        self.n = levels
        self._bids = _SideModel(Side.BUY)
        self._asks = _SideModel(Side.SELL)
        self._orders: dict[int, tuple[_SideModel, int, _Order]] = {}  # LOBSTER id -> order
        self._names: dict[int, str] = {}  # engine id -> what it stands for, for reports
        self._next_id = 1
        self._seq = 1
        self._group_end = 0
        self._group_in_order = False
        self.executions = 0
        self.reordered = 0
        self.ignored = 0  # messages about prices beyond the known range (none at full depth)
        self.seeds = 0
        self.dropped = 0  # orders dropped because their level left the top N
        self.commands = 0

    # ----------------------------------------------------------------------------- the run
    def steps(self, messages: list[Message], rows: Iterable[Row]) -> Iterator[Step]:
        """One Step per message; `rows` are the orderbook rows (top N levels), one per message."""
        row_iter = iter(rows)
        for k, msg in enumerate(messages):
            row = next(row_iter, None)
            if row is None:
                raise LobsterFormatError(f"orderbook file ends before message {msg.line}")
            cmds: list[Command] = []
            if k == 0:
                self._resync(row, msg.ts, cmds)
                fills, problem, reordered = self._first(msg, cmds)
            else:
                fills, problem, reordered = self._message(k, messages, cmds)
            commands = self._encode(cmds)
            bids = self._bids.knowledge(self.n)
            asks = self._asks.knowledge(self.n)
            after: list[Command] = []
            self._resync(row, msg.ts, after)
            yield Step(
                msg, commands, fills, row, bids, asks, self._encode(after), reordered, problem
            )
        if next(row_iter, None) is not None:
            raise LobsterFormatError("orderbook file has more rows than the message file")

    def _encode(self, cmds: list[Command]) -> bytes:
        if not cmds:
            return b""
        batch = CommandBatch(self._seq)
        for cmd in cmds:
            batch.add(cmd)
        self._seq = batch.next_seq
        self.commands += len(cmds)
        return batch.records()

    def _side(self, msg: Message) -> _SideModel:
        return self._bids if msg.direction == 1 else self._asks

    def _eid(self, name: str) -> int:
        eid = self._next_id
        self._next_id += 1
        self._names[eid] = name
        return eid

    def name(self, engine_id: int) -> str:
        """What an engine order id stands for: a LOBSTER order, a seed or a taker."""
        return self._names.get(engine_id, f"engine order {engine_id}")

    # ------------------------------------------------------------------------ knowledge
    def _resync(self, row: Row, ts: int, out: list[Command]) -> None:
        """After a row: take in the levels it reveals beyond what the model knows (as seeds),
        then drop what lies past the top N (LOBSTER reports nothing there)."""
        n = self.n
        for s, shown in ((self._bids, row.bids), (self._asks, row.asks)):
            if len(s.keys) < n and not s.complete:
                self._learn(s, shown, ts, out)
            if len(s.keys) >= n:
                s.complete, s.bound = False, s.price(s.keys[n - 1])
                if len(s.keys) > n:
                    self._drop(s, ts, out)

    def _learn(self, s: _SideModel, shown: tuple[Level, ...], ts: int, out: list[Command]) -> None:
        have = len(s.keys)
        inside = s.keys[-1] if s.keys else None  # the worst known sort key
        if s.bound is not None:
            inside = s.key(s.bound) if inside is None else max(inside, s.key(s.bound))
        for price, size in shown[have : self.n]:
            if inside is not None and s.key(price) <= inside:
                return  # a level inside the known range: the checker reports the row
            seed = _Order(self._eid(f"seed at {price}"), 0, size)
            s.add(price, seed)
            out.append(self._rest(s.side, price, seed, ts))
            self.seeds += 1
        if len(shown) < self.n:
            s.complete, s.bound = True, None

    def _drop(self, s: _SideModel, ts: int, out: list[Command]) -> None:
        for key in s.keys[self.n :]:
            price = s.price(key)
            for order in list(s.levels[price]):
                out.append(cancel(order.eid, account=ACCOUNT_RESTING, ts=ts))
                self._forget(s, price, order)
                self.dropped += 1

    def _rest(self, side: Side, price: int, order: _Order, ts: int) -> Command:
        return new_order(side, price, order.qty, order_id=order.eid, account=ACCOUNT_RESTING, ts=ts)

    def _forget(self, s: _SideModel, price: int, order: _Order) -> None:
        s.remove(price, order)
        if order.lobster_id:
            self._orders.pop(order.lobster_id, None)

    def _resolve(self, s: _SideModel, price: int, lobster_id: int) -> _Order | None:
        """The order a message names: a known LOBSTER id, else the seed at that price."""
        known = self._orders.get(lobster_id)
        if known is not None:
            return known[2] if known[0] is s and known[1] == price else None
        return s.seeds.get(price)

    # ------------------------------------------------------------------------- messages
    def _first(self, msg: Message, out: list[Command]) -> _Outcome:
        """Row 1 is the book after message 1, so the seeds already include message 1. Only a new
        order is told apart: its size comes out of the seed at its price and it rests behind it."""
        if msg.type != MessageType.NEW:
            return (), None, False
        s = self._side(msg)
        seed = s.seeds.get(msg.price)
        if seed is None:
            return (), None, False  # beyond the top N: not part of what the file shows
        problem = self._reduce(s, msg.price, seed, msg.size, msg.ts, out)
        return (), problem or self._new(s, msg, out), False

    def _message(self, k: int, messages: list[Message], out: list[Command]) -> _Outcome:
        msg = messages[k]
        if msg.type == MessageType.EXECUTE:
            return self._execute(k, messages, out)
        if msg.type in (MessageType.HIDDEN, MessageType.CROSS, MessageType.HALT):
            return (), None, False  # nothing visible changes
        if msg.type not in (MessageType.NEW, MessageType.CANCEL, MessageType.DELETE):
            return (), f"unknown message type {msg.type}", False
        s = self._side(msg)
        if not s.within(msg.price):
            self.ignored += 1
            return (), None, False
        if msg.type == MessageType.NEW:
            return (), self._new(s, msg, out), False
        order = self._resolve(s, msg.price, msg.order_id)
        if order is None:
            return (), f"no order {msg.order_id} and no seed at {msg.price}", False
        if msg.type == MessageType.DELETE and order.lobster_id:
            problem = None
            if msg.size != order.qty:
                problem = f"deletes {msg.size} of order {msg.order_id}, which has {order.qty} open"
            out.append(cancel(order.eid, account=ACCOUNT_RESTING, ts=msg.ts))
            self._forget(s, msg.price, order)
            return (), problem, False
        return (), self._reduce(s, msg.price, order, msg.size, msg.ts, out), False

    def _new(self, s: _SideModel, msg: Message, out: list[Command]) -> str | None:
        if msg.size <= 0 or msg.price <= 0:
            return "a new order needs a positive size and price"
        if msg.order_id in self._orders:
            return f"order id {msg.order_id} is already live"
        order = _Order(self._eid(f"order {msg.order_id}"), msg.order_id, msg.size)
        s.add(msg.price, order)
        self._orders[msg.order_id] = (s, msg.price, order)
        out.append(self._rest(s.side, msg.price, order, msg.ts))
        return None

    def _reduce(
        self, s: _SideModel, price: int, order: _Order, size: int, ts: int, out: list[Command]
    ) -> str | None:
        """Take `size` off an order: amend down (keeps priority), or cancel when nothing is left."""
        if size <= 0 or size > order.qty:
            return f"cannot take {size} off an order with {order.qty} open"
        if size == order.qty:
            out.append(cancel(order.eid, account=ACCOUNT_RESTING, ts=ts))
            self._forget(s, price, order)
        else:
            order.qty -= size
            out.append(amend(order.eid, order.qty, account=ACCOUNT_RESTING, ts=ts))
        return None

    def _execute(self, k: int, messages: list[Message], out: list[Command]) -> _Outcome:
        msg = messages[k]
        s = self._side(msg)
        if not s.within(msg.price):
            self.ignored += 1
            return (), None, False
        self.executions += 1
        if k >= self._group_end:
            self._start_sweep(k, messages, s)
        level = s.levels.get(msg.price)
        if level is None or s.best() != msg.price:
            return (), f"executes at {msg.price}, not at the best price {s.best()}", False
        reordered = False
        if self._group_in_order:
            fills, _ = _fifo(level, msg.size)  # the sweep as a whole takes what LOBSTER names
        else:
            order = self._resolve(s, msg.price, msg.order_id)
            if order is None:
                return (), f"executes order {msg.order_id}: no such order or seed", False
            if msg.size <= 0 or msg.size > order.qty:
                return (), f"executes {msg.size} of an order with {order.qty} open", False
            fills, _ = _fifo(level, msg.size)
            if fills != [(order, msg.size)]:
                # The orders the exchange passed over lose their priority: to the back.
                reordered = True
                self.reordered += 1
                skipped = level[: level.index(order)]
                out.extend(cancel(o.eid, account=ACCOUNT_RESTING, ts=msg.ts) for o in skipped)
                out.extend(self._rest(s.side, msg.price, o, msg.ts) for o in skipped)
                del level[: len(skipped)]
                level.extend(skipped)
                fills = [(order, msg.size)]
        taker = Side.SELL if s.side == Side.BUY else Side.BUY
        out.append(
            new_order(
                taker,
                msg.price,
                msg.size,
                tif=Tif.IOC,
                order_id=self._eid(f"taker for line {msg.line}"),
                account=ACCOUNT_TAKER,
                ts=msg.ts,
            )
        )
        for maker, qty in fills:
            maker.qty -= qty
            if maker.qty == 0:
                self._forget(s, msg.price, maker)
        return tuple((maker.eid, qty) for maker, qty in fills), None, reordered

    def _start_sweep(self, k: int, messages: list[Message], s: _SideModel) -> None:
        """Consecutive executions with the same time, side and price are one aggressor. If its
        fills in queue order are exactly the fills LOBSTER names (in any listing order), every
        execution of the sweep takes the front of the queue; otherwise each is placed singly."""
        first = messages[k]
        named: Counter[int] = Counter()
        total = 0
        end = k
        while end < len(messages):
            m = messages[end]
            if (m.type, m.ts, m.direction, m.price) != (
                MessageType.EXECUTE,
                first.ts,
                first.direction,
                first.price,
            ):
                break
            order = self._resolve(s, m.price, m.order_id)
            named[order.eid if order is not None else 0] += m.size
            total += m.size
            end += 1
        fills, left = _fifo(s.levels.get(first.price, []), total)
        in_queue: Counter[int] = Counter()
        for maker, qty in fills:
            in_queue[maker.eid] += qty
        self._group_end = end
        self._group_in_order = left == 0 and in_queue == named
