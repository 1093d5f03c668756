"""The LOBSTER real-data oracle: replay NASDAQ LOBSTER files through the native book.

    python -m perf.lobster check MESSAGE_CSV [ORDERBOOK_CSV] [--levels N]
    python -m perf.lobster check LOBSTER_ZIP [--levels N]

Seeds the book from the first orderbook row, applies every message as book commands (see
perf/lobster_replay.py), and after every message compares the book's top N levels with the
orderbook row wherever the files make the level knowable, and every execution's trades with the
order LOBSTER names. Prints what it checked; exits 1 on any mismatch (showing the first ones
with context), 2 on unusable input. What "knowable" means: docs/lobster.md.

`lobster_commands(path)` gives the same command stream as bytes (for `python -m perf.book`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from engine.book import EVENT_SIZE, Book, Event, EventKind, Side, decode_events, reject_text
from perf.lobster_data import Level, LobsterPair, MessageType, find_pair
from perf.lobster_replay import Knowledge, Replay, Step

__all__ = ["CheckResult", "check", "lobster_commands", "main"]

_TYPE_NAMES = {
    MessageType.NEW: "new",
    MessageType.CANCEL: "cancel",
    MessageType.DELETE: "delete",
    MessageType.EXECUTE: "execute",
    MessageType.HIDDEN: "hidden",
    MessageType.CROSS: "cross",
    MessageType.HALT: "halt",
}


@dataclass
class CheckResult:
    label: str
    levels: int
    messages: int = 0
    types: Counter[int] = field(default_factory=Counter)
    rows: int = 0
    rows_matched: int = 0
    levels_compared: int = 0
    levels_unknowable: int = 0
    executions: int = 0
    fills_matched: int = 0
    reordered: int = 0
    ignored: int = 0
    seeds: int = 0
    dropped: int = 0
    commands: int = 0
    events: int = 0
    seconds: float = 0.0
    problems: int = 0  # rows with a mismatch of any kind (levels, fills, rejects, messages)
    reported: int = 0
    report: list[str] = field(default_factory=list)  # the first problems, with context

    @property
    def ok(self) -> bool:
        return self.problems == 0


def _levels(pair: LobsterPair, levels: int | None) -> int:
    have = pair.file_levels()
    if levels is None:
        return have
    if not 1 <= levels <= have:
        raise ValueError(f"--levels {levels}: the orderbook file has {have} levels")
    return levels


def lobster_commands(
    path: str | Path, orderbook: str | Path | None = None, *, levels: int | None = None
) -> bytes:
    """The command records the check applies, seeds first: a real-data workload for the book."""
    pair = find_pair(path, orderbook)
    n = _levels(pair, levels)
    replay = Replay(n)
    return b"".join(
        step.commands + step.resync for step in replay.steps(pair.messages(), pair.rows(n))
    )


def _fmt(levels: Sequence[Level]) -> str:
    return " ".join(f"{p}x{q}" for p, q in levels) or "(empty)"


def _compare(
    name: str, shown: tuple[Level, ...], book: tuple[Level, ...], know: Knowledge, n: int
) -> tuple[int, list[str]]:
    """Compare one side of a row with the book where knowable; return (levels compared,
    problems)."""
    upto = n if know.complete else know.exact
    problems = []
    if book[:upto] != shown[:upto]:
        for i in range(upto):
            want = shown[i] if i < len(shown) else None
            got = book[i] if i < len(book) else None
            if want != got:
                problems.append(
                    f"{name} level {i + 1}: file {want or 'empty'}, book {got or 'empty'}"
                )
    if not know.complete and len(shown) > upto and know.bound is not None:
        price = shown[upto][0]
        if (price >= know.bound) if name == "bid" else (price <= know.bound):
            problems.append(
                f"{name} level {upto + 1}: file shows {price}, inside the range the replay "
                f"knows (to {know.bound}), where the replay has no such level"
            )
    if problems:
        problems.append(f"  file {name}s: {_fmt(shown[:n])}")
        problems.append(f"  book {name}s: {_fmt(book[:n])}")
    return upto, problems


class _Checker:
    """Drives one native book through the steps and checks each against its orderbook row."""

    def __init__(self, replay: Replay, result: CheckResult) -> None:
        self.book = Book()
        self.replay = replay
        self.n = replay.n
        self.result = result
        self._depth: tuple[tuple[Level, ...], tuple[Level, ...]] | None = None  # until a change

    def _apply(self, commands: bytes) -> list[Event]:
        raw = self.book.apply(commands)
        self._depth = None
        self.result.events += len(raw) // EVENT_SIZE
        kinds = raw[::EVENT_SIZE]  # each record's first byte is its kind
        if EventKind.TRADE in kinds or EventKind.REJECTED in kinds:
            return decode_events(raw)
        return []

    def depth(self) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        if self._depth is None:
            bids = tuple((p, q) for p, q, _ in self.book.depth(Side.BUY, self.n))
            asks = tuple((p, q) for p, q, _ in self.book.depth(Side.SELL, self.n))
            self._depth = (bids, asks)
        return self._depth

    def step(self, step: Step) -> list[str]:
        """Apply one step to the book and check it; return the problems found."""
        result = self.result
        problems = []
        if step.problem:
            problems.append(f"message not explained: {step.problem}")
        events = self._apply(step.commands) if step.commands else []
        trades = tuple((e.order_id, e.qty) for e in events if e.kind == EventKind.TRADE)
        if step.fills and trades == step.fills:
            result.fills_matched += 1
        elif trades != step.fills:
            book, want = self._fills(trades), self._fills(step.fills)
            problems.append(f"trades (maker x qty): book {book}, expected {want}")
        problems += [
            f"command rejected: {self.replay.name(e.order_id)}: {e.code} {reject_text(e.code)}"
            for e in events
            if e.kind == EventKind.REJECTED
        ]
        row_ok = True
        bids, asks = self.depth()
        for name, shown, got, know in (
            ("bid", step.row.bids, bids, step.bids),
            ("ask", step.row.asks, asks, step.asks),
        ):
            compared, side_problems = _compare(name, shown, got, know, self.n)
            result.levels_compared += compared
            result.levels_unknowable += self.n - compared
            if side_problems:
                row_ok = False
                problems += side_problems
        result.rows += 1
        result.rows_matched += row_ok
        if step.resync:
            problems += [
                f"resync: unexpected {e.kind.name} for {self.replay.name(e.order_id)}"
                for e in self._apply(step.resync)
            ]
        return problems

    def _fills(self, fills: Sequence[tuple[int, int]]) -> str:
        return ", ".join(f"{self.replay.name(eid)} x{qty}" for eid, qty in fills) or "none"


def check(
    path: str | Path,
    orderbook: str | Path | None = None,
    *,
    levels: int | None = None,
    max_report: int = 10,
    strict_priority: bool = False,
) -> CheckResult:
    """Replay a LOBSTER pair through a fresh native book and compare (see the module doc)."""
    started = time.perf_counter()
    pair = find_pair(path, orderbook)
    n = _levels(pair, levels)
    messages = pair.messages()
    result = CheckResult(pair.label, n, messages=len(messages))
    result.types.update(m.type for m in messages)
    replay = Replay(n)
    checker = _Checker(replay, result)
    for step in replay.steps(messages, pair.rows(n)):
        problems = checker.step(step)
        if strict_priority and step.reordered:
            problems.append("out-of-priority execution (--strict-priority)")
        if problems:
            result.problems += 1
            if result.problems <= max_report:
                result.reported += 1
                result.report.append(f"row {step.message.line} after {step.message.text()}")
                result.report += [f"  {p}" for p in problems]
    result.executions = replay.executions
    result.reordered = replay.reordered
    result.ignored = replay.ignored
    result.seeds = replay.seeds
    result.dropped = replay.dropped
    result.commands = replay.commands
    result.seconds = time.perf_counter() - started
    return result


def print_result(r: CheckResult, out: TextIO) -> None:
    types = ", ".join(
        f"{_TYPE_NAMES.get(t, f'type {t}')} {c:,}" for t, c in sorted(r.types.items())
    )
    pct = 100.0 * r.rows_matched / r.rows if r.rows else 0.0
    unplayed = r.types[MessageType.EXECUTE] - r.executions
    if unplayed:  # line 1 (already in the seed row) or beyond the checked levels
        unplayed_note = f"; {unplayed:,} not replayed (line 1 or beyond the known range)"
    else:
        unplayed_note = ""
    lines = [
        f"LOBSTER check {r.label} ({r.levels} level{'s' if r.levels > 1 else ''})",
        f"  messages         {r.messages:,} ({types})",
        f"  rows checked     {r.rows:,}",
        f"  rows matched     {r.rows_matched:,} ({pct:.3f}%)",
        f"  levels compared  {r.levels_compared:,} knowable; {r.levels_unknowable:,} not "
        f"knowable (beyond what the messages determine)",
        f"  FIFO fills       {r.fills_matched:,} of {r.executions:,} visible executions matched "
        f"(maker = the order LOBSTER names){unplayed_note}",
        f"  out of priority  {r.reordered:,} executions named an order queued behind others "
        f"(level re-queued before the fill)",
        f"  seeds            {r.seeds:,} seed orders; {r.dropped:,} orders dropped past level "
        f"{r.levels}; {r.ignored:,} messages beyond the known range",
        f"  book             {r.commands:,} commands, {r.events:,} events",
        f"  time             {r.seconds:.2f} s",
    ]
    if r.report:
        lines.append(f"first mismatches ({r.reported} of {r.problems:,} rows):")
        lines += [f"  {x}" for x in r.report]
    lines.append(f"  result           {'OK' if r.ok else f'MISMATCH ({r.problems:,} rows)'}")
    out.write("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perf.lobster", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="replay a LOBSTER pair through the book and compare")
    c.add_argument("messages", help="message CSV, or a LOBSTER zip holding both files")
    c.add_argument("orderbook", nargs="?", help="orderbook CSV (default: the sibling file)")
    c.add_argument("--levels", type=int, help="levels to check (default: all in the file)")
    c.add_argument("--max-report", type=int, default=10, help="mismatching rows to show")
    c.add_argument(
        "--strict-priority",
        action="store_true",
        help="count out-of-priority executions in the data as mismatches",
    )
    args = p.parse_args(argv)
    try:
        result = check(
            args.messages,
            args.orderbook,
            levels=args.levels,
            max_report=args.max_report,
            strict_priority=args.strict_priority,
        )
    except (OSError, ValueError) as e:  # LobsterFormatError is a ValueError
        print(f"perf.lobster: {e}", file=sys.stderr)
        return 2
    print_result(result, sys.stdout)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
