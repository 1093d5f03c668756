"""Event records -> sink rows, without a database: values checked against rows built here in
plain Python from the decoded events (`expected_*`, also used by the database tests), the top of
book against the native book's own view, positions against sums over the trades."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from engine.book import Book, CmdKind, EventKind, decode_commands, decode_events
from engine.sinks.convert import BatchError, Converter, Flush, OpenOrder, Outcome, PositionRow
from engine.sinks.records import SinkBatch
from engine.sinks.synth import every_event_scenario
from engine.sinks.tables import TABLES

SYMBOL = "AAPL"
COMMAND = 96


def scenario_batches(per_batch: int = 1) -> tuple[bytes, bytes, list[SinkBatch]]:
    """The every-event scenario applied through a native book, `per_batch` commands a batch."""
    cmds = every_event_scenario()
    book = Book(1, 10**6)
    batches, events = [], b""
    after = 0
    for i in range(0, len(cmds), per_batch * COMMAND):
        chunk = cmds[i : i + per_batch * COMMAND]
        ev = book.apply(chunk)
        through = decode_commands(chunk)[-1].seq
        batches.append(SinkBatch(SYMBOL, chunk, ev, after, through))
        events += ev
        after = through
    return cmds, events, batches


def expected_orders(symbol: str, commands: bytes, events: bytes) -> set[tuple[Any, ...]]:
    by_seq = {c.seq: c for c in decode_commands(commands)}
    rows, idx, prev = set(), 0, None
    for e in decode_events(events):
        idx = idx + 1 if e.seq == prev else 0
        prev = e.seq
        if e.kind in (EventKind.TRADE, EventKind.LEVEL):
            continue
        c = by_seq[e.seq]
        own = c.kind == CmdKind.NEW and e.kind in (EventKind.ACCEPTED, EventKind.REJECTED)
        if e.kind in (EventKind.ACCEPTED, EventKind.TRIGGERED):
            stop = e.aux
        else:
            stop = c.stop_price if own else 0
        rows.add(
            (symbol, e.seq, idx, c.ts, int(e.kind), c.kind, e.order_id, e.account, e.client_id,
             e.side, c.ord_type if own else 0, c.tif if own else 0, e.price, e.qty, e.leaves,
             stop, c.display_qty if own else 0, c.expire_ts if own else 0, e.reason, e.code,
             e.flags, e.aux, e.aux2)
        )  # fmt: skip
    return rows


def expected_trades(symbol: str, commands: bytes, events: bytes) -> set[tuple[Any, ...]]:
    ts = {c.seq: c.ts for c in decode_commands(commands)}
    return {
        (symbol, e.aux, e.seq, ts[e.seq], e.price, e.qty, e.side, e.order_id, e.account,
         e.client_id, e.leaves, e.counter_id, e.counter_account, e.counter_client_id, e.aux2)
        for e in decode_events(events)
        if e.kind == EventKind.TRADE
    }  # fmt: skip


def order_lives(
    symbol: str, commands: bytes, events: bytes
) -> tuple[set[tuple[int, ...]], dict[int, tuple[int, int, int]]]:
    """(the `order_ends` rows: orders ended — cancelled with nothing left, or a trade leaving
    their side 0 — by a later command than the one that accepted them; the orders still live at
    the end: order_id -> (accepted seq, ts, account))."""
    ts = {c.seq: c.ts for c in decode_commands(commands)}
    live: dict[int, tuple[int, int, int]] = {}
    ends: set[tuple[Any, ...]] = set()

    def end(order_id: int, seq: int) -> None:
        a = live.pop(order_id, None)
        if a is not None and seq > a[0]:
            ends.add((symbol, seq, order_id, a[2], a[1], a[0], ts[seq]))

    for e in decode_events(events):
        if e.kind == EventKind.ACCEPTED:
            live[e.order_id] = (e.seq, ts[e.seq], e.account)
        elif e.kind == EventKind.CANCELLED and e.leaves == 0:
            end(e.order_id, e.seq)
        elif e.kind == EventKind.TRADE:
            if e.leaves == 0:
                end(e.order_id, e.seq)
            if e.aux2 == 0:
                end(e.counter_id, e.seq)
    return ends, live


def expected_order_ends(symbol: str, commands: bytes, events: bytes) -> set[tuple[Any, ...]]:
    return order_lives(symbol, commands, events)[0]


def expected_positions(symbol: str, events: bytes) -> dict[int, tuple[int, int, int, int, int]]:
    """account -> (position, bought, sold, buy notional, sell notional)."""
    p: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for e in decode_events(events):
        if e.kind != EventKind.TRADE:
            continue
        for account, buys in ((e.account, e.side == 1), (e.counter_account, e.side != 1)):
            r = p[account]
            r[0] += e.qty if buys else -e.qty
            r[1 if buys else 2] += e.qty
            r[3 if buys else 4] += e.price * e.qty
    return {a: (r[0], r[1], r[2], r[3], r[4]) for a, r in p.items()}


def rows_of(flush: Flush, table: str) -> set[tuple[Any, ...]]:
    out = set()
    for chunk in flush.tables.get(table, ()):
        cols = [chunk.columns[c] for c, _ in TABLES[table][1:]]
        for r in zip(*cols, strict=True):
            out.add((chunk.symbol, *(int(v) for v in r)))
    return out


def convert_all(batches: list[SinkBatch], conv: Converter | None = None) -> Flush:
    conv = conv if conv is not None else Converter()
    for b in batches:
        assert conv.add(b) is Outcome.APPLIED
    flush = conv.take()
    assert flush is not None
    return flush


@pytest.mark.parametrize("per_batch", [1, 4, 100])
def test_every_event_becomes_the_row_built_from_the_decoded_event(per_batch: int) -> None:
    cmds, events, batches = scenario_batches(per_batch)
    flush = convert_all(batches)
    assert rows_of(flush, "orders") == expected_orders(SYMBOL, cmds, events)
    assert rows_of(flush, "trades") == expected_trades(SYMBOL, cmds, events)
    ends = rows_of(flush, "order_ends")
    assert ends == expected_order_ends(SYMBOL, cmds, events)
    assert ends and all(r[1] > r[5] and r[6] >= r[4] for r in ends)  # ended later, not before
    kinds = {r[4] for r in rows_of(flush, "orders")}
    assert kinds == {1, 2, 4, 5, 6}  # accepted, rejected, cancelled, replaced, triggered
    reasons = {r[18] for r in rows_of(flush, "orders") if r[4] == 4}
    assert reasons == {1, 2, 3, 5, 6}
    assert flush.checkpoints[-1].last_seq == decode_commands(cmds)[-1].seq


def test_positions_are_the_sums_of_each_accounts_fills() -> None:
    _cmds, events, batches = scenario_batches(3)
    conv = Converter()
    latest: dict[int, tuple[int, ...]] = {}
    for b in batches:  # a flush per batch: the last row per account is its position
        conv.add(b)
        flush = conv.take()
        assert flush is not None
        for r in rows_of(flush, "positions"):
            latest[r[1]] = r[4:9]
    assert latest == expected_positions(SYMBOL, events)


def test_book_top_rows_are_the_native_books_top_at_each_interval_end() -> None:
    cmds, _, batches = scenario_batches(2)
    flush = convert_all(batches, Converter(top_interval_ns=10**9))
    rows = sorted(rows_of(flush, "book_top"), key=lambda r: r[1])
    commands = decode_commands(cmds)
    buckets = sorted({c.ts - c.ts % 10**9 for c in commands})
    assert [r[1] for r in rows] == buckets[:-1]  # every closed interval, once
    for r in rows:
        _, bucket, seq, ts, closed_by, bp, bq, bc, ap, aq, ac, last = r
        book = Book(1, 10**6)
        book.apply(cmds[: seq * COMMAND])  # seq n is the n-th record
        assert commands[seq - 1].ts == ts and ts - ts % 10**9 == bucket
        assert commands[closed_by - 1].ts - commands[closed_by - 1].ts % 10**9 > bucket
        assert (bp, bq, bc) == (book.best_bid() or (0, 0, 0))
        assert (ap, aq, ac) == (book.best_ask() or (0, 0, 0))
        assert last == book.stats()[0]


def test_redelivered_batches_are_stale_and_add_nothing() -> None:
    _, _, batches = scenario_batches(2)
    conv = Converter()
    convert_all(batches, conv)
    for b in batches:
        assert conv.add(b) is Outcome.STALE
    assert conv.take() is None


def test_a_batch_overlapping_the_checkpoint_adds_only_the_new_commands() -> None:
    cmds, events, small = scenario_batches(1)
    conv = Converter()
    first = convert_all(small[:5], conv)
    _, _, whole = scenario_batches(100)
    second = convert_all(whole, conv)  # seqs 1..5 again, then the rest
    assert rows_of(first, "orders") | rows_of(second, "orders") == expected_orders(
        SYMBOL, cmds, events
    )
    assert not rows_of(first, "orders") & rows_of(second, "orders")


def test_a_batch_that_skips_seqs_is_a_gap() -> None:
    _, _, batches = scenario_batches(1)
    conv = Converter()
    assert conv.add(batches[0]) is Outcome.APPLIED
    assert conv.add(batches[2]) is Outcome.GAP
    assert conv.last_seq(SYMBOL) == batches[0].through_seq


def test_an_event_without_its_command_breaks_the_contract() -> None:
    _, _, batches = scenario_batches(2)
    b = batches[0]
    with pytest.raises(BatchError):
        Converter().add(b._replace(commands=b.commands[:COMMAND]))


def test_state_restored_from_checkpoints_continues_identically() -> None:
    _cmds, _events, batches = scenario_batches(1)
    whole = convert_all(batches, Converter(top_interval_ns=10**9))
    conv = Converter(top_interval_ns=10**9)
    first = convert_all(batches[:7], conv)
    restarted = Converter(top_interval_ns=10**9)
    positions = [PositionRow(SYMBOL, r[1], r[2], r[3], *r[4:]) for r in rows_of(first, "positions")]
    done = batches[:7]
    _, live = order_lives(
        SYMBOL, b"".join(b.commands for b in done), b"".join(b.events for b in done)
    )
    assert live  # orders accepted before the restart and ended after it
    restarted.restore(
        first.checkpoints, positions, [OpenOrder(SYMBOL, o, *a) for o, a in live.items()]
    )
    rest = convert_all(batches[7:], restarted)
    ended_later = {r[2] for r in rows_of(rest, "order_ends")} & set(live)
    assert ended_later
    for table in ("orders", "trades", "book_top", "order_ends"):
        assert rows_of(first, table) | rows_of(rest, table) == rows_of(whole, table)
