"""Find the sustainable rate: raise the offered rate step by step until p99 exceeds a bound.

    python -m perf.sweep [FILE] [--target inproc|core|daemon|tcp://HOST:PORT] [--start R]
                         [--factor F] [--max-rate R] [--step-duration S] [--p99-bound-us B]
                         [--json PATH] [--plot PNG]

Each step replays the first S seconds of the flow open loop at rate R (perf.replay with
--rate R --duration S), R = start, start*F, start*F^2, ... A step passes when every command was
answered, the achieved rate is at least 95% of the offered one and p99 (from the planned send
time) is within the bound; the sweep stops at the first failing step (or --max-rate) and reports
the last passing rate as sustainable. Without FILE a synthetic flow (seed 1) long enough for
the largest step is generated. With `--target daemon` every step gets a fresh daemon; against a
running daemon (tcp://) the books carry over from step to step, so the final-book check is off.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from perf._stats import fmt_ns, write_json
from perf.flow import Flow, FlowError, read_flow
from perf.generate import SyntheticParams, synthetic_flow
from perf.replay import Options, TargetUnavailable, replay

__all__ = ["main", "sweep"]

MIN_ACHIEVED = 0.95
MAX_GENERATED = 300_000


def _step_summary(rate: float, r: dict[str, Any], bound_ns: float) -> dict[str, Any]:
    lat = r["latency_ns"]
    achieved = r["achieved_per_s"] or 0.0
    why = []
    if r["commands"]["unanswered"]:
        why.append(f"{r['commands']['unanswered']} unanswered")
    if achieved < MIN_ACHIEVED * rate:
        why.append(f"achieved {achieved:,.0f}/s < {MIN_ACHIEVED:.0%} of offered")
    if lat["p99"] > bound_ns:
        why.append(f"p99 {fmt_ns(lat['p99'])} > bound {fmt_ns(bound_ns)}")
    if r["book_check"]["status"] == "mismatch":
        why.append("final book mismatch")
    return {
        "offered_per_s": rate,
        "achieved_per_s": achieved,
        "commands": r["commands"]["sent"],
        "latency_ns": lat,
        "send_lag_ns": r["send_lag_ns"],
        "histogram": r["histogram"],
        "book_check": r["book_check"]["status"],
        "passed": not why,
        "why": why,
    }


def sweep(
    flow: Flow,
    target: str,
    *,
    start: float,
    factor: float,
    max_rate: float,
    step_s: float,
    bound_ns: float,
    base: Options | None = None,
    log: Any = None,
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    rate = start
    check = target in ("inproc", "core", "daemon")
    while rate <= max_rate:
        opts = dataclasses.replace(
            base or Options(), target=target, rate=rate, duration_s=step_s, max_mode=False
        )
        r = replay(flow, opts, label="sweep")
        if not check:
            r["book_check"] = {"status": "skipped"}
        step = _step_summary(rate, r, bound_ns)
        steps.append(step)
        if log is not None:
            lat = step["latency_ns"]
            print(
                f"  {rate:>10,.0f}/s: achieved {step['achieved_per_s']:>10,.0f}/s"
                f"  p50 {fmt_ns(lat['p50']):>9}  p99 {fmt_ns(lat['p99']):>9}"
                f"  p99.9 {fmt_ns(lat['p99.9']):>9}  {'ok' if step['passed'] else 'FAIL: '}"
                f"{'; '.join(step['why'])}",
                file=log,
                flush=True,
            )
        if not step["passed"] or step["commands"] < rate * step_s * 0.99:
            break
        rate *= factor
    passing = [s["offered_per_s"] for s in steps if s["passed"]]
    return {
        "target": target,
        "p99_bound_ns": bound_ns,
        "step_s": step_s,
        "steps": steps,
        "sustainable_per_s": max(passing) if passing else None,
        "stopped_by": next((s["why"] for s in steps if not s["passed"]), ["max rate or file end"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m perf.sweep",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", help="recorded flow (default: synthetic seed 1)")
    p.add_argument("--target", default="daemon", help="inproc | core | daemon | tcp://HOST:PORT")
    p.add_argument("--start", type=float, default=1_000.0, help="first rate (messages/s)")
    p.add_argument("--factor", type=float, default=2.0, help="rate multiplier per step")
    p.add_argument("--max-rate", type=float, default=256_000.0)
    p.add_argument("--step-duration", type=float, default=3.0, help="seconds per step")
    p.add_argument("--p99-bound-us", type=float, default=10_000.0, help="p99 bound (µs)")
    p.add_argument("--token", default="perf", help="tcp: logon token")
    p.add_argument("--json")
    p.add_argument("--plot")
    args = p.parse_args(argv)
    if args.start <= 0 or args.factor <= 1 or args.step_duration <= 0:
        p.error("--start and --step-duration must be positive, --factor > 1")
    try:
        if args.file:
            flow = read_flow(args.file)
        else:
            need = min(MAX_GENERATED, int(args.max_rate * args.step_duration) + 1)
            print(f"generating a synthetic flow of {need:,} commands (seed 1)")
            flow = synthetic_flow(SyntheticParams(seed=1, orders=need))
    except (OSError, FlowError) as e:
        print(f"perf.sweep: {e}", file=sys.stderr)
        return 2
    print(
        f"sweep: {args.target}, {args.step_duration:g} s per step,"
        f" p99 bound {args.p99_bound_us:g} µs"
    )
    try:
        result = sweep(
            flow,
            args.target,
            start=args.start,
            factor=args.factor,
            max_rate=args.max_rate,
            step_s=args.step_duration,
            bound_ns=args.p99_bound_us * 1000,
            base=Options(token=args.token),
            log=sys.stdout,
        )
    except TargetUnavailable as e:
        print(f"perf.sweep: {e}", file=sys.stderr)
        return 2
    best = result["sustainable_per_s"]
    print(
        f"sustainable rate: {best:,.0f}/s"
        if best
        else "sustainable rate: none (first step failed)",
        f"(stopped by: {'; '.join(result['stopped_by'])})",
    )
    if args.json:
        write_json(args.json, "perf.sweep", {k: v for k, v in vars(args).items()}, result)
        print(f"wrote {args.json}")
    if args.plot:
        from perf.plot import sweep_figure

        sweep_figure(
            result["steps"],
            result["p99_bound_ns"],
            args.plot,
            f"sweep {args.target}: sustainable {best:,.0f}/s" if best else f"sweep {args.target}",
        )
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
