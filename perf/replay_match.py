"""Matching replies to the commands that caused them, for every replay target.

Each timed command has exactly one *primary* reply, the engine's answer to it: a new order an
Ack or a Reject, a replace a Replaced or a Reject, a cancel a Cancelled (reason user) or a
Reject. Other replies (fills, IOC remainders, STP cancels, triggers) are counted but answer no
command. Replies are decoded in Rust (`decode_replies`, REPORT_SIZE records) and matched per
session by client order id: the engine echoes the id of the order a command names, and keeps a
session's replies in command order, so the first outstanding command of that id with a
compatible kind is the one answered.

A command is timed when it has a client order id and is a new order, cancel or replace. Mass
cancels (zero or more replies) and orders without a client id are sent but not timed.
"""

from __future__ import annotations

import asyncio
import statistics
import struct
import time
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from engine.book import COMMAND_SIZE, CmdKind
from perf.flow import ExpectedBook
from perf.hdr import summarize
from perf.replay_engine import DecodedFlow

__all__ = ["REPORT", "Outcome", "Plan", "ReportKind", "Tracker", "next_due", "timer_calibration"]

# decode_replies record (native/src/wire/client.rs): kind, side, reason, flags, code, 2 reserved,
# out seq, order id, client order id, price, qty, leaves, cmd seq.
REPORT = struct.Struct("<4BH2xQQQqqqQ")
_CANCEL_REASON_USER = 1


class ReportKind(IntEnum):
    UNKNOWN = 0
    LOGON_ACK = 1
    HEARTBEAT = 2
    ACK = 3
    REJECT = 4
    FILL = 5
    CANCELLED = 6
    REPLACED = 7
    TRIGGERED = 8
    LOGOUT = 9


_NAMES = [k.name.lower() for k in ReportKind]
_ACK, _REJECT, _FILL = int(ReportKind.ACK), int(ReportKind.REJECT), int(ReportKind.FILL)
_CANCELLED, _REPLACED = int(ReportKind.CANCELLED), int(ReportKind.REPLACED)
_LOGOUT = int(ReportKind.LOGOUT)
_TIMED = {CmdKind.NEW, CmdKind.CANCEL, CmdKind.AMEND}


class Tracker:
    """Per-command times and outcomes of one replay. Times are ns on the replay's clock
    (0 = the start of the schedule); -1 = not (yet) happened."""

    def __init__(self, decoded: DecodedFlow, sessions: int) -> None:
        n = len(decoded.ok)
        cmds = decoded.commands
        self.kind = [cmds[i * COMMAND_SIZE] for i in range(n)]
        self.cid = [
            int.from_bytes(cmds[i * COMMAND_SIZE + 40 : i * COMMAND_SIZE + 48], "little")
            for i in range(n)
        ]
        self.timed = [
            decoded.ok[i] and self.cid[i] != 0 and self.kind[i] in _TIMED for i in range(n)
        ]
        self.planned: array[int] = array("q", [0]) * n
        self.sent: array[int] = array("q", [-1]) * n
        self.done: array[int] = array("q", [-1]) * n
        self.cmd_seq: array[int] = array("Q", [0]) * n
        self.outstanding: list[dict[int, deque[int]]] = [{} for _ in range(sessions)]
        self.pending = 0
        self.reports: Counter[str] = Counter()
        self.rejects: Counter[int] = Counter()
        self.cancel_reasons: Counter[int] = Counter()
        self.unmatched = 0
        self.logouts: list[tuple[int, int]] = []  # (session, code)

    def sent_one(self, i: int, session: int, t_ns: int) -> None:
        self.sent[i] = t_ns
        if self.timed[i]:
            q = self.outstanding[session].get(self.cid[i])
            if q is None:
                q = self.outstanding[session][self.cid[i]] = deque()
            q.append(i)
            self.pending += 1

    def replies(self, session: int, records: bytes, t_ns: int) -> None:
        """Reply records (`decode_replies`) that arrived on `session` at `t_ns`."""
        book = self.outstanding[session]
        kinds = [0] * 10
        for kind, _, reason, _, code, _, _, cid, _, _, _, seq in REPORT.iter_unpack(records):
            kinds[kind if kind < 10 else 0] += 1
            if kind == _FILL:
                continue
            if kind == _REJECT:
                self.rejects[code] += 1
                want = 0
            elif kind == _CANCELLED:
                self.cancel_reasons[reason] += 1
                if reason != _CANCEL_REASON_USER:
                    continue
                want = CmdKind.CANCEL
            elif kind == _ACK:
                want = CmdKind.NEW
            elif kind == _REPLACED:
                want = CmdKind.AMEND
            elif kind == _LOGOUT:
                self.logouts.append((session, code))
                continue
            else:
                continue
            q = book.get(cid)
            if not q:
                self.unmatched += 1
                continue
            j = q[0]
            if want and self.kind[j] != want:
                j = next((x for x in q if self.kind[x] == want), -1)
                if j < 0:
                    self.unmatched += 1
                    continue
            q.remove(j)
            if not q:
                del book[cid]
            self.done[j] = t_ns
            self.cmd_seq[j] = seq
            self.pending -= 1
        for kind, n in enumerate(kinds):
            if n:
                self.reports[_NAMES[kind]] += n

    # ---------------------------------------------------------------- results

    def latencies(self) -> list[int]:
        """Reply time minus planned send time of every answered command (ns)."""
        return [d - p for d, p in zip(self.done, self.planned, strict=True) if d >= 0]

    def send_lags(self) -> list[int]:
        """How late each command left the replayer compared with its plan (ns)."""
        return [s - p for s, p in zip(self.sent, self.planned, strict=True) if s >= 0]

    def engine_order(self) -> tuple[list[int], int]:
        """(message indexes in the engine's sequence order, commands with unknown place).

        Known from the cmdSeq of each answered command; rejects before sequencing (cmdSeq 0)
        changed nothing and are left out. Commands without a primary reply (mass cancels,
        unanswered ones) have no known place."""
        placed = [(self.cmd_seq[i], i) for i in range(len(self.done)) if self.cmd_seq[i]]
        placed.sort()
        unknown = sum(
            1
            for i in range(len(self.done))
            if self.sent[i] >= 0
            and self.kind[i] != 0
            and (self.done[i] < 0 if self.timed[i] else True)
        )
        return [i for _, i in placed], unknown


