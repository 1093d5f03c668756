"""Open-loop load over loopback TCP: latency from each order's planned send time to its reply.

    python -m perf.tcp [--rate 50000] [--seconds 10] [--warmup 2] [--daemon-cpu 0]
                       [--client-cpu 1] [--client native|python] [--host H --port P]
                       [--fsync always|interval|none] [--floor [BIN]] [--json PATH]

Without --port it starts its own daemon (a temporary data dir, config like
config/bench.toml: one symbol, no clock ticks, pinned to --daemon-cpu) and stops it afterwards.
With --floor it starts `cift-floor` instead (native/src/wire/floor.rs, built by cargo if BIN is
not given): a native server that answers every frame with one report and does nothing else.
Its figures are the floor of this machine, kernel and load generator at that rate; the
daemon's figures minus the floor's are what the engine adds.

Command i of the stream is planned at t0 + i / rate, whatever happened before (open loop: no
coordinated omission). Its latency is measured from that planned time to the arrival of the first
report the engine sends for it (the report whose `cmdSeq` is that command's sequence number),
recorded in an HdrHistogram. The stream is the synthetic flow (perf/pipeline.py): resting
limits, amends, cancels, IOC and market orders, all of one account, so every command is
answered on this session in command order. Request frames are encoded in Rust once before the
run.

The load generator (`--client`): `native` (default) is `cift-load` (native/src/bin/cift-load.rs,
rules in native/src/wire/load.rs), one thread pinned to --client-cpu that busy-polls a
non-blocking socket, writing everything due and reading what has arrived every turn, so nothing
but the kernel sits between the socket and the clock. `python` is the same rules on this
process's uvloop (replies decoded in Rust, `decode_replies`): it adds the event loop's own
turn time to every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import uvloop

from engine.book import COMMAND_SIZE
from engine.wire import REPORT_SIZE, decode_replies, encode_logon, encode_requests
from perf._stats import PERCENTILES, fmt_ns, histogram, percentile_key, write_args_json
from perf.pipeline import record_stream

REPO = Path(__file__).resolve().parent.parent
_CMD_SEQ = struct.Struct(f"<{REPORT_SIZE - 8}xQ")
_LEN = struct.Struct("<I")
_KIND_LOGON_ACK = 1


def frame_offsets(frames: bytes) -> list[int]:
    """Start offset of every frame, plus the end."""
    offsets = [0]
    pos = 0
    while pos < len(frames):
        (n,) = _LEN.unpack_from(frames, pos)
        pos += 4 + n
        offsets.append(pos)
    return offsets


class Receiver(asyncio.Protocol):
    """Decodes replies and records each command's latency from its planned send time."""

    def __init__(self, t0_ns: list[int], interval_ns: float, warmup: int, total: int) -> None:
        self.buf = b""
        self.t0 = t0_ns
        self.interval = interval_ns
        self.warmup = warmup
        self.total = total
        self.base = 0  # cmd_seq of command 0, from the first report
        self.next = 0  # the next command index waiting for its first report
        self.hist = histogram(())
        self.logged_on = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self.buf + data if self.buf else data
        consumed, records = decode_replies(buf, 1 << 20)
        self.buf = buf[consumed:]
        if not self.logged_on.done():
            if records and records[0] == _KIND_LOGON_ACK:
                self.logged_on.set_result(None)
            records = records[REPORT_SIZE:]
        for (cmd_seq,) in _CMD_SEQ.iter_unpack(records):
            if cmd_seq == 0:
                continue
            if self.base == 0:
                self.base = cmd_seq
            i = cmd_seq - self.base
            while self.next <= i:  # the first report of command `next`
                if self.next >= self.warmup:
                    planned = self.t0[0] + int(self.next * self.interval)
                    self.hist.record_value(max(1, now - planned))
                self.next += 1
        if self.next >= self.total and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))


