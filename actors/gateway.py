"""Gateway: TCP sessions in, command records out (the intake of the pipeline).

Each received chunk goes to the Rust decoder whole (`WireDecoder.decode`): the complete frames
become command records for the risk actor (one `Intake` per read), per-frame problems become
rejects for the session, a control message (logon, heartbeat, logout) is handled here before the
frames after it, and a framing error closes the session with a reason. Replies of every kind are
written through `flush()`, which drains the Rust `Publisher` (one write per session).

Overflow policies:
- intake (-> risk): a read that was decoded is always taken (handled at once when risk is
  idle, else queued); once the risk inbox is full
  the gateway stops reading every socket (TCP backpressure) until it has drained to half.
  Memory is bounded by the inbox capacity plus one read per session.
- a session's unread input: at most one frame (`gateway.max_frame_bytes`) is kept.
- a session's unsent output: at most `gateway.output_buffer_bytes`, then the session is
  disconnected (code 1009, slow consumer).

Session rules (docs/protocol.md): log on first (trading before logon: reject 1005); one session
per account; a session acts only on its own account's orders (the account of every command is
the session's); silence longer than `gateway.idle_timeout_s` disconnects (1010); with the
account's `cancel_on_disconnect`, the end of the session cancels all the account's orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import cast

from actors.base import Lifecycle, State
from actors.items import Intake
from actors.lane import Lane
from actors.risk import RiskActor
from engine.book import encode_command, mass_cancel
from engine.codes import GatewayCode, text
from engine.config import Config
from engine.protocol import PROTOCOL_VERSION
from engine.wire import ALL_SYMBOLS, Publisher, WireDecoder

__all__ = ["Gateway", "Session"]

log = logging.getLogger(__name__)

_ALL = struct.pack("<I", ALL_SYMBOLS)


class Session(asyncio.Protocol):
    """One TCP connection. State is plain attributes; the gateway does the work."""

    def __init__(self, gateway: Gateway, sid: int) -> None:
        self.gateway = gateway
        self.sid = sid
        self.transport: asyncio.Transport | None = None
        self.account = 0
        self.admin = False  # logged on as an account with `admin = true`
        self.pending = b""
        self.peer = ""
        self.connected_at = time.time()
        self.last_rx = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        self.closing: str | None = None  # the disconnect reason once the end has begun

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.gateway._on_connect(self)

    def data_received(self, data: bytes) -> None:
        self.gateway._on_data(self, data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.gateway._on_lost(self, exc)


def _not_connected(item: Intake, records: int) -> None:
    raise RuntimeError("gateway not connected")


class Gateway(Lifecycle):
    def __init__(
        self,
        config: Config,
        decoder: WireDecoder,
        publisher: Publisher,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__("gateway")
        self.config = config.gateway
        self.accounts = {a.id: a for a in config.accounts}
        self.decoder = decoder
        self.publisher = publisher
        self.clock = clock
        self.risk: RiskActor | None = None
        self.intake: Callable[[Intake, int], None] = _not_connected
        self.sessions: dict[int, Session] = {}
        self.server: asyncio.Server | None = None
        self.port = 0
        self.paused = False
        self.pauses = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.on_disconnect: Callable[[str], None] = lambda _reason: None
        self._next_sid = 1
        self._idle_ms = int(self.config.idle_timeout_s * 1000)
        self._housekeeping: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    def connect(self, risk: RiskActor, lane: Lane | None = None) -> None:
        """Reads go to `risk`, through `lane` when one is given (it passes them on to `risk`
        whenever a stage is busy)."""
        self.risk = risk
        self.intake = lane.submit if lane is not None else risk.submit

    # ---------------------------------------------------------------- lifecycle

    def session(self) -> Session:
        """A protocol instance for a new connection (asyncio protocol factory)."""
        sid = self._next_sid
        self._next_sid += 1
        return Session(self, sid)

    async def start(self) -> list[asyncio.Task[None]]:
        """Listen; returns the gateway's own tasks (idle timeouts) for the supervisor."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            self.session, self.config.host, self.config.port, reuse_address=True, backlog=1024
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self.state = State.RUNNING
        if self.config.idle_timeout_s <= 0:
            return []
        self._housekeeping = loop.create_task(self._check_idle(), name="gateway-idle")
        return [self._housekeeping]

    def start_detached(self) -> None:
        """Run without a listening socket (in-process benchmarks feed sessions directly)."""
        self.state = State.RUNNING

    async def stop_intake(self) -> None:
        """Stop accepting connections and reading sockets (first step of a graceful stop).
        Sessions with cancel-on-disconnect are ending too: their accounts' mass cancels go in
        now, ahead of the drain, so the sessions see their orders cancelled before the Logout."""
        self.state = State.DRAINING
        if self.server is not None:
            self.server.close()
        for s in self.sessions.values():
            self._pause_one(s)
            acc = self.accounts.get(s.account) if s.account else None
            if acc is not None and acc.cancel_on_disconnect and self.risk is not None:
                self._cancel_all(s.account)

    def _cancel_all(self, account: int) -> None:
        """Sequence a mass cancel of every symbol for `account` (cancel-on-disconnect)."""
        assert self.risk is not None
        record = encode_command(mass_cancel(account))
        # One record per ended session: bounded by the session count, never refused.
        self.risk.submit(Intake(record, _ALL, self.clock()), 1)

    async def close_sessions(self, code: int, timeout: float) -> None:
        """Send every session a Logout with `code`, close them, wait until they are gone."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for s in list(self.sessions.values()):
            self.disconnect(s, code)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.sessions:
                    self._closed.clear()
                    await self._closed.wait()
        for s in list(self.sessions.values()):  # did not go in time
            if s.transport is not None:
                s.transport.abort()
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.server.wait_closed()
        self.state = State.STOPPED

    # ---------------------------------------------------------------- output

    def flush(self) -> None:
        """Write every session's pending frames (one write per session)."""
        sessions = self.sessions
        for sid, data in self.publisher.drain():
            s = sessions.get(sid)
            if s is not None and s.transport is not None:
                self._write(s, data)

    def _write(self, s: Session, data: bytes) -> None:
        transport = s.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        n = len(data)
        s.bytes_out += n
        self.bytes_out += n
        if transport.get_write_buffer_size() > self.config.output_buffer_bytes:
            # The client does not read: its Logout could not get through either. Cut it off.
            s.closing = "slow_consumer"
            log.warning(
                "session %d (account %d, %s) disconnected: %s",
                s.sid,
                s.account,
                s.peer,
                text(GatewayCode.SLOW_CONSUMER),
            )
            transport.abort()

    def disconnect(self, s: Session, code: int, detail: str = "") -> None:
        """End a session: a Logout with `code` (and `detail` as its text), then close."""
        if s.closing is not None or s.transport is None:
            return
        try:
            reason = GatewayCode(code).name.lower()
        except ValueError:
            reason = str(code)
        s.closing = reason
        self.publisher.add_logout(s.sid, code, detail or text(code))
        self.flush()
        if code not in (GatewayCode.LOGOUT, GatewayCode.SHUTTING_DOWN):
            log.info(
                "session %d (account %d, %s) disconnected: %s",
                s.sid,
                s.account,
                s.peer,
                detail or text(code),
            )
        s.transport.close()

    # ---------------------------------------------------------------- input

    def _on_connect(self, s: Session) -> None:
        transport = s.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")
        s.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "memory")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.last_rx = self.clock()
        self.sessions[s.sid] = s
        self.publisher.open_session(s.sid)
        if self.state is not State.RUNNING:
            self.disconnect(s, GatewayCode.SHUTTING_DOWN)
        elif len(self.sessions) > self.config.max_sessions:
            self.disconnect(s, GatewayCode.TOO_MANY_SESSIONS)
        elif self.paused:
            self._pause_one(s)

    def _on_data(self, s: Session, data: bytes) -> None:
        if s.closing is not None or self.state is not State.RUNNING:
            return
        risk = self.risk
        assert risk is not None, "gateway not connected"
        now = self.clock()
        s.last_rx = now
        n = len(data)
        s.bytes_in += n
        self.bytes_in += n
        buf = s.pending + data if s.pending else data
        while True:
            consumed, commands, symbols, rejects, control, error = self.decoder.decode(
                buf, s.account, s.admin
            )
            if commands:
                self.intake(Intake(commands, symbols, now), len(symbols) >> 2)
            if rejects:
                self.publisher.add_for_session(s.sid, rejects)
                self.flush()
            if error is not None:
                self.disconnect(s, error[0], error[1])
                return
            if control is None:
                break
            buf = buf[consumed:]
            self._control(s, control)
            if s.closing is not None:
                return
        s.pending = buf[consumed:] if consumed < len(buf) else b""
        if not self.paused and risk.inbox.full():
            self._pause_all()

    def _control(self, s: Session, control: tuple[object, ...]) -> None:
        kind = control[0]
        if kind == "heartbeat":
            self.publisher.add_heartbeat(s.sid, cast(int, control[1]))
            self.flush()
        elif kind == "logon":
            _, account, token, version = control
            self._logon(s, cast(int, account), cast(str, token), cast(int, version))
        elif kind == "logout":
            self.disconnect(s, GatewayCode.LOGOUT)

    def _logon(self, s: Session, account: int, token: str, version: int) -> None:
        if s.account:
            self.publisher.add_reject(s.sid, GatewayCode.ALREADY_LOGGED_ON)
            self.flush()
            return
        if version != PROTOCOL_VERSION:
            self.disconnect(
                s,
                GatewayCode.UNSUPPORTED_VERSION,
                f"protocol version {version} is not supported (this engine speaks "
                f"{PROTOCOL_VERSION})",
            )
            return
        acc = self.accounts.get(account)
        if acc is None or not hmac.compare_digest(acc.token.encode(), token.encode()):
            self.disconnect(s, GatewayCode.LOGON_REFUSED)
            return
        if not self.publisher.bind(s.sid, account):
            self.disconnect(s, GatewayCode.ACCOUNT_IN_USE)
            return
        s.account = account
        s.admin = acc.admin
        self.publisher.add_logon_ack(s.sid, account, self._idle_ms)
        self.flush()
        log.info("session %d logged on as account %d from %s", s.sid, account, s.peer)

    def _on_lost(self, s: Session, exc: Exception | None) -> None:
        self.sessions.pop(s.sid, None)
        self.publisher.close_session(s.sid)
        reason = s.closing
        if reason is None:
            reason = "truncated_frame" if s.pending else "client_closed"
            if s.pending:
                log.info(
                    "session %d (account %d): %s",
                    s.sid,
                    s.account,
                    text(GatewayCode.TRUNCATED_FRAME),
                )
        self.on_disconnect(reason)
        self._closed.set()
        acc = self.accounts.get(s.account) if s.account else None
        if acc is not None and acc.cancel_on_disconnect and self.state is State.RUNNING:
            self._cancel_all(s.account)  # (draining: stop_intake sent it already)

    # ---------------------------------------------------------------- backpressure

    def _pause_one(self, s: Session) -> None:
        t = s.transport
        if t is not None and not t.is_closing():
            t.pause_reading()

    def _pause_all(self) -> None:
        assert self.risk is not None
        self.paused = True
        self.pauses += 1
        for s in self.sessions.values():
            self._pause_one(s)
        self.risk.inbox.when_space(self._resume_all)

    def _resume_all(self) -> None:
        self.paused = False
        if self.state is not State.RUNNING:
            return
        for s in self.sessions.values():
            t = s.transport
            if t is not None and s.closing is None and not t.is_closing():
                t.resume_reading()

    # ---------------------------------------------------------------- idle sessions

    async def _check_idle(self) -> None:
        timeout = self.config.idle_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            if self.paused:  # not reading sockets: silence is ours, not the clients'
                continue
            deadline = self.clock() - timeout
            for s in list(self.sessions.values()):
                if s.last_rx < deadline and s.closing is None:
                    self.disconnect(s, GatewayCode.IDLE_TIMEOUT)

    # ---------------------------------------------------------------- status

    def status(self) -> list[dict[str, object]]:
        now = time.time()
        return [
            {
                "session": s.sid,
                "account": s.account,
                "peer": s.peer,
                "connected_s": round(now - s.connected_at, 3),
                "bytes_in": s.bytes_in,
                "bytes_out": s.bytes_out,
            }
            for s in self.sessions.values()
        ]
