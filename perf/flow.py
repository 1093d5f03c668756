"""Recorded order flow: the versioned file format every replay tool reads (docs/performance.md).

A flow file is what a set of clients sends to the engine, with the time each message is meant
to be sent, so that it can be replayed open loop (`python -m perf.replay`):

    offset 0   magic b"CIFTFLOW" (8 bytes)
    offset 8   u16 format version (1), u16 reserved (0), u32 header length H
    offset 16  header: H bytes of UTF-8 JSON (symbols, sessions, source, expected final book)
    then, until the end of the file, one record per client message:
               u64 planned send time, ns after the start of the flow (non-decreasing)
               u32 session index (into the header's `sessions`)
               u32 frame length L, then L bytes: ONE ClientMessage (engine/schema/cift.capnp,
                   standard serialization) -- the last two fields are exactly a TCP wire frame

All integers little endian. Only trading messages (newOrder, cancel, replace, massCancel) are
recorded; logon, heartbeats and logout belong to the replayer. The header carries the expected
final L2 book per symbol (top `levels` levels, from the reference model in
`perf/replay_engine.py`), so that every replay can say whether the engine ended where it should.
"""

from __future__ import annotations

import itertools
import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "FLOW_MAGIC",
    "FLOW_VERSION",
    "ExpectedBook",
    "Flow",
    "FlowError",
    "Session",
    "Symbol",
    "iter_records",
    "read_flow",
    "read_header",
    "split_wire",
    "write_flow",
]

FLOW_MAGIC = b"CIFTFLOW"
FLOW_VERSION = 1
_PREAMBLE = struct.Struct("<8sHHI")
_RECORD = struct.Struct("<QII")  # planned ns, session, frame length (the wire prefix)
_WIRE_PREFIX = struct.Struct("<I")


class FlowError(ValueError):
    """The file is not a usable recorded flow (bad magic, newer version, truncated record...)."""


@dataclass(frozen=True)
class Symbol:
    """One symbol of the flow, with the engine config it needs (engine/config.py SymbolConfig)."""

    name: str
    tick_size: int = 1
    lot_size: int = 1
    price_precision: int = 2
    min_price: int = 1
    max_price: int = 1 << 40
    reference_price: int = 0
    price_band_bps: int = 0
    max_order_qty: int = 1 << 40

    def rules(self) -> tuple[int, int, int, int, int, int, int]:
        """The risk sequencer's rule tuple (engine._native.Sequencer)."""
        return (
            self.tick_size,
            self.lot_size,
            self.min_price,
            self.max_price,
            self.reference_price,
            self.price_band_bps,
            self.max_order_qty,
        )

    def spec(self) -> tuple[str, int, int, int, int, int, int]:
        """What sessions are told at logon (engine._native.Publisher)."""
        return (
            self.name,
            self.tick_size,
            self.lot_size,
            self.price_precision,
            self.min_price,
            self.max_price,
            self.max_order_qty,
        )


@dataclass(frozen=True)
class Session:
    """One client session; it logs on as `account` (one session per account, as the engine
    requires)."""

    account: int


Level = tuple[int, int, int]  # price, visible quantity, order count


@dataclass(frozen=True)
class ExpectedBook:
    """A symbol's final state: top levels best first, and its trade statistics."""

    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()
    last_price: int = 0
    volume: int = 0
    trades: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "bids": [list(x) for x in self.bids],
            "asks": [list(x) for x in self.asks],
            "last_price": self.last_price,
            "volume": self.volume,
            "trades": self.trades,
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> ExpectedBook:
        return ExpectedBook(
            tuple((int(p), int(q), int(n)) for p, q, n in d["bids"]),
            tuple((int(p), int(q), int(n)) for p, q, n in d["asks"]),
            int(d.get("last_price", 0)),
            int(d.get("volume", 0)),
            int(d.get("trades", 0)),
        )


@dataclass
class Flow:
    """A flow in memory: frame i is `data[starts[i]:ends[i]]` (a whole wire frame, length
    prefix included), to be sent by session `session_of[i]` at `times[i]` ns."""

    symbols: tuple[Symbol, ...]
    sessions: tuple[Session, ...]
    source: dict[str, Any]
    times: array[int]
    session_of: array[int]
    data: bytes
    starts: array[int]
    ends: array[int]
    levels: int = 10
    expected: dict[str, ExpectedBook] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def duration_ns(self) -> int:
        return self.times[-1] if self.times else 0

    def frame(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.ends[i]]

    def wire(self, indexes: Iterable[int]) -> bytes:
        """The frames of `indexes`, concatenated (what one write to a socket sends)."""
        data, starts, ends = self.data, self.starts, self.ends
        return b"".join([data[starts[i] : ends[i]] for i in indexes])

    def header(self) -> dict[str, Any]:
        h: dict[str, Any] = {
            "format": "cift-flow",
            "version": FLOW_VERSION,
            "source": self.source,
            "symbols": [asdict(s) for s in self.symbols],
            "sessions": [asdict(s) for s in self.sessions],
            "commands": len(self),
            "duration_ns": self.duration_ns,
            "levels": self.levels,
            "expected": (
                {k: v.to_json() for k, v in self.expected.items()}
                if self.expected is not None
                else None
            ),
        }
        h.update(self.extra)
        return h

    @staticmethod
    def build(
        symbols: Sequence[Symbol],
        sessions: Sequence[Session],
        source: Mapping[str, Any],
        times: Sequence[int],
        session_of: Sequence[int],
        wire: bytes,
        *,
        levels: int = 10,
        extra: Mapping[str, Any] | None = None,
    ) -> Flow:
        """A flow from concatenated wire frames (one per entry of `times`), in send order."""
        starts, ends = split_wire(wire)
        if len(starts) != len(times) or len(times) != len(session_of):
            raise FlowError(
                f"{len(starts)} frames, {len(times)} times, {len(session_of)} sessions: "
                "they must be one per message"
            )
        flow = Flow(
            tuple(symbols),
            tuple(sessions),
            dict(source),
            array("Q", times),
            array("I", session_of),
            wire,
            starts,
            ends,
            levels,
            None,
            dict(extra or {}),
        )
        flow.validate()
        return flow

    def validate(self) -> None:
        names = [s.name for s in self.symbols]
        if len(set(names)) != len(names) or not names:
            raise FlowError(f"symbols must be a non-empty list of distinct names: {names}")
        accounts = [s.account for s in self.sessions]
        if len(set(accounts)) != len(accounts) or min(accounts, default=1) < 1:
            raise FlowError("sessions must have distinct accounts >= 1 (one session per account)")
        n = len(self.sessions)
        if any(s >= n for s in self.session_of):
            raise FlowError("a record names a session the header does not have")
        if any(b < a for a, b in itertools.pairwise(self.times)):
            raise FlowError("planned send times must not decrease")


