"""Type stubs for the sink row builder part of engine._native (native/src/python/sinks.rs)."""

from collections.abc import Sequence
from typing import final

from typing_extensions import Buffer

Level = tuple[int, int, int]
TopState = tuple[int, int, int, int, list[Level], list[Level]]
Columns = tuple[list[bytes], int]

@final
class SymbolRows:
    """The sink rows of one symbol (orders, trades, book_top, order_ends as little-endian column
    buffers in the order of engine/sinks/tables.py, without `symbol`) and the state they depend
    on: the L2 book from Level events, the open `book_top` interval, the last trade price,
    positions, each live order's acceptance (seq, ts, account)."""

    def __new__(cls, interval_ns: int) -> SymbolRows: ...
    def apply(self, commands: bytes, events: bytes, after: int, through: int) -> int | None:
        """Add the rows of command and event records, skipping seqs <= ``after``; the ts of the
        last command applied (None if none). ValueError (nothing added) if the batch breaks
        the contract: commands not ascending or beyond ``through``, an event without command."""
    def rows(self) -> int:
        """Rows waiting to be taken (orders + trades + book_top + order_ends)."""
    def take(self) -> tuple[Columns, Columns, Columns, Columns]:
        """(orders, trades, book_top, order_ends) rows added since the last call, each
        (columns, rows)."""
    def restore_open(self, order_id: int, seq: int, ts: int, account: int) -> None:
        """A live order accepted before the checkpoint (its acceptance seq, ts, account)."""
    def open_orders(self) -> int:
        """Live orders tracked for `order_ends`."""
    def take_positions(self) -> list[tuple[int, int, int, int, int, int, int, int, int]]:
        """Positions changed since the last call, by account: (account, seq, ts, position,
        buy_qty, sell_qty, buy_notional, sell_notional, trades); seq/ts of the last fill."""
    def top_state(self) -> TopState:
        """(bucket, bucket_seq, bucket_ts, last_price, bids, asks); levels (price, qty, count)."""
    def restore_top(self, state: TopState) -> None: ...
    def restore_position(
        self,
        account: int,
        position: int,
        buy_qty: int,
        sell_qty: int,
        buy_notional: int,
        sell_notional: int,
        trades: int,
    ) -> None: ...

def pgcopy(text: str, kinds: str, columns: Sequence[Buffer], rows: int) -> bytes:
    """PostgreSQL binary COPY data (header, rows, trailer): ``text`` as every row's first field,
    then ``columns`` (little-endian buffers of ``rows`` values; ``kinds`` one letter each:
    B u8 -> smallint, H u16 / I u32 -> integer, Q u64 / q i64 -> bigint)."""
