"""The engine's core stages in one thread, without actors, sockets or a journal.

    wire frames ─> WireDecoder ─> Sequencer (risk) ─> Book per symbol ─> Publisher ─> reply frames

These are the daemon's own native stages (engine/daemon.py wires the same objects, with actors
and queues between them), called one after the other on each batch. Two users:

- the reference model of a recorded flow: `expected_books(flow)` runs every message through it
  and gives the final L2 book per symbol that a replay must end with;
- the `core` replay target (perf/replay_core.py): the engine's work per command with no
  asyncio, no queues and no durability wait -- the floor under the pipeline's latency.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from engine.book import COMMAND_SIZE, Book, Side
from engine.wire import NO_SYMBOL, Publisher, Sequencer, WireDecoder
from perf.flow import ExpectedBook, Flow, FlowError, Symbol

__all__ = ["Core", "DecodedFlow", "decode_flow", "expected_books"]

_NO_SYMBOL = struct.pack("<I", NO_SYMBOL)
_EMPTY_RECORD = bytes(COMMAND_SIZE)
_CHUNK = 65_536  # records per sequencer call when running a whole flow
MAX_FRAME = 65_536


class Core:
    """Decoder, sequencer, one native book per symbol and (optionally) the publisher."""

    def __init__(self, symbols: Sequence[Symbol], *, publish: bool = True) -> None:
        self.symbols = tuple(symbols)
        self.decoder = WireDecoder([s.name for s in symbols], MAX_FRAME)
        self.sequencer = Sequencer([s.rules() for s in symbols], 1)
        self.books = [Book(s.min_price, s.max_price) for s in symbols]
        self.publisher = Publisher([s.spec() for s in symbols]) if publish else None

    def open_session(self, sid: int, account: int) -> None:
        """A logged-on session (the gateway's logon, without the handshake)."""
        if self.publisher is not None:
            self.publisher.open_session(sid)
            self.publisher.bind(sid, account)

    def submit(self, runs: Iterable[tuple[int, int, bytes]], now_ns: int) -> int:
        """One batch: `runs` of (session id, account, wire bytes) in arrival order. Returns the
        number of commands sequenced; the replies wait in the publisher (`drain`)."""
        commands: list[bytes] = []
        symbols: list[bytes] = []
        decode = self.decoder.decode
        for sid, account, wire in runs:
            _, recs, syms, rejects, control, error = decode(wire, account)
            if control is not None or error is not None:
                raise FlowError(f"session {sid}: not a trading message: {control or error}")
            commands.append(recs)
            symbols.append(syms)
            if rejects and self.publisher is not None:
                self.publisher.add_for_session(sid, rejects)
        return self.apply_records(b"".join(commands), b"".join(symbols), now_ns)

    def apply_records(self, commands: bytes, symbols: bytes, now_ns: int) -> int:
        """Sequence command records (account filled in) and apply them to the books."""
        if not commands:
            return 0
        _, per_symbol, rejects, reject_symbols, first, last = self.sequencer.sequence(
            commands, symbols, now_ns
        )
        publisher = self.publisher
        for i, records in enumerate(per_symbol):
            if records is not None:
                events = self.books[i].apply(records)
                if publisher is not None and events:
                    publisher.add_events(events, i)
        if rejects and publisher is not None:
            publisher.add_events_each(rejects, reject_symbols)
        return last - first + 1 if last else 0

    def drain(self) -> list[tuple[int, bytes]]:
        """Every session's pending reply frames."""
        return self.publisher.drain() if self.publisher is not None else []

    def final_books(self, levels: int) -> dict[str, ExpectedBook]:
        out = {}
        for s, book in zip(self.symbols, self.books, strict=True):
            last, volume, _, trades = book.stats()
            out[s.name] = ExpectedBook(
                tuple(book.depth(Side.BUY, levels)),
                tuple(book.depth(Side.SELL, levels)),
                last,
                volume,
                trades,
            )
        return out


class DecodedFlow:
    """Every message of a flow as a command record (the session's account filled in) and a u32
    symbol index, aligned with the flow; `ok[i]` is False for a message the gateway rejects
    (malformed: a zero record stands in for it)."""

    def __init__(self, commands: bytes, symbols: bytes, ok: list[bool]) -> None:
        self.commands = commands
        self.symbols = symbols
        self.ok = ok

    def select(self, indexes: Iterable[int]) -> tuple[bytes, bytes]:
        """The records and symbol indexes of `indexes` (in that order), skipping rejected ones."""
        c, s, ok = self.commands, self.symbols, self.ok
        picked = [i for i in indexes if ok[i]]
        return (
            b"".join([c[i * COMMAND_SIZE : (i + 1) * COMMAND_SIZE] for i in picked]),
            b"".join([s[i * 4 : i * 4 + 4] for i in picked]),
        )


def decode_flow(flow: Flow) -> DecodedFlow:
    decoder = WireDecoder([s.name for s in flow.symbols], MAX_FRAME)
    accounts = [s.account for s in flow.sessions]
    commands: list[bytes] = []
    symbols: list[bytes] = []
    ok: list[bool] = []
    data, starts, ends, session_of = flow.data, flow.starts, flow.ends, flow.session_of
    for i in range(len(flow)):
        _, recs, syms, _, control, error = decoder.decode(
            data[starts[i] : ends[i]], accounts[session_of[i]]
        )
        if control is not None or error is not None:
            raise FlowError(f"message {i}: not a trading message: {control or error}")
        good = len(recs) == COMMAND_SIZE
        commands.append(recs if good else _EMPTY_RECORD)
        symbols.append(syms if good else _NO_SYMBOL)
        ok.append(good)
    return DecodedFlow(b"".join(commands), b"".join(symbols), ok)


def expected_books(
    flow: Flow,
    decoded: DecodedFlow | None = None,
    order: Sequence[int] | None = None,
    levels: int | None = None,
) -> dict[str, ExpectedBook]:
    """The reference model: the final book per symbol after every message of `flow` (in file
    order, or in `order`: the message indexes in the order the engine sequenced them)."""
    d = decoded if decoded is not None else decode_flow(flow)
    core = Core(flow.symbols, publish=False)
    indexes = range(len(flow)) if order is None else order
    for lo in range(0, len(indexes), _CHUNK):
        commands, symbols = d.select(indexes[lo : lo + _CHUNK])
        core.apply_records(commands, symbols, 0)
    return core.final_books(levels if levels is not None else flow.levels)
