"""The Python face of the order book.

The hot path is `engine._native.Book.apply(records) -> records`: command records in, event records
out, in batches, with no Python object per order. This module is for everything around it: the
enums of the contract (values from `native/src/types.rs`), record codecs (`encode_command`,
`decode_events`), a `CommandBatch` builder, and `PyBook`, a book with its own sequencer whose
methods return decoded events, for tests and tools. Semantics: docs/book.md.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Concatenate, NamedTuple, ParamSpec

from engine._native import COMMAND_SIZE, EVENT_SIZE, Book, OrderInfo, reject_text

__all__ = [
    "COMMAND_SIZE",
    "EVENT_SIZE",
    "FLAG_END_OF_DAY",
    "FLAG_POST_ONLY",
    "Book",
    "CancelReason",
    "CmdKind",
    "Command",
    "CommandBatch",
    "Event",
    "EventKind",
    "OrdType",
    "OrderInfo",
    "PyBook",
    "RejectCode",
    "Side",
    "Stp",
    "Tif",
    "advance_time",
    "amend",
    "cancel",
    "decode_commands",
    "decode_events",
    "encode_command",
    "imbalance",
    "mass_cancel",
    "new_order",
    "reject_text",
    "vwap",
]


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrdType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP_MARKET = 3
    STOP_LIMIT = 4


class Tif(IntEnum):
    GTC = 1
    DAY = 2
    GTD = 3
    IOC = 4
    FOK = 5


class Stp(IntEnum):
    """Self-trade prevention mode of the incoming order."""

    NONE = 0
    CANCEL_INCOMING = 1
    CANCEL_RESTING = 2
    CANCEL_BOTH = 3
    DECREMENT_CANCEL = 4


class CmdKind(IntEnum):
    NEW = 1
    CANCEL = 2
    AMEND = 3
    MASS_CANCEL = 4
    ADVANCE_TIME = 5
    ADMIN = 6  # a trading control (risk engine only; docs/risk.md "Controls")


class EventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    TRADE = 3
    CANCELLED = 4
    REPLACED = 5
    TRIGGERED = 6
    LEVEL = 7
    ADMIN = 8  # the outcome of a trading control, for the requesting account


class CancelReason(IntEnum):
    USER = 1
    IOC_REMAINDER = 2
    FOK_UNFILLED = 3
    SELF_TRADE = 4
    EXPIRED = 5
    MASS_CANCEL = 6
    MARKET_PROTECTION = 7


class RejectCode(IntEnum):
    """The book's reject codes; `reject_text(code)` gives the text."""

    INVALID_QUANTITY = 3001
    INVALID_PRICE = 3002
    UNKNOWN_ORDER = 3003
    DUPLICATE_CLIENT_ID = 3004
    DUPLICATE_ORDER_ID = 3005
    INVALID_SIDE = 3006
    INVALID_ORDER_TYPE = 3007
    INVALID_TIF = 3008
    POST_ONLY_WOULD_TAKE = 3009
    INVALID_DISPLAY_QTY = 3010
    INVALID_STOP_PRICE = 3011
    INVALID_EXPIRY = 3012
    INVALID_AMEND_QTY = 3013
    TIF_NOT_ALLOWED = 3014
    INVALID_COMMAND = 3015
    INVALID_STP_MODE = 3016
    POST_ONLY_NOT_ALLOWED = 3017
    AMEND_NO_CHANGE = 3018
    ACCOUNT_MISMATCH = 3019
    INVALID_ACCOUNT = 3020


# `Command.flags` bits.
FLAG_POST_ONLY = 1
FLAG_END_OF_DAY = 2

# Record layouts (types.rs): little endian, fields in declaration order, 2 reserved bytes.
_COMMAND = struct.Struct("<6B2x5Q4q2Q")
_EVENT = struct.Struct("<4BH2x4Q3q3Q2q")
assert _COMMAND.size == COMMAND_SIZE
assert _EVENT.size == EVENT_SIZE


class Command(NamedTuple):
    """One command record (field order = record order). Enum fields are raw ints so that tests can
    send invalid values; `seq` and `ts` are normally stamped by `CommandBatch`."""

    kind: int
    side: int = 0
    ord_type: int = 0
    tif: int = 0
    stp: int = 0
    flags: int = 0
    seq: int = 0
    ts: int = 0
    order_id: int = 0
    account: int = 0
    client_id: int = 0
    price: int = 0
    stop_price: int = 0
    qty: int = 0
    display_qty: int = 0
    expire_ts: int = 0
    stp_group: int = 0


class Event(NamedTuple):
    """One event record; field use per kind is in docs/book.md."""

    kind: EventKind
    side: int
    reason: int
    flags: int
    code: int
    seq: int
    order_id: int
    account: int
    client_id: int
    price: int
    qty: int
    leaves: int
    counter_id: int
    counter_account: int
    counter_client_id: int
    aux: int
    aux2: int


def encode_command(cmd: Command) -> bytes:
    return _COMMAND.pack(*cmd)


def decode_commands(buf: bytes) -> list[Command]:
    return [Command._make(t) for t in _COMMAND.iter_unpack(buf)]


def decode_events(buf: bytes) -> list[Event]:
    return [Event(EventKind(kind), *rest) for kind, *rest in _EVENT.iter_unpack(buf)]


