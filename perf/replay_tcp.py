"""The `tcp://HOST:PORT` replay target: one TCP session per recorded session, open loop.

- Logon: every session logs on as its recorded account (token from `--token`, where `{account}`
  stands for the account id); the first reply must be a LogonAck naming every flow symbol.
- Calibration: 200 heartbeat round trips on one session before the replay, one at a time: the
  floor of loopback + gateway without the pipeline, reported beside the figures.
- Sender: one task walks the schedule; whatever is due (planned time <= now) is written at once,
  one write per session, the frames exactly as recorded. It never waits for replies (open loop),
  except in `--max` mode, where at most `--window` commands may be unanswered.
- Readers: each session's bytes are decoded in Rust (`decode_replies`) and matched to commands
  (perf/replay_match.py); a command's latency runs from its PLANNED send time to the arrival of
  its reply, so a stall is charged to every command scheduled behind it (no coordinated
  omission). How late the sender itself was is reported separately (send lag).
- The final book comes from the daemon's HTTP endpoint (`--http HOST:PORT`) when known.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import urllib.error
import urllib.request
from typing import Any, cast

import orjson

from engine import protocol
from engine.protocol import FRAME_HEADER, Report, decode_report
from engine.wire import decode_replies, encode_heartbeat, encode_logon
from perf.flow import ExpectedBook, Flow
from perf.hdr import summarize
from perf.replay_engine import MAX_FRAME
from perf.replay_match import (
    REPORT,
    Outcome,
    Plan,
    ReportKind,
    Tracker,
    next_due,
    timer_calibration,
)
from perf.replay_replies import RepliesWriter

__all__ = ["TargetError", "fetch_books", "run"]

LOGON_TIMEOUT_S = 10.0
CALIBRATION_HEARTBEATS = 200
_KEEPALIVE_IDS = 1 << 40
_HEARTBEAT = int(ReportKind.HEARTBEAT)


class TargetError(Exception):
    """The target cannot be used (connection refused, logon refused, a symbol it lacks)."""


class _Run:
    def __init__(self, tracker: Tracker, replies: RepliesWriter | None) -> None:
        self.tracker = tracker
        self.replies = replies
        self.t0 = time.perf_counter_ns()
        self.progress = asyncio.Event()
        self.heartbeats: dict[int, asyncio.Future[int]] = {}
        self.errors: list[str] = []

    def now(self) -> int:
        return time.perf_counter_ns() - self.t0


class _Conn(asyncio.Protocol):
    def __init__(self, sid: int, run: _Run) -> None:
        self.sid = sid
        self.run = run
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.logon: asyncio.Future[Report] = asyncio.get_running_loop().create_future()
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        run = self.run
        t = run.now()
        self.buf += data
        if not self.logon.done():
            self._logon_reply()
            if not self.logon.done() or not self.buf:
                return
        try:
            consumed, records = decode_replies(bytes(self.buf), MAX_FRAME)
        except ValueError as e:
            run.errors.append(f"session {self.sid}: bad reply stream: {e}")
            if self.transport is not None:
                self.transport.abort()
            return
        if not consumed:
            return
        if run.replies is not None:
            run.replies.write(t, self.sid, bytes(self.buf[:consumed]))
        del self.buf[:consumed]
        if run.heartbeats:
            for rec in REPORT.iter_unpack(records):
                waiter = run.heartbeats.pop(rec[6], None) if rec[0] == _HEARTBEAT else None
                if waiter is not None and not waiter.done():
                    waiter.set_result(t)
        run.tracker.replies(self.sid, records, t)
        run.progress.set()

    def _logon_reply(self) -> None:
        """The first frame, decoded with the schema (it carries the symbol list)."""
        if len(self.buf) < FRAME_HEADER.size:
            return
        (n,) = FRAME_HEADER.unpack_from(self.buf)
        if len(self.buf) < FRAME_HEADER.size + n:
            return
        body = bytes(self.buf[FRAME_HEADER.size : FRAME_HEADER.size + n])
        del self.buf[: FRAME_HEADER.size + n]
        try:
            self.logon.set_result(decode_report(body))
        except Exception as e:  # a malformed first frame: report, do not crash the replay
            self.logon.set_exception(TargetError(f"session {self.sid}: bad logon reply: {e}"))

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.writable.set()
        if not self.logon.done():
            self.logon.set_exception(TargetError(f"session {self.sid}: connection closed"))
        self.run.progress.set()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(data)


async def _connect(
    flow: Flow, run: _Run, host: str, port: int, token: str
) -> tuple[list[_Conn], Report]:
    loop = asyncio.get_running_loop()
    conns: list[_Conn] = []
    try:
        for sid, session in enumerate(flow.sessions):
            _, conn = await loop.create_connection(lambda sid=sid: _Conn(sid, run), host, port)  # type: ignore[misc]
            conn.write(encode_logon(session.account, token.format(account=session.account)))
            conns.append(conn)
    except OSError as e:
        _close(conns)
        raise TargetError(f"cannot connect to {host}:{port}: {e}") from None
    try:
        async with asyncio.timeout(LOGON_TIMEOUT_S):
            acks = [await c.logon for c in conns]
    except TimeoutError:
        _close(conns)
        raise TargetError(f"no logon reply within {LOGON_TIMEOUT_S:.0f} s") from None
    except TargetError:
        _close(conns)
        raise
    for session, ack in zip(flow.sessions, acks, strict=True):
        if ack.kind != "logonAck":
            _close(conns)
            raise TargetError(
                f"logon of account {session.account} refused: {ack.code} {ack.text}"
                " (the target's config must have every account of the flow; see --token)"
            )
    have = {s.name for s in acks[0].symbols}
    missing = [s.name for s in flow.symbols if s.name not in have]
    if missing:
        _close(conns)
        raise TargetError(f"the target has no symbol {', '.join(missing)}")
    return conns, acks[0]


def _close(conns: list[_Conn]) -> None:
    for c in conns:
        if c.transport is not None:
            c.transport.close()


async def _calibrate(conn: _Conn, run: _Run) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rtts = []
    for hid in range(1, CALIBRATION_HEARTBEATS + 1):
        waiter: asyncio.Future[int] = loop.create_future()
        run.heartbeats[hid] = waiter
        t = run.now()
        conn.write(encode_heartbeat(hid))
        async with asyncio.timeout(5):
            rtts.append(await waiter - t)
    return {"heartbeat_rtt_ns": summarize(rtts)[0]}


async def _keepalive(conns: list[_Conn], every_s: float) -> None:
    n = _KEEPALIVE_IDS
    while True:
        await asyncio.sleep(every_s)
        for c in conns:
            n += 1
            c.write(encode_heartbeat(n))


async def _send(flow: Flow, conns: list[_Conn], run: _Run, plan: Plan) -> None:
    tracker = run.tracker
    session_of, sent_one = flow.session_of, tracker.sent_one
    n, i = plan.count, 0
    while i < n:
        now = run.now()
        j = await next_due(plan, tracker, run.progress, i, now)
        if j == i:
            continue
        by_session: dict[int, list[int]] = {}
        for k in range(i, j):
            s = session_of[k]
            sent_one(k, s, now)
            by_session.setdefault(s, []).append(k)
        for s, idxs in by_session.items():
            conns[s].write(flow.wire(idxs))
        i = j
        for s in by_session:
            if not conns[s].writable.is_set():
                await conns[s].writable.wait()
        await asyncio.sleep(0)


async def _finish(conns: list[_Conn], run: _Run, timeout_s: float) -> None:
    """Wait until every sent command is answered (or `timeout_s`, or every session is gone)."""
    deadline = time.monotonic() + timeout_s
    while run.tracker.pending > 0 and not all(c.lost for c in conns):
        left = deadline - time.monotonic()
        if left <= 0:
            run.errors.append(
                f"{run.tracker.pending} commands unanswered {timeout_s:.0f} s after the last send"
            )
            return
        run.progress.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await run.progress.wait()


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return orjson.loads(r.read())


def fetch_books(http: str, flow: Flow, levels: int) -> dict[str, ExpectedBook]:
    """The daemon's final books (HTTP /book/SYMBOL and /status)."""
    status = _get_json(f"http://{http}/status")
    stats = {s["name"]: s for s in status.get("symbols", [])}
    out = {}
    for sym in flow.symbols:
        b = _get_json(f"http://{http}/book/{sym.name}?depth={levels}")
        st = stats.get(sym.name, {})
        out[sym.name] = ExpectedBook(
            tuple((int(p), int(q), int(c)) for p, q, c in b["bids"]),
            tuple((int(p), int(q), int(c)) for p, q, c in b["asks"]),
            int(st.get("last_price", b.get("last_price", 0))),
            int(st.get("volume", 0)),
            int(st.get("trades", 0)),
        )
    return out


