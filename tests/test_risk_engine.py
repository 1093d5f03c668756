"""The risk engine through its Python binding (engine._native.RiskEngine).

Checks are specified in docs/risk.md. Each check is tested at its boundary (just inside passes,
just outside is rejected with its code and changes nothing), positions and P&L against a
hand-computed ledger and, with hypothesis, against a simple Python model of the trades, plus the
controls (kill switch, halt), snapshot/restore and the analytics functions.
"""

from __future__ import annotations

import math
import statistics
import struct
from array import array
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine._native import (
    RISK_REJECT_TEXTS,
    AccountLimits,
    RiskEngine,
    SymbolRisk,
    calculate_position_stats,
    calculate_sharpe,
    risk_reject_text,
)
from engine.book import (
    Book,
    Command,
    Event,
    EventKind,
    OrdType,
    Side,
    Tif,
    advance_time,
    amend,
    cancel,
    decode_events,
    encode_command,
    mass_cancel,
    new_order,
)

SYM = 7
BUY, SELL = Side.BUY, Side.SELL
OPEN, HALTED, CLOSED = 1, 2, 3


@dataclass
class Venue:
    """A risk engine in front of one real book per symbol, driven as the daemon drives them:
    stamp seq and ts, check, apply what passed, feed the book's events back."""

    risk: RiskEngine
    books: dict[int, Book] = field(default_factory=dict)
    seq: int = 0
    ts: int = 1_000_000_000
    step: int = 1_000

    @classmethod
    def one(cls, limits: AccountLimits | None = None, **symbol: Any) -> Venue:
        return cls.of([SymbolRisk(SYM, **symbol)], limits)

    @classmethod
    def of(cls, symbols: list[SymbolRisk], limits: AccountLimits | None = None) -> Venue:
        return cls(RiskEngine(symbols, limits), {s.symbol: Book() for s in symbols})

    def stamp(self, cmd: Command) -> bytes:
        self.seq += 1
        self.ts += self.step
        return encode_command(cmd._replace(seq=self.seq, ts=self.ts))

    def batch(self, cmds: list[tuple[int, Command]]) -> tuple[list[int], list[Event]]:
        """Check the whole batch, then apply what passed; return verdicts and all events."""
        records = [self.stamp(c) for _, c in cmds]
        symbols = array("I", [s for s, _ in cmds])
        raw = self.risk.check_batch(symbols.tobytes(), b"".join(records))
        verdicts = list(struct.unpack(f"<{len(cmds)}H", raw))
        events: list[Event] = []
        for (symbol, _), record, verdict in zip(cmds, records, verdicts, strict=True):
            if verdict == 0:
                out = self.books[symbol].apply(record)
                self.risk.on_events(symbol, out)
                events.extend(decode_events(out))
        return verdicts, events

    def send(self, cmd: Command, symbol: int = SYM) -> list[Event]:
        """Send one command that must pass; return its events."""
        verdicts, events = self.batch([(symbol, cmd)])
        assert verdicts == [0], f"{cmd} rejected with {verdicts[0]}"
        return events

    def code(self, cmd: Command, symbol: int = SYM) -> int:
        return self.batch([(symbol, cmd)])[0][0]

    def place(self, cmd: Command) -> int:
        """Send a new order that must be accepted; return its order id."""
        (accepted,) = [e for e in self.send(cmd) if e.kind == EventKind.ACCEPTED]
        return accepted.order_id

    def boundary(self, inside: Command, outside: Command, code: int) -> None:
        before = self.risk.digest()
        assert self.code(outside) == code, outside
        assert self.risk.digest() == before, "a rejected command changed the risk state"
        assert self.code(inside) == 0, inside


def limit(side: int, price: int, qty: int, account: int = 1, **kw: Any) -> Command:
    return new_order(side, price, qty, account=account, **kw)


def ioc(side: int, price: int, qty: int, account: int = 1) -> Command:
    return new_order(side, price, qty, account=account, tif=Tif.IOC)