def figures(
    commands: int, h: Any, offered: float, achieved: float, max_per_write: int | None
) -> dict[str, Any]:
    """A run's figures from its latency histogram (either load generator)."""
    return {
        "commands": commands,
        "measured": h.get_total_count(),
        "offered_rate": offered,
        "achieved_send_rate": achieved,
        "max_commands_per_write": max_per_write,
        "latency_ns": {
            **{percentile_key(p): h.get_value_at_percentile(p) for p in PERCENTILES},
            "mean": h.get_mean_value(),
            "max": h.get_max_value(),
        },
    }


async def load(host: str, port: int, frames: bytes, args: argparse.Namespace) -> dict[str, Any]:
    offsets = frame_offsets(frames)
    total = len(offsets) - 1
    interval = 1e9 / args.rate
    warmup = int(args.warmup * args.rate)
    t0 = [0]
    loop = asyncio.get_running_loop()
    transport, rx = await loop.create_connection(
        lambda: Receiver(t0, interval, warmup, total), host, port
    )
    transport.write(encode_logon(1, "bench"))
    await asyncio.wait_for(rx.logged_on, 10)

    sent = 0
    behind_max = 0
    t0[0] = time.perf_counter_ns()
    while sent < total:
        due = min(total, int((time.perf_counter_ns() - t0[0]) / interval) + 1)
        if due > sent:
            behind_max = max(behind_max, due - sent)
            transport.write(frames[offsets[sent] : offsets[due]])
            sent = due
        await asyncio.sleep(0)
    send_s = (time.perf_counter_ns() - t0[0]) / 1e9
    await asyncio.wait_for(rx.done, 60)
    transport.close()
    return figures(total, rx.hist, args.rate, total / send_s, behind_max)


def start_daemon(
    tmp: Path, cpu: int | None, fsync: str = "always", lane: bool = True
) -> tuple[subprocess.Popen[bytes], int, Path]:
    bench = (REPO / "config" / "bench.toml").read_text() + f'\n[journal]\nfsync = "{fsync}"\n'
    bench += f"\n[batch]\nlane = {'true' if lane else 'false'}\n"

    text = bench.replace('data_dir = "./data-bench"', f'data_dir = "{tmp / "data"}"')
    text = text.replace("port = 7301", "port = 0").replace("port = 9301", "port = 0")
    if cpu is not None:
        text = text.replace("[process]", f"[process]\ncpu_affinity = [{cpu}]", 1)
    cfg = tmp / "bench.toml"
    cfg.write_text(text)
    log = tmp / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "--config", str(cfg)],
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    runtime = tmp / "data" / "daemon.json"
    deadline = time.monotonic() + 30
    while not runtime.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"daemon did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return proc, int(orjson.loads(runtime.read_bytes())["gateway_port"]), log


