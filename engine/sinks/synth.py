"""A deterministic multi-symbol journal for the sink tests and benchmarks: the native synthetic
order flow of each symbol (`engine._native.synthetic_flow`), interleaved round robin and
sequenced like the engine does it (global seq 1, 2, ...; ts stepping by `step_ns`; order ids
made global by a per-symbol offset), with an `AdvanceTime` to every book (`ALL_SYMBOLS`) every
`advance_every` commands. Output: journal entries (`tail.ENTRY_DTYPE`)."""

from __future__ import annotations

import numpy as np

from engine._native import synthetic_flow
from engine.book import (
    CmdKind,
    CommandBatch,
    OrdType,
    Side,
    Tif,
    advance_time,
    amend,
    cancel,
    mass_cancel,
    new_order,
)
from engine.sinks.records import COMMAND_DTYPE
from engine.sinks.tail import ENTRY_DTYPE
from engine.wire import ALL_SYMBOLS

__all__ = ["ID_OFFSET", "T0_NS", "every_event_scenario", "synthetic_journal"]

T0_NS = 1_700_000_000 * 10**9
ID_OFFSET = 10**9  # symbol i's order ids are i * ID_OFFSET + the flow's own


def synthetic_journal(
    symbols: int = 2,
    commands: int = 10_000,
    *,
    seed: int = 1,
    depth: int = 200,
    accounts: int = 20,
    step_ns: int = 1_000_000,
    advance_every: int = 500,
    mix: tuple[int, int, int, int, int] | None = None,
    t0_ns: int = T0_NS,
) -> bytes:
    """`commands` per symbol (plus each symbol's `depth` resting orders first)."""
    flows = []
    for i in range(symbols):
        c = np.frombuffer(
            synthetic_flow(seed + i, commands, depth, accounts=accounts, mix=mix), COMMAND_DTYPE
        ).copy()
        c["order_id"] += np.where(c["order_id"] > 0, i * ID_OFFSET, 0).astype(np.uint64)
        flows.append(c)
    pos = np.concatenate([np.arange(len(f)) * symbols + i for i, f in enumerate(flows)])
    order = np.argsort(pos, kind="stable")
    cmds = np.concatenate(flows)[order]
    sym = np.concatenate([np.full(len(f), i, np.uint32) for i, f in enumerate(flows)])[order]
    if advance_every > 0:
        at = np.arange(advance_every, len(cmds) + 1, advance_every)
        tick = np.zeros(len(at), COMMAND_DTYPE)
        tick["kind"] = int(CmdKind.ADVANCE_TIME)
        cmds = np.insert(cmds, at, tick)
        sym = np.insert(sym, at, np.full(len(at), ALL_SYMBOLS, np.uint32))
    n = len(cmds)
    cmds["seq"] = np.arange(1, n + 1, dtype=np.uint64)
    cmds["ts"] = np.uint64(t0_ns) + np.arange(n, dtype=np.uint64) * np.uint64(step_ns)
    advance = cmds["kind"] == int(CmdKind.ADVANCE_TIME)
    cmds["order_id"][advance] = 0
    out = np.zeros(n, ENTRY_DTYPE)
    out["command"] = cmds.view(f"V{COMMAND_DTYPE.itemsize}")
    out["symbol"] = sym
    return out.tobytes()


def every_event_scenario(t0_ns: int = T0_NS) -> bytes:
    """Command records (seq 1.., one every 0.4 s of engine time) whose events include every
    event kind and most cancel reasons: accepted (limit, iceberg, stop), rejected, trades,
    replaced, triggered stop, cancelled by user, IOC remainder, FOK, expiry and mass cancel."""
    b = CommandBatch(1, t0_ns)
    step = 400_000_000

    def at(i: int) -> int:
        return t0_ns + i * step

    cmds = [
        new_order(Side.SELL, 1010, 100, account=1, client_id=11),
        new_order(Side.SELL, 1020, 50, account=2, display_qty=10),
        new_order(Side.BUY, 1000, 0, account=3),  # rejected 3001
        new_order(Side.BUY, 1010, 30, account=3, tif=Tif.IOC),
        new_order(Side.BUY, 1030, 20, account=4, ord_type=OrdType.STOP_LIMIT, stop_price=1015),
        amend(1, 50, account=1),  # priority kept
        new_order(Side.BUY, 1020, 60, account=5),  # trades; the stop triggers
        cancel(2, account=2),
        new_order(Side.BUY, 900, 10, account=6, tif=Tif.GTD, expire_ts=at(12)),
        new_order(Side.BUY, 2000, 1000, account=8, tif=Tif.FOK),  # FOK unfilled
        new_order(Side.BUY, 950, 5, account=7),
        new_order(Side.BUY, 940, 5, account=7, client_id=71),
        mass_cancel(7),
        cancel(999, account=1),  # rejected 3003
        new_order(Side.SELL, 990, 7, account=9, tif=Tif.IOC),  # trades with the resting buy
    ]
    for i, c in enumerate(cmds):
        b.add(c._replace(ts=at(i)))
    b.add(advance_time(at(len(cmds) + 10)))  # the GTD order expires
    return b.records()