def market(side: int, qty: int, protection: int = 0, account: int = 1) -> Command:
    return new_order(side, protection, qty, account=account, ord_type=OrdType.MARKET, tif=Tif.IOC)


def stop_limit(side: int, stop: int, price: int, qty: int, account: int = 1) -> Command:
    return new_order(
        side, price, qty, account=account, ord_type=OrdType.STOP_LIMIT, stop_price=stop
    )


# --- codes ---------------------------------------------------------------------------------------


def test_every_risk_code_from_2001_to_2025_has_a_text() -> None:
    assert sorted(RISK_REJECT_TEXTS) == list(range(2001, 2026))
    for code, text in RISK_REJECT_TEXTS.items():
        assert risk_reject_text(code) == text
    assert risk_reject_text(2012) == "limit price outside the price band"
    assert risk_reject_text(3001) == "unknown risk reject code 3001"


def test_risk_codes_of_the_basic_checks_agree_with_the_engine() -> None:
    from engine.codes import RiskCode, text

    for code in RiskCode:
        assert risk_reject_text(code) == text(code)


# --- pre-trade checks at their boundaries --------------------------------------------------------


def test_unknown_symbol_is_rejected_with_code_2001() -> None:
    v = Venue.one()
    raw = v.risk.check_batch(99, encode_command(limit(BUY, 100, 1)))
    assert struct.unpack("<H", raw) == (2001,)


def test_closed_symbol_rejects_everything_with_2002_and_halted_allows_cancels() -> None:
    v = Venue.one()
    oid = v.place(limit(BUY, 100, 1))
    v.risk.set_symbol_state(SYM, HALTED)
    assert v.code(limit(SELL, 100, 1)) == 2003
    assert v.code(amend(oid, 2)) == 2003
    v.risk.set_symbol_state(SYM, CLOSED)
    assert v.code(cancel(oid)) == 2002
    v.risk.set_symbol_state(SYM, HALTED)
    assert v.code(cancel(oid)) == 0
    symbol = v.risk.symbol(SYM)
    assert symbol is not None and symbol["state"] == HALTED


def test_disabled_account_is_rejected_with_2004() -> None:
    v = Venue.one()
    v.risk.set_enabled(1, False)
    assert v.code(limit(BUY, 100, 1)) == 2004
    assert v.code(limit(BUY, 100, 1, account=2)) == 0
    v.risk.set_enabled(1, True)
    assert v.code(limit(BUY, 100, 1)) == 0


def test_kill_switch_rejects_with_2005_and_names_the_symbols_to_mass_cancel() -> None:
    v = Venue.of([SymbolRisk(SYM), SymbolRisk(8)])
    v.send(limit(BUY, 100, 1))
    v.send(limit(SELL, 200, 1), symbol=8)
    assert v.risk.set_killed(1, True) == [SYM, 8]
    assert v.code(limit(BUY, 100, 1)) == 2005
    verdicts, _ = v.batch([(SYM, mass_cancel(1)), (8, mass_cancel(1))])
    assert verdicts == [0, 0]
    account = v.risk.account(1)
    assert account is not None
    assert (account["killed"], account["open_orders"]) == (True, 0)
    assert v.risk.set_killed(1, False) == []
    assert v.code(limit(BUY, 100, 1)) == 0


