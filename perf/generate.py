"""Make recorded flows: a seeded synthetic market, or a LOBSTER day converted.

    python -m perf.generate synthetic --seed S --orders N [--symbols K --accounts A]
                                      [--depth D --rate R --mix L,I,M,C,A] --out FILE
    python -m perf.generate lobster MESSAGE_CSV|LOBSTER_ZIP [--symbol NAME] --out FILE

Synthetic (in the spirit of exchange-core's TestOrdersGenerator): A accounts (one session each)
and K symbols, both with Pareto-distributed activity; every book is first filled with resting
limit orders on D price levels per side, then N commands follow, mixed by the weights of
--mix (limit GTC, IOC, market, cancel, amend; default 45,10,5,25,15). Passive prices sit around
the symbol's last trade price, aggressive ones cross the opposite best; a side that thins out
below D/2 levels is refilled first. Cancels and amends name a live order of the sending
account by client order id. Arrivals are Poisson at R messages/s (the planned send times).
The generator keeps its own native book per symbol to make these choices. The same arguments
give the same file, byte for byte.

LOBSTER: `perf.lobster.lobster_commands` (docs/lobster.md) turns a NASDAQ message file into
book commands (seed orders first, visible executions as incoming IOC orders of the opposite
side); here each order is named by a client order id (its LOBSTER-derived id) so that cancels
and amends work whatever order ids the engine gives, resting orders come from account 1 and
incoming ones from account 2, and the planned times are the message times (a real day: replay
it with --speed or --rate).

Either way the header stores the expected final book (perf/replay_engine.py).
"""

from __future__ import annotations

import argparse
import random
import re
import struct
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.book import (
    COMMAND_SIZE,
    Book,
    CmdKind,
    Command,
    EventKind,
    OrdType,
    Side,
    Tif,
    encode_command,
)
from engine.wire import encode_requests
from perf.flow import Flow, FlowError, Session, Symbol, write_flow
from perf.replay_engine import expected_books

__all__ = ["SyntheticParams", "lobster_flow", "main", "synthetic_flow"]

MIX_NAMES = ("limit", "ioc", "market", "cancel", "amend")
_U64 = struct.Struct("<Q")
_TICKS = (1, 5, 10, 25)


@dataclass(frozen=True)
class SyntheticParams:
    seed: int = 1
    orders: int = 10_000
    symbols: int = 4
    accounts: int = 32
    depth: int = 10
    rate: float = 10_000.0
    mix: tuple[int, int, int, int, int] = (45, 10, 5, 25, 15)
    pareto_alpha: float = 1.5
    levels: int = 10


class _Market:
    """One symbol: its native book (the generator's model), live orders, price scale."""

    def __init__(self, index: int, symbol: Symbol, center: int) -> None:
        self.index = index
        self.symbol = symbol
        self.tick = symbol.tick_size
        self.book = Book(symbol.min_price, symbol.max_price)
        self.center = center
        self.live: list[tuple[int, int, int]] = []  # (engine order id, account, client id)

    def ref(self) -> int:
        """The price activity follows: the last trade, else the starting center."""
        last = self.book.stats()[0]
        return last if last > 0 else self.center

    def clip(self, price: int) -> int:
        return max(self.symbol.min_price, min(self.symbol.max_price, price))


