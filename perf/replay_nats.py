"""The `nats://HOST:PORT` replay target: a running daemon with NATS order entry
(`services.nats`), open loop, over request/reply (`--nats-mode rr`, the default) or JetStream
(`--nats-mode js`). Same schedule, matching and report as the TCP target (perf/replay_tcp.py).

- Identity: every message carries `Cift-Account` (the session's account) and `Cift-Token`
  (`--token`, where `{account}` stands for the account id), as docs/nats.md asks.
- Request/reply: whatever is due (planned time <= now) goes out at once as one request per
  (session, symbol) -- the frames exactly as recorded, on `orders.<symbol>` -- so a request holds
  one order at low rates and many under load, as a TCP write does. The reply (every report the
  request's commands caused for the account) is matched to the commands like TCP replies; fills
  of resting orders, which the daemon sends on `exec.<account>` only, are not counted.
- JetStream: one message per command on `orders.durable.<symbol>` with the `Nats-Msg-Id` the
  daemon requires (`<account>-<clientOrderId>` for a new order); the reports are read from
  `exec.<account>` (a core subscription), so every report is counted. The stream's duplicate
  window (`nats.duplicate_window_s`) drops a new order whose id it has seen: replay a flow into
  a fresh stream (or after the window); a PubAck marked duplicate is reported as an error.
- A bare NATS client (perf/nats_raw.py) sends and receives: nats-py would cost more Python per
  message than the engine does. Calibration: 200 round trips of a PING on the client's own
  connection (loopback + nats-server, without the engine).
- The final book comes from the daemon's HTTP endpoint (`--http HOST:PORT`) when known.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
from typing import Any

import orjson

from engine.nats_entry import msg_id
from engine.wire import ALL_SYMBOLS, decode_replies
from perf.flow import Flow
from perf.hdr import summarize
from perf.nats_raw import RawNats, headers_block, hpub, raw_connect
from perf.replay_engine import MAX_FRAME, DecodedFlow
from perf.replay_match import Outcome, Plan, Tracker, next_due, timer_calibration
from perf.replay_replies import RepliesWriter
from perf.replay_tcp import TargetError, fetch_books

__all__ = ["MODES", "run"]

MODES = ("rr", "js")
CONNECT_TIMEOUT_S = 10.0
CALIBRATION_PINGS = 200
MAX_PER_REQUEST = 2_000  # commands per request (~100 bytes each; NATS max_payload 1 MB)
_NEW = 1
_INBOX = b"_INBOX.replay."
_ACKS = b"_INBOX.replay-ack."


class _Run:
    def __init__(
        self, flow: Flow, decoded: DecodedFlow, tracker: Tracker, token: str, mode: str
    ) -> None:
        self.flow = flow
        self.tracker = tracker
        self.mode = mode
        self.t0 = time.perf_counter_ns()
        self.progress = asyncio.Event()
        self.errors: list[str] = []
        self.replies: RepliesWriter | None = None
        names = [s.name for s in flow.symbols]
        sym = memoryview(decoded.symbols).cast("I")
        # The subject of each message: its symbol's (a malformed message or a mass cancel of
        # every symbol: the first symbol's; the daemon answers or applies it the same way).
        self.subject = [
            (names[s] if s < len(names) else names[0]).encode()
            for s in (sym[i] if i < len(sym) else ALL_SYMBOLS for i in range(len(flow)))
        ]
        self.headers = [
            headers_block(Cift_Account=str(s.account), Cift_Token=token.format(account=s.account))
            for s in flow.sessions
        ]
        self.session_of_account = {s.account: i for i, s in enumerate(flow.sessions)}
        self.cids = tracker.cid
        self.kinds = tracker.kind
        self.requests = 0
        self.duplicates = 0

    def now(self) -> int:
        return time.perf_counter_ns() - self.t0

    # ---------------------------------------------------------------- input

    def on_msg(self, subject: bytes, payload: bytes, t_abs: int) -> None:
        t = t_abs - self.t0
        if subject.startswith(_ACKS):  # a JetStream PubAck
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                ack = orjson.loads(payload)
                if ack.get("duplicate"):
                    self.duplicates += 1
                elif "error" in ack:
                    self.errors.append(f"JetStream refused a message: {ack['error']}")
            return
        if subject.startswith(_INBOX):  # a request's reply: _INBOX.replay.<session>.<n>
            sid = int(subject[len(_INBOX) :].split(b".", 1)[0])
        else:  # exec.<account>
            sid = self.session_of_account.get(int(subject[5:]), -1)
            if sid < 0:
                return
        try:
            consumed, records = decode_replies(payload, MAX_FRAME)
        except ValueError as e:
            self.errors.append(f"session {sid}: bad reply: {e}")
            return
        if consumed != len(payload):
            self.errors.append(f"session {sid}: a reply ends inside a frame")
        if self.replies is not None:
            self.replies.write(t, sid, payload[:consumed])
        self.tracker.replies(sid, records, t)
        self.progress.set()

    # ---------------------------------------------------------------- output

    def messages(self, idxs: range, now: int) -> bytes:
        """The NATS protocol bytes for messages `idxs` (sent at `now`)."""
        flow, sent_one, session_of = self.flow, self.tracker.sent_one, self.flow.session_of
        out: list[bytes] = []
        if self.mode == "rr":
            groups: dict[tuple[int, bytes], list[int]] = {}
            for k in idxs:
                s = session_of[k]
                sent_one(k, s, now)
                groups.setdefault((s, self.subject[k]), []).append(k)
            for (s, symbol), ks in groups.items():
                for c in range(0, len(ks), MAX_PER_REQUEST):  # within NATS's max_payload
                    self.requests += 1
                    reply = b"%s%d.%d" % (_INBOX, s, self.requests)
                    payload = flow.wire(ks[c : c + MAX_PER_REQUEST])
                    out.append(hpub(b"orders." + symbol, reply, self.headers[s], payload))
            return b"".join(out)
        for k in idxs:
            s = session_of[k]
            sent_one(k, s, now)
            account = flow.sessions[s].account
            cid = self.cids[k]
            ident = msg_id(account, cid) if self.kinds[k] == _NEW else f"{account}-r{self.t0}-{k}"
            h = self.headers[s][:-2] + b"Nats-Msg-Id: " + ident.encode() + b"\r\n\r\n"
            subject = b"orders.durable." + self.subject[k]
            out.append(hpub(subject, b"%s%d" % (_ACKS, k), h, flow.wire([k])))
        return b"".join(out)


async def _send(proto: RawNats, run: _Run, plan: Plan) -> None:
    """Open loop: everything due goes out at once (in `--max` mode: up to the window)."""
    tracker = run.tracker
    n, i = plan.count, 0
    while i < n:
        now = run.now()
        j = await next_due(plan, tracker, run.progress, i, now)
        if j == i:
            continue
        proto.write(run.messages(range(i, j), now))
        i = j
        await asyncio.sleep(0)


async def _finish(run: _Run, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while run.tracker.pending > 0:
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


async def _calibrate(proto: RawNats) -> dict[str, Any]:
    rtts = []
    for _ in range(CALIBRATION_PINGS):
        t = time.perf_counter_ns()
        await proto.sync()
        rtts.append(time.perf_counter_ns() - t)
    return {"nats_ping_rtt_ns": summarize(rtts)[0]}


async def _replay(
    flow: Flow,
    decoded: DecodedFlow,
    tracker: Tracker,
    plan: Plan,
    url: str,
    mode: str,
    token: str,
    http: str | None,
    replies: RepliesWriter | None,
) -> Outcome:
    outcome = Outcome(calibration=timer_calibration())
    run = _Run(flow, decoded, tracker, token, mode)
    run.replies = replies
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            proto = await raw_connect(url, run.on_msg)
    except (OSError, TimeoutError, ValueError) as e:
        raise TargetError(f"cannot connect to NATS at {url}: {e!r}") from None
    try:
        subs = [_INBOX + b">"] if mode == "rr" else [_ACKS + b">"]
        if mode == "js":
            subs += [b"exec.%d" % s.account for s in flow.sessions]
        proto.write(b"".join(b"SUB %s %d\r\n" % (s, n + 1) for n, s in enumerate(subs)))
        outcome.calibration.update(await _calibrate(proto))
        run.t0 = time.perf_counter_ns()
        await _send(proto, run, plan)
        await _finish(run, plan.drain_timeout_s)
        outcome.elapsed_ns = run.now()
        if run.duplicates:
            run.errors.append(
                f"{run.duplicates} JetStream messages were duplicates of earlier ones (the "
                "stream's duplicate window holds a previous replay: use a fresh stream)"
            )
        if mode == "rr":
            outcome.notes.append(
                f"nats request/reply: {run.requests:,} requests "
                f"({_sent(tracker, plan.count) / max(run.requests, 1):.1f} commands each);"
                " fills of resting orders go to exec.<account> and are not counted"
            )
        else:
            outcome.notes.append("nats JetStream: one message per command; reports from exec.*")
        if http is not None:
            try:
                outcome.books = fetch_books(http, flow, plan.levels)
            except (OSError, urllib.error.URLError, ValueError, KeyError) as e:
                run.errors.append(f"cannot read the final book from http://{http}: {e}")
        else:
            outcome.notes.append("final book not checked: no --http address for this target")
    finally:
        if proto.transport is not None:
            proto.transport.close()
    outcome.errors += run.errors
    return outcome


def _sent(tracker: Tracker, count: int) -> int:
    return sum(1 for k in range(count) if tracker.sent[k] >= 0)


def run(
    flow: Flow,
    decoded: DecodedFlow,
    tracker: Tracker,
    plan: Plan,
    url: str,
    *,
    mode: str,
    token: str,
    http: str | None,
    replies: RepliesWriter | None,
) -> Outcome:
    """Replay over NATS (uvloop); TargetError if the target cannot be used."""
    import uvloop

    if mode not in MODES:
        raise TargetError(f"--nats-mode {mode!r}: one of {', '.join(MODES)}")
    return uvloop.run(_replay(flow, decoded, tracker, plan, url, mode, token, http, replies))