BOUNDARIES = [
    # id, symbol config, account limits, setup commands, inside, outside, code
    ("tick", {"tick": 5}, {}, [], limit(BUY, 1005, 1), limit(BUY, 1004, 1), 2006),
    ("lot", {"lot": 10, "min_qty": 10}, {}, [], limit(BUY, 100, 20), limit(BUY, 100, 25), 2007),
    ("min_qty", {"min_qty": 20}, {}, [], limit(BUY, 100, 20), limit(BUY, 100, 19), 2008),
    ("max_qty", {"max_qty": 1000}, {}, [], limit(BUY, 100, 1000), limit(BUY, 100, 1001), 2009),
    ("no_reference", {}, {}, [], market(BUY, 1, protection=105), market(BUY, 1), 2010),
    (
        "max_notional",
        {"max_notional": 100_000},
        {},
        [],
        limit(BUY, 1000, 100),
        limit(BUY, 1000, 101),
        2011,
    ),
    (
        "band_ticks",
        {"reference_price": 1000, "band_ticks": 50},
        {},
        [],
        limit(BUY, 1050, 1),
        limit(BUY, 1051, 1),
        2012,
    ),
    (
        "band_bps",
        {"reference_price": 1000, "band_bps": 250},
        {},
        [],
        limit(SELL, 975, 1),
        limit(SELL, 974, 1),
        2012,
    ),
    (
        "stop_limit_band",
        {"band_ticks": 20},
        {},
        [],
        stop_limit(BUY, 2000, 2020, 1),
        stop_limit(BUY, 2000, 2021, 1),
        2012,
    ),
    (
        "market_band",
        {"reference_price": 1000, "market_band_ticks": 30},
        {},
        [],
        market(BUY, 1, protection=1030),
        market(BUY, 1, protection=1031),
        2013,
    ),
    (
        "open_buy_notional",
        {},
        {"max_open_buy_notional": 10_000},
        [limit(BUY, 100, 60)],
        limit(BUY, 100, 40),
        limit(BUY, 100, 41),
        2016,
    ),
    (
        "open_sell_notional",
        {},
        {"max_open_sell_notional": 10_000},
        [limit(SELL, 100, 60)],
        limit(SELL, 100, 40),
        limit(SELL, 100, 41),
        2017,
    ),
    (
        "position",
        {},
        {"max_position": 100},
        [limit(SELL, 100, 30, account=2), ioc(BUY, 100, 30), limit(BUY, 90, 50)],
        limit(BUY, 90, 20),
        limit(BUY, 90, 21),
        2018,
    ),
    (
        "credit",
        {},
        {"credit_limit": 10_000},
        [limit(SELL, 100, 30, account=2), ioc(BUY, 100, 30), limit(BUY, 100, 20)],
        limit(BUY, 100, 50),
        limit(BUY, 100, 51),
        2019,
    ),
    (
        "duplicate_client_id",
        {},
        {},
        [limit(BUY, 100, 1, client_id=55)],
        limit(BUY, 100, 1, client_id=56),
        limit(BUY, 100, 1, client_id=55),
        2020,
    ),
]


@pytest.mark.parametrize(
    ("symbol", "limits", "setup", "inside", "outside", "code"),
    [pytest.param(*case[1:], id=case[0]) for case in BOUNDARIES],
)
def test_check_passes_just_inside_and_rejects_just_outside_with_its_code(
    symbol: dict[str, int],
    limits: dict[str, int],
    setup: list[Command],
    inside: Command,
    outside: Command,
    code: int,
) -> None:
    v = Venue.one(AccountLimits(**limits), **symbol)
    for cmd in setup:
        v.send(cmd)
    v.boundary(inside, outside, code)


def test_too_many_open_orders_is_rejected_with_2015_until_one_is_done() -> None:
    v = Venue.one(AccountLimits(max_open_orders=2))
    first = v.place(limit(BUY, 100, 1))
    v.send(limit(BUY, 100, 1))
    before = v.risk.digest()
    assert v.code(limit(BUY, 100, 1)) == 2015
    assert v.risk.digest() == before
    v.send(cancel(first))
    assert v.code(limit(BUY, 100, 1)) == 0


def test_live_order_id_is_rejected_with_2022() -> None:
    v = Venue.one()
    v.send(limit(BUY, 100, 1, order_id=500))
    assert v.code(limit(BUY, 100, 1, order_id=500)) == 2022
    assert v.code(limit(BUY, 100, 1, order_id=501)) == 0


