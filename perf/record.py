"""Record order flow: what clients send to a running daemon, or what its journal holds.

    python -m perf.record proxy --upstream HOST:PORT [--listen HOST:PORT] --out FILE
                                [--duration S] [--messages N]
    python -m perf.record journal DATA_DIR [--config FILE] --out FILE

proxy: a TCP proxy in front of the daemon's gateway. Point the clients at --listen (default
127.0.0.1:7101); every byte is passed on both ways unchanged, and every trading message a
client sends (newOrder, cancel, replace, massCancel) is recorded with its arrival time and its
session (the account of the session's logon). Logon, heartbeats and logout are not recorded:
the replayer does its own. The symbol table comes from the daemon's LogonAck. Stops after
--duration seconds, --messages messages, or on Ctrl-C / SIGTERM, and writes the flow.

journal: the journal of a daemon's data directory (DATA_DIR/journal, sequenced commands in
order, docs/durability.md); the planned times are the engine timestamps. Engine-issued commands
(AdvanceTime) are left out; a cancel or replace naming an engine order id is rewritten to name
the order by its client order id (order ids are not reproducible across runs). Symbols come
from the daemon's config (--config; default config/default.toml).

Both compute the expected final book from the recorded messages in recorded order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import struct
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine import config as engine_config
from engine.book import COMMAND_SIZE, CmdKind
from engine.protocol import FRAME_HEADER, decode_report, schema, split_frames
from engine.wire import ALL_SYMBOLS, JOURNAL_ENTRY_SIZE, NO_SYMBOL, encode_requests
from perf.flow import Flow, FlowError, Session, Symbol, write_flow
from perf.replay_engine import expected_books

__all__ = ["flow_from_journal", "main"]

_TRADING = {"newOrder", "cancel", "replace", "massCancel"}
_U64 = struct.Struct("<Q")


class _Recorder:
    def __init__(self) -> None:
        self.t0: int | None = None
        self.times: list[int] = []
        self.sessions: list[int] = []  # session index per message
        self.frames: list[bytes] = []
        self.accounts: dict[int, int] = {}  # account -> session index
        self.symbols: list[Symbol] = []
        self.done = asyncio.Event()
        self.limit: int | None = None

    def record(self, account: int, frame: bytes) -> None:
        now = time.perf_counter_ns()
        if self.t0 is None:
            self.t0 = now
        self.times.append(now - self.t0)
        self.sessions.append(self.accounts.setdefault(account, len(self.accounts)))
        self.frames.append(frame)
        if self.limit is not None and len(self.frames) >= self.limit:
            self.done.set()


async def _pipe_client(
    reader: asyncio.StreamReader, up: asyncio.StreamWriter, rec: _Recorder
) -> None:
    buf = bytearray()
    account = 0
    while data := await reader.read(65536):
        up.write(data)
        buf += data
        for body in split_frames(buf):
            with schema.ClientMessage.from_bytes(body) as m:
                kind = str(m.which())
                if kind == "logon":
                    account = int(m.logon.account)
            if kind in _TRADING and account:
                rec.record(account, FRAME_HEADER.pack(len(body)) + body)
        await up.drain()
    up.write_eof()


async def _pipe_server(
    up: asyncio.StreamReader, client: asyncio.StreamWriter, rec: _Recorder
) -> None:
    first = bytearray()
    while data := await up.read(65536):
        client.write(data)
        if not rec.symbols:
            first += data
            bodies = split_frames(first)
            if bodies:
                ack = decode_report(bodies[0])
                if ack.kind == "logonAck":
                    rec.symbols = [
                        Symbol(
                            name=s.name,
                            tick_size=s.tick_size,
                            lot_size=s.lot_size,
                            price_precision=s.price_precision,
                            min_price=s.min_price,
                            max_price=s.max_price,
                            max_order_qty=s.max_order_qty,
                        )
                        for s in ack.symbols
                    ]
        await client.drain()
    with contextlib.suppress(OSError):
        client.write_eof()


async def _proxy(listen: tuple[str, int], upstream: tuple[str, int], rec: _Recorder) -> None:
    tasks: set[asyncio.Task[None]] = set()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*upstream)
        except OSError:
            writer.close()
            return
        pair = [
            asyncio.create_task(_pipe_client(reader, up_w, rec)),
            asyncio.create_task(_pipe_server(up_r, writer, rec)),
        ]
        tasks.update(pair)
        with contextlib.suppress(Exception):
            await asyncio.gather(*pair)
        tasks.difference_update(pair)
        for w in (writer, up_w):
            w.close()

    server = await asyncio.start_server(session, *listen)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, rec.done.set)
    port = server.sockets[0].getsockname()[1]
    print(
        f"recording: clients connect to {listen[0]}:{port},"
        f" forwarded to {upstream[0]}:{upstream[1]}"
    )
    sys.stdout.flush()
    async with server:
        await rec.done.wait()
    for t in tasks:
        t.cancel()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


def _flow(
    symbols: Sequence[Symbol],
    accounts: Sequence[int],
    source: Mapping[str, object],
    times: Sequence[int],
    sessions: Sequence[int],
    wire: bytes,
) -> Flow:
    if not symbols:
        raise FlowError("no symbol table (no client logged on)")
    flow = Flow.build(symbols, [Session(a) for a in accounts], source, times, sessions, wire)
    flow.expected = expected_books(flow)
    return flow


def _journal_entries(data_dir: Path) -> bytes:
    """Every journaled command entry (DATA_DIR/journal, docs/durability.md), in order."""
    from engine._native import JournalCorrupt, JournalReader

    jdir = data_dir / "journal"
    if not jdir.is_dir():
        raise FlowError(f"{jdir}: no journal here")
    try:
        return b"".join(p for kind, _f, _n, p in JournalReader(jdir) if kind == 1)
    except JournalCorrupt as e:
        raise FlowError(f"{jdir}: {e}") from None


def flow_from_journal(data_dir: str | Path, config_file: str | None = None) -> Flow:
    cfg = engine_config.load(config_file)
    data = _journal_entries(Path(data_dir))
    symbols = [
        Symbol(
            name=s.name,
            tick_size=s.tick_size,
            lot_size=s.lot_size,
            price_precision=s.price_precision,
            min_price=s.min_price,
            max_price=s.max_price,
            reference_price=s.reference_price,
            price_band_bps=s.price_band_bps,
            max_order_qty=s.max_order_qty,
        )
        for s in cfg.symbols
    ]
    owners: dict[int, tuple[int, int]] = {}  # engine order id (= seq) -> (account, client id)
    records = bytearray()
    syms = bytearray()
    times: list[int] = []
    sessions: list[int] = []
    accounts: dict[int, int] = {}
    t0: int | None = None
    last = 0
    for pos in range(0, len(data) - JOURNAL_ENTRY_SIZE + 1, JOURNAL_ENTRY_SIZE):
        rec = bytearray(data[pos : pos + COMMAND_SIZE])
        (sym,) = struct.unpack_from("<I", data, pos + COMMAND_SIZE)
        kind = rec[0]
        (seq,) = _U64.unpack_from(rec, 8)
        (ts,) = _U64.unpack_from(rec, 16)
        (order_id,) = _U64.unpack_from(rec, 24)
        (account,) = _U64.unpack_from(rec, 32)
        (cid,) = _U64.unpack_from(rec, 40)
        if kind == CmdKind.NEW:
            owners[order_id or seq] = (account, cid)
        elif kind in (CmdKind.CANCEL, CmdKind.AMEND):
            owner = owners.get(order_id) if order_id else None
            if owner is not None and owner[0] == account and owner[1]:
                rec[24:32] = bytes(8)
                rec[40:48] = _U64.pack(owner[1])
        elif kind != CmdKind.MASS_CANCEL:
            continue  # AdvanceTime: the engine's own clock
        t0 = ts if t0 is None else t0
        last = max(last, ts - t0)
        times.append(last)
        sessions.append(accounts.setdefault(account, len(accounts)))
        records += rec
        syms += struct.pack("<I", sym if sym not in (NO_SYMBOL, ALL_SYMBOLS) else NO_SYMBOL)
    wire = encode_requests(bytes(records), bytes(syms), [s.name for s in symbols])
    source = {"kind": "journal", "data_dir": str(data_dir), "config": cfg.source}
    return _flow(symbols, list(accounts), source, times, sessions, wire)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.record", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="kind", required=True)
    x = sub.add_parser("proxy", help="record what clients send, through a TCP proxy")
    x.add_argument("--upstream", type=_address, required=True, help="the daemon's gateway")
    x.add_argument("--listen", type=_address, default=("127.0.0.1", 7101), help="HOST:PORT")
    x.add_argument("--duration", type=float, help="stop after S seconds")
    x.add_argument("--messages", type=int, help="stop after N trading messages")
    x.add_argument("--out", required=True)
    j = sub.add_parser("journal", help="convert a daemon's command log")
    j.add_argument("data_dir")
    j.add_argument("--config", help="the daemon's config (for the symbol table)")
    j.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        if args.kind == "journal":
            flow = flow_from_journal(args.data_dir, args.config)
        else:
            rec = _Recorder()
            rec.limit = args.messages

            async def run() -> None:
                if args.duration is not None:
                    asyncio.get_running_loop().call_later(args.duration, rec.done.set)
                await _proxy(args.listen, args.upstream, rec)

            asyncio.run(run())
            source = {"kind": "proxy", "upstream": f"{args.upstream[0]}:{args.upstream[1]}"}
            flow = _flow(
                rec.symbols,
                list(rec.accounts),
                source,
                rec.times,
                rec.sessions,
                b"".join(rec.frames),
            )
        write_flow(args.out, flow)
    except (OSError, ValueError, engine_config.ConfigError) as e:
        print(f"perf.record: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(flow):,} messages, {len(flow.sessions)} sessions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
