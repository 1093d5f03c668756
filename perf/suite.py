"""The standard performance suite: one command, one JSON, one Markdown table.

    python -m perf.suite [--quick] [--json PATH] [--md PATH] [--plot PNG] [--skip SECTION ...]

Sections (each one's failure is recorded and the suite goes on):
  book       the native book alone (python -m perf.book): throughput, service time per command
  matching   order matching cost: mean/p50/p95/p99 of one Book.apply of one command
  risk       risk check cost: the risk actor's native step (Sequencer.sequence) per command
  pipeline   the in-process pipeline at full speed (python -m perf.pipeline)
  core       replay: native stages only, --max and open loop
  inproc     replay: the daemon's actors in process, open loop at fixed rates and --max
  tcp        replay: a fresh daemon over TCP, open loop at fixed rates
  journal    replay over TCP with journal fsync none vs batch
  recovery   a daemon restarted on a journal of N commands, after a clean stop (final
             snapshot: nothing replayed) and after SIGKILL with the snapshots removed (the
             whole journal replayed): time until ready, and whether the books came back
  lobster    a real NASDAQ day (LOBSTER sample) converted and replayed (if the data is there)
  platform   the figures the platform's benchmark promised: order matching, risk check, NATS,
             ClickHouse, Redis -- each where the part exists in this build, else why not

Compare two runs with `python -m perf.compare A.json B.json`. --quick runs every section small
(< 1 minute); the full suite takes a few minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.book import COMMAND_SIZE, Book
from engine.wire import Sequencer
from perf._stats import fmt_ns, machine_info, write_json
from perf.flow import Flow
from perf.generate import SyntheticParams, lobster_flow, synthetic_flow
from perf.hdr import histogram, latency_summary
from perf.replay import Options, replay
from perf.replay_daemon import TOKEN, DaemonProcess
from perf.replay_tcp import fetch_books

__all__ = ["main"]

LOBSTER_SAMPLE = Path("/work/shared/data/lobster/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip")
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sizes:
    book_commands: int
    book_repeat: int
    matching: int
    risk: int
    pipeline_commands: int
    flow_orders: int
    rates: tuple[int, ...]  # open-loop rates for inproc and tcp
    step_s: float
    journal_rate: int
    recovery_orders: int
    lobster: bool
    # Run the service benchmarks (perf.nats_bench against a nats-server it starts, perf.sinks on
    # embedded ClickHouse) for the platform figures: full runs only, they take ~30 s.
    services: bool = False


QUICK = Sizes(50_000, 1, 20_000, 10_000, 20_000, 6_000, (2_000,), 1.0, 1_000, 5_000, False)
FULL = Sizes(
    1_000_000,
    3,
    200_000,
    50_000,
    300_000,
    100_000,
    (1_000, 5_000, 10_000),
    5.0,
    5_000,
    100_000,
    True,
    services=True,
)


class Suite:
    def __init__(self, sizes: Sizes, log: Callable[[str], None]) -> None:
        self.sizes = sizes
        self.log = log
        self.results: dict[str, Any] = {}
        self.rows: list[tuple[str, str, str]] = []  # figure, value, command
        self._flow: Flow | None = None

    def row(self, figure: str, value: str, command: str) -> None:
        self.rows.append((figure, value, command))
        self.log(f"  {figure}: {value}")

    def flow(self) -> Flow:
        if self._flow is None:
            self._flow = synthetic_flow(SyntheticParams(seed=1, orders=self.sizes.flow_orders))
        return self._flow

    # ---------------------------------------------------------------- sections

    def book(self) -> dict[str, Any]:
        s = self.sizes
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "book.json"
            _run_tool(
                "perf.book",
                "--commands",
                str(s.book_commands),
                "--repeat",
                str(s.book_repeat),
                "--json",
                str(out),
            )
            r: dict[str, Any] = orjson.loads(out.read_bytes())["results"]
        best = max(t["commands_per_s_best"] for t in r["throughput"])
        st = r["service_time_ns"][0]
        self.row(
            "native book throughput (best batch)",
            f"{best / 1e6:.2f} M commands/s",
            "python -m perf.book",
        )
        self.row(
            "native book service time, 1 command per call",
            f"p50 {fmt_ns(st['p50'])}, p99 {fmt_ns(st['p99'])}, p99.9 {fmt_ns(st['p99.9'])}",
            "python -m perf.book",
        )
        return r

    def matching(self) -> dict[str, Any]:
        from engine._native import synthetic_flow as native_flow

        depth = 1_000
        records = native_flow(1, self.sizes.matching, depth)
        book = Book()
        book.apply(records[: depth * COMMAND_SIZE])
        clock, apply = time.perf_counter_ns, book.apply
        samples = []
        for off in range(depth * COMMAND_SIZE, len(records), COMMAND_SIZE):
            rec = records[off : off + COMMAND_SIZE]
            t0 = clock()
            apply(rec)
            samples.append(clock() - t0)
        r = latency_summary(histogram(samples), samples, (50.0, 95.0, 99.0, 99.9))
        self.row(
            "order matching per command (mean/p50/p95/p99)",
            " / ".join(fmt_ns(r[k]) for k in ("mean", "p50", "p95", "p99")),
            "python -m perf.suite (matching)",
        )
        return r

    def risk(self) -> dict[str, Any]:
        from engine._native import synthetic_flow as native_flow

        records = native_flow(2, self.sizes.risk, 0)
        n = len(records) // COMMAND_SIZE
        rules = [(1, 1, 1, 1 << 40, 0, 0, 1 << 40)]
        sym = b"\0\0\0\0"
        out: dict[str, Any] = {}
        for batch in (1, 256):
            seq = Sequencer(rules, 1)
            clock, step = time.perf_counter_ns, batch * COMMAND_SIZE
            samples = []
            for off in range(0, len(records) - step + 1, step):
                chunk = records[off : off + step]
                t0 = clock()
                seq.sequence(chunk, sym * batch, 1)
                samples.append((clock() - t0) // batch)
            out[f"batch_{batch}"] = latency_summary(histogram(samples), samples, (50.0, 99.0))
        out["commands"] = n
        self.row(
            "risk check per command (Sequencer, batch 1 / 256, mean)",
            f"{fmt_ns(out['batch_1']['mean'])} / {fmt_ns(out['batch_256']['mean'])}",
            "python -m perf.suite (risk)",
        )
        return out

    def pipeline(self) -> dict[str, Any]:
        s = self.sizes
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "pipeline.json"
            _run_tool(
                "perf.pipeline",
                "--commands",
                str(s.pipeline_commands),
                "--repeat",
                "1",
                "--json",
                str(out),
            )
            r: dict[str, Any] = orjson.loads(out.read_bytes())["results"]
        self.row(
            "in-process pipeline throughput",
            f"{r['pipeline_orders_per_s']:,.0f} orders/s ({r['ratio']:.2f} of the book alone)",
            "python -m perf.pipeline",
        )
        return r

    def _replay(self, name: str, opts: Options, flow: Flow | None = None) -> dict[str, Any]:
        r = replay(flow or self.flow(), opts, label=name)
        lat, book = r["latency_ns"], r["book_check"]["status"]
        cmd = (
            f"python -m perf.replay FLOW --target {opts.target}"
            + (" --max" if opts.max_mode else f" --rate {opts.rate:g}" if opts.rate else "")
            + (" --fsync batch" if opts.fsync == "batch" else "")
        )
        if opts.max_mode:
            value = f"{r['achieved_per_s'] or 0:,.0f} commands/s; final book {book}"
        else:
            value = (
                f"p50 {fmt_ns(lat['p50'])}, p99 {fmt_ns(lat['p99'])}, p99.9 {fmt_ns(lat['p99.9'])},"
                f" max {fmt_ns(lat['max'])}; {r['achieved_per_s'] or 0:,.0f}/s achieved;"
                f" book {book}"
            )
        self.row(name, value, cmd)
        if not r["ok"]:
            self.log(
                f"    errors: {r['errors'][:3]} book: {r['book_check'].get('mismatches', [])[:3]}"
            )
        return r

    def core(self) -> dict[str, Any]:
        s = self.sizes
        return {
            "max": self._replay(
                "core replay, --max", Options(target="core", max_mode=True, batch=1024)
            ),
            f"rate_{max(s.rates)}": self._replay(
                f"core replay at {max(s.rates):,}/s",
                Options(target="core", rate=max(s.rates), duration_s=s.step_s),
            ),
        }

    def inproc(self) -> dict[str, Any]:
        s = self.sizes
        out = {
            f"rate_{rate}": self._replay(
                f"inproc pipeline at {rate:,}/s",
                Options(target="inproc", rate=rate, duration_s=s.step_s),
            )
            for rate in s.rates
        }
        out["max"] = self._replay("inproc pipeline, --max", Options(target="inproc", max_mode=True))
        return out

    def tcp(self) -> dict[str, Any]:
        s = self.sizes
        return {
            f"rate_{rate}": self._replay(
                f"daemon over TCP at {rate:,}/s",
                Options(target="daemon", rate=rate, duration_s=s.step_s),
            )
            for rate in s.rates
        }

    def journal(self) -> dict[str, Any]:
        s = self.sizes
        return {
            f"fsync_{mode}": self._replay(
                f"daemon over TCP at {s.journal_rate:,}/s, journal fsync={mode}",
                Options(target="daemon", rate=s.journal_rate, duration_s=s.step_s, fsync=mode),
            )
            for mode in ("none", "batch")
        }

    def recovery(self) -> dict[str, Any]:
        """Fill a daemon, stop it cleanly (final snapshot), restart (replays nothing), SIGKILL
        it, remove the snapshots, restart again (replays the whole journal)."""
        flow = synthetic_flow(SyntheticParams(seed=2, orders=self.sizes.recovery_orders))
        keep = {"journal": {"prune_journal": False}}  # the full replay needs every file
        http = ""
        with tempfile.TemporaryDirectory(prefix="cift-recovery-") as tmp:
            data = Path(tmp) / "data"
            with DaemonProcess(flow.symbols, flow.sessions, data_dir=tmp, overrides=keep) as d:
                empty_s = d.ready_s
                http = f"{d.host}:{d.http_port}"
                opts = Options(
                    target=f"tcp://{d.host}:{d.port}", max_mode=True, token=TOKEN, http=http
                )
                r = replay(flow, opts, label="recovery fill")
                before = fetch_books(http, flow, flow.levels)
            size = sum(p.stat().st_size for p in (data / "journal").glob("*.cjl"))
            restarts: dict[str, dict[str, Any]] = {}
            d = DaemonProcess(flow.symbols, flow.sessions, data_dir=tmp, overrides=keep)
            try:
                d.start()  # after the clean stop: the final snapshot, nothing to replay
                http = f"{d.host}:{d.http_port}"
                restarts["after_clean_stop"] = _restart_figures(d, http, flow, before)
                proc = d.proc
                if proc is not None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                d.proc = None
                shutil.rmtree(data / "snapshots", ignore_errors=True)
                d.start()  # after SIGKILL, no snapshot: the whole journal again
                http = f"{d.host}:{d.http_port}"
                restarts["after_sigkill_no_snapshot"] = _restart_figures(d, http, flow, before)
            finally:
                d.stop()
        out: dict[str, Any] = {
            "commands": r["commands"]["sent"],
            "fill_book_check": r["book_check"]["status"],
            "journal_bytes": size,
            "ready_empty_s": empty_s,
            **restarts,
        }
        for key, what in (
            ("after_clean_stop", "after a clean stop (final snapshot)"),
            ("after_sigkill_no_snapshot", "after SIGKILL, snapshots removed (full replay)"),
        ):
            f = restarts[key]
            self.row(
                f"recovery: restart {what}, journal of {out['commands']:,} commands"
                f" ({size / 1e6:.1f} MB)",
                f"ready in {f['ready_s']:.2f} s (recovery {f['recovery_s']:.3f} s,"
                f" {f['replayed']:,} replayed; empty data dir: {empty_s:.2f} s);"
                f" books restored: {'yes' if f['books_restored'] else 'NO'}",
                "python -m perf.suite (recovery)",
            )
        return out

    def lobster(self) -> dict[str, Any]:
        if not self.sizes.lobster or not LOBSTER_SAMPLE.exists():
            return {"status": "skipped", "why": "quick mode or no LOBSTER sample"}
        flow = lobster_flow(LOBSTER_SAMPLE)
        return {
            "core_max": self._replay(
                "LOBSTER AMZN day, core replay --max",
                Options(target="core", max_mode=True, batch=1024),
                flow,
            ),
            "inproc_max": self._replay(
                "LOBSTER AMZN day, inproc --max", Options(target="inproc", max_mode=True), flow
            ),
        }

    def platform(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        m = self.results.get("matching")
        out["order_matching_ns"] = m if isinstance(m, dict) and "p50" in m else None
        rk = self.results.get("risk")
        out["risk_check_ns"] = rk if isinstance(rk, dict) and "batch_1" in rk else None
        out["nats"] = self._service_figure(
            "NATS message latency (request/reply, 5,000 orders/s, 1 order per request)",
            "perf.nats_bench",
            ["--mode", "rr", "--orders", "20000", "--rate", "5000", "--per-request", "1"],
            _nats_latency,
        )
        out["clickhouse"] = self._service_figure(
            "ClickHouse analytics query time (200,000 fills, embedded chDB)",
            "perf.sinks",
            ["--commands", "20000", "--report-fills", "200000", "--no-postgres"],
            _report_times,
        )
        why = _service_unavailable("redis") or "no Redis benchmark in this suite yet"
        out["redis"] = {"status": "n/a", "why": why}
        self.row("cache (Redis) operations per second", f"n/a: {why}", "-")
        return out

    def _service_figure(
        self,
        figure: str,
        module: str,
        args: list[str],
        summarize: Callable[[dict[str, Any]], str],
    ) -> dict[str, Any]:
        """Run one service benchmark as a subprocess and report its figure (or why not)."""
        command = f"python -m {module} {' '.join(args)}"
        if not self.sizes.services:
            self.row(figure, "skipped in --quick", command)
            return {"status": "skipped"}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            done = subprocess.run(
                [sys.executable, "-m", module, *args, "--json", str(out)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if done.returncode != 0 or not out.exists():
                why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                self.row(figure, f"failed: exit {done.returncode}: {why[0]}", command)
                return {"status": "failed", "why": why[0]}
            result: dict[str, Any] = orjson.loads(out.read_bytes())["results"]
        self.row(figure, summarize(result), command)
        return result


def _restart_figures(
    d: DaemonProcess, http: str, flow: Flow, before: dict[str, Any]
) -> dict[str, Any]:
    """A restarted daemon's figures: time to ready, its recovery block, books as before?"""
    with urllib.request.urlopen(f"http://{http}/status", timeout=10) as resp:
        rec = orjson.loads(resp.read()).get("recovery", {})
    return {
        "ready_s": d.ready_s,
        "recovery_s": float(rec.get("seconds", 0.0)),
        "snapshot_seq": int(rec.get("snapshot_seq", 0)),
        "replayed": int(rec.get("replayed", 0)),
        "books_restored": fetch_books(http, flow, flow.levels) == before,
    }