def test_order_rate_is_a_token_bucket_in_sequenced_time_rejecting_with_2014() -> None:
    v = Venue.one(AccountLimits(rate_per_sec=10, rate_burst=3))
    v.step = 0
    assert [v.code(limit(BUY, 100, 1)) for _ in range(4)] == [0, 0, 0, 2014]
    assert v.code(limit(BUY, 100, 1, account=2)) == 0
    v.ts += 99_999_999
    assert v.code(limit(BUY, 100, 1)) == 2014
    v.ts += 1
    assert v.code(limit(BUY, 100, 1)) == 0


def test_amend_is_checked_for_what_it_adds() -> None:
    v = Venue.one(AccountLimits(max_open_sell_notional=10_000))
    oid = v.place(limit(SELL, 200, 20))
    v.boundary(amend(oid, 50), amend(oid, 51), 2017)
    assert v.code(amend(oid, 10)) == 0
    account = v.risk.account(1)
    assert account is not None and account["open_sell_notional"] == 2_000


def test_commands_of_one_batch_see_each_others_reservations() -> None:
    v = Venue.one(AccountLimits(max_open_orders=2))
    verdicts, _ = v.batch([(SYM, limit(BUY, 100, 1)) for _ in range(3)])
    assert verdicts == [0, 0, 2015]


def test_check_batch_takes_one_symbol_for_all_records_or_one_per_record() -> None:
    v = Venue.one()
    records = v.stamp(limit(BUY, 100, 1)) + v.stamp(limit(BUY, 100, 1))
    assert v.risk.check_batch(SYM, records) == bytes(4)
    per_record = array("I", [SYM, 99]).tobytes()
    assert struct.unpack("<2H", v.risk.check_batch(per_record, records)) == (0, 2001)
    with pytest.raises(ValueError):
        v.risk.check_batch(SYM, records[:-1])
    with pytest.raises(ValueError):
        v.risk.check_batch(array("I", [SYM]).tobytes(), records)


def test_bad_configuration_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        SymbolRisk(1, tick=0)
    with pytest.raises(ValueError):
        SymbolRisk(1, band_ticks=5, band_bps=10)
    with pytest.raises(ValueError):
        SymbolRisk(1, state=4)
    with pytest.raises(ValueError):
        AccountLimits(rate_burst=5)
    with pytest.raises(ValueError):
        RiskEngine([SymbolRisk(1), SymbolRisk(1)])
    limits = AccountLimits(max_open_orders=3, rate_per_sec=50)
    assert (limits.max_open_orders, limits.credit_limit) == (3, None)
    assert (limits.rate_per_sec, limits.rate_burst) == (50, 50)


# --- post-trade ----------------------------------------------------------------------------------

LEDGER = [
    # maker side, price, qty; account 2 makes, account 1 takes the other side
    (SELL, 100, 10),
    (SELL, 130, 5),
    (BUY, 120, 6),
    (BUY, 90, 12),
    (SELL, 80, 1),
]


def test_positions_and_pnl_match_a_hand_computed_ledger() -> None:
    v = Venue.one()
    for maker_side, price, qty in LEDGER:
        v.send(limit(maker_side, price, qty, account=2))
        v.send(ioc(BUY if maker_side == SELL else SELL, price, qty, account=1))
    # Account 1: +10@100, +5@130 (avg 110), -6@120 (+60), -12@90 (-180, then short 3 @ 90),
    # +1@80 (+10): short 2 at 90, realized -110, marked at the last trade 80: +20.
    (p1,) = v.risk.positions(1)
    assert (p1["net_qty"], p1["cost"], p1["avg_price"]) == (-2, -180, 90.0)
    assert (p1["realized_pnl"], p1["mark_price"], p1["unrealized_pnl"]) == (-110, 80, 20)
    (p2,) = v.risk.positions(2)
    assert (p2["net_qty"], p2["realized_pnl"], p2["unrealized_pnl"]) == (2, 110, -20)
    fills = [(BUY if m == SELL else SELL, q, p) for m, p, q in LEDGER]
    stats = calculate_position_stats(fills, 80)
    assert (stats["net_qty"], stats["realized_pnl"], stats["total_pnl"]) == (-2, -110, -90)


