"""The synthetic order flow (engine._native.synthetic_flow) as the benchmarks use it."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from engine._native import synthetic_flow
from engine.book import (
    COMMAND_SIZE,
    Book,
    CmdKind,
    Command,
    EventKind,
    OrdType,
    Tif,
    decode_commands,
    decode_events,
)


def category(c: Command) -> str:
    if c.kind == CmdKind.CANCEL:
        return "cancel"
    if c.kind == CmdKind.AMEND:
        return "amend"
    if c.ord_type == OrdType.MARKET:
        return "market"
    return "ioc" if c.tif == Tif.IOC else "gtc"


def test_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() -> None:
    a = synthetic_flow(7, 3_000, 200)
    assert a == synthetic_flow(7, 3_000, 200)
    assert a != synthetic_flow(8, 3_000, 200)
    assert len(a) == (200 + 3_000) * COMMAND_SIZE


def test_records_are_sequenced_with_increasing_time() -> None:
    cmds = decode_commands(synthetic_flow(1, 2_000, 100))
    assert [c.seq for c in cmds] == list(range(1, 2_101))
    assert all(a.ts < b.ts for a, b in itertools.pairwise(cmds))


def test_fill_rests_on_both_sides_without_crossing() -> None:
    book = Book()
    events = decode_events(book.apply(synthetic_flow(3, 0, 500)))
    assert {e.kind for e in events} == {EventKind.ACCEPTED, EventKind.LEVEL}
    assert book.order_count() == 500
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None and bid[0] < ask[0]


@pytest.mark.parametrize(
    "mix",
    [None, (500, 100, 100, 200, 100), (0, 0, 0, 1000, 0)],
    ids=["default", "balanced", "amend-only"],
)
def test_mix_follows_the_configured_weights(mix: tuple[int, int, int, int, int] | None) -> None:
    depth, n = 1_000, 40_000
    cmds = decode_commands(synthetic_flow(11, n, depth, mix=mix))[depth:]
    weights = dict(
        zip(("gtc", "ioc", "cancel", "amend", "market"), mix or (90, 30, 60, 800, 20), strict=True)
    )
    counts = Counter(category(c) for c in cmds)
    total = sum(weights.values())
    for name, w in weights.items():
        if name == "gtc":
            continue  # cancels/amends that find no live order become GTC limits
        assert counts[name] / n == pytest.approx(w / total, abs=0.01), name
    assert counts["gtc"] / n >= weights["gtc"] / total - 0.01


def test_flow_is_valid_trades_and_leaves_an_uncrossed_book() -> None:
    book = Book()
    events = decode_events(book.apply(synthetic_flow(5, 50_000)))
    kinds = Counter(e.kind for e in events)
    assert kinds[EventKind.REJECTED] == 0
    assert kinds[EventKind.TRADE] > 1_000
    assert kinds[EventKind.REPLACED] > 30_000
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None and bid[0] < ask[0]
    assert book.order_count() > 500  # near the default depth of 1000


@pytest.mark.parametrize(
    "kwargs",
    [{"accounts": 0}, {"center_price": 10}, {"mix": (0, 0, 0, 0, 0)}, {"max_qty": 0}],
)
def test_unusable_configuration_is_a_value_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        synthetic_flow(1, 10, **kwargs)  # type: ignore[arg-type]
