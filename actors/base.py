"""The actor base: an explicit lifecycle, a bounded inbox, a run loop that works in batches.

Lifecycle: NEW -> RUNNING (`start`) -> DRAINING (`drain`: the inbox takes no new work, what is
queued is still processed) -> STOPPED. An actor whose `handle` raises goes to FAILED and its
`done` future ends with the exception; the daemon watches every actor's `done` and fails fast
(exit 1) on the first one.

The run loop takes everything queued (up to `batch_max` records) and hands it to `handle` as ONE
batch: under no load a batch is one item (lowest latency), under load batches grow (highest
throughput). It is driven by callbacks on the event loop (`loop.call_soon`), not by a task per
actor. And when the next stage is idle (nothing queued, not held, not running) an item is not
queued at all: `submit` hands it to that stage's `handle` at once, on the same call stack
(run to completion). Order is the same, since nothing was queued ahead of it; a failure is still
the receiving stage's own. So at low load one read goes gateway -> ... -> socket in one go, and
under load the queues fill and batching takes over.

Inboxes are bounded in records (commands or events), not items. Overflow policy, per edge, is
stated where the producer puts:
- `send` (internal edges): the item is queued; if that fills the next inbox, the sender stops
  taking batches from its own inbox until the next one has drained to half its capacity, so a
  slow stage pushes back on the one before it (overshoot: at most one batch).
- `put_nowait` + `full()` + `when_space` (the gateway): accept what was already read, then stop
  reading sockets until the inbox has drained to half its capacity.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Actor", "Inbox", "InboxClosed", "Lifecycle", "State"]

T = TypeVar("T")

log = logging.getLogger(__name__)


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DRAINING = "draining"
    STOPPED = "stopped"
    FAILED = "failed"


class InboxClosed(RuntimeError):
    """A put into an inbox whose actor is draining or stopped (a wiring bug)."""


def _nothing() -> None:
    pass


class Inbox(Generic[T]):
    """A bounded FIFO of items, each weighing a number of records."""

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.name = name
        self.capacity = capacity
        self.size = 0
        self.closed = False
        self._items: deque[tuple[T, int]] = deque()
        self._when_space: list[Callable[[], None]] = []
        self.on_ready: Callable[[], None] = _nothing  # the consumer's "look at me"
        self.last_taken = 0  # records of the last `take`
        self._signal: asyncio.Event | None = None  # for consumers that `await wait()`

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return self.size >= self.capacity

    def put_nowait(self, item: T, records: int) -> None:
        """Append whatever the fill level (the caller applies its overflow policy)."""
        if self.closed:
            raise InboxClosed(f"{self.name}: inbox closed")
        self._items.append((item, records))
        self.size += records
        self._ready()

    def _ready(self) -> None:
        self.on_ready()
        if self._signal is not None:
            self._signal.set()

    async def put(self, item: T, records: int) -> None:
        """Append once there is space (for producers that are coroutines)."""
        while self.full():
            space: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def wake(f: asyncio.Future[None] = space) -> None:
                if not f.done():
                    f.set_result(None)

            self.when_space(wake)
            await space
        self.put_nowait(item, records)

    async def wait(self) -> None:
        """Wait for the next put, wake or close (for consumers that are coroutines)."""
        if self._signal is None:
            self._signal = asyncio.Event()
        self._signal.clear()
        await self._signal.wait()

    def when_space(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when the inbox has drained to half its capacity."""
        self._when_space.append(callback)

    def take(self, max_records: int, admit: Callable[[T], bool] | None = None) -> list[T]:
        """Pop items from the front while under `max_records` (at least one item, if any is
        admitted). `admit` can hold the front item back (it and everything after it stay)."""
        items: list[T] = []
        taken = 0
        q = self._items
        while q and (not items or taken < max_records):
            item, records = q[0]
            if admit is not None and not admit(item):
                break
            q.popleft()
            items.append(item)
            taken += records
        self.last_taken = taken
        if items:
            self.size -= taken
            if self._when_space and self.size <= self.capacity // 2:
                callbacks, self._when_space = self._when_space, []
                for cb in callbacks:
                    cb()
        return items

    def wake(self) -> None:
        """Make the consumer look at the inbox again (e.g. held items became admissible)."""
        self._ready()

    def close(self) -> None:
        self.closed = True
        self._ready()