def test_exposure_is_freed_by_fill_cancel_and_expiry() -> None:
    v = Venue.one()

    def usage() -> tuple[int, int, int]:
        a = v.risk.account(1)
        assert a is not None
        return a["open_orders"], a["open_buy_notional"], a["open_sell_notional"]

    oid = v.place(limit(BUY, 100, 10))
    v.send(limit(SELL, 100, 4, account=2))
    assert usage() == (1, 600, 0)
    v.send(cancel(oid))
    assert usage() == (0, 0, 0)
    v.send(new_order(SELL, 300, 4, tif=Tif.GTD, expire_ts=v.ts + 5_000))
    v.send(new_order(BUY, 90, 3, tif=Tif.DAY))
    assert usage() == (2, 270, 1200)
    v.ts += 10_000
    v.send(advance_time(0))
    assert usage() == (1, 270, 0)
    v.send(advance_time(0, end_of_day=True))
    assert usage() == (0, 0, 0)


def trunc_div(a: int, b: int) -> int:
    """Integer division rounded toward zero (as the engine's i128 division), b > 0."""
    return a // b if a >= 0 else -(-a // b)


@dataclass
class ModelPosition:
    net: int = 0
    cost: int = 0
    realized: int = 0

    def fill(self, side: int, qty: int, price: int) -> None:
        dq = qty if side == BUY else -qty
        if self.net == 0 or (self.net > 0) == (dq > 0):
            self.net += dq
            self.cost += dq * price
            return
        closed = min(abs(dq), abs(self.net))
        taken = trunc_div(self.cost * closed, abs(self.net))
        sign = 1 if self.net > 0 else -1
        self.realized += sign * price * closed - taken
        self.cost -= taken
        rest = abs(dq) - closed
        if rest:
            self.cost = (1 if dq > 0 else -1) * rest * price
        self.net += dq


orders = st.tuples(
    st.integers(1, 3),  # account
    st.sampled_from([BUY, SELL]),
    st.integers(95, 105),  # price
    st.integers(1, 30),  # qty
    st.booleans(),  # IOC
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(orders, min_size=1, max_size=80))
def test_positions_follow_a_simple_model_of_the_trades(
    flow: list[tuple[int, int, int, int, bool]],
) -> None:
    v = Venue.one()
    model: dict[int, ModelPosition] = {}
    last = 0
    for account, side, price, qty, is_ioc in flow:
        cmd = ioc(side, price, qty, account) if is_ioc else limit(side, price, qty, account)
        for e in v.send(cmd):
            if e.kind == EventKind.TRADE:
                taker_side = SELL if e.side == BUY else BUY
                model.setdefault(e.account, ModelPosition()).fill(e.side, e.qty, e.price)
                taker = model.setdefault(e.counter_account, ModelPosition())
                taker.fill(taker_side, e.qty, e.price)
                last = e.price
    book = v.books[SYM]
    for account in v.risk.account_ids():
        m = model.get(account, ModelPosition())
        positions = v.risk.positions(account)
        got = (positions[0]["net_qty"], positions[0]["cost"], positions[0]["realized_pnl"])
        assert got == (m.net, m.cost, m.realized)
        assert positions[0]["unrealized_pnl"] == (m.net * last - m.cost if m.net and last else 0)
        # Live orders agree with the book.
        for o in v.risk.orders(account):
            info = book.order(o["order_id"])
            assert info is not None and (info.account, info.open) == (account, o["open"])
    assert v.risk.live_orders() == book.order_count()
    # Cancelling everything frees all exposure.
    v.batch([(SYM, mass_cancel(a)) for a in v.risk.account_ids()])
    for account in v.risk.account_ids():
        a = v.risk.account(account)
        assert a is not None
        assert (a["open_orders"], a["open_buy_notional"], a["open_sell_notional"]) == (0, 0, 0)


# --- controls, recovery --------------------------------------------------------------------------