class _Synth:
    def __init__(self, p: SyntheticParams) -> None:
        self.p = p
        self.rng = random.Random(p.seed)
        rng = self.rng
        self.markets = []
        for k in range(p.symbols):
            tick = _TICKS[k % len(_TICKS)]
            center = rng.randint(2_000, 20_000) * tick
            sym = Symbol(
                name=f"SYN{k}",
                tick_size=tick,
                lot_size=1,
                price_precision=2,
                min_price=tick,
                max_price=tick * 10_000_000,
                reference_price=center,
                price_band_bps=0,
                max_order_qty=1_000_000,
            )
            self.markets.append(_Market(k, sym, center))
        self.symbol_weights = self._cumulative(p.symbols)
        self.account_weights = self._cumulative(p.accounts)
        self.next_cid = [0] * (p.accounts + 1)
        self.records = bytearray()
        self.symbol_of = bytearray()
        self.session_of: list[int] = []
        self.times: list[int] = []
        self.t = 0.0

    def _cumulative(self, n: int) -> list[float]:
        weights = sorted(
            (self.rng.paretovariate(self.p.pareto_alpha) for _ in range(n)), reverse=True
        )
        out, total = [], 0.0
        for w in weights:
            total += w
            out.append(total)
        return out

    def _account(self) -> int:
        return self.rng.choices(range(1, self.p.accounts + 1), cum_weights=self.account_weights)[0]

    def _qty(self) -> int:
        return min(5_000, int(self.rng.paretovariate(1.6) * 4))

    def _emit(self, m: _Market, cmd: Command) -> bytes:
        rec = encode_command(cmd)
        self.records += rec
        self.symbol_of += struct.pack("<I", m.index)
        self.session_of.append(cmd.account - 1)
        self.times.append(int(self.t))
        self.t += self.rng.expovariate(self.p.rate) * 1e9
        return m.book.apply(rec)

    def new(self, m: _Market, side: int, price: int, qty: int, ord_type: int, tif: int) -> None:
        account = self._account()
        self.next_cid[account] += 1
        cid = self.next_cid[account]
        cmd = Command(
            kind=CmdKind.NEW,
            side=side,
            ord_type=ord_type,
            tif=tif,
            account=account,
            client_id=cid,
            price=m.clip(price) if price else 0,
            qty=qty,
        )
        events = self._emit(m, cmd)
        if tif == Tif.GTC and events and events[0] == EventKind.ACCEPTED:
            (oid,) = _U64.unpack_from(events, 16)
            if m.book.order(oid) is not None:
                m.live.append((oid, account, cid))

    def _pick_live(self, m: _Market) -> tuple[int, int, int] | None:
        """A random live order (index, account, client id); dead ones are dropped on the way."""
        while m.live:
            k = self.rng.randrange(len(m.live))
            oid, account, cid = m.live[k]
            if m.book.order(oid) is not None:
                return k, account, cid
            m.live[k] = m.live[-1]
            m.live.pop()
        return None

    def passive(self, m: _Market, side: int) -> None:
        rng, ref, tick = self.rng, m.ref(), m.tick
        offset = 1 + int(rng.expovariate(3.0 / self.p.depth))
        if side == Side.BUY:
            price = ref - offset * tick
            ask = m.book.best_ask()
            if ask is not None:
                price = min(price, ask[0] - tick)
        else:
            price = ref + offset * tick
            bid = m.book.best_bid()
            if bid is not None:
                price = max(price, bid[0] + tick)
        self.new(m, side, price, self._qty(), OrdType.LIMIT, Tif.GTC)

    def aggressive(self, m: _Market, side: int, ord_type: int, tif: int) -> None:
        rng, tick = self.rng, m.tick
        opposite = m.book.best_ask() if side == Side.BUY else m.book.best_bid()
        base = opposite[0] if opposite is not None else m.ref()
        reach = rng.randint(0, 2) if ord_type == OrdType.LIMIT else self.p.depth
        price = base + reach * tick if side == Side.BUY else base - reach * tick
        self.new(m, side, price, self._qty(), ord_type, tif)

    def cancel(self, m: _Market) -> bool:
        picked = self._pick_live(m)
        if picked is None:
            return False
        k, account, cid = picked
        self._emit(m, Command(kind=CmdKind.CANCEL, account=account, client_id=cid))
        m.live[k] = m.live[-1]
        m.live.pop()
        return True

    def amend(self, m: _Market) -> bool:
        picked = self._pick_live(m)
        if picked is None:
            return False
        k, account, cid = picked
        info = m.book.order(m.live[k][0])
        if info is None:
            return False
        qty, price = info.open, info.price
        if self.rng.random() < 0.5:
            qty = max(1, qty + self.rng.randint(-qty // 2, qty // 2 + 1))
        else:
            step = self.rng.choice((-3, -2, -1, 1, 2, 3)) * m.tick
            price = m.clip(price + step)
        if (qty, price) == (info.open, info.price):
            qty += 1
        self._emit(
            m, Command(kind=CmdKind.AMEND, account=account, client_id=cid, price=price, qty=qty)
        )
        return True

    def fill(self) -> None:
        for m in self.markets:
            for level in range(1, self.p.depth + 1):
                for side in (Side.BUY, Side.SELL):
                    for _ in range(self.rng.randint(1, 3)):
                        sign = -1 if side == Side.BUY else 1
                        price = m.center + sign * level * m.tick
                        self.new(m, side, price, self._qty(), OrdType.LIMIT, Tif.GTC)

    def step(self) -> None:
        rng, p = self.rng, self.p
        m = self.markets[rng.choices(range(p.symbols), cum_weights=self.symbol_weights)[0]]
        half = max(1, p.depth // 2)
        for side in (Side.BUY, Side.SELL):
            if len(m.book.depth(side, half)) < half:
                self.passive(m, side)
                return
        action = rng.choices(MIX_NAMES, weights=p.mix)[0]
        side = rng.choice((Side.BUY, Side.SELL))
        if action == "limit":
            if rng.random() < 0.85:
                self.passive(m, side)
            else:
                self.aggressive(m, side, OrdType.LIMIT, Tif.GTC)
        elif action == "ioc":
            self.aggressive(m, side, OrdType.LIMIT, Tif.IOC)
        elif action == "market":
            self.aggressive(m, side, OrdType.MARKET, Tif.IOC)
        elif not (self.cancel(m) if action == "cancel" else self.amend(m)):
            self.passive(m, side)


def synthetic_flow(p: SyntheticParams) -> Flow:
    if min(p.orders, p.symbols, p.accounts, p.depth, p.levels) < 1 or p.rate <= 0:
        raise ValueError("orders, symbols, accounts, depth, levels and rate must be positive")
    if len(p.mix) != len(MIX_NAMES) or min(p.mix) < 0 or sum(p.mix) == 0:
        raise ValueError("--mix needs 5 non-negative weights (limit,ioc,market,cancel,amend)")
    g = _Synth(p)
    g.fill()
    fill = len(g.times)
    for _ in range(p.orders):
        g.step()
    symbols = [m.symbol for m in g.markets]
    wire = encode_requests(bytes(g.records), bytes(g.symbol_of), [s.name for s in symbols])
    params = asdict(p)
    params["mix"] = dict(zip(MIX_NAMES, p.mix, strict=True))
    flow = Flow.build(
        symbols,
        [Session(a) for a in range(1, p.accounts + 1)],
        {
            "kind": "synthetic",
            "seed": p.seed,
            "generator": "perf.generate synthetic/1",
            "params": params,
        },
        g.times,
        g.session_of,
        wire,
        levels=p.levels,
        extra={"fill_messages": fill},
    )
    flow.expected = expected_books(flow)
    model = {m.symbol.name: m.book for m in g.markets}
    for name, want in flow.expected.items():  # the generator's books and the reference agree
        book = model[name]
        if want.bids != tuple(book.depth(Side.BUY, p.levels)) or want.asks != tuple(
            book.depth(Side.SELL, p.levels)
        ):
            raise FlowError(f"internal: generator and reference disagree on {name}")
    return flow


_TICKER = re.compile(r"(?:^|_)([A-Z][A-Z0-9.]{0,15})_\d{4}-\d{2}-\d{2}")


def lobster_flow(path: str | Path, *, symbol: str | None = None, levels: int = 10) -> Flow:
    """A LOBSTER message file (or zip) as a recorded flow (see the module doc)."""
    from perf.lobster import lobster_commands

    records = bytearray(lobster_commands(path))
    name = symbol
    if name is None:
        found = _TICKER.search(Path(path).name)
        name = found.group(1) if found else "LOBSTER"
    n = len(records) // COMMAND_SIZE
    keep = bytearray()
    times: list[int] = []
    accounts: dict[int, int] = {}
    session_of: list[int] = []
    t0: int | None = None
    last_t, max_price, first_price = 0, 1, 0
    for i in range(n):
        rec = records[i * COMMAND_SIZE : (i + 1) * COMMAND_SIZE]
        if rec[0] not in (CmdKind.NEW, CmdKind.CANCEL, CmdKind.AMEND):
            continue
        (ts,) = _U64.unpack_from(rec, 16)
        (order_id,) = _U64.unpack_from(rec, 24)
        (account,) = _U64.unpack_from(rec, 32)
        (price,) = struct.unpack_from("<q", rec, 48)
        rec[40:48] = rec[24:32]  # the order is named by its client order id ...
        rec[24:32] = bytes(8)  # ... not by an engine order id
        if order_id == 0:
            raise FlowError(f"record {i}: an order without an id cannot be named by client id")
        t0 = ts if t0 is None else t0
        last_t = max(last_t, ts - t0)
        times.append(last_t)
        session_of.append(accounts.setdefault(account, len(accounts)))
        max_price = max(max_price, price)
        first_price = first_price or price
        keep += rec
    sym = Symbol(
        name=name,
        tick_size=1,
        lot_size=1,
        price_precision=4,
        min_price=1,
        max_price=max(1 << 40, max_price * 10),
        reference_price=first_price,
        price_band_bps=0,
        max_order_qty=1 << 40,
    )
    count = len(times)
    wire = encode_requests(bytes(keep), bytes(4 * count), [name])
    flow = Flow.build(
        [sym],
        [Session(a) for a in accounts],
        {"kind": "lobster", "file": Path(path).name, "converter": "perf.generate lobster/1"},
        times,
        session_of,
        wire,
        levels=levels,
    )
    flow.expected = expected_books(flow)
    return flow


def _mix(text: str) -> tuple[int, int, int, int, int]:
    parts = [int(x) for x in text.split(",")]
    if len(parts) != 5:
        raise argparse.ArgumentTypeError("5 weights: limit,ioc,market,cancel,amend")
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m perf.generate",
        description="Make a recorded flow file (docs/performance.md).",
    )
    sub = p.add_subparsers(dest="kind", required=True)
    d = SyntheticParams()
    s = sub.add_parser("synthetic", help="seeded synthetic market")
    s.add_argument("--seed", type=int, default=d.seed)
    s.add_argument("--orders", type=int, default=d.orders, help="commands after the fill")
    s.add_argument("--symbols", type=int, default=d.symbols)
    s.add_argument("--accounts", type=int, default=d.accounts, help="one session each")
    s.add_argument("--depth", type=int, default=d.depth, help="price levels per side to keep")
    s.add_argument("--rate", type=float, default=d.rate, help="planned messages per second")
    s.add_argument("--mix", type=_mix, default=d.mix, help="weights limit,ioc,market,cancel,amend")
    s.add_argument("--levels", type=int, default=d.levels, help="levels of the expected book")
    s.add_argument("--out", required=True)
    lob = sub.add_parser("lobster", help="convert a LOBSTER message file (or zip)")
    lob.add_argument("messages", help="LOBSTER message CSV, or a LOBSTER zip")
    lob.add_argument("--symbol", help="symbol name (default: the ticker in the file name)")
    lob.add_argument("--levels", type=int, default=10, help="levels of the expected book")
    lob.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        if args.kind == "synthetic":
            flow = synthetic_flow(
                SyntheticParams(
                    seed=args.seed,
                    orders=args.orders,
                    symbols=args.symbols,
                    accounts=args.accounts,
                    depth=args.depth,
                    rate=args.rate,
                    mix=args.mix,
                    levels=args.levels,
                )
            )
        else:
            flow = lobster_flow(args.messages, symbol=args.symbol, levels=args.levels)
        write_flow(args.out, flow)
    except (OSError, ValueError) as e:  # FlowError and LOBSTER format errors are ValueErrors
        print(f"perf.generate: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out}: {len(flow):,} messages, {len(flow.symbols)} symbols,"
        f" {len(flow.sessions)} sessions, {flow.duration_ns / 1e9:.3f} s of planned time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
