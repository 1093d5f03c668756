"""What a sink consumes: `SinkBatch`, one symbol's command and event records (layouts:
native/src/types.rs; `engine.book` has the same layouts as `struct`; the sink's native
converter, native/src/sinks/, reads them), and the numpy dtype of a command record.

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

from engine.book import COMMAND_SIZE

__all__ = ["COMMAND_DTYPE", "SinkBatch"]

COMMAND_DTYPE = np.dtype(
    [
        ("kind", "u1"), ("side", "u1"), ("ord_type", "u1"), ("tif", "u1"), ("stp", "u1"),
        ("flags", "u1"), ("_reserved", "<u2"), ("seq", "<u8"), ("ts", "<u8"),
        ("order_id", "<u8"), ("account", "<u8"), ("client_id", "<u8"), ("price", "<i8"),
        ("stop_price", "<i8"), ("qty", "<i8"), ("display_qty", "<i8"), ("expire_ts", "<u8"),
        ("stp_group", "<u8"),
    ]
)  # fmt: skip
assert COMMAND_DTYPE.itemsize == COMMAND_SIZE


class SinkBatch(NamedTuple):
    symbol: str
    commands: bytes  # COMMAND_SIZE records, seq ascending
    events: bytes  # EVENT_SIZE records those commands produced, in order
    after_seq: int  # every command of `symbol` with seq <= after_seq is in earlier batches
    through_seq: int  # ... and every one with seq <= through_seq is here or earlier