async def _replay(
    flow: Flow,
    tracker: Tracker,
    plan: Plan,
    address: tuple[str, int],
    token: str,
    http: str | None,
    replies: RepliesWriter | None,
) -> Outcome:
    outcome = Outcome(calibration=timer_calibration())
    run = _Run(tracker, replies)
    conns, ack = await _connect(flow, run, address[0], address[1], token)
    keepalive = None
    try:
        outcome.calibration.update(await _calibrate(conns[0], run))
        if ack.idle_timeout_ms > 0:
            every = ack.idle_timeout_ms / 3000
            keepalive = asyncio.get_running_loop().create_task(_keepalive(conns, every))
        tracker.reports.clear()  # the figures count the replay's replies only
        run.t0 = time.perf_counter_ns()
        await _send(flow, conns, run, plan)
        await _finish(conns, run, plan.drain_timeout_s)
        outcome.elapsed_ns = run.now()
        lost = [c.sid for c in conns if c.lost]
        if lost:
            run.errors.append(f"sessions closed by the target during the replay: {lost[:10]}")
        for sid, code in tracker.logouts:
            run.errors.append(f"session {sid}: logout {code} from the target")
        if http is not None:
            try:
                outcome.books = fetch_books(http, flow, plan.levels)
            except (OSError, urllib.error.URLError, ValueError, KeyError) as e:
                run.errors.append(f"cannot read the final book from http://{http}: {e}")
        else:
            outcome.notes.append("final book not checked: no --http address for this target")
    finally:
        if keepalive is not None:
            keepalive.cancel()
        for c in conns:
            c.write(protocol.logout())
        _close(conns)
    outcome.errors += run.errors
    return outcome


def run(
    flow: Flow,
    tracker: Tracker,
    plan: Plan,
    address: tuple[str, int],
    *,
    token: str,
    http: str | None,
    replies: RepliesWriter | None,
) -> Outcome:
    """Replay over TCP (uvloop); TargetError if the target cannot be used."""
    import uvloop

    return uvloop.run(_replay(flow, tracker, plan, address, token, http, replies))
