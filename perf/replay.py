"""Replay a recorded flow against the engine, open loop, and report honest latency.

    python -m perf.replay FILE --target inproc|core|daemon|tcp://HOST:PORT|nats://HOST:PORT
                          [--rate N | --max] [--speed X] [--duration S]
                          [--json PATH] [--plot PNG] [--record-replies PATH]

Targets:
  inproc           the daemon's pipeline (engine.daemon.Engine: every actor, the journal and the
                   durability gate) in this process on uvloop, sessions fed in memory, no sockets
  core             the engine's native stages only (decoder, risk sequencer, books, publisher)
                   in one thread: no actors, no journal, no sockets -- the floor under inproc
  daemon           a fresh daemon subprocess configured for the flow (its symbols, one account
                   per session), over TCP; stopped at the end
  tcp://HOST:PORT  a running daemon; its config must hold the flow's symbols and accounts
                   (--token), and it should start empty for the final-book check (--http)
  nats://HOST:PORT a running daemon with NATS order entry (services.nats), through that NATS
                   server: request/reply (--nats-mode rr) or JetStream (--nats-mode js);
                   config, --token and --http as for tcp:// (perf/replay_nats.py)

Schedule: every message has a planned send time: the recorded times divided by --speed, or
i / --rate. Latency runs from the planned time to the reply, so stalls are charged to every
command behind them (no coordinated omission). --max sends as fast as the engine answers (at
most --window commands unanswered); latency then runs from the actual send.

Exit status: 0 all answered and the final book matched, 1 otherwise, 2 unusable input/target.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.wire import code_text
from perf._stats import fmt_ns, write_json
from perf.flow import Flow, FlowError, read_flow
from perf.hdr import REPLAY_PERCENTILES, encode, percentile_key, summarize
from perf.replay_check import check_books
from perf.replay_engine import DecodedFlow, decode_flow
from perf.replay_match import Outcome, Plan, Tracker
from perf.replay_replies import RepliesWriter

__all__ = ["Options", "TargetUnavailable", "main", "print_result", "replay"]

TIMELINE_BUCKETS = 200


class TargetUnavailable(Exception):
    """The target cannot be used at all (exit status 2)."""


@dataclass(frozen=True)
class Options:
    target: str = "inproc"
    rate: float | None = None
    max_mode: bool = False
    speed: float = 1.0
    duration_s: float | None = None
    window: int = 10_000
    batch: int = 16_384
    drain_timeout_s: float = 30.0
    token: str = "perf"
    http: str | None = None
    fsync: str = "none"
    record_replies: str | None = None
    nats_mode: str = "rr"

    def schedule_name(self) -> str:
        if self.max_mode:
            return f"max (at most {self.window:,} unanswered)"
        if self.rate:
            return f"open loop at {self.rate:,.0f}/s (uniform)"
        return f"open loop at the recorded times x{self.speed:g}"


def _plan(flow: Flow, opts: Options, tracker: Tracker) -> Plan:
    """Fill the tracker's planned times; return how many messages to send."""
    n = len(flow)
    planned = tracker.planned
    if opts.max_mode:
        count = n
    elif opts.rate:
        step = 1e9 / opts.rate
        for i in range(n):
            planned[i] = int(i * step)
        count = n
    else:
        for i, t in enumerate(flow.times):
            planned[i] = int(t / opts.speed)
        count = n
    if opts.duration_s is not None and not opts.max_mode:
        limit = opts.duration_s * 1e9
        count = next((i for i in range(n) if planned[i] >= limit), n)
    return Plan(
        count=count,
        max_mode=opts.max_mode,
        window=opts.window,
        batch=opts.batch,
        levels=flow.levels,
        drain_timeout_s=opts.drain_timeout_s,
    )


def _address(target: str) -> tuple[str, int]:
    host, _, port = target.split("://", 1)[1].rpartition(":")
    if not host or not port.isdigit():
        raise TargetUnavailable(f"target {target!r}: expected SCHEME://HOST:PORT")
    return host.strip("[]"), int(port)