def split_wire(wire: bytes) -> tuple[array[int], array[int]]:
    """Start and end offsets of each length-prefixed frame of `wire`."""
    starts: array[int] = array("Q")
    ends: array[int] = array("Q")
    pos, size = 0, len(wire)
    unpack = _WIRE_PREFIX.unpack_from
    while pos < size:
        if pos + 4 > size:
            raise FlowError(f"truncated frame length at byte {pos}")
        (n,) = unpack(wire, pos)
        end = pos + 4 + n
        if end > size:
            raise FlowError(f"truncated frame at byte {pos}")
        starts.append(pos)
        ends.append(end)
        pos = end
    return starts, ends


def write_flow(path: str | Path, flow: Flow) -> None:
    header = orjson.dumps(flow.header(), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    parts = [_PREAMBLE.pack(FLOW_MAGIC, FLOW_VERSION, 0, len(header)), header]
    pack, data = _RECORD.pack, flow.data
    for t, s, a, b in zip(flow.times, flow.session_of, flow.starts, flow.ends, strict=True):
        parts.append(pack(t, s, b - a - 4))
        parts.append(data[a + 4 : b])
    Path(path).write_bytes(b"".join(parts))


def read_header(path: str | Path) -> dict[str, Any]:
    """Just the header (for tools that do not need the messages)."""
    with open(path, "rb") as f:
        pre = f.read(_PREAMBLE.size)
        length = _check_preamble(pre, path)
        raw = f.read(length)
    return _parse_header(raw, length, path)


def _check_preamble(pre: bytes, path: str | Path) -> int:
    if len(pre) < _PREAMBLE.size:
        raise FlowError(f"{path}: too short to be a flow file")
    magic, version, _, length = _PREAMBLE.unpack(pre)
    if magic != FLOW_MAGIC:
        raise FlowError(f"{path}: not a flow file (magic {magic!r})")
    if version != FLOW_VERSION:
        raise FlowError(f"{path}: flow format version {version}; this tool reads {FLOW_VERSION}")
    return int(length)


def _parse_header(raw: bytes, length: int, path: str | Path) -> dict[str, Any]:
    if len(raw) != length:
        raise FlowError(f"{path}: truncated header")
    try:
        header: dict[str, Any] = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise FlowError(f"{path}: header is not JSON: {e}") from None
    if header.get("format") != "cift-flow":
        raise FlowError(f"{path}: header format {header.get('format')!r}")
    return header


def read_flow(path: str | Path) -> Flow:
    data = Path(path).read_bytes()
    length = _check_preamble(data[: _PREAMBLE.size], path)
    start = _PREAMBLE.size + length
    header = _parse_header(data[_PREAMBLE.size : start], length, path)
    try:
        symbols = tuple(Symbol(**s) for s in header["symbols"])
        sessions = tuple(Session(**s) for s in header["sessions"])
        expected_raw = header.get("expected")
        expected = (
            {k: ExpectedBook.from_json(v) for k, v in expected_raw.items()}
            if expected_raw is not None
            else None
        )
    except (KeyError, TypeError, ValueError) as e:
        raise FlowError(f"{path}: bad header: {e!r}") from None
    times: array[int] = array("Q")
    session_of: array[int] = array("I")
    starts: array[int] = array("Q")
    ends: array[int] = array("Q")
    pos, size, unpack = start, len(data), _RECORD.unpack_from
    while pos < size:
        if pos + _RECORD.size > size:
            raise FlowError(f"{path}: truncated record at byte {pos}")
        t, s, n = unpack(data, pos)
        end = pos + _RECORD.size + n
        if end > size:
            raise FlowError(f"{path}: truncated message at byte {pos}")
        times.append(t)
        session_of.append(s)
        starts.append(pos + 12)  # the wire frame starts at its length prefix
        ends.append(end)
        pos = end
    known = {"format", "version", "source", "symbols", "sessions", "commands", "duration_ns"}
    known |= {"levels", "expected"}
    flow = Flow(
        symbols,
        sessions,
        dict(header.get("source") or {}),
        times,
        session_of,
        data,
        starts,
        ends,
        int(header.get("levels", 10)),
        expected,
        {k: v for k, v in header.items() if k not in known},
    )
    if header.get("commands") not in (None, len(flow)):
        raise FlowError(f"{path}: header says {header['commands']} messages, file has {len(flow)}")
    flow.validate()
    return flow


def iter_records(flow: Flow) -> Iterator[tuple[int, int, bytes]]:
    """(planned ns, session index, wire frame) for each message, in order."""
    for i in range(len(flow)):
        yield flow.times[i], flow.session_of[i], flow.frame(i)
