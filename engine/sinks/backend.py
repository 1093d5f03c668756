"""What the sink runner needs from a database, whichever it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engine.sinks.convert import CheckpointRow, Flush, OpenOrder, PositionRow

__all__ = ["Backend", "SinkState"]


@dataclass(frozen=True)
class SinkState:
    """What a sink restarts from: its checkpoints, each (symbol, account)'s last position and
    the orders live at the checkpoints (accepted, not yet ended: `order_ends` needs their
    acceptance when they end)."""

    checkpoints: list[CheckpointRow]
    positions: list[PositionRow]
    open_orders: list[OpenOrder] = field(default_factory=list)


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

    async def write(self, sink: str, flush: Flush) -> None:
        """Write one flush; the rows and checkpoints all land or (after `load`) none do."""

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (the reports)."""

    async def columns(self, sql: str) -> list[np.ndarray]:
        """The columns of a read-only query of integer columns, as numpy arrays (the reports'
        large results: no Python object per value where the driver allows)."""