def _run_target(
    flow: Flow,
    decoded: DecodedFlow,
    opts: Options,
    tracker: Tracker,
    plan: Plan,
    replies: RepliesWriter | None,
) -> Outcome:
    target = opts.target
    if target == "core":
        from perf import replay_core

        return replay_core.run(flow, tracker, plan, replies)
    if target == "inproc":
        from perf import replay_inproc

        try:
            return replay_inproc.run(flow, tracker, plan, opts.fsync, replies)
        except replay_inproc.PipelineUnavailable as e:
            raise TargetUnavailable(str(e)) from None
    from perf import replay_tcp

    if target.startswith("nats://"):
        from perf import replay_nats

        _address(target)  # HOST:PORT or TargetUnavailable
        try:
            return replay_nats.run(
                flow,
                decoded,
                tracker,
                plan,
                target,
                mode=opts.nats_mode,
                token=opts.token,
                http=opts.http,
                replies=replies,
            )
        except replay_tcp.TargetError as e:
            raise TargetUnavailable(str(e)) from None

    if target == "daemon":
        from perf.replay_daemon import TOKEN, DaemonError, DaemonProcess

        try:
            with DaemonProcess(flow.symbols, flow.sessions, fsync=opts.fsync) as d:
                out = replay_tcp.run(
                    flow,
                    tracker,
                    plan,
                    (d.host, d.port),
                    token=TOKEN,
                    http=f"{d.host}:{d.http_port}",
                    replies=replies,
                )
                code = d.stop()
                if code != 0:
                    out.errors.append(f"the daemon exited {code}:\n{d.log()}")
                out.notes.append(f"daemon: fresh subprocess, journal fsync={opts.fsync}")
                return out
        except DaemonError as e:
            raise TargetUnavailable(str(e)) from None
        except replay_tcp.TargetError as e:
            raise TargetUnavailable(str(e)) from None
    if target.startswith("tcp://"):
        try:
            return replay_tcp.run(
                flow,
                tracker,
                plan,
                _address(target),
                token=opts.token,
                http=opts.http,
                replies=replies,
            )
        except replay_tcp.TargetError as e:
            raise TargetUnavailable(str(e)) from None
    raise TargetUnavailable(f"unknown target {target!r} (inproc, core, daemon, tcp://, nats://)")