class Lifecycle:
    """Name and state of a pipeline stage."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = State.NEW

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.state.value}>"


class Actor(Lifecycle, Generic[T]):
    """A pipeline stage with a bounded inbox and a batch run loop. Subclasses implement
    `handle(batch)`; `admit(item)` may hold items back (default: admit all)."""

    admit: Callable[[T], bool] | None = None

    def __init__(self, name: str, capacity: int, batch_max: int) -> None:
        super().__init__(name)
        self.inbox: Inbox[T] = Inbox(name, capacity)
        self.inbox.on_ready = self._schedule
        self.batch_max = batch_max
        self.batches = 0
        self.items = 0
        self.on_batch: Callable[[int], None] = lambda _n: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Future[None] | None = None
        self._scheduled = False
        self._held = 0
        self._busy = False

    @property
    def done(self) -> asyncio.Future[None]:
        """Resolves when the actor has stopped (drained), with the exception if it failed."""
        assert self._done is not None, f"{self.name}: not started"
        return self._done

    def start(self) -> asyncio.Future[None]:
        if self.state is not State.NEW:
            raise RuntimeError(f"{self.name}: start in state {self.state.value}")
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        self.state = State.RUNNING
        self._schedule()
        return self._done

    def handle(self, batch: list[T]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- flow control

    def hold(self) -> None:
        """Take no batch until `release` (a full next stage, an fsync in flight, ...)."""
        self._held += 1

    def release(self) -> None:
        self._held -= 1
        if self._held == 0:
            self._schedule()

    def submit(self, item: T, records: int) -> None:
        """Hand `item` to this actor: handled at once if it is idle, else queued."""
        if (
            not self._busy
            and not self._held
            and not len(self.inbox)
            and self.state is State.RUNNING
            and (self.admit is None or self.admit(item))
        ):
            self._run([item], records)
        else:
            self.inbox.put_nowait(item, records)

    def send(self, to: Actor[Any], item: Any, records: int) -> None:
        """Hand `item` to the next stage; if that fills its inbox, hold until it drains to
        half."""
        to.submit(item, records)
        if to.inbox.full():
            self.hold()
            to.inbox.when_space(self.release)

    # ---------------------------------------------------------------- run loop

    def _schedule(self) -> None:
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_soon(self._step)

    def _step(self) -> None:
        self._scheduled = False
        done = self._done
        if self._held or self._busy or done is None or done.done():
            return
        inbox = self.inbox
        batch = inbox.take(self.batch_max, self.admit)
        if batch:
            if not self._run(batch, inbox.last_taken):
                return
            if len(inbox) or inbox.closed:
                self._schedule()
        elif inbox.closed and not len(inbox):
            self.state = State.STOPPED
            done.set_result(None)

    def _run(self, batch: list[T], records: int) -> bool:
        """Handle one batch of `records` records; False if the actor failed."""
        self.batches += 1
        self.items += len(batch)
        self._busy = True
        try:
            self.on_batch(records)
            self.handle(batch)
        except Exception as e:
            self.fail(e)
            return False
        finally:
            self._busy = False
        return True

    def fail(self, error: BaseException) -> None:
        """The stage cannot go on: FAILED, and `done` carries the error to the supervisor."""
        self.state = State.FAILED
        if self._done is not None and not self._done.done():
            self._done.set_exception(error)

    async def drain(self) -> None:
        """Close the inbox and wait until everything queued has been handled."""
        if self._done is None:
            self.state = State.STOPPED
            return
        if self.state is State.RUNNING:
            self.state = State.DRAINING
        self.inbox.close()
        await asyncio.shield(self._done)

    async def stop(self) -> None:
        """Stop at once (queued work is dropped)."""
        self.inbox.closed = True
        if self._done is not None and not self._done.done():
            self._done.set_result(None)
        if self.state is not State.FAILED:
            self.state = State.STOPPED
