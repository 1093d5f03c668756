"""NATS order entry against a real nats-server: request/reply and JetStream throughput and
latency, with an in-process engine made of the real native parts.

    python -m perf.nats_bench [--nats URL] [--mode rr|js|all] [--orders N] [--per-request K]
                              [--window W] [--rate R] [--json PATH]

No --nats: a nats-server (Debian's, JetStream on) is started on a free port for the run.

The engine side (`StubEngine`) is the daemon's pipeline in one task with the real parts: the
risk `Sequencer` (checks, seq, ts), one native `Book` per symbol, the journal (optional), the
durability mark, `engine.nats_entry.NatsEntry` and `engine.nats_publish.NatsPublisher` (unless
--no-publish) wired exactly as docs/nats.md asks of the daemon. The load generator runs in a
child process (the machine's other core) and speaks the NATS protocol itself (`RawNats`):
nats-py costs more Python per round trip than the engine does.

- `rr` max: requests of K orders each (default 100; Cap'n Proto frames), W requests
  outstanding; orders/s, and latency per request (send -> the reply with every report).
- `rr` paced (--rate R orders/s, K default 1): open loop, latency from the planned send time
  (no coordinated omission). `--mode all` runs 20,000 orders/s with K = 1 and K = 20.
- `js`: every order its own JetStream message (W PubAcks outstanding); orders/s until the last
  order's first report, latency publish -> that report on exec.<account>.

Also reported: CPU seconds of the engine, the client and (when started here) nats-server.
The tests (tests/test_nats_*.py) use `StubEngine` too: it is the smallest honest engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from engine._native import JournalReader, JournalWriter, journal_recover
from engine.book import COMMAND_SIZE, Book
from engine.nats_entry import EntryBatch, NatsEntry, NatsEntryConfig
from engine.nats_publish import NatsPublisher, SymbolSpec
from engine.recovery import JOURNAL_DIR, KIND_COMMANDS
from engine.wire import ALL_SYMBOLS, JOURNAL_ENTRY_SIZE, Sequencer
from perf.nats_raw import RawNats, headers_block, hpub, raw_connect

__all__ = ["Crash", "Reports", "StubEngine", "main", "spec"]

_U32 = struct.Struct("<I")
_ROLL_BYTES = 64 << 20


def spec(name: str, precision: int = 2) -> SymbolSpec:
    """A symbol of the stub: tick 1, lot 1, prices 1 .. 10^9, at most 10^6 lots."""
    return (name, 1, 1, precision, 1, 1_000_000_000, 1_000_000)


def _rules(s: SymbolSpec) -> tuple[int, int, int, int, int, int, int]:
    _, tick, lot, _, lo, hi, max_qty = s
    return (tick, lot, lo, hi, 0, 0, max_qty)


class Reports(NamedTuple):
    """The shape of actors.items.Reports that the NATS parts read."""

    events: bytes
    symbol: int
    symbols: bytes
    max_seq: int
    t_recv: float


class Crash(Exception):
    """Raised by a `crash` hook: the stub stops dead at that point (no later step runs)."""


@dataclass
class StubEngine:
    """Sequencer -> (tie hook) -> journal -> books -> durable -> listeners, in one task.

    `crash(point, last_seq)` is asked at "sequenced" (after the hook, before the journal write)
    and "journaled" (before the durability mark); returning True stops the engine there.
    """

    symbols: Sequence[SymbolSpec]
    data_dir: Path | None = None
    capacity: int = 64
    crash: Callable[[str, int], bool] | None = None
    books: list[Book] = field(init=False)
    listeners: list[Callable[[list[Reports]], None]] = field(init=False, default_factory=list)
    durable: list[Callable[[int], None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.books = [Book(s[4], s[5]) for s in self.symbols]
        self.last_seq = 0
        self._writer: JournalWriter | None = None
        if self.data_dir is not None:
            self._recover(self.data_dir / JOURNAL_DIR)
        self.sequencer = Sequencer([_rules(s) for s in self.symbols], self.last_seq + 1)
        self.queue: asyncio.Queue[EntryBatch | tuple[bytes, bytes]] = asyncio.Queue(self.capacity)
        self.task: asyncio.Task[None] | None = None
        self.crashed = False
        self.commands = 0

    def _recover(self, jdir: Path) -> None:
        """Replay the journal (DATA_DIR/journal) into fresh books (what the daemon's recovery
        does, without snapshots); a torn tail is cut first."""
        jdir.mkdir(parents=True, exist_ok=True)
        journal_recover(jdir)
        body = b"".join(p for kind, _f, _n, p in JournalReader(jdir) if kind == KIND_COMMANDS)
        per: list[list[bytes]] = [[] for _ in self.books]
        for off in range(0, len(body), JOURNAL_ENTRY_SIZE):
            rec = body[off : off + COMMAND_SIZE]
            (sym,) = _U32.unpack_from(body, off + COMMAND_SIZE)
            for i in range(len(self.books)) if sym == ALL_SYMBOLS else [sym]:
                if 0 <= i < len(per):
                    per[i].append(rec)
            self.last_seq = int.from_bytes(rec[8:16], "little")
        for book, recs in zip(self.books, per, strict=True):
            if recs:
                book.apply(b"".join(recs))
        self._writer = JournalWriter(jdir, _ROLL_BYTES, self.last_seq + 1)

    def journal(self) -> bytes:
        """Every journal entry so far (for the tests)."""
        if self.data_dir is None:
            return b""
        jdir = self.data_dir / JOURNAL_DIR
        return b"".join(p for kind, _f, _n, p in JournalReader(jdir) if kind == KIND_COMMANDS)

    def start(self) -> asyncio.Task[None]:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="stub-engine")
        return self.task

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Crash):
                await self.task
        self._writer = None  # closes its file

    async def submit(self, batch: EntryBatch) -> None:
        """NatsEntry's `submit`: waits while the engine's inbox is full (backpressure)."""
        await self.queue.put(batch)

    async def apply(self, commands: bytes, symbols: bytes) -> None:
        """Commands from elsewhere (a test driving the engine directly)."""
        await self.queue.put((commands, symbols))

    def connect(self, entry: NatsEntry | None = None, *more: Any) -> None:
        """Wire NatsEntry (durable mark, replies) and publishers (`publish` / `update`)."""
        if entry is not None:
            self.durable.append(entry.mark_durable)
            self.listeners.append(entry.on_reports)
        for part in more:
            self.listeners.append(part.publish if hasattr(part, "publish") else part.update)

    async def _run(self) -> None:
        try:
            while True:
                items = [await self.queue.get()]
                while not self.queue.empty():
                    items.append(self.queue.get_nowait())
                self._batch(items)
        except Crash:
            self.crashed = True

    def _batch(self, items: list[EntryBatch | tuple[bytes, bytes]]) -> None:
        reports: list[Reports] = []
        last = 0
        now = time.perf_counter()
        for item in items:
            cmds, syms = item if isinstance(item, tuple) else (item.commands, item.symbols)
            journal, per_symbol, rejects, rsyms, _first, last_seq = self.sequencer.sequence(
                cmds, syms, time.time_ns()
            )
            if isinstance(item, EntryBatch):
                item.sequenced(journal, rejects, rsyms)  # before the journal write
            if self.crash is not None and self.crash("sequenced", last_seq):
                raise Crash
            if journal and self._writer is not None:
                first = int.from_bytes(journal[8:16], "little")
                count = len(journal) // JOURNAL_ENTRY_SIZE
                self._writer.append(KIND_COMMANDS, first, count, journal, False)
            last = max(last, last_seq)
            self.commands += len(journal) // JOURNAL_ENTRY_SIZE
            for i, records in enumerate(per_symbol):
                if records is not None:
                    events = self.books[i].apply(records)
                    if events:
                        reports.append(Reports(events, i, b"", last_seq, now))
            if rejects:
                reports.append(Reports(rejects, -1, rsyms, last_seq, now))
        if self.crash is not None and self.crash("journaled", last):
            raise Crash
        if last:
            self.last_seq = last
            for mark in self.durable:
                mark(last)
        for listener in self.listeners:
            listener(reports)


# ---------------------------------------------------------------- the benchmark

ACCOUNT, TOKEN = 1, "bench"
SYMBOL = "BENCH"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _nats_server(directory: Path) -> Any:
    """A throwaway `nats-server -js` on free ports, stopped by pid afterwards."""
    import signal
    import urllib.request

    port, monitor = _free_port(), _free_port()
    with (directory / "nats.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                "nats-server",
                "-a",
                "127.0.0.1",
                "-p",
                str(port),
                "-m",
                str(monitor),
                "-js",
                "-sd",
                str(directory / "js"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nats-server did not start") from None
                time.sleep(0.05)
        _SERVER_PID.append(proc.pid)
        yield f"nats://127.0.0.1:{port}"
    finally:
        _SERVER_PID.remove(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


_SERVER_PID: list[int] = []


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _flow(orders: int, seed: int) -> bytes:
    """`orders` commands of the synthetic flow, one account, cancels/amends by client id."""
    from perf.pipeline import record_stream

    return record_stream(seed, max(orders - 1000, 1), min(orders, 1000))[: orders * COMMAND_SIZE]


async def _echo(url: str, ready: asyncio.Event, done: asyncio.Event, stats: dict[str, Any]) -> None:
    """The floor: a nats-py subscription callback on orders.<symbol> that only answers each
    request with an empty reply (headers parsed, nothing decoded), until `done`."""
    from engine.nats_publish import connect

    nc = await connect(url, "bench-echo", pending_size=256 << 20)
    count = 0

    async def echo(msg: Any) -> None:
        nonlocal count
        count += 1
        await nc.publish(msg.reply, b"")

    await nc.subscribe(f"orders.{SYMBOL}", cb=echo, pending_msgs_limit=1 << 20)
    await nc.flush()
    cpu0 = time.process_time()
    ready.set()
    await done.wait()
    stats.update(commands=count, cpu_s=round(time.process_time() - cpu0, 3))
    await nc.close()


async def _serve(
    url: str,
    data: Path,
    publish: bool,
    ready: asyncio.Event,
    done: asyncio.Event,
    stats: dict[str, Any],
) -> None:
    """The engine side: StubEngine + NatsEntry (+ NatsPublisher) until `done`."""
    from engine.nats_publish import connect

    symbols = [spec(SYMBOL)]
    accounts = {ACCOUNT: TOKEN}
    nc = await connect(url, "bench-engine", pending_size=256 << 20)
    eng = StubEngine(symbols, data, capacity=1024)
    config = NatsEntryConfig(max_pending=1 << 20)
    entry = NatsEntry(nc, symbols, accounts, eng.submit, data, eng.last_seq, config)
    parts: list[Any] = []
    tasks = [eng.start(), *await entry.start()]
    if publish:
        publisher = NatsPublisher(nc, symbols, accounts, data)
        parts.append(publisher)
        tasks += await publisher.start()
    eng.connect(entry, *parts)
    cpu0 = time.process_time()
    ready.set()
    await done.wait()
    stats.update(commands=eng.commands, entry=dict(entry.stats))
    stats["cpu_s"] = round(time.process_time() - cpu0, 3)
    if parts:
        stats["publisher"] = dict(parts[0].stats)
    await entry.close()
    for p in parts:
        await p.close()
    await eng.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await nc.close()


class _Load:
    """Send `messages` (bytes builders by index) keeping `window` unanswered, or paced at one
    every `interval_ns`; record the latency of each answer (paced: from its planned time)."""

    def __init__(self, count: int, window: int, interval_ns: float) -> None:
        self.count = count
        self.window = window
        self.interval_ns = interval_ns
        self.sent_at = [0] * count
        self.latencies: list[int] = []
        self.answered = 0
        self.inflight = 0
        self.more = asyncio.Event()
        self.done = asyncio.Event()

    def answer(self, i: int, now: int) -> None:
        self.latencies.append(now - self.sent_at[i])
        self.answered += 1
        self.inflight -= 1
        if self.inflight <= self.window // 2:
            self.more.set()
        if self.answered == self.count:
            self.done.set()

    async def run(self, proto: RawNats, message: Callable[[int], bytes]) -> None:
        i, n = 0, self.count
        t0 = time.perf_counter_ns()
        chunk: list[bytes] = []
        while i < n:
            if self.interval_ns:
                now = time.perf_counter_ns()
                due = min(n, int((now - t0) / self.interval_ns) + 1)
                while i < due:
                    self.sent_at[i] = t0 + int(i * self.interval_ns)
                    chunk.append(message(i))
                    i += 1
                proto.write(b"".join(chunk))
                chunk.clear()
                next_at = t0 + i * self.interval_ns
                await asyncio.sleep(max(0.0, (next_at - time.perf_counter_ns()) / 1e9))
                continue
            now = time.perf_counter_ns()
            while i < n and self.inflight < self.window:
                self.sent_at[i] = now
                chunk.append(message(i))
                self.inflight += 1
                i += 1
            proto.write(b"".join(chunk))
            chunk.clear()
            self.more.clear()
            await self.more.wait()
        await asyncio.wait_for(self.done.wait(), 120)


async def _client_rr(args: argparse.Namespace) -> dict[str, Any]:
    """Requests of `per_request` orders on orders.BENCH, `window` unanswered (or paced at
    `rate` orders/s); latency per request: send (paced: planned send) -> reply."""
    from engine.wire import encode_requests

    flow = _flow(args.orders, args.seed)
    n = len(flow) // COMMAND_SIZE
    per = args.per_request
    payloads = [
        encode_requests(
            flow[i * COMMAND_SIZE : (i + per) * COMMAND_SIZE], bytes(4 * min(per, n - i)), [SYMBOL]
        )
        for i in range(0, n, per)
    ]
    headers = headers_block(Cift_Account=str(ACCOUNT), Cift_Token=TOKEN)
    subject = b"orders." + SYMBOL.encode()
    load = _Load(len(payloads), args.window, per * 1e9 / args.rate if args.rate else 0.0)
    empty = 0

    def on_msg(subject: bytes, payload: bytes, now: int) -> None:
        nonlocal empty
        empty += not payload
        load.answer(int(subject[13:]), now)

    proto = await raw_connect(args.nats, on_msg)
    proto.write(b"SUB _INBOX.bench.* 1\r\n")
    await proto.sync()
    t0 = time.perf_counter_ns()
    await load.run(proto, lambda i: hpub(subject, b"_INBOX.bench.%d" % i, headers, payloads[i]))
    seconds = (time.perf_counter_ns() - t0) / 1e9
    return {
        "orders": n,
        "requests": len(payloads),
        "empty_replies": empty,
        "seconds": seconds,
        "client_cpu_s": round(time.process_time(), 3),
        "latency_ns": load.latencies,
    }


async def _client_js(args: argparse.Namespace) -> dict[str, Any]:
    """Every order as its own JetStream message (`window` PubAcks outstanding); latency:
    publish -> the order's first report on exec.<account> (ack or reject)."""
    from engine.nats_entry import msg_id
    from engine.wire import REPORT_SIZE, decode_replies, encode_requests

    flow = _flow(args.orders, args.seed)
    n = len(flow) // COMMAND_SIZE
    subject = b"orders.durable." + SYMBOL.encode()
    messages: list[bytes] = []
    new_order_of: dict[int, int] = {}  # client order id -> message index
    for i in range(n):
        rec = flow[i * COMMAND_SIZE : (i + 1) * COMMAND_SIZE]
        cid = int.from_bytes(rec[40:48], "little")
        ident = msg_id(ACCOUNT, cid) if rec[0] == 1 else f"{ACCOUNT}-x{i}"
        if rec[0] == 1:
            new_order_of[cid] = i
        h = headers_block(Cift_Account=str(ACCOUNT), Cift_Token=TOKEN, Nats_Msg_Id=ident)
        frame = encode_requests(rec, bytes(4), [SYMBOL])
        messages.append(hpub(subject, b"_INBOX.ack.%d" % i, h, frame))
    load = _Load(n, args.window, 0.0)
    reported = _Load(len(new_order_of), 1, 0.0)
    published: list[int] = [0] * n

    def on_msg(subj: bytes, payload: bytes, now: int) -> None:
        if subj.startswith(b"_INBOX.ack."):
            i = int(subj[11:])
            published[i] = load.sent_at[i]
            load.answer(i, now)
            return
        _, recs = decode_replies(payload, 1 << 20)
        for off in range(0, len(recs), REPORT_SIZE):
            if recs[off] in (3, 4):  # ack / reject
                cid = int.from_bytes(recs[off + 24 : off + 32], "little")
                i = new_order_of.pop(cid, -1)
                if i >= 0:
                    reported.sent_at[reported.answered] = load.sent_at[i]
                    reported.answer(reported.answered, now)

    proto = await raw_connect(args.nats, on_msg)
    proto.write(b"SUB _INBOX.ack.* 1\r\nSUB exec.%d 2\r\n" % ACCOUNT)
    await proto.sync()
    t0 = time.perf_counter_ns()
    await load.run(proto, messages.__getitem__)
    t_pub = time.perf_counter_ns()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reported.done.wait(), 120)
    seconds = (time.perf_counter_ns() - t0) / 1e9
    return {
        "orders": n,
        "client_cpu_s": round(time.process_time(), 3),
        "publish_seconds": (t_pub - t0) / 1e9,
        "publish_per_s": round(n / ((t_pub - t0) / 1e9), 1),
        "seconds": seconds,
        "unanswered": len(new_order_of),
        "latency_ns": reported.latencies,
    }