def new_order(
    side: int,
    price: int,
    qty: int,
    *,
    ord_type: int = OrdType.LIMIT,
    tif: int = Tif.GTC,
    account: int = 1,
    client_id: int = 0,
    order_id: int = 0,
    stop_price: int = 0,
    display_qty: int = 0,
    stp: int = Stp.NONE,
    stp_group: int = 0,
    post_only: bool = False,
    expire_ts: int = 0,
    ts: int = 0,
) -> Command:
    """A new order (a GTC limit unless told otherwise); `order_id` 0 lets the book assign one."""
    return Command(
        kind=CmdKind.NEW,
        side=side,
        ord_type=ord_type,
        tif=tif,
        stp=stp,
        flags=FLAG_POST_ONLY if post_only else 0,
        ts=ts,
        order_id=order_id,
        account=account,
        client_id=client_id,
        price=price,
        stop_price=stop_price,
        qty=qty,
        display_qty=display_qty,
        expire_ts=expire_ts,
        stp_group=stp_group,
    )


def cancel(order_id: int = 0, *, account: int = 1, client_id: int = 0, ts: int = 0) -> Command:
    """Cancel by `order_id`, or with `order_id` 0 by the account's `client_id`."""
    return Command(
        kind=CmdKind.CANCEL, ts=ts, order_id=order_id, account=account, client_id=client_id
    )


def amend(
    order_id: int,
    qty: int,
    price: int = 0,
    *,
    account: int = 1,
    client_id: int = 0,
    ts: int = 0,
) -> Command:
    """Cancel/replace: `qty` is the new open quantity, `price` 0 keeps the price."""
    return Command(
        kind=CmdKind.AMEND,
        ts=ts,
        order_id=order_id,
        account=account,
        client_id=client_id,
        price=price,
        qty=qty,
    )


def mass_cancel(account: int, side: int = 0, *, ts: int = 0) -> Command:
    """Cancel every order of `account` (`side` 0 = both sides)."""
    return Command(kind=CmdKind.MASS_CANCEL, side=side, ts=ts, account=account)


def advance_time(ts: int, *, end_of_day: bool = False) -> Command:
    """Expire GTD orders with `expire_ts <= ts` (and DAY orders at the end of the day)."""
    return Command(kind=CmdKind.ADVANCE_TIME, ts=ts, flags=FLAG_END_OF_DAY if end_of_day else 0)


class CommandBatch:
    """Command records packed in place (bytearray + struct.pack_into) and stamped like the
    sequencer does: `seq` counts up from `first_seq`; `ts` is the batch clock, which a command
    carrying a non-zero `ts` sets."""

    def __init__(self, first_seq: int = 1, ts: int = 0) -> None:
        self._buf = bytearray(64 * COMMAND_SIZE)
        self._end = 0
        self.next_seq = first_seq
        self.ts = ts

    def add(self, cmd: Command) -> int:
        """Append `cmd`; return the seq it was given."""
        if cmd.ts:
            self.ts = cmd.ts
        if self._end + COMMAND_SIZE > len(self._buf):
            self._buf.extend(bytes(len(self._buf)))
        seq = self.next_seq
        _COMMAND.pack_into(self._buf, self._end, *cmd[:6], seq, self.ts, *cmd[8:])
        self._end += COMMAND_SIZE
        self.next_seq += 1
        return seq

    def __len__(self) -> int:
        return self._end // COMMAND_SIZE

    def records(self) -> bytes:
        return bytes(self._buf[: self._end])


_P = ParamSpec("_P")


def _submitting(
    factory: Callable[_P, Command],
) -> Callable[Concatenate[PyBook, _P], list[Event]]:
    """A `PyBook` method that builds a command with `factory` and submits it."""

    def method(self: PyBook, /, *args: _P.args, **kwargs: _P.kwargs) -> list[Event]:
        return self.submit(factory(*args, **kwargs))

    method.__name__ = factory.__name__
    method.__doc__ = factory.__doc__
    return method


class PyBook:
    """A native `Book` with its own sequencer (seq 1, 2, …; a clock set by commands that carry a
    `ts`) whose methods return decoded events. For tests and tools, not the hot path: queries go
    to `self.native` directly."""

    def __init__(self, native: Book | None = None, *, next_seq: int = 1, ts: int = 0) -> None:
        self.native = native if native is not None else Book()
        self.next_seq = next_seq
        self.ts = ts

    def batch(self) -> CommandBatch:
        """An empty batch continuing this book's seq and clock."""
        return CommandBatch(self.next_seq, self.ts)

    def apply(self, batch: CommandBatch) -> list[Event]:
        events = decode_events(self.native.apply(batch.records()))
        self.next_seq = batch.next_seq
        self.ts = batch.ts
        return events

    def submit(self, cmd: Command) -> list[Event]:
        batch = self.batch()
        batch.add(cmd)
        return self.apply(batch)

    new_order = _submitting(new_order)
    cancel = _submitting(cancel)
    amend = _submitting(amend)
    mass_cancel = _submitting(mass_cancel)
    advance_time = _submitting(advance_time)


def vwap(book: Book) -> float | None:
    """Volume-weighted average trade price in ticks; None before the first trade."""
    _, volume, notional, _ = book.stats()
    return notional / volume if volume else None


def imbalance(book: Book, levels: int) -> float | None:
    """(bid - ask) / (bid + ask) of the visible quantity in the best `levels` levels, in [-1, 1];
    None when both sides are empty."""
    bid, ask = book.depth_totals(levels)
    total = bid + ask
    return (bid - ask) / total if total else None
