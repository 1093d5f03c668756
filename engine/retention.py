"""How much journal the daemon keeps for the sinks that follow it (docs/sinks.md, "Journal
pruning").

A sink follower (`cift-engine sink run`) publishes how far it has applied the journal in
``DATA_DIR/sinks/<name>.applied`` (JSON ``{"applied_seq": N}``, replaced atomically after each
flush). When the daemon prunes after a snapshot it keeps, for the slowest sink, the newest
snapshot at or below its applied seq and every journal file after it (a restarted follower
rebuilds its books from that snapshot and replays the rest). A sink more than
``journal.sink_retention_max_commands`` commands behind the head is no longer waited for: it
loses data, and the daemon says so loudly at every prune (an error log and
``cift_journal_sink_retention_exceeded_total``); the follower then stops with a clear error and
must be re-seeded. A sink that is gone for good: delete its file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import orjson

__all__ = ["SINK_DIR", "retention_floor", "sink_marks", "write_sink_mark"]

log = logging.getLogger(__name__)

SINK_DIR = "sinks"  # in the data directory
SUFFIX = ".applied"


def retention_floor(
    applied: Mapping[str, int], head_seq: int, max_retained: int
) -> tuple[int | None, list[str]]:
    """How far the journal may be pruned for the sinks: the lowest seq a sink has applied, among
    the sinks at most `max_retained` sequences (0 = no bound) behind `head_seq`; None when no
    sink is to be waited for. The sinks beyond the bound are returned too: they lose data (the
    caller alarms loudly), and pruning no longer waits for them."""
    lost = [n for n, s in applied.items() if max_retained > 0 and head_seq - s > max_retained]
    kept = [s for n, s in applied.items() if n not in lost]
    return (min(kept) if kept else None), lost


def write_sink_mark(data_dir: Path, name: str, applied_seq: int) -> None:
    """Publish that sink `name` has applied every command through `applied_seq`."""
    d = data_dir / SINK_DIR
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"{name}{SUFFIX}"
    tmp = final.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"applied_seq": applied_seq}))
    os.replace(tmp, final)


def sink_marks(data_dir: Path) -> dict[str, int]:
    """Every sink's applied seq (name -> seq); an unreadable file counts as seq 0 (keep all)."""
    d = data_dir / SINK_DIR
    out: dict[str, int] = {}
    if not d.is_dir():
        return out
    for p in sorted(d.glob(f"*{SUFFIX}")):
        name = p.name.removesuffix(SUFFIX)
        try:
            seq = orjson.loads(p.read_bytes())["applied_seq"]
            out[name] = int(seq) if isinstance(seq, int) and seq >= 0 else 0
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("sink mark %s is unreadable: keeping the journal for it", p)
            out[name] = 0
    return out
