"""What a sink consumes: `SinkBatch`, one symbol's command and event records, and numpy views of
those records (layouts: native/src/types.rs; `engine.book` has the same layouts as `struct`).

The batch contract (the same for the live stream and for a catch-up source):

- `commands` are the sequenced command records of `symbol` that produced `events`, in seq
  order; they give each event its engine time (`ts` of the command with the event's `seq`) and
  the order type / TIF of new orders, which events do not carry;
- the batch holds EVERY command of `symbol` with `after_seq < seq <= through_seq`, so a sink that
  has applied `symbol` through `after_seq` (or later) can apply it without a gap. A batch with no
  commands is a watermark: nothing happened to `symbol` up to `through_seq`;
- `through_seq` is a global sequence number: an idle symbol's watermark moves on with marks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.book import COMMAND_SIZE, EVENT_SIZE, CmdKind, EventKind

__all__ = [
    "COMMAND_DTYPE",
    "EVENT_DTYPE",
    "SinkBatch",
    "commands_of",
    "events_of",
]

COMMAND_DTYPE = np.dtype(
    [
        ("kind", "u1"), ("side", "u1"), ("ord_type", "u1"), ("tif", "u1"), ("stp", "u1"),
        ("flags", "u1"), ("_reserved", "<u2"), ("seq", "<u8"), ("ts", "<u8"),
        ("order_id", "<u8"), ("account", "<u8"), ("client_id", "<u8"), ("price", "<i8"),
        ("stop_price", "<i8"), ("qty", "<i8"), ("display_qty", "<i8"), ("expire_ts", "<u8"),
        ("stp_group", "<u8"),
    ]
)  # fmt: skip
EVENT_DTYPE = np.dtype(
    [
        ("kind", "u1"), ("side", "u1"), ("reason", "u1"), ("flags", "u1"), ("code", "<u2"),
        ("_reserved", "<u2"), ("seq", "<u8"), ("order_id", "<u8"), ("account", "<u8"),
        ("client_id", "<u8"), ("price", "<i8"), ("qty", "<i8"), ("leaves", "<i8"),
        ("counter_id", "<u8"), ("counter_account", "<u8"), ("counter_client_id", "<u8"),
        ("aux", "<i8"), ("aux2", "<i8"),
    ]
)  # fmt: skip
assert COMMAND_DTYPE.itemsize == COMMAND_SIZE
assert EVENT_DTYPE.itemsize == EVENT_SIZE
assert int(EventKind.LEVEL) == 7 and int(CmdKind.NEW) == 1


class SinkBatch(NamedTuple):
    symbol: str
    commands: bytes  # COMMAND_SIZE records, seq ascending
    events: bytes  # EVENT_SIZE records those commands produced, in order
    after_seq: int  # every command of `symbol` with seq <= after_seq is in earlier batches
    through_seq: int  # ... and every one with seq <= through_seq is here or earlier


def commands_of(data: bytes) -> np.ndarray:
    """A read-only structured view of command records (ValueError unless whole records)."""
    if len(data) % COMMAND_SIZE:
        raise ValueError(f"{len(data)} bytes is not a whole number of command records")
    return np.frombuffer(data, COMMAND_DTYPE)


def events_of(data: bytes) -> np.ndarray:
    """A read-only structured view of event records (ValueError unless whole records)."""
    if len(data) % EVENT_SIZE:
        raise ValueError(f"{len(data)} bytes is not a whole number of event records")
    return np.frombuffer(data, EVENT_DTYPE)