def native_binary(name: str, given: str | None = None) -> Path:
    """One of the crate's binaries (`cift-floor`, `cift-load`): `given`, or built by cargo in
    release mode."""
    if given:
        return Path(given)
    subprocess.run(
        ["cargo", "build", "-q", "--release", "-p", "cift-native", "--bin", name],
        cwd=REPO,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return REPO / "target" / "release" / name


def pinned(cpu: int | None) -> Callable[[], None] | None:
    return (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None


def load_native(
    binary: Path, host: str, port: int, frames: bytes, args: argparse.Namespace, cpu: int | None
) -> dict[str, Any]:
    """The same measurement by `cift-load` (native/src/bin/cift-load.rs): one busy-polling
    thread, no event loop or interpreter between the socket and the clock."""
    with tempfile.TemporaryDirectory(prefix="cift-load-") as tmp:
        frames_path, out_path = Path(tmp) / "frames", Path(tmp) / "latencies"
        frames_path.write_bytes(frames)
        warmup = int(args.warmup * args.rate)
        done = subprocess.run(
            [str(binary), host, str(port), str(frames_path), str(args.rate), str(warmup),
             str(out_path)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, preexec_fn=pinned(cpu),
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"cift-load failed: {done.stderr.strip()}")
        summary = orjson.loads(done.stdout)
        lat = np.frombuffer(out_path.read_bytes(), dtype="<u8")
    h = histogram(())
    for v in lat.tolist():
        h.record_value(v)
    total = summary["commands"]
    return figures(total, h, args.rate, total / summary["seconds"], None)


def start_floor(binary: Path, cpu: int | None) -> tuple[subprocess.Popen[bytes], int]:
    """Start the floor server (pinned to `cpu`) on a free port."""
    proc = subprocess.Popen(
        [str(binary), "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned(cpu),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"cift-floor did not start: {line}")
    proc.stdout.close()
    return proc, int(line[1])


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process `pid` so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m perf.tcp", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=50_000, help="commands per second (offered)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds not measured at the start")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="an already running daemon")
    p.add_argument("--daemon-cpu", type=int, default=0, help="pin the daemon here (-1: no)")
    p.add_argument("--client-cpu", type=int, default=1, help="pin the generator here (-1: no)")
    p.add_argument(
        "--fsync",
        default="always",
        choices=["always", "interval", "none"],
        help="journal fsync policy of the daemon started here (replies wait for it)",
    )
    p.add_argument(
        "--floor",
        nargs="?",
        const="",
        default=None,
        metavar="BIN",
        help="measure the native floor server (cift-floor) instead of the daemon",
    )
    p.add_argument("--lane", default="on", choices=["on", "off"], help="the daemon's [batch] lane")
    p.add_argument(
        "--client",
        default="native",
        choices=["native", "python"],
        help="load generator: cift-load (native) or this process's event loop (python)",
    )
    p.add_argument("--load-bin", default=None, help="the cift-load binary (default: cargo build)")
    p.add_argument("--json", default=None, help="write the figures and machine facts here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    n = int(args.rate * args.seconds)
    records = record_stream(args.seed, max(0, n - 1000), 1000)
    count = len(records) // COMMAND_SIZE
    frames = encode_requests(records, struct.pack("<I", 0) * count, ["BENCH"])
    cpus = os.sched_getaffinity(0)
    client_cpu = args.client_cpu if args.client_cpu in cpus and len(cpus) > 1 else None
    if client_cpu is not None and args.client == "python":
        os.sched_setaffinity(0, {client_cpu})
    with tempfile.TemporaryDirectory(prefix="cift-tcp-") as tmp:
        proc = None
        port = args.port
        cpu = args.daemon_cpu if args.daemon_cpu >= 0 and args.daemon_cpu in cpus else None
        if args.floor is not None:
            proc, port = start_floor(native_binary("cift-floor", args.floor or None), cpu)
        elif port is None:
            proc, port, _ = start_daemon(Path(tmp), cpu, args.fsync, args.lane == "on")
        try:
            before = cpu_times(proc.pid) if proc is not None else None
            if args.client == "native":
                binary = native_binary("cift-load", args.load_bin)
                results = load_native(binary, args.host, port, frames, args, client_cpu)
            else:
                results = uvloop.run(load(args.host, port, frames, args))
            if proc is not None and before is not None:
                user, system = (b - a for a, b in zip(before, cpu_times(proc.pid), strict=True))
                per = 1e6 / results["commands"]
                results["server_cpu_us_per_command"] = {"user": user * per, "system": system * per}
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    lat = results["latency_ns"]
    server = "cift-floor (native floor server)" if args.floor is not None else "daemon"
    print(f"server: {server}; load generator: {args.client}")
    print(
        f"{results['commands']} commands at {args.rate:,.0f}/s offered "
        f"({results['achieved_send_rate']:,.0f}/s sent), {results['measured']} measured"
    )
    cpu = results.get("server_cpu_us_per_command")
    if cpu is not None:
        print(f"server CPU per command: user {cpu['user']:.1f} µs, kernel {cpu['system']:.1f} µs")
    print("latency from planned send to first report: " + "  ".join(
        f"{k} {fmt_ns(v)}" for k, v in lat.items()
    ))  # fmt: skip
    write_args_json(args, "perf.tcp", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
