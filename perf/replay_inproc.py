"""The `inproc` replay target: the daemon's pipeline in this process, without sockets.

`engine.daemon.Engine` is built for the flow (its symbols, one account per session, the command
log in a temporary directory) and started on uvloop exactly as the daemon starts it; its gateway
runs detached (no listening socket). Each recorded session is a gateway session whose transport
is in memory: the replayer hands it the recorded frames with `data_received` when they are due
(the bytes a socket would deliver), and every reply the publishing actor writes is decoded and
matched at once, timestamped when written. So the figures include every actor, queue, batch,
the journal append and the durability gate -- everything but the kernel's TCP path.

Open loop as for TCP: latency from the planned send time; `--max` keeps at most `--window`
commands unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from engine.wire import decode_replies, encode_logon
from perf.flow import ExpectedBook, Flow
from perf.replay_engine import MAX_FRAME
from perf.replay_match import Outcome, Plan, Tracker, next_due, timer_calibration
from perf.replay_replies import RepliesWriter

__all__ = ["PipelineUnavailable", "run"]

TOKEN = "perf"


class PipelineUnavailable(Exception):
    """The in-process pipeline cannot be built (engine.daemon missing or changed)."""


class _Run:
    def __init__(self, tracker: Tracker, replies: RepliesWriter | None) -> None:
        self.tracker = tracker
        self.replies = replies
        self.t0 = time.perf_counter_ns()
        self.progress = asyncio.Event()
        self.errors: list[str] = []

    def now(self) -> int:
        return time.perf_counter_ns() - self.t0


class _MemoryTransport:
    """A session's socket, in memory: what the gateway writes is a reply received now."""

    def __init__(self, sid: int, run: _Run) -> None:
        self.sid = sid
        self.run = run
        self.buf = b""
        self.closing = False
        self.resumed = asyncio.Event()
        self.resumed.set()

    def write(self, data: bytes) -> None:
        run = self.run
        t = run.now()
        buf = self.buf + data if self.buf else data
        consumed, records = decode_replies(buf, MAX_FRAME)
        self.buf = buf[consumed:]
        if run.replies is not None:
            run.replies.write(t, self.sid, buf[:consumed])
        run.tracker.replies(self.sid, records, t)
        run.progress.set()

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.run.progress.set()

    def abort(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        self.resumed.clear()

    def resume_reading(self) -> None:
        self.resumed.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _config(flow: Flow, data_dir: Path, fsync: str) -> Any:
    from engine.config import AccountConfig, JournalConfig, SymbolConfig, load

    base = load()
    return dataclasses.replace(
        base.with_data_dir(data_dir),
        symbols=tuple(SymbolConfig(**dataclasses.asdict(s)) for s in flow.symbols),
        accounts=tuple(AccountConfig(s.account, TOKEN, False) for s in flow.sessions),
        journal=JournalConfig(fsync),
    )


async def _send(
    flow: Flow, sessions: list[Any], pipes: list[_MemoryTransport], run: _Run, plan: Plan
) -> None:
    tracker = run.tracker
    session_of, sent_one = flow.session_of, tracker.sent_one
    n, i = plan.count, 0
    while i < n:
        now = run.now()
        j = await next_due(plan, tracker, run.progress, i, now)
        if j == i:
            continue
        start = i
        for k in range(i, j):  # runs of one session, in file order: the gateway keeps it
            sent_one(k, session_of[k], now)
            if k + 1 == j or session_of[k + 1] != session_of[start]:
                s = session_of[start]
                if not pipes[s].resumed.is_set():
                    await pipes[s].resumed.wait()
                sessions[s].data_received(flow.wire(range(start, k + 1)))
                start = k + 1
        i = j
        await asyncio.sleep(0)


async def _replay(
    flow: Flow, tracker: Tracker, plan: Plan, fsync: str, replies: RepliesWriter | None
) -> Outcome:
    try:
        from engine.daemon import Engine
    except ImportError as e:
        raise PipelineUnavailable(f"the in-process pipeline needs engine.daemon: {e}") from None
    outcome = Outcome(calibration=timer_calibration())
    run = _Run(tracker, replies)
    with tempfile.TemporaryDirectory(prefix="cift-inproc-") as tmp:
        try:
            eng = Engine(_config(flow, Path(tmp), fsync))
            tasks = eng.start()
            eng.gateway.start_detached()
        except (AttributeError, TypeError, ValueError) as e:
            raise PipelineUnavailable(f"cannot build the in-process pipeline: {e!r}") from None
        try:
            sessions, pipes = [], []
            for sid, s in enumerate(flow.sessions):
                session = eng.gateway.session()
                pipe = _MemoryTransport(sid, run)
                session.connection_made(cast(asyncio.BaseTransport, pipe))
                session.data_received(encode_logon(s.account, TOKEN))
                sessions.append(session)
                pipes.append(pipe)
            tracker.reports.clear()
            run.t0 = time.perf_counter_ns()
            await _send(flow, sessions, pipes, run, plan)
            deadline = time.monotonic() + plan.drain_timeout_s
            while tracker.pending > 0 and not any(p.closing for p in pipes):
                left = deadline - time.monotonic()
                if left <= 0:
                    run.errors.append(
                        f"{tracker.pending} commands unanswered after the drain timeout"
                    )
                    break
                run.progress.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await run.progress.wait()
            outcome.elapsed_ns = run.now()
            closed = [p.sid for p in pipes if p.closing]
            if closed:
                run.errors.append(f"sessions closed by the engine: {closed[:10]}")
            outcome.books = {
                s.name: _book(b.book, plan.levels)
                for s, b in zip(flow.symbols, eng.books, strict=True)
            }
            failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
            run.errors += [f"stage {t.get_name()} failed: {t.exception()!r}" for t in failed]
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            eng.persistence.close()
    outcome.errors += run.errors
    outcome.notes.append(
        f"inproc: the daemon's actors on uvloop, no sockets, journal fsync={fsync}"
    )
    return outcome


def _book(book: Any, levels: int) -> ExpectedBook:
    last, volume, _, trades = book.stats()
    return ExpectedBook(
        tuple(book.depth(1, levels)), tuple(book.depth(2, levels)), last, volume, trades
    )


def run(
    flow: Flow, tracker: Tracker, plan: Plan, fsync: str, replies: RepliesWriter | None
) -> Outcome:
    import uvloop

    return uvloop.run(_replay(flow, tracker, plan, fsync, replies))
