"""Did the engine end with the book the flow should give? (the final check of every replay)

The expected book is the reference model's (perf/replay_engine.py) after the messages sent, in
the order the ENGINE sequenced them. That order is known from the cmdSeq of every reply: with
one session it is the file order; with several TCP sessions, messages sent microseconds apart on
different connections may be sequenced the other way round, which is legitimate and changes
the book. When the engine's order equals the file order (and the whole file was sent) the
header's stored book is used; otherwise the model is re-run in the engine's order, and the
report says so.
"""

from __future__ import annotations

import itertools
from typing import Any

from perf.flow import ExpectedBook, Flow
from perf.replay_engine import DecodedFlow, expected_books
from perf.replay_match import Tracker

__all__ = ["check_books"]

_MAX_REPORTED = 10


def _diff(name: str, want: ExpectedBook, got: ExpectedBook, levels: int) -> list[str]:
    out = []
    for side, w, g in (("bid", want.bids, got.bids), ("ask", want.asks, got.asks)):
        for i in range(levels):
            a = w[i] if i < len(w) else None
            b = g[i] if i < len(g) else None
            if a != b:
                out.append(
                    f"{name} {side} level {i + 1}: expected {a or 'empty'}, got {b or 'empty'}"
                )
    for field in ("last_price", "volume", "trades"):
        a, b = getattr(want, field), getattr(got, field)
        if a != b:
            out.append(f"{name} {field}: expected {a}, got {b}")
    return out


def check_books(
    flow: Flow,
    decoded: DecodedFlow,
    tracker: Tracker,
    actual: dict[str, ExpectedBook] | None,
    sent: int,
) -> dict[str, Any]:
    if actual is None:
        return {"status": "skipped", "why": "the target's final book could not be read"}
    order, unplaced = tracker.engine_order()
    in_order = all(a < b for a, b in itertools.pairwise(order))
    levels = flow.levels
    if in_order and sent == len(flow) and flow.expected is not None:
        expected, how = flow.expected, "the file's expected book (engine order = file order)"
    elif in_order:
        expected = expected_books(flow, decoded, range(sent), levels)
        how = "reference model over the messages sent (engine order = file order)"
    else:
        expected = expected_books(flow, decoded, order, levels)
        moved = sum(1 for k, i in enumerate(order) if k == 0 or order[k - 1] > i)
        how = (
            f"reference model re-run in the engine's sequence order ({moved} messages"
            " sequenced out of file order across sessions)"
        )
    if unplaced and not in_order:
        how += f"; {unplaced} messages without a reply (mass cancels...) have no known place"
    problems: list[str] = []
    for sym in flow.symbols:
        got = actual.get(sym.name, ExpectedBook())
        problems += _diff(sym.name, expected.get(sym.name, ExpectedBook()), got, levels)
    return {
        "status": "match" if not problems else "mismatch",
        "levels": levels,
        "symbols": len(flow.symbols),
        "expected_from": how,
        "in_file_order": in_order,
        "mismatches": problems[:_MAX_REPORTED],
        "mismatch_count": len(problems),
    }