def test_halt_under_load_refuses_orders_that_would_trade_and_lets_cancels_through() -> None:
    v = Venue.one()
    ids = [v.place(limit(BUY, 90 + i % 5, 1, account=1 + i % 3)) for i in range(30)]
    v.risk.set_symbol_state(SYM, HALTED)
    cmds: list[tuple[int, Command]] = []
    for i, oid in enumerate(ids):
        cmds.append((SYM, cancel(oid, account=1 + i % 3)))
        cmds.append((SYM, limit(SELL, 50, 1, account=1 + i % 3)))
    verdicts, events = v.batch(cmds)
    assert verdicts == [0, 2003] * 30
    assert not [e for e in events if e.kind == EventKind.TRADE]
    assert v.risk.live_orders() == 0


def test_limits_and_state_survive_snapshot_and_restore() -> None:
    v = Venue.one(AccountLimits(max_open_orders=5), band_ticks=10, reference_price=100)
    v.risk.set_limits(1, AccountLimits(max_open_orders=1))
    v.risk.set_killed(3, True)
    v.send(limit(BUY, 100, 1, client_id=9))
    snap = v.risk.snapshot()
    restored = RiskEngine.restore(snap)
    assert restored.snapshot() == snap
    assert restored.digest() == v.risk.digest()
    assert restored.account(1) == v.risk.account(1)
    v.risk = restored
    assert v.code(limit(BUY, 100, 1)) == 2015
    assert v.code(limit(BUY, 100, 1, account=3)) == 2005
    assert v.code(limit(BUY, 111, 1, account=2)) == 2012
    v.risk.reset_limits(1)
    assert v.code(limit(BUY, 100, 1, client_id=9)) == 2020
    with pytest.raises(ValueError):
        RiskEngine.restore(snap[:-1])
    with pytest.raises(ValueError):
        RiskEngine.restore(b"not a snapshot")


def test_account_view_shows_limits_usage_and_switches() -> None:
    v = Venue.one(AccountLimits(credit_limit=1_000_000, rate_per_sec=100, rate_burst=10))
    v.send(limit(BUY, 100, 5))
    a = v.risk.account(1)
    assert a is not None
    assert a["limits"]["credit_limit"] == 1_000_000
    assert a["limits"]["max_open_orders"] is None
    assert (a["enabled"], a["killed"], a["custom_limits"]) == (True, False, False)
    assert (a["open_orders"], a["open_buy_notional"], a["credit_used"]) == (1, 500, 500)
    assert a["rate_tokens"] == 9
    assert v.risk.account(42) is None
    (o,) = v.risk.orders(1)
    assert (o["side"], o["price"], o["open"], o["in_flight"]) == (BUY, 100, 5, False)


# --- analytics -----------------------------------------------------------------------------------


def test_sharpe_ratio_matches_the_textbook_formula() -> None:
    returns = [0.01, -0.02, 0.03, 0.0, 0.015]
    expected = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(252)
    assert calculate_sharpe(returns) == pytest.approx(expected, rel=1e-12)
    excess = [r - 0.001 for r in returns]
    expected_rf = statistics.mean(excess) / statistics.stdev(excess)
    assert calculate_sharpe(returns, 0.001, 1.0) == pytest.approx(expected_rf, rel=1e-12)
    assert calculate_sharpe([0.01]) is None
    assert calculate_sharpe([0.02, 0.02]) is None
    assert calculate_sharpe([0.01, math.nan]) is None


def test_position_stats_of_fills() -> None:
    s = calculate_position_stats([(BUY, 3, 10), (BUY, 1, 11), (SELL, 1, 12)], 12)
    assert (s["net_qty"], s["cost"], s["realized_pnl"], s["unrealized_pnl"]) == (3, 31, 2, 5)
    assert s["avg_price"] == pytest.approx(31 / 3)
    assert (s["vwap_buy"], s["vwap_sell"]) == (10.25, 12.0)
    with pytest.raises(ValueError):
        calculate_position_stats([(3, 1, 10)])