def _client_main(args: argparse.Namespace) -> int:
    import json

    import uvloop

    run = _client_rr if args.client == "rr" else _client_js
    with _profiled(args.profile and Path(args.profile) / f"client-{args.client}.prof"):
        result = uvloop.run(run(args))
    sys.stdout.write(json.dumps(result))
    return 0


@contextlib.contextmanager
def _profiled(path: Path | str | None) -> Any:
    """cProfile of the block into `path` (nothing when None)."""
    if not path:
        yield
        return
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        prof.dump_stats(str(path))


def _run_case(
    args: argparse.Namespace, mode: str, url: str, rate: float | None, per: int
) -> dict[str, Any]:
    """One measurement: engine here, the load generator in a child process."""
    import json

    import uvloop

    from perf.hdr import summarize

    cmd = [
        sys.executable,
        "-m",
        "perf.nats_bench",
        "--client",
        "rr" if mode == "echo" else mode,
        "--nats",
        url,
        "--orders",
        str(args.orders),
        "--per-request",
        str(per),
        "--window",
        str(args.window if mode == "js" or not rate else 1_000_000),
        "--seed",
        str(args.seed),
    ] + (["--rate", str(rate)] if rate else [])
    if args.profile:
        cmd += ["--profile", args.profile]

    async def both() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="nats-bench-") as tmp:
            ready, done = asyncio.Event(), asyncio.Event()
            stats: dict[str, Any] = {}
            server = asyncio.ensure_future(
                _echo(url, ready, done, stats)
                if mode == "echo"
                else _serve(url, Path(tmp), not args.no_publish, ready, done, stats)
            )
            waiting = asyncio.ensure_future(ready.wait())
            await asyncio.wait([waiting, server], return_when=asyncio.FIRST_COMPLETED)
            if server.done():
                server.result()  # the engine failed to start: raise why
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
            )
            out, _ = await proc.communicate()
            done.set()
            await server
            result: dict[str, Any] = json.loads(out)
            result["engine"] = stats
            return result

    server_cpu = _cpu_of(_SERVER_PID[0]) if _SERVER_PID else 0.0
    prof = args.profile and Path(args.profile) / f"engine-{mode}-{per}.prof"
    with _profiled(prof):
        r = uvloop.run(both())
    if _SERVER_PID:
        r["nats_server_cpu_s"] = round(_cpu_of(_SERVER_PID[0]) - server_cpu, 3)
    lat = r.pop("latency_ns")
    summary, _ = summarize(sorted(lat))
    r["orders_per_s"] = round(r["orders"] / r["seconds"], 1) if r["seconds"] else 0.0
    r["latency"] = summary
    r["mode"] = mode
    r["per_request"] = per if mode == "rr" else 1
    if rate:
        r["rate"] = rate
    return r


