"""The `core` replay target: the engine's native stages in this process, one thread.

Every due message (planned time <= now) is taken as one batch -- the daemon's batching rule:
under no load one command, under load everything waiting -- and goes through the decoder, the
risk sequencer, the symbol's book and the publisher (perf/replay_engine.py); the reply frames
are decoded and matched like replies from a socket. A command's latency runs from its planned
send time to the end of the batch that answered it, so a slow batch is charged to every command
that waited for it.

What is left out compared with the in-process pipeline (`inproc`): asyncio and the actor
queues, the journal write and the durability gate; compared with the daemon also the sockets.
This is the floor under the pipeline's latency, not the pipeline's.
"""

from __future__ import annotations

import time

from engine.wire import decode_replies
from perf.flow import Flow
from perf.replay_engine import MAX_FRAME, Core
from perf.replay_match import Outcome, Plan, Tracker, timer_calibration
from perf.replay_replies import RepliesWriter

__all__ = ["run"]

_SPIN_NS = 200_000  # closer than this to the next planned time: spin, do not sleep


def _runs(flow: Flow, accounts: list[int], lo: int, hi: int) -> list[tuple[int, int, bytes]]:
    """Messages lo..hi as runs of consecutive messages of one session, in order."""
    out = []
    session_of = flow.session_of
    start = lo
    for i in range(lo + 1, hi + 1):
        if i == hi or session_of[i] != session_of[start]:
            sid = session_of[start]
            out.append((sid, accounts[sid], flow.wire(range(start, i))))
            start = i
    return out


def run(flow: Flow, tracker: Tracker, plan: Plan, replies: RepliesWriter | None) -> Outcome:
    outcome = Outcome(calibration=timer_calibration())
    core = Core(flow.symbols)
    accounts = [s.account for s in flow.sessions]
    for sid, account in enumerate(accounts):
        core.open_session(sid, account)
    planned, session_of, sent_one = tracker.planned, flow.session_of, tracker.sent_one
    clock = time.perf_counter_ns
    n, i = plan.count, 0
    t0 = clock()
    while i < n:
        now = clock() - t0
        if plan.max_mode:
            j = min(n, i + plan.batch)
            for k in range(i, j):
                planned[k] = now
        else:
            gap = planned[i] - now
            if gap > 0:
                if gap > _SPIN_NS:
                    time.sleep((gap - _SPIN_NS // 2) / 1e9)
                continue
            j, limit = i, min(n, i + plan.batch)
            while j < limit and planned[j] <= now:
                j += 1
        for k in range(i, j):
            sent_one(k, session_of[k], now)
        core.submit(_runs(flow, accounts, i, j), time.time_ns())
        done = clock() - t0
        for sid, frames in core.drain():
            _, records = decode_replies(frames, MAX_FRAME)
            tracker.replies(sid, records, done)
            if replies is not None:
                replies.write(done, sid, frames)
        i = j
    outcome.elapsed_ns = clock() - t0
    outcome.books = core.final_books(plan.levels)
    outcome.notes.append(
        "core: decoder, risk sequencer, books and publisher in one thread"
        " (no actors, no journal, no sockets)"
    )
    return outcome
