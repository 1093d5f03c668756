"""sd_notify(3) in pure Python: tell systemd about readiness, shutdown and liveness.

Under ``Type=notify`` systemd passes the daemon ``$NOTIFY_SOCKET``, the path of an AF_UNIX
datagram socket (or, starting with ``@``, a name in the abstract namespace). Each message is one
datagram of ``KEY=value`` lines. With ``WatchdogSec=`` it also passes ``$WATCHDOG_USEC`` (and
``$WATCHDOG_PID``): the daemon must send ``WATCHDOG=1`` more often than that, or systemd kills it
and ``Restart=`` brings it back through recovery.

Outside systemd (no ``$NOTIFY_SOCKET``) every function here does nothing and returns False, so the
daemon calls them unconditionally. A failed send is logged and reported as False, never raised:
losing a notification must not take the engine down.

How the daemon uses it::

    watchdog = sdnotify.watchdog_task(stall_reason)  # with the other long-lived tasks
    ...                                              # recovery, open the ports
    sdnotify.ready(status="serving 12 symbols")
    ...                                              # on SIGTERM:
    sdnotify.stopping()                              # then drain, flush, close
    await sdnotify.stop_watchdog(watchdog)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections.abc import Callable

__all__ = [
    "enabled",
    "extend_timeout",
    "notify",
    "ready",
    "status",
    "stop_watchdog",
    "stopping",
    "watchdog_interval",
    "watchdog_ping",
    "watchdog_task",
]

log = logging.getLogger(__name__)

_KEY = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
# A send blocks only while systemd's receive queue is full; never hold the event loop longer.
_SEND_TIMEOUT_S = 1.0


def _address() -> str | bytes | None:
    """The notify socket's address from ``$NOTIFY_SOCKET``, or None when there is none we speak."""
    raw = os.environ.get("NOTIFY_SOCKET", "")
    if raw.startswith("/"):
        return raw
    if raw.startswith("@") and len(raw) > 1:
        return b"\0" + raw[1:].encode()
    # Unset, empty, or a transport other than AF_UNIX (systemd 253+ also offers vsock:).
    return None


def enabled() -> bool:
    """True when the process runs under a service manager that listens for notifications."""
    return _address() is not None


def _render(fields: dict[str, str | int | float | bool]) -> bytes:
    lines = []
    for key, value in fields.items():
        if not _KEY.match(key):
            raise ValueError(f"sd_notify field name {key!r} is not an upper-case identifier")
        text = ("1" if value else "0") if isinstance(value, bool) else str(value)
        if "\n" in text:
            raise ValueError(f"sd_notify field {key} must be one line, got {text!r}")
        lines.append(f"{key}={text}")
    return ("\n".join(lines) + "\n").encode()


def notify(**fields: str | int | float | bool) -> bool:
    """Send one notification made of ``KEY=value`` fields, e.g. ``notify(READY=1, STATUS="up")``.

    Returns True when the datagram was sent, False when there is no notify socket or the send
    failed (logged). Field names must be upper-case identifiers and values one line each
    (ValueError otherwise: that is a programming error, not a runtime condition).
    """
    if not fields:
        raise ValueError("sd_notify needs at least one field")
    payload = _render(fields)
    address = _address()
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(_SEND_TIMEOUT_S)
            sock.sendto(payload, address)
    except OSError as exc:
        log.warning("sd_notify to %r failed: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """Startup is complete (recovery done, ports open): ``READY=1``, optional status line."""
    if status is None:
        return notify(READY=1)
    return notify(READY=1, STATUS=status)


def stopping(status: str | None = None) -> bool:
    """Graceful shutdown has begun (``STOPPING=1``); systemd now waits up to TimeoutStopSec."""
    if status is None:
        return notify(STOPPING=1)
    return notify(STOPPING=1, STATUS=status)


def status(text: str) -> bool:
    """Free-form one-line status shown by ``systemctl status`` (e.g. recovery progress)."""
    return notify(STATUS=text)


def extend_timeout(seconds: float) -> bool:
    """Ask for ``seconds`` more before the current start/stop timeout fires (long recovery).

    Send it again before the extension runs out for as long as progress is being made.
    """
    return notify(EXTEND_TIMEOUT_USEC=max(1, int(seconds * 1_000_000)))


def watchdog_ping() -> bool:
    """One keep-alive: ``WATCHDOG=1``."""
    return notify(WATCHDOG=1)


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds systemd expects pings within, or None when there is none.

    None when ``$WATCHDOG_USEC`` is unset, not a positive integer, or when ``$WATCHDOG_PID`` names
    another process (the variables were inherited, the watchdog is not ours).
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


async def _watchdog_loop(
    interval: float, loop_stall_check: Callable[[], str | None] | None
) -> None:
    period = interval / 2
    loop = asyncio.get_running_loop()
    stalled = False
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        # Late wake-ups mean the loop was blocked; the ping still goes out once it runs again, the
        # log says how close it came to the watchdog.
        late = loop.time() - due
        if late > period / 2:
            log.warning("event loop was blocked for %.3fs (watchdog %.1fs)", late, interval)
        reason = loop_stall_check() if loop_stall_check is not None else None
        if reason is not None:
            if not stalled:
                log.error("withholding watchdog pings: %s", reason)
                status(f"stalled: {reason}")
            stalled = True
            continue
        if stalled:
            log.warning("stall cleared, watchdog pings resume")
            status("running")
            stalled = False
        watchdog_ping()


def watchdog_task(
    loop_stall_check: Callable[[], str | None] | None = None,
) -> asyncio.Task[None]:
    """Start the watchdog keep-alive on the running event loop and return its task.

    Every half watchdog interval the task wakes up, calls ``loop_stall_check()`` and sends
    ``WATCHDOG=1`` unless it returned a reason. The pings come from the event loop itself, so a
    blocked loop stops them; ``loop_stall_check`` covers what a running loop cannot see, e.g. a
    pipeline stage that has had work queued and made no progress for too long: it returns None
    while the daemon is responsive, or a short description of the stall (also sent as STATUS=).

    Without a watchdog (see ``watchdog_interval``) or a notify socket the task returns at once,
    so the daemon treats it like any other long-lived task: cancel and await it on shutdown.
    """
    interval = watchdog_interval()

    async def run() -> None:
        if interval is None or not enabled():
            return
        await _watchdog_loop(interval, loop_stall_check)

    return asyncio.get_running_loop().create_task(run(), name="sd-watchdog")


async def stop_watchdog(task: asyncio.Task[None]) -> None:
    """Cancel the watchdog task and wait for it to finish."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
