"""What the sink runner needs from a database, whichever it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from engine.sinks.convert import CheckpointRow, Flush, OpenOrder, PositionRow

__all__ = ["Backend", "SinkState"]


@dataclass(frozen=True)
class SinkState:
    """What a sink restarts from: its checkpoints and each (symbol, account)'s last position."""

    checkpoints: list[CheckpointRow]
    positions: list[PositionRow]


class Backend(Protocol):
    name: str
    """"postgres" or "clickhouse": the `sink` label of the metrics."""
    dialect: str

    async def connect(self) -> None:
        """Connect (raises if the database cannot be reached)."""

    async def close(self) -> None:
        """Disconnect; safe to call when not connected."""

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; return their versions."""

    async def load(self, sink: str) -> SinkState:
        """The state `sink` has committed, after removing anything written beyond it."""

    async def open_orders(self, symbols: list[str]) -> list[OpenOrder]:
        """The orders of `symbols` live in the rows written so far (accepted, never ended):
        the converter needs their acceptance for their `order_ends` rows. Call after `load`
        (which removes anything written beyond the checkpoints); it reads every order of the
        symbols, so only when the converter is restored (not on every reconnect)."""

    async def write(self, sink: str, flush: Flush) -> None:
        """Write one flush; the rows and checkpoints all land or (after `load`) none do."""

    async def end_of_day(self, checkpoint_ts: int) -> int:
        """After a write (and on start, after `load`): every symbol's checkpoint is at or past
        engine time `checkpoint_ts`, so the UTC days before its day are closed. ClickHouse
        writes their end-of-day equity (`equity.py`); PostgreSQL does nothing. Returns the
        number of days written."""

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (the reports)."""

    async def columns(self, sql: str) -> list[np.ndarray]:
        """The columns of a read-only query of integer columns, as numpy arrays (the reports'
        large results: no Python object per value where the driver allows)."""