def _run_tool(module: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} exited {done.returncode}: {done.stderr[-2000:]}")


def _nats_latency(result: dict[str, Any]) -> str:
    lat = result["cases"][0]["latency"]
    return (
        f"p50 {fmt_ns(lat['p50'])}, p99 {fmt_ns(lat['p99'])}, p99.9 {fmt_ns(lat['p99.9'])}"
        f" ({result['cases'][0]['orders_per_s']:,.0f} orders/s achieved)"
    )


def _report_times(result: dict[str, Any]) -> str:
    reports = result["reports"]["reports"]
    return ", ".join(f"{name} {v['seconds'] * 1000:.0f} ms" for name, v in sorted(reports.items()))


def _service_unavailable(name: str) -> str | None:
    """Why the engine cannot use `name` in this build (its config refuses to enable it)."""
    from engine import config as engine_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.toml"
        path.write_text(f"[services]\n{name} = true\n", encoding="utf-8")
        try:
            engine_config.load(path)
        except engine_config.ConfigError as e:
            return f"services.{name}: {getattr(e, 'message', e)}"
    return None


SECTIONS = (
    "book",
    "matching",
    "risk",
    "pipeline",
    "core",
    "inproc",
    "tcp",
    "journal",
    "recovery",
    "lobster",
    "platform",
)


