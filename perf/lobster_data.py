"""LOBSTER files: find a message/orderbook pair (plain CSVs or inside a LOBSTER zip) and parse them.

LOBSTER (lobsterdata.com) reconstructs NASDAQ books from TotalView-ITCH. A pair is a message file
(one event a line: time, type, order id, size, price, direction) and an orderbook file whose row k
is the top N levels after message k (ask price, ask size, bid price, bid size per level; missing
levels are dummy prices +-9999999999 with size 0). Prices are dollars x 10000: our ticks as they
are. Files are read as streams (a 5-level day is ~25 MB of text) and never copied.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "DUMMY_PRICE",
    "Level",
    "LobsterFormatError",
    "LobsterPair",
    "Message",
    "MessageType",
    "Row",
    "find_pair",
    "parse_messages",
    "parse_rows",
    "parse_time_ns",
]

DUMMY_PRICE = 9_999_999_999
"""Price LOBSTER writes for an empty level (negative on the bid side), with size 0."""


class MessageType:
    """LOBSTER message types (column 2)."""

    NEW = 1
    CANCEL = 2  # partial cancellation
    DELETE = 3
    EXECUTE = 4  # execution of a visible order
    HIDDEN = 5  # execution of a hidden order: no visible change
    CROSS = 6  # cross trade (auction), not in the sample files: no visible change
    HALT = 7


class Message(NamedTuple):
    line: int  # 1-based line number in the message file = row number in the orderbook file
    ts: int  # nanoseconds after midnight
    type: int
    order_id: int
    size: int
    price: int
    direction: int  # 1 buy, -1 sell; for executions the side of the resting order

    def text(self) -> str:
        sec, ns = divmod(self.ts, 1_000_000_000)
        return (
            f"line {self.line}: {sec}.{ns:09d},{self.type},{self.order_id},{self.size},"
            f"{self.price},{self.direction}"
        )


Level = tuple[int, int]  # (price, size)


class Row(NamedTuple):
    """One orderbook row: the occupied levels of each side, best first (dummies dropped)."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class LobsterFormatError(ValueError):
    """A file that is not a LOBSTER message/orderbook file (message says where)."""


def parse_time_ns(text: str) -> int:
    """Seconds after midnight as decimal text -> integer nanoseconds (digits past 9 dropped)."""
    sec, _, frac = text.partition(".")
    if not sec.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"bad time {text!r}")
    return int(sec) * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0"))


def parse_messages(lines: Iterator[str], source: str = "messages") -> list[Message]:
    out: list[Message] = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(",")
        if len(parts) != 6:
            raise LobsterFormatError(f"{source} line {n}: expected 6 columns, got {len(parts)}")
        try:
            ts = parse_time_ns(parts[0])
            kind, oid, size, price, direction = (int(x) for x in parts[1:])
        except ValueError as e:
            raise LobsterFormatError(f"{source} line {n}: {e}") from None
        if direction not in (1, -1):
            raise LobsterFormatError(f"{source} line {n}: direction must be 1 or -1")
        out.append(Message(n, ts, kind, oid, size, price, direction))
    return out


def _side(values: list[int], first: int, levels: int, dummy: int) -> tuple[Level, ...]:
    """The levels of one side (columns first, first + 1, then every 4th), dummies dropped."""
    end = 4 * levels
    out = tuple(zip(values[first:end:4], values[first + 1 : end : 4], strict=True))
    n = len(out)
    while n and out[n - 1] == (dummy, 0):
        n -= 1
    return out if n == len(out) else out[:n]


def parse_rows(lines: Iterator[str], levels: int, source: str = "orderbook") -> Iterator[Row]:
    """Yield one Row per line, keeping the best `levels` levels of each side."""
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            values = [int(x) for x in line.split(",")]
        except ValueError as e:
            raise LobsterFormatError(f"{source} line {n}: {e}") from None
        if len(values) % 4 or len(values) < 4 * levels:
            raise LobsterFormatError(
                f"{source} line {n}: {len(values)} columns, need 4 per level and {levels} levels"
            )
        yield Row(_side(values, 2, levels, -DUMMY_PRICE), _side(values, 0, levels, DUMMY_PRICE))


@dataclass(frozen=True)
class LobsterPair:
    """Where a message file and its orderbook file are: two paths, or two members of one zip."""

    message: str
    orderbook: str
    zip_path: Path | None = None

    @property
    def label(self) -> str:
        return Path(self.message).name if self.zip_path is None else self.zip_path.name

    def _lines(self, name: str) -> Iterator[str]:
        if self.zip_path is None:
            with open(name, encoding="ascii", newline="") as f:
                yield from f
        else:
            with zipfile.ZipFile(self.zip_path) as zf, zf.open(name) as raw:
                yield from io.TextIOWrapper(raw, encoding="ascii", newline="")

    def file_levels(self) -> int:
        """Levels in the orderbook file (its column count / 4)."""
        for line in self._lines(self.orderbook):
            if line.strip():
                cols = line.count(",") + 1
                if cols % 4:
                    raise LobsterFormatError(f"{self.orderbook}: {cols} columns, not 4 per level")
                return cols // 4
        raise LobsterFormatError(f"{self.orderbook}: empty orderbook file")

    def messages(self) -> list[Message]:
        return parse_messages(self._lines(self.message), self.message)

    def rows(self, levels: int) -> Iterator[Row]:
        return parse_rows(self._lines(self.orderbook), levels, self.orderbook)


def find_pair(path: str | Path, orderbook: str | Path | None = None) -> LobsterPair:
    """The pair named by a zip (which must hold one message and one orderbook CSV), or by a
    message CSV and its orderbook CSV (by default the sibling file whose name has `_orderbook_`
    where the message file's has `_message_`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        if orderbook is not None:
            raise ValueError("a zip holds its own orderbook file: give the zip alone")
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
        found = [
            [n for n in names if f"_{kind}_" in Path(n).name] for kind in ("message", "orderbook")
        ]
        if any(len(f) != 1 for f in found):
            raise LobsterFormatError(
                f"{path}: need exactly one *_message_*.csv and one *_orderbook_*.csv, found {names}"
            )
        return LobsterPair(found[0][0], found[1][0], path)
    if orderbook is None:
        if "_message_" not in path.name:
            raise ValueError(f"{path}: give the orderbook file too (name has no '_message_')")
        orderbook = path.with_name(path.name.replace("_message_", "_orderbook_"))
    orderbook = Path(orderbook)
    if not orderbook.is_file():
        raise FileNotFoundError(f"{orderbook}: no such file")
    return LobsterPair(str(path), str(orderbook))
