"""Engine time never goes back, across restarts too.

The sequencer stamps each batch with max(clock, newest stamp so far). A restart used to start
that maximum from 0, so a wall clock set back across a restart (NTP step, a host moved, a VM
restored) gave the next commands earlier stamps than journaled ones: GTD orders that had not
expired could expire "before" they did, rate buckets saw time go back, and a database sink could
receive fills of a UTC day it had already closed. A restart now continues engine time from the
newest stamp in the journal it replays, or in the snapshot's meta when nothing is left to replay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from engine._native import JournalReader
from engine.daemon import Engine
from engine.recovery import ENTRY_DTYPE, JOURNAL_DIR, KIND_COMMANDS
from perf.pipeline import stop_engine
from tests.test_lane import RecordingTransport, clock_from, config, deliver, flow, frames_of

T0 = 2_000_000_000_000_000_000  # engine ns of the first run
BACK = 3_600 * 10**9  # the clock goes back an hour across the restart


def journaled(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(seq, ts) of every journaled command, in journal order."""
    seqs, stamps = [], []
    for kind, _, _, payload in JournalReader(data_dir / JOURNAL_DIR):
        if kind != KIND_COMMANDS:
            continue
        cmd = np.frombuffer(payload, dtype=ENTRY_DTYPE)["cmd"]
        words = np.frombuffer(cmd.tobytes(), dtype="<u8").reshape(len(cmd), 12)
        seqs.append(words[:, 1])
        stamps.append(words[:, 2])
    return np.concatenate(seqs), np.concatenate(stamps)


async def run(data_dir: Path, start_ts: int, reads: list[bytes], clean: bool) -> int:
    """One daemon life with its clock starting at `start_ts`: the reads in, then a clean
    shutdown (final snapshot: nothing left to replay) or a stop with no snapshot (the next
    start replays the journal). Returns the newest stamp given."""
    eng = Engine(config(data_dir, lane=True))
    clock_from(eng, start_ts)
    watched = eng.start()
    await deliver(eng, RecordingTransport(), reads)
    newest = eng.sequencer.last_ts
    if clean:
        await eng.final_snapshot()
    await stop_engine(eng, watched)
    return newest


@pytest.mark.parametrize("clean", [True, False], ids=["after-final-snapshot", "replaying"])
def test_engine_time_continues_after_a_restart_whose_clock_went_back(
    tmp_path: Path, clean: bool
) -> None:
    records, symbols = flow(7, 120)
    reads = frames_of(records, symbols, 5)
    half = len(reads) // 2
    first = asyncio.run(run(tmp_path, T0, reads[:half], clean))
    assert first >= T0
    second = asyncio.run(run(tmp_path, T0 - BACK, reads[half:], clean))
    seqs, stamps = journaled(tmp_path)
    assert len(seqs) > half  # both lives journaled commands
    assert (np.diff(seqs.astype(np.int64)) > 0).all()
    # Stamps never go back, and the second life's are at or after the first's newest.
    assert (np.diff(stamps.astype(np.int64)) >= 0).all()
    assert int(stamps[-1]) == second >= first
