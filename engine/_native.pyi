"""Native core of cift-engine (Rust, PyO3): the order book and the synthetic order flow.

Record layouts of commands and events: native/src/types.rs; semantics: docs/book.md.
The wire codec's part of this module is stubbed in `_native_wire.pyi` and re-exported here.
"""

from typing import Final, final

from engine._native_journal import JournalCorrupt as JournalCorrupt
from engine._native_journal import JournalReader as JournalReader
from engine._native_journal import JournalWriter as JournalWriter
from engine._native_journal import journal_recover as journal_recover
from engine._native_journal import journal_scan as journal_scan
from engine._native_risk import RISK_REJECT_TEXTS as RISK_REJECT_TEXTS
from engine._native_risk import AccountLimits as AccountLimits
from engine._native_risk import RiskEngine as RiskEngine
from engine._native_risk import SymbolRisk as SymbolRisk
from engine._native_risk import calculate_position_stats as calculate_position_stats
from engine._native_risk import calculate_sharpe as calculate_sharpe
from engine._native_risk import risk_reject_text as risk_reject_text
from engine._native_sinks import SymbolRows as SymbolRows
from engine._native_sinks import pgcopy as pgcopy
from engine._native_wire import ADMIN_SYMBOL as ADMIN_SYMBOL
from engine._native_wire import ALL_SYMBOLS as ALL_SYMBOLS
from engine._native_wire import JOURNAL_ENTRY_SIZE as JOURNAL_ENTRY_SIZE
from engine._native_wire import NO_SYMBOL as NO_SYMBOL
from engine._native_wire import REPORT_SIZE as REPORT_SIZE
from engine._native_wire import Publisher as Publisher
from engine._native_wire import Sequencer as Sequencer
from engine._native_wire import WireDecoder as WireDecoder
from engine._native_wire import code_text as code_text
from engine._native_wire import decode_replies as decode_replies
from engine._native_wire import encode_heartbeat as encode_heartbeat
from engine._native_wire import encode_logon as encode_logon
from engine._native_wire import encode_requests as encode_requests
from engine._native_wire import wire_codes as wire_codes

__all__ = [
    "ADMIN_SYMBOL",
    "ALL_SYMBOLS",
    "COMMAND_SIZE",
    "EVENT_SIZE",
    "JOURNAL_ENTRY_SIZE",
    "NO_SYMBOL",
    "REPORT_SIZE",
    "RISK_REJECT_TEXTS",
    "AccountLimits",
    "Book",
    "JournalCorrupt",
    "JournalReader",
    "JournalWriter",
    "OrderInfo",
    "Publisher",
    "RiskEngine",
    "Sequencer",
    "SymbolRisk",
    "SymbolRows",
    "WireDecoder",
    "calculate_position_stats",
    "calculate_sharpe",
    "code_text",
    "decode_replies",
    "encode_heartbeat",
    "encode_logon",
    "encode_requests",
    "journal_recover",
    "journal_scan",
    "pgcopy",
    "reject_text",
    "risk_reject_text",
    "synthetic_flow",
    "wire_codes",
]

COMMAND_SIZE: Final[int]
"""Bytes per command record (96)."""
EVENT_SIZE: Final[int]
"""Bytes per event record (104)."""

@final
class OrderInfo:
    """One resting or stop order. Enum fields are the raw wire values."""

    @property
    def order_id(self) -> int: ...
    @property
    def account(self) -> int: ...
    @property
    def client_id(self) -> int: ...
    @property
    def side(self) -> int: ...
    @property
    def ord_type(self) -> int: ...
    @property
    def tif(self) -> int: ...
    @property
    def price(self) -> int: ...
    @property
    def stop_price(self) -> int: ...
    @property
    def visible(self) -> int:
        """Displayed open quantity."""
    @property
    def hidden(self) -> int:
        """Iceberg reserve (0 otherwise)."""
    @property
    def display_qty(self) -> int: ...
    @property
    def filled(self) -> int: ...
    @property
    def expire_ts(self) -> int: ...
    @property
    def is_stop(self) -> bool:
        """True while the order waits untriggered in the stop book."""
    @property
    def open(self) -> int:
        """Open quantity: visible plus reserve."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Book:
    """The order book of one symbol. Prices in ticks, quantities in lots (integers)."""

    def __new__(cls, min_price: int = ..., max_price: int = ..., max_qty: int = ...) -> Book:
        """Prices outside [min_price, max_price] are rejected (3002), quantities above max_qty
        3001 (new) or 3013 (amend); the defaults are 1, 2**61 - 1 and 10**12
        (`BookConfig::default`). ValueError unless 1 <= min_price <= max_price and max_qty >= 1."""
    def apply(self, cmds: bytes | bytearray | memoryview) -> bytes:
        """Apply command records (a multiple of COMMAND_SIZE bytes, else ValueError) and return
        their event records. The GIL is released while matching (another thread's call on the
        same book meanwhile raises RuntimeError); a rejected command is a Rejected event, not an
        exception."""
    def best_bid(self) -> tuple[int, int, int] | None:
        """(price, visible qty, order count) of the best bid."""
    def best_ask(self) -> tuple[int, int, int] | None:
        """(price, visible qty, order count) of the best ask."""
    def depth(self, side: int, n: int) -> list[tuple[int, int, int]]:
        """Best `n` levels of `side` (1 buy, 2 sell) as (price, visible qty, order count)."""
    def level_orders(self, side: int, price: int) -> list[OrderInfo]:
        """Orders resting at `price` on `side`, in queue order."""
    def stop_orders(self, side: int) -> list[OrderInfo]:
        """Untriggered stop orders of `side`, in trigger order."""
    def order(self, order_id: int) -> OrderInfo | None:
        """A live (resting or stop) order."""
    def stats(self) -> tuple[int, int, int, int]:
        """(last_price, volume, notional, trades) since the book was created."""
    def depth_totals(self, levels: int) -> tuple[int, int]:
        """Visible quantity over the best `levels` levels: (bid total, ask total)."""
    def order_count(self) -> int: ...
    def snapshot(self) -> bytes:
        """The whole state as versioned bytes."""
    @staticmethod
    def restore(data: bytes | bytearray | memoryview) -> Book:
        """Rebuild a book from `snapshot()` bytes; ValueError if they are not a valid snapshot."""
    def digest(self) -> int:
        """64-bit FNV-1a hash of the snapshot bytes."""
    @property
    def min_price(self) -> int: ...
    @property
    def max_price(self) -> int: ...

def reject_text(code: int) -> str:
    """The text of a reject code ("unknown reject code N" if there is none)."""

def synthetic_flow(
    seed: int,
    commands: int,
    depth: int | None = None,
    *,
    accounts: int | None = None,
    center_price: int | None = None,
    band: int | None = None,
    max_qty: int | None = None,
    protection: int | None = None,
    mix: tuple[int, int, int, int, int] | None = None,
) -> bytes:
    """Deterministic synthetic order flow as command records: `depth` resting GTC limits (the
    fill), then `commands` commands mixed by the per-mille weights `mix` = (gtc, ioc, cancel,
    amend, market). Defaults (None): depth 1000, accounts 100, center_price 100000, band 100
    ticks, max_qty 100 lots, protection 50 ticks, mix (90, 30, 60, 800, 20). Same arguments,
    same bytes. ValueError for an unusable configuration."""
