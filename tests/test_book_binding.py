"""The order book through its Python binding (engine._native.Book) and engine.book.

Behaviour is specified in docs/book.md; these tests check it as a Python client sees it, plus the
binding's own promises (batch = concatenation, snapshot/restore, digest, buffer handling).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.book import (
    COMMAND_SIZE,
    Book,
    CancelReason,
    CmdKind,
    Command,
    CommandBatch,
    Event,
    EventKind,
    OrdType,
    PyBook,
    RejectCode,
    Side,
    Stp,
    Tif,
    amend,
    cancel,
    decode_commands,
    decode_events,
    encode_command,
    imbalance,
    new_order,
    reject_text,
    vwap,
)

BUY, SELL = Side.BUY, Side.SELL
ACCEPTED, REJECTED, TRADE = EventKind.ACCEPTED, EventKind.REJECTED, EventKind.TRADE
CANCELLED, REPLACED, TRIGGERED, LEVEL = (
    EventKind.CANCELLED,
    EventKind.REPLACED,
    EventKind.TRIGGERED,
    EventKind.LEVEL,
)


def kinds(events: list[Event]) -> list[EventKind]:
    return [e.kind for e in events]


def only(events: list[Event], kind: EventKind) -> list[Event]:
    return [e for e in events if e.kind == kind]


@pytest.fixture
def book() -> PyBook:
    return PyBook(Book(1, 1_000_000))


# --- order types -------------------------------------------------------------------------------


def test_limit_order_rests_and_a_crossing_limit_trades_at_the_resting_price(book: PyBook) -> None:
    ev = book.new_order(SELL, 101, 10, account=1)
    assert kinds(ev) == [ACCEPTED, LEVEL]
    assert (ev[0].order_id, ev[0].price, ev[0].qty, ev[0].leaves, ev[0].seq) == (1, 101, 10, 10, 1)
    assert (ev[1].side, ev[1].price, ev[1].qty, ev[1].aux) == (SELL, 101, 10, 1)

    ev = book.new_order(BUY, 102, 4, account=2, client_id=77)
    assert kinds(ev) == [ACCEPTED, TRADE, LEVEL]
    t = ev[1]
    assert (t.side, t.order_id, t.account, t.price, t.qty, t.leaves) == (SELL, 1, 1, 101, 4, 6)
    assert (t.counter_id, t.counter_account, t.counter_client_id) == (2, 2, 77)
    assert (t.aux, t.aux2, t.seq) == (1, 0, 2)  # trade id 1, taker fully filled
    assert (ev[2].price, ev[2].qty, ev[2].aux) == (101, 6, 1)
    assert book.native.best_ask() == (101, 6, 1)
    assert book.native.best_bid() is None
    assert book.native.stats() == (101, 4, 404, 1)


def test_market_order_stops_at_its_protection_limit(book: PyBook) -> None:
    book.new_order(SELL, 100, 5)
    book.new_order(SELL, 105, 5)
    ev = book.new_order(BUY, 102, 10, ord_type=OrdType.MARKET, tif=Tif.IOC, account=2)
    assert kinds(ev) == [ACCEPTED, TRADE, CANCELLED, LEVEL]
    assert (ev[1].price, ev[1].qty) == (100, 5)
    assert (ev[2].reason, ev[2].qty, ev[2].leaves) == (CancelReason.MARKET_PROTECTION, 5, 0)
    assert book.native.depth(SELL, 10) == [(105, 5, 1)]


def test_unprotected_market_order_sweeps_levels_and_cancels_the_rest_as_ioc(
    book: PyBook,
) -> None:
    book.new_order(SELL, 100, 5)
    book.new_order(SELL, 105, 5)
    ev = book.new_order(BUY, 0, 12, ord_type=OrdType.MARKET, tif=Tif.IOC, account=2)
    assert kinds(ev) == [ACCEPTED, TRADE, TRADE, CANCELLED, LEVEL, LEVEL]
    assert [(t.price, t.qty) for t in only(ev, TRADE)] == [(100, 5), (105, 5)]
    assert (ev[3].reason, ev[3].qty) == (CancelReason.IOC_REMAINDER, 2)
    assert [(e.price, e.qty) for e in only(ev, LEVEL)] == [(100, 0), (105, 0)]
    assert book.native.order_count() == 0


def test_ioc_limit_remainder_is_cancelled(book: PyBook) -> None:
    book.new_order(SELL, 100, 5)
    ev = book.new_order(BUY, 100, 8, tif=Tif.IOC, account=2)
    assert kinds(ev) == [ACCEPTED, TRADE, CANCELLED, LEVEL]
    assert (ev[2].reason, ev[2].qty, ev[2].leaves) == (CancelReason.IOC_REMAINDER, 3, 0)
    assert book.native.best_bid() is None


def test_fok_trades_only_when_it_can_fill_completely(book: PyBook) -> None:
    book.new_order(SELL, 100, 5)
    book.new_order(SELL, 101, 5)
    ev = book.new_order(BUY, 101, 11, tif=Tif.FOK, account=2)
    assert kinds(ev) == [ACCEPTED, CANCELLED]
    assert (ev[1].reason, ev[1].qty) == (CancelReason.FOK_UNFILLED, 11)
    ev = book.new_order(BUY, 101, 10, tif=Tif.FOK, account=2)
    assert kinds(ev) == [ACCEPTED, TRADE, TRADE, LEVEL, LEVEL]
    assert book.native.order_count() == 0


def test_stop_market_waits_in_the_stop_book_until_the_last_trade_reaches_it(
    book: PyBook,
) -> None:
    book.new_order(SELL, 100, 5, account=1)
    stop = book.new_order(BUY, 0, 3, ord_type=OrdType.STOP_MARKET, tif=Tif.IOC, stop_price=100)
    assert kinds(stop) == [ACCEPTED]
    assert (stop[0].flags & 1, stop[0].aux) == (1, 100)
    stop_id = stop[0].order_id
    [info] = book.native.stop_orders(BUY)
    assert (info.order_id, info.is_stop, info.stop_price) == (stop_id, True, 100)

    ev = book.new_order(BUY, 100, 1, account=2)
    assert kinds(ev) == [ACCEPTED, TRADE, TRIGGERED, TRADE, LEVEL]
    trig = ev[2]
    assert (trig.order_id, trig.aux, trig.aux2, trig.qty) == (stop_id, 100, 100, 3)
    assert (ev[3].counter_id, ev[3].price, ev[3].qty) == (stop_id, 100, 3)
    assert book.native.stop_orders(BUY) == []
    assert book.native.order(stop_id) is None
    assert book.native.best_ask() == (100, 1, 1)


def test_triggered_stop_limit_rests_at_its_limit(book: PyBook) -> None:
    book.new_order(SELL, 100, 2, account=1)
    ev = book.new_order(BUY, 99, 4, ord_type=OrdType.STOP_LIMIT, stop_price=100, account=3)
    stop_id = ev[0].order_id
    assert book.native.order(stop_id) is not None
    ev = book.new_order(BUY, 100, 1, account=2)
    assert TRIGGERED in kinds(ev)
    info = book.native.order(stop_id)
    assert info is not None
    assert (info.is_stop, info.price, info.open) == (False, 99, 4)
    assert book.native.best_bid() == (99, 4, 1)


def test_iceberg_shows_its_display_size_and_a_refresh_goes_to_the_back(book: PyBook) -> None:
    book.new_order(SELL, 100, 10, display_qty=3)  # id 1
    book.new_order(SELL, 100, 2)  # id 2
    first = book.native.order(1)
    assert first is not None
    assert (first.visible, first.hidden, first.display_qty) == (3, 7, 3)
    assert book.native.best_ask() == (100, 5, 2)

    ev = book.new_order(BUY, 100, 3, account=2)
    assert kinds(ev) == [ACCEPTED, TRADE]  # level total and count unchanged: no Level event
    assert (ev[1].order_id, ev[1].qty, ev[1].leaves) == (1, 3, 7)
    assert [o.order_id for o in book.native.level_orders(SELL, 100)] == [2, 1]
    refreshed = book.native.order(1)
    assert refreshed is not None
    assert (refreshed.visible, refreshed.hidden, refreshed.filled) == (3, 4, 3)


def test_post_only_order_that_would_take_is_rejected_with_3009(book: PyBook) -> None:
    book.new_order(SELL, 100, 5)
    ev = book.new_order(BUY, 100, 1, post_only=True, account=2)
    assert kinds(ev) == [REJECTED]
    assert ev[0].code == RejectCode.POST_ONLY_WOULD_TAKE
    assert kinds(book.new_order(BUY, 99, 1, post_only=True, account=2)) == [ACCEPTED, LEVEL]


def test_advance_time_expires_gtd_orders_and_day_orders_at_the_end_of_day(book: PyBook) -> None:
    gtd = book.new_order(BUY, 99, 1, tif=Tif.GTD, expire_ts=500)[0].order_id
    day = book.new_order(BUY, 98, 1, tif=Tif.DAY)[0].order_id
    assert book.advance_time(499) == []
    ev = book.advance_time(500)
    assert kinds(ev) == [CANCELLED, LEVEL]
    assert (ev[0].order_id, ev[0].reason) == (gtd, CancelReason.EXPIRED)
    ev = book.advance_time(600, end_of_day=True)
    assert (ev[0].order_id, ev[0].reason) == (day, CancelReason.EXPIRED)
    assert book.native.order_count() == 0


def test_stp_cancel_incoming_leaves_the_resting_order(book: PyBook) -> None:
    book.new_order(SELL, 100, 5, account=1)
    ev = book.new_order(BUY, 100, 5, account=1, stp=Stp.CANCEL_INCOMING)
    assert kinds(ev) == [ACCEPTED, CANCELLED]
    assert (ev[1].order_id, ev[1].reason, ev[1].qty) == (2, CancelReason.SELF_TRADE, 5)
    assert book.native.best_ask() == (100, 5, 1)


def test_stp_decrement_reduces_both_orders_without_a_trade(book: PyBook) -> None:
    book.new_order(SELL, 100, 5, account=1)
    ev = book.new_order(BUY, 100, 3, account=1, stp=Stp.DECREMENT_CANCEL)
    assert kinds(ev) == [ACCEPTED, CANCELLED, CANCELLED, LEVEL]
    assert [(e.order_id, e.qty, e.leaves) for e in only(ev, CANCELLED)] == [(1, 3, 2), (2, 3, 0)]
    assert book.native.stats() == (0, 0, 0, 0)
    assert book.native.best_ask() == (100, 2, 1)


def test_amend_quantity_down_keeps_priority_and_up_loses_it(book: PyBook) -> None:
    book.new_order(SELL, 100, 5)
    book.new_order(SELL, 100, 5)
    [rep] = only(book.amend(1, qty=3), REPLACED)
    assert (rep.flags & 1, rep.qty, rep.leaves, rep.aux, rep.aux2) == (1, 3, 3, 100, 5)
    assert [o.order_id for o in book.native.level_orders(SELL, 100)] == [1, 2]
    [rep] = only(book.amend(1, qty=6), REPLACED)
    assert rep.flags & 1 == 0
    assert [o.order_id for o in book.native.level_orders(SELL, 100)] == [2, 1]


def test_amend_to_a_crossing_price_trades_like_an_incoming_order(book: PyBook) -> None:
    book.new_order(BUY, 99, 5, account=2)
    book.new_order(SELL, 101, 5, account=1)
    ev = book.amend(2, qty=5, price=99, account=1)
    assert kinds(ev)[:2] == [REPLACED, TRADE]
    assert (ev[1].price, ev[1].qty, ev[1].order_id, ev[1].counter_id) == (99, 5, 1, 2)
    assert book.native.order_count() == 0


def test_cancel_by_client_id_finds_the_accounts_order(book: PyBook) -> None:
    book.new_order(BUY, 99, 5, account=4, client_id=7)
    ev = book.cancel(0, account=4, client_id=7)
    assert kinds(ev) == [CANCELLED, LEVEL]
    assert (ev[0].reason, ev[0].qty, ev[0].leaves, ev[0].client_id) == (CancelReason.USER, 5, 0, 7)


def test_mass_cancel_goes_bids_then_asks_then_stops(book: PyBook) -> None:
    book.new_order(BUY, 98, 1, account=1)  # 1
    book.new_order(BUY, 99, 1, account=1)  # 2
    book.new_order(SELL, 101, 1, account=1)  # 3
    book.new_order(SELL, 0, 1, ord_type=OrdType.STOP_MARKET, tif=Tif.IOC, stop_price=90)  # 4
    book.new_order(BUY, 99, 1, account=2)  # 5
    ev = book.mass_cancel(1)
    cancelled = only(ev, CANCELLED)
    assert [e.order_id for e in cancelled] == [2, 1, 3, 4]
    assert {e.reason for e in cancelled} == {CancelReason.MASS_CANCEL}
    assert book.native.depth(BUY, 5) == [(99, 1, 1)]
    assert book.mass_cancel(1) == []


# --- rejects -----------------------------------------------------------------------------------

TEXTS = {
    3001: "quantity must be positive and at most the symbol's maximum",
    3002: "price must be positive and within the symbol's price range",
    3004: "duplicate client order id for this account",
    3005: "duplicate order id",
    3006: "invalid side",
    3009: "post-only order would take liquidity",
    3015: "unknown command kind",
    3020: "account must be non-zero",
}

RESTING = new_order(SELL, 100, 5, account=1, client_id=5, order_id=9)
REJECTS: list[tuple[RejectCode, Command]] = [
    (RejectCode.INVALID_QUANTITY, new_order(BUY, 100, 0)),
    (RejectCode.INVALID_PRICE, new_order(BUY, 1_000_001, 1)),
    (RejectCode.UNKNOWN_ORDER, cancel(42)),
    (RejectCode.DUPLICATE_CLIENT_ID, new_order(BUY, 90, 1, client_id=5)),
    (RejectCode.DUPLICATE_ORDER_ID, new_order(BUY, 90, 1, order_id=9, account=2)),
    (RejectCode.INVALID_SIDE, new_order(3, 100, 1)),
    (RejectCode.INVALID_ORDER_TYPE, new_order(BUY, 100, 1, ord_type=9)),
    (RejectCode.INVALID_TIF, new_order(BUY, 100, 1, tif=9)),
    (RejectCode.POST_ONLY_WOULD_TAKE, new_order(BUY, 100, 1, post_only=True, account=2)),
    (RejectCode.INVALID_DISPLAY_QTY, new_order(BUY, 90, 5, display_qty=5)),
    (RejectCode.INVALID_STOP_PRICE, new_order(BUY, 90, 5, stop_price=95)),
    (RejectCode.INVALID_EXPIRY, new_order(BUY, 90, 5, tif=Tif.GTD, expire_ts=0)),
    (RejectCode.INVALID_AMEND_QTY, amend(9, qty=0)),
    (RejectCode.TIF_NOT_ALLOWED, new_order(BUY, 0, 5, ord_type=OrdType.MARKET)),
    (RejectCode.INVALID_COMMAND, Command(kind=9, account=1)),
    (RejectCode.INVALID_STP_MODE, new_order(BUY, 90, 5, stp=7)),
    (RejectCode.POST_ONLY_NOT_ALLOWED, new_order(BUY, 90, 5, tif=Tif.IOC, post_only=True)),
    (RejectCode.AMEND_NO_CHANGE, amend(9, qty=5)),
    (RejectCode.ACCOUNT_MISMATCH, cancel(9, account=2)),
    (RejectCode.INVALID_ACCOUNT, new_order(BUY, 90, 5, account=0)),
]


@pytest.mark.parametrize(("code", "cmd"), REJECTS, ids=[c.name for c, _ in REJECTS])
def test_invalid_command_is_rejected_with_its_code_and_changes_nothing(
    code: RejectCode, cmd: Command
) -> None:
    book = PyBook(Book(1, 1_000_000))
    book.submit(RESTING)
    before = book.native.digest()
    [ev] = book.submit(cmd)
    assert (ev.kind, ev.code) == (REJECTED, code)
    assert (ev.account, ev.client_id, ev.side, ev.price, ev.qty) == (
        cmd.account,
        cmd.client_id,
        cmd.side,
        cmd.price,
        cmd.qty,
    )
    assert book.native.digest() == before
    assert reject_text(code) == TEXTS.get(code, reject_text(code))
    assert reject_text(code) and not reject_text(code).startswith("unknown reject code")


def test_every_reject_code_has_its_own_text() -> None:
    texts = [reject_text(c) for c in RejectCode]
    assert len(set(texts)) == len(texts)
    assert {reject_text(c) for c in TEXTS} == set(TEXTS.values())


@pytest.mark.parametrize("code", [0, 3000, 3021, 4242, -1, 70_000])
def test_unknown_reject_code_says_so(code: int) -> None:
    assert reject_text(code) == f"unknown reject code {code}"


# --- the binding's buffer handling ---------------------------------------------------------------


@pytest.mark.parametrize("length", [1, COMMAND_SIZE - 1, COMMAND_SIZE + 1, 3 * COMMAND_SIZE - 5])
def test_apply_of_a_partial_record_is_a_value_error_and_changes_nothing(length: int) -> None:
    book = Book()
    book.apply(encode_command(new_order(BUY, 90, 5)._replace(seq=1)))
    before = book.snapshot()
    with pytest.raises(ValueError, match="COMMAND_SIZE"):
        book.apply(bytes(length))
    assert book.snapshot() == before


@pytest.mark.parametrize("bad", ["text", 42, None, [1, 2]])
def test_apply_of_something_that_is_not_bytes_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        Book().apply(bad)  # type: ignore[arg-type]


def test_apply_takes_bytes_bytearray_and_memoryview_alike() -> None:
    records = b"".join(
        encode_command(c._replace(seq=i + 1))
        for i, c in enumerate([new_order(SELL, 100, 5), new_order(BUY, 100, 2, account=2)])
    )
    outs = [Book().apply(buf) for buf in (records, bytearray(records), memoryview(records))]
    assert outs[0] == outs[1] == outs[2]
    assert len(decode_events(outs[0])) == 5
    assert Book().apply(b"") == b""


def test_book_rejects_an_invalid_price_range() -> None:
    with pytest.raises(ValueError):
        Book(0, 10)
    with pytest.raises(ValueError):
        Book(10, 5)
    assert (Book(5, 50).min_price, Book(5, 50).max_price) == (5, 50)


def test_queries_with_an_invalid_side_are_value_errors() -> None:
    b = Book()
    with pytest.raises(ValueError, match="side"):
        b.depth(3, 5)
    with pytest.raises(ValueError, match="side"):
        b.level_orders(0, 100)
    with pytest.raises(ValueError, match="side"):
        b.stop_orders(7)


def test_restore_of_bytes_that_are_no_snapshot_is_a_value_error() -> None:
    for junk in (b"", b"not a snapshot", Book().snapshot()[:-1]):
        with pytest.raises(ValueError):
            Book.restore(junk)


def test_order_info_is_a_comparable_frozen_value(book: PyBook) -> None:
    book.new_order(BUY, 99, 5, client_id=3)
    a, b = book.native.order(1), book.native.order(1)
    assert a is not None and a == b and hash(a) == hash(b)
    assert "order_id=1" in repr(a)
    with pytest.raises(AttributeError):
        a.price = 5  # type: ignore[misc]


def test_vwap_and_imbalance_come_from_integer_stats(book: PyBook) -> None:
    assert vwap(book.native) is None and imbalance(book.native, 5) is None
    book.new_order(SELL, 101, 4)
    book.new_order(SELL, 103, 36)
    book.new_order(BUY, 103, 10, account=2)
    assert vwap(book.native) == pytest.approx((101 * 4 + 103 * 6) / 10)
    book.new_order(BUY, 90, 10, account=2)
    assert imbalance(book.native, 5) == pytest.approx((10 - 30) / 40)


def test_command_batch_stamps_seq_and_the_clock() -> None:
    batch = CommandBatch(first_seq=7, ts=100)
    cmds = [new_order(BUY, 90, 1), cancel(1, ts=250), amend(1, qty=3)]
    assert [batch.add(c) for c in cmds] == [7, 8, 9]
    for _ in range(100):  # past the initial capacity
        batch.add(cancel(1))
    decoded = decode_commands(batch.records())
    assert len(batch) == len(decoded) == 103
    assert [(c.seq, c.ts) for c in decoded[:3]] == [(7, 100), (8, 250), (9, 250)]
    assert decoded[0] == cmds[0]._replace(seq=7, ts=100)
    assert encode_command(decoded[2]) == batch.records()[2 * COMMAND_SIZE : 3 * COMMAND_SIZE]
    assert decoded[-1].seq == 109


# --- properties over random command streams ----------------------------------------------------

PRICES = st.integers(95, 105)


@st.composite
def new_orders(draw: st.DrawFn) -> Command:
    ord_type = draw(st.sampled_from([OrdType.LIMIT] * 5 + list(OrdType)))
    immediate = ord_type in (OrdType.MARKET, OrdType.STOP_MARKET)
    tif = draw(st.sampled_from([Tif.IOC, Tif.FOK] if immediate else [Tif.GTC] * 3 + list(Tif)))
    qty = draw(st.integers(1, 20))
    iceberg = ord_type == OrdType.LIMIT and qty > 1 and draw(st.integers(0, 4)) == 0
    return new_order(
        draw(st.sampled_from(Side)),
        draw(st.sampled_from([0, 95, 100, 105])) if immediate else draw(PRICES),
        qty,
        ord_type=ord_type,
        tif=tif,
        account=draw(st.integers(1, 3)),
        client_id=draw(st.sampled_from([0, 0, 0, 1, 2])),
        order_id=draw(st.sampled_from([0] * 8 + [3, 17])),
        stop_price=draw(PRICES) if ord_type in (OrdType.STOP_MARKET, OrdType.STOP_LIMIT) else 0,
        display_qty=draw(st.integers(1, qty - 1)) if iceberg else 0,
        stp=draw(st.sampled_from([Stp.NONE] * 4 + list(Stp))),
        stp_group=draw(st.sampled_from([0, 0, 1])),
        post_only=draw(st.integers(0, 5)) == 0,
        expire_ts=draw(st.integers(1, 300)) if tif == Tif.GTD else 0,
    )


def raw_commands(**fields: st.SearchStrategy[int]) -> st.SearchStrategy[Command]:
    """Commands with the given fields drawn and every other field 0."""
    return st.fixed_dictionaries(fields).map(lambda d: Command(**d))


TARGETS = st.integers(0, 30)
ACCOUNTS = st.integers(1, 3)
COMMANDS = st.one_of(
    new_orders(),
    new_orders(),
    new_orders(),
    st.builds(cancel, TARGETS, account=ACCOUNTS, client_id=st.integers(0, 2)),
    st.builds(amend, TARGETS, qty=st.integers(0, 20), price=st.sampled_from([0, 96, 100, 104])),
    raw_commands(kind=st.just(CmdKind.MASS_CANCEL), side=st.integers(0, 3), account=ACCOUNTS),
    raw_commands(kind=st.just(CmdKind.ADVANCE_TIME), flags=st.sampled_from([0, 2])),
    raw_commands(  # mostly rejects
        kind=st.integers(0, 6),
        side=st.integers(0, 3),
        ord_type=st.integers(0, 5),
        tif=st.integers(0, 6),
        stp=st.integers(0, 5),
        flags=st.integers(0, 3),
        order_id=TARGETS,
        account=st.integers(0, 3),
        price=st.integers(-1, 106),
        stop_price=st.integers(0, 106),
        qty=st.integers(-1, 20),
        display_qty=st.integers(0, 5),
    ),
)
STREAMS = st.lists(COMMANDS, max_size=60)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def records(cmds: list[Command]) -> list[bytes]:
    """One record per command, stamped seq = position + 1 and ts = 10 * seq."""
    return [encode_command(c._replace(seq=i + 1, ts=10 * (i + 1))) for i, c in enumerate(cmds)]


@PROPERTY
@given(STREAMS)
def test_batch_apply_equals_the_concatenation_of_single_applies(cmds: list[Command]) -> None:
    recs = records(cmds)
    whole, single = Book(1, 1_000), Book(1, 1_000)
    assert whole.apply(b"".join(recs)) == b"".join(single.apply(r) for r in recs)
    assert whole.snapshot() == single.snapshot()
    assert whole.digest() == single.digest()


@PROPERTY
@given(STREAMS, STREAMS)
def test_restored_snapshot_continues_byte_identically(
    head: list[Command], tail: list[Command]
) -> None:
    recs = records(head + tail)
    cut = b"".join(recs[: len(head)])
    rest = b"".join(recs[len(head) :])
    original = Book(1, 1_000)
    original.apply(cut)
    restored = Book.restore(original.snapshot())
    assert restored.digest() == original.digest()
    assert restored.snapshot() == original.snapshot()
    assert (restored.min_price, restored.max_price) == (1, 1_000)
    assert restored.apply(rest) == original.apply(rest)
    assert restored.snapshot() == original.snapshot()


@PROPERTY
@given(STREAMS)
def test_digest_is_equal_for_equal_states(cmds: list[Command]) -> None:
    recs = b"".join(records(cmds))
    a, b = Book(), Book()
    a.apply(recs)
    b.apply(recs)
    assert a.digest() == b.digest()
    c = Book()
    c.apply(recs)
    changed = c.apply(encode_command(new_order(BUY, 100, 1, order_id=10_000)._replace(seq=999)))
    assert decode_events(changed)[0].kind == ACCEPTED
    assert c.digest() != a.digest()


class EventModel:
    """What a client knows from the event stream alone: L2 levels and each live order's open
    quantity and price."""

    def __init__(self) -> None:
        self.levels: dict[tuple[int, int], tuple[int, int]] = {}
        self.open: dict[int, int] = {}

    def apply(self, events: list[Event]) -> None:
        for e in events:
            if e.kind == LEVEL:
                if e.qty == 0:
                    self.levels.pop((e.side, e.price), None)
                else:
                    self.levels[(e.side, e.price)] = (e.qty, e.aux)
            elif e.kind in (ACCEPTED, CANCELLED, REPLACED):
                self.open[e.order_id] = e.leaves
            elif e.kind == TRIGGERED:
                self.open[e.order_id] = e.qty
            elif e.kind == TRADE:
                self.open[e.order_id] = e.leaves
                self.open[e.counter_id] = e.aux2
        self.open = {i: q for i, q in self.open.items() if q > 0}


@PROPERTY
@given(STREAMS)
def test_depth_l3_and_order_queries_agree_with_the_event_stream(cmds: list[Command]) -> None:
    book = Book(1, 1_000)
    model = EventModel()
    for rec in records(cmds):
        model.apply(decode_events(book.apply(rec)))
        seen: dict[int, int] = {}
        for side in Side:
            depth = book.depth(side, 1_000)
            expected = sorted(
                ((p, q, n) for (s, p), (q, n) in model.levels.items() if s == side),
                reverse=side == BUY,
            )
            assert depth == expected
            assert book.depth(side, 2) == expected[:2]
            best = book.best_bid() if side == BUY else book.best_ask()
            assert best == (expected[0] if expected else None)
            for price, qty, count in depth:
                queue = book.level_orders(side, price)
                assert (sum(o.visible for o in queue), len(queue)) == (qty, count)
                assert all(not o.is_stop and o.price == price for o in queue)
                seen.update((o.order_id, o.open) for o in queue)
            seen.update((o.order_id, o.open) for o in book.stop_orders(side))
        assert seen == model.open
        assert book.order_count() == len(model.open)
        for order_id, open_qty in model.open.items():
            info = book.order(order_id)
            assert info is not None and info.open == open_qty
        totals = tuple(sum(q for _, q, _ in book.depth(side, 3)) for side in Side)
        assert book.depth_totals(3) == totals