@dataclass(frozen=True)
class Plan:
    """How a target replays: the first `count` messages, on the tracker's planned times (open
    loop) or as fast as the engine answers (`max_mode`, at most `window` commands unanswered)."""

    count: int
    max_mode: bool = False
    window: int = 10_000
    batch: int = 16_384
    levels: int = 10
    drain_timeout_s: float = 30.0


async def next_due(plan: Plan, tracker: Tracker, progress: asyncio.Event, i: int, now: int) -> int:
    """The end (exclusive) of the commands from `i` that go out now, on an asyncio target: in
    `max_mode` as many as the window allows (their planned time becomes `now`), else those whose
    planned time has come (at most `plan.batch`). Returns `i` after waiting (for replies in
    `max_mode`, for the next planned time otherwise): ask again."""
    planned = tracker.planned
    if plan.max_mode:
        room = plan.window - tracker.pending
        if room <= 0:
            progress.clear()
            await progress.wait()
            return i
        j = min(plan.count, i + min(room, plan.batch))
        for k in range(i, j):
            planned[k] = now
        return j
    gap = planned[i] - now
    if gap > 0:
        await asyncio.sleep(gap / 1e9)
        return i
    j, limit = i, min(plan.count, i + plan.batch)
    while j < limit and planned[j] <= now:
        j += 1
    return j


@dataclass
class Outcome:
    """What a target reports besides the tracker: the final books it ended with (None when
    they cannot be read), the calibration figures, and notes/errors for the report."""

    elapsed_ns: int = 0
    books: dict[str, ExpectedBook] | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def timer_calibration(samples: int = 100, sleep_us: int = 100) -> dict[str, Any]:
    """How precisely this process can wait: the overshoot of `samples` sleeps of `sleep_us`
    (a floor under any open-loop schedule), and the cost of reading the clock."""
    clock = time.perf_counter_ns
    over = []
    for _ in range(samples):
        t0 = clock()
        time.sleep(sleep_us / 1e6)
        over.append(clock() - t0 - sleep_us * 1000)
    reads = []
    for _ in range(1000):
        t0 = clock()
        reads.append(clock() - t0)
    return {
        "sleep_overshoot_ns": summarize(over)[0],
        "clock_read_ns": statistics.median(reads),
    }