def _print(r: dict[str, Any]) -> None:
    from perf._stats import fmt_ns

    lat = r["latency"]
    what = r["mode"] + (f" paced {r['rate']:,.0f}/s" if "rate" in r else " max")
    what += f" x{r['per_request']}"
    print(
        f"{what:>18}: {r['orders']:,} orders in {r['seconds']:.2f} s = {r['orders_per_s']:,.0f}"
        f" orders/s; latency p50 {fmt_ns(lat['p50'])} p99 {fmt_ns(lat['p99'])}"
        f" p99.9 {fmt_ns(lat['p99.9'])} max {fmt_ns(lat['max'])}; CPU s: engine"
        f" {r['engine']['cpu_s']}, client {r['client_cpu_s']},"
        f" nats-server {r.get('nats_server_cpu_s', '?')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m perf.nats_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--nats", help="NATS URL (default: start a nats-server for the run)")
    p.add_argument(
        "--mode",
        choices=("rr", "js", "echo", "all"),
        default="all",
        help="echo: the nats-py floor (a callback that only replies), request/reply load",
    )
    p.add_argument("--orders", type=int, default=200_000)
    p.add_argument("--per-request", type=int, help="rr: orders per request (max 100, paced 1)")
    p.add_argument("--window", type=int, default=64, help="requests / publishes outstanding")
    p.add_argument("--rate", type=float, help="rr paced: orders/s (open loop)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-publish", action="store_true", help="engine without NatsPublisher")
    p.add_argument("--json", help="write the results here (perf/_stats.py shape)")
    p.add_argument(
        "--profile",
        help="cProfile the engine side and the client (separate processes) into DIR: "
        "engine-MODE-K.prof, client-MODE.prof (slower; for finding where the time goes)",
    )
    p.add_argument("--client", choices=("rr", "js"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        return _client_main(args)
    cases: list[tuple[str, float | None, int]] = []
    if args.mode in ("rr", "all"):
        per = args.per_request or (1 if args.rate else 100)
        cases.append(("rr", args.rate, per))
        if args.mode == "all" and args.rate is None:  # the latency point, two ways
            cases += [("rr", 20_000.0, 1), ("rr", 20_000.0, 20)]
    if args.mode in ("js", "all"):
        cases.append(("js", None, 1))
    if args.mode == "echo":
        cases.append(("echo", args.rate, args.per_request or 1))
    results = []
    with tempfile.TemporaryDirectory(prefix="nats-bench-server-") as tmp:
        server = contextlib.nullcontext(args.nats) if args.nats else _nats_server(Path(tmp))
        with server as url:
            for mode, rate, per in cases:
                r = _run_case(args, mode, url, rate, per)
                _print(r)
                results.append(r)
    if args.json:
        from perf._stats import write_json

        params = {k: v for k, v in vars(args).items() if k not in ("client", "json")}
        write_json(args.json, "nats_bench", params, {"cases": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