def _timeline(tracker: Tracker, count: int, elapsed_ns: int) -> dict[str, Any]:
    span = max(elapsed_ns, max(tracker.planned[:count], default=0), 1)
    want = span / TIMELINE_BUCKETS
    bucket = next((b * 10**e for e in range(6, 13) for b in (1, 2, 5) if b * 10**e >= want), 10**13)
    buckets = span // bucket + 1
    offered = [0] * buckets
    completed = [0] * buckets
    for k in range(count):
        offered[min(tracker.planned[k] // bucket, buckets - 1)] += 1
        d = tracker.done[k]
        if d >= 0:
            completed[min(d // bucket, buckets - 1)] += 1
    per_s = 1e9 / bucket
    return {
        "bucket_ms": bucket / 1e6,
        "offered_per_s": [x * per_s for x in offered],
        "completed_per_s": [x * per_s for x in completed],
    }


def replay(flow: Flow, opts: Options, label: str = "") -> dict[str, Any]:
    """Run one replay; the results as a JSON-ready dict (TargetUnavailable if it cannot run)."""
    decoded = decode_flow(flow)
    tracker = Tracker(decoded, len(flow.sessions))
    plan = _plan(flow, opts, tracker)
    replies = None
    if opts.record_replies:
        replies = RepliesWriter(
            opts.record_replies,
            {
                "flow": label,
                "target": opts.target,
                "sessions": [{"account": s.account} for s in flow.sessions],
            },
        )
    try:
        outcome = _run_target(flow, decoded, opts, tracker, plan, replies)
    finally:
        if replies is not None:
            replies.close()
    count = plan.count
    sent = sum(1 for k in range(count) if tracker.sent[k] >= 0)
    timed = sum(1 for k in range(count) if tracker.timed[k] and tracker.sent[k] >= 0)
    answered = sum(1 for k in range(count) if tracker.done[k] >= 0)
    lat_summary, lat = summarize(tracker.latencies())
    elapsed_s = outcome.elapsed_ns / 1e9
    span_s = tracker.planned[count - 1] / 1e9 if count else 0.0
    rejects = {
        str(code): {"count": n, "text": code_text(code) or ""}
        for code, n in sorted(tracker.rejects.items())
    }
    book = check_books(flow, decoded, tracker, outcome.books, sent)
    errors = list(outcome.errors)
    if timed - answered:
        errors.append(f"{timed - answered} timed commands got no reply")
    return {
        "flow": label,
        "source": flow.source,
        "target": opts.target,
        "schedule": opts.schedule_name(),
        "commands": {
            "in_flow": len(flow),
            "sent": sent,
            "timed": timed,
            "answered": answered,
            "unanswered": timed - answered,
            "untimed": sent - timed,
        },
        "sessions": len(flow.sessions),
        "symbols": len(flow.symbols),
        "offered_per_s": (count / span_s if span_s > 0 else None) if not opts.max_mode else None,
        "achieved_per_s": answered / elapsed_s if elapsed_s > 0 else None,
        "elapsed_s": elapsed_s,
        "latency_ns": lat_summary,
        "histogram": encode(lat),
        "send_lag_ns": summarize(tracker.send_lags())[0],
        "calibration": outcome.calibration,
        "replies": dict(sorted(tracker.reports.items())),
        "unmatched_replies": tracker.unmatched,
        "cancel_reasons": {str(k): v for k, v in sorted(tracker.cancel_reasons.items())},
        "rejects": rejects,
        "timeline": _timeline(tracker, count, outcome.elapsed_ns),
        "book_check": book,
        "notes": outcome.notes,
        "errors": errors,
        "ok": not errors and book["status"] in ("match", "skipped"),
    }


def _figures(summary: dict[str, float]) -> str:
    keys = [percentile_key(p) for p in REPLAY_PERCENTILES]
    parts = [f"{k} {fmt_ns(summary[k])}" for k in keys]
    parts.append(f"max {fmt_ns(summary['max'])}")
    return "  ".join(parts)


def print_result(r: dict[str, Any], out: TextIO) -> None:
    c = r["commands"]
    src = r["source"]
    source = src.get("kind", "?") + (f" seed {src['seed']}" if "seed" in src else "")
    lines = [
        f"flow: {r['flow']} ({source}): {c['in_flow']:,} messages, {r['symbols']} symbols,"
        f" {r['sessions']} sessions",
        f"target: {r['target']}; schedule: {r['schedule']}",
        f"sent {c['sent']:,}: {c['answered']:,} answered of {c['timed']:,} timed;"
        f" {c['untimed']:,} untimed (mass cancels, no client id); {c['unanswered']:,} unanswered",
    ]
    offered = r["offered_per_s"]
    achieved = r["achieved_per_s"] or 0.0
    lines.append(
        f"throughput: offered {offered:,.0f}/s, achieved {achieved:,.0f}/s"
        f" over {r['elapsed_s']:.2f} s"
        if offered
        else f"throughput: achieved {achieved:,.0f}/s over {r['elapsed_s']:.2f} s"
    )
    lat = r["latency_ns"]
    what = "actual" if r["offered_per_s"] is None else "planned"
    lines.append(f"latency from {what} send to reply ({int(lat['samples']):,} samples):")
    lines.append(f"  {_figures(lat)}")
    lines.append(f"send lag (replayer lateness): {_figures(r['send_lag_ns'])}")
    cal = r["calibration"]
    if "heartbeat_rtt_ns" in cal:
        hb = cal["heartbeat_rtt_ns"]
        lines.append(
            f"calibration: heartbeat round trip p50 {fmt_ns(hb['p50'])} p99 {fmt_ns(hb['p99'])};"
            f" sleep overshoot p50 {fmt_ns(cal['sleep_overshoot_ns']['p50'])}"
        )
    elif "sleep_overshoot_ns" in cal:
        lines.append(
            f"calibration: sleep overshoot p50 {fmt_ns(cal['sleep_overshoot_ns']['p50'])}"
            f" p99 {fmt_ns(cal['sleep_overshoot_ns']['p99'])}"
        )
    lines.append("replies: " + ", ".join(f"{k} {v:,}" for k, v in r["replies"].items()))
    if r["rejects"]:
        lines.append(
            "rejects: "
            + ", ".join(f"{k} {v['text']} x{v['count']:,}" for k, v in r["rejects"].items())
        )
    b = r["book_check"]
    if b["status"] == "skipped":
        lines.append(f"final book: not checked ({b['why']})")
    else:
        lines.append(
            f"final book: {b['status'].upper()} ({b['symbols']} symbols, top {b['levels']} levels;"
            f" {b['expected_from']})"
        )
        lines += [f"  {m}" for m in b["mismatches"]]
    lines += [f"note: {n}" for n in r["notes"]]
    lines += [f"ERROR: {e}" for e in r["errors"]]
    out.write("\n".join(lines) + "\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m perf.replay",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="recorded flow (python -m perf.generate / perf.record)")
    p.add_argument(
        "--target", default="inproc", help="inproc | core | daemon | tcp://H:P | nats://H:P"
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rate", type=float, help="messages per second, evenly spaced")
    g.add_argument("--max", action="store_true", help="throughput mode: as fast as answered")
    p.add_argument("--speed", type=float, default=1.0, help="recorded times divided by X")
    p.add_argument("--duration", type=float, help="replay only the first S seconds of schedule")
    p.add_argument("--window", type=int, default=10_000, help="--max: most unanswered commands")
    p.add_argument("--batch", type=int, default=16_384, help="most messages sent in one go")
    p.add_argument("--drain-timeout", type=float, default=30.0, help="seconds to wait for replies")
    p.add_argument(
        "--token", default="perf", help="tcp, nats: account token ('{account}' = the id)"
    )
    p.add_argument(
        "--http", help="tcp, nats: the daemon's HTTP HOST:PORT, for the final-book check"
    )
    p.add_argument(
        "--nats-mode", choices=["rr", "js"], default="rr", help="nats: request/reply or JetStream"
    )
    p.add_argument(
        "--fsync", choices=["none", "batch"], default="none", help="inproc, daemon: journal fsync"
    )
    p.add_argument("--json", help="write the results (and machine facts) here")
    p.add_argument("--plot", help="write a latency-percentile + throughput PNG here")
    p.add_argument("--record-replies", help="save every reply received here")
    args = p.parse_args(argv)
    if (args.rate is not None and args.rate <= 0) or args.speed <= 0:
        p.error("--rate and --speed must be positive")
    if args.max and args.duration is not None:
        p.error("--duration needs a schedule (--rate or recorded times), not --max")
    if args.window < 1 or args.batch < 1:
        p.error("--window and --batch must be >= 1")
    return args


def options_of(args: argparse.Namespace) -> Options:
    return Options(
        target=args.target,
        rate=args.rate,
        max_mode=args.max,
        speed=args.speed,
        duration_s=args.duration,
        window=args.window,
        batch=args.batch,
        drain_timeout_s=args.drain_timeout,
        token=args.token,
        http=args.http,
        fsync=args.fsync,
        record_replies=args.record_replies,
        nats_mode=args.nats_mode,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        flow = read_flow(args.file)
    except (OSError, FlowError) as e:
        print(f"perf.replay: {e}", file=sys.stderr)
        return 2
    opts = options_of(args)
    try:
        result = replay(flow, opts, label=Path(args.file).name)
    except (TargetUnavailable, FlowError) as e:
        print(f"perf.replay: {e}", file=sys.stderr)
        return 2
    print_result(result, sys.stdout)
    if args.json:
        params = {k: v for k, v in vars(args).items() if k not in ("json", "plot")}
        write_json(args.json, "perf.replay", params, result)
        print(f"wrote {args.json}")
    if args.plot:
        from perf.plot import replay_figure

        replay_figure(result, args.plot)
        print(f"wrote {args.plot}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