def markdown(rows: Sequence[tuple[str, str, str]], machine: dict[str, Any], mode: str) -> str:
    lines = [
        f"Suite ({mode}) on {machine.get('cpu_model')}, {machine.get('cores_usable')} usable cores,"
        f" Python {machine.get('python')}, commit {machine.get('commit')}",
        "",
        "| figure | value | produced by |",
        "|---|---|---|",
    ]
    lines += [f"| {f} | {v} | `{c}` |" for f, v, c in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m perf.suite",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="every section, small (< 1 minute)")
    p.add_argument("--json", default="suite.json", help="results (default suite.json)")
    p.add_argument("--md", help="Markdown table (default: the --json path with .md)")
    p.add_argument("--plot", help="latency percentile curves of the open-loop runs (PNG)")
    p.add_argument("--skip", nargs="*", default=[], choices=SECTIONS, help="sections to leave out")
    args = p.parse_args(argv)
    suite = Suite(QUICK if args.quick else FULL, lambda s: print(s, flush=True))
    started = time.perf_counter()
    for name in SECTIONS:
        if name in args.skip:
            continue
        print(f"[{time.perf_counter() - started:6.1f} s] {name}", flush=True)
        try:
            suite.results[name] = getattr(suite, name)()
        except Exception as e:  # a section's failure is a result, not the end of the suite
            suite.results[name] = {
                "status": "failed",
                "error": repr(e),
                "trace": traceback.format_exc()[-3000:],
            }
            suite.row(name, f"FAILED: {e!r}"[:300], f"python -m perf.suite (section {name})")
    elapsed = time.perf_counter() - started
    mode = "quick" if args.quick else "full"
    suite.results["suite_seconds"] = elapsed
    suite.results["table"] = [list(r) for r in suite.rows]
    write_json(args.json, "perf.suite", {"mode": mode, "skip": args.skip}, suite.results)
    md = args.md or str(Path(args.json).with_suffix(".md"))
    Path(md).write_text(markdown(suite.rows, machine_info(), mode), encoding="utf-8")
    print(f"suite done in {elapsed:.0f} s: wrote {args.json} and {md}")
    if args.plot:
        from perf.plot import latency_figure

        curves = {
            f"{section} {key}": r["histogram"]
            for section in ("inproc", "tcp", "journal")
            for key, r in (suite.results.get(section) or {}).items()
            if isinstance(r, dict) and "histogram" in r and r.get("offered_per_s")
        }
        latency_figure(curves, args.plot, "latency from planned send (suite)")
        print(f"wrote {args.plot}")
    failed = [
        k for k, v in suite.results.items() if isinstance(v, dict) and v.get("status") == "failed"
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
