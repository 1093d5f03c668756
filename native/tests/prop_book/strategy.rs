//! Random command streams that reach every feature of docs/book.md.
//!
//! An `Op` is an abstract command; `Driver::command` turns it into a concrete `Command`, looking
//! at the reference book to aim cancels, amends and duplicate ids at live orders. Prices mostly
//! fall in 95..=105 inside the configured 90..=110 (so orders cross, stops trigger), with a few
//! out-of-range, zero and negative values; three accounts and four client ids make STP
//! collisions and duplicate client ids common.

use cift_native::reference::ReferenceBook;
use cift_native::types::{
    BookConfig, Command, OrderBook, OrderView, Side, FLAG_END_OF_DAY, FLAG_POST_ONLY,
};
use proptest::prelude::*;
use proptest::sample::{select, Index};

pub const CFG: BookConfig = BookConfig {
    min_price: 90,
    max_price: 110,
    // Below the largest generated quantity (12), so the bound is exercised in both books.
    max_qty: 11,
};

/// A price that is usually valid and sometimes not.
fn price() -> impl Strategy<Value = i64> {
    prop_oneof![
        90 => 95i64..=105,
        10 => select(vec![0, -1, 89, 90, 110, 111, i64::MIN, i64::MAX]),
    ]
}

#[derive(Clone, Debug)]
pub enum OrderId {
    Auto,
    Explicit(u64),
    /// The id of a live order (3005), or auto when there is none.
    Live(Index),
}

#[derive(Clone, Copy, Debug)]
pub enum Display {
    Plain,
    /// Iceberg with display = 1 + (qty - 2) * percent / 100.
    Iceberg(u8),
    Bad(i64),
}

#[derive(Clone, Debug)]
pub struct NewOp {
    side: u8,
    ord_type: u8,
    tif: u8,
    /// Replace a TIF the order type does not allow by IOC/FOK.
    fit_tif: bool,
    stp: u8,
    stp_group: u64,
    post_only: bool,
    odd_flags: bool,
    account: u64,
    client_id: u64,
    id: OrderId,
    price: i64,
    /// Give a market/stop-market order a protection price.
    protect: bool,
    stop_price: i64,
    /// Put a stop price on a non-stop order (3011).
    stray_stop: bool,
    qty: i64,
    display: Display,
    /// GTD lifetime relative to the command's ts (0 = invalid); for other TIFs a value to ignore.
    expire_in: u64,
}

fn new_op() -> impl Strategy<Value = NewOp> {
    let kinds = (
        prop_oneof![48 => Just(1u8), 48 => Just(2), 2 => Just(0), 2 => Just(3)],
        prop_oneof![50 => Just(1u8), 14 => Just(2), 12 => Just(3), 12 => Just(4), 1 => Just(0), 1 => Just(5)],
        prop_oneof![30 => Just(1u8), 15 => Just(2), 15 => Just(3), 20 => Just(4), 15 => Just(5), 1 => Just(0), 1 => Just(6)],
        proptest::bool::weighted(0.9),
        prop_oneof![40 => Just(0u8), 56 => 1u8..=4, 2 => Just(5), 2 => Just(255)],
        prop_oneof![80 => Just(0u64), 20 => 1u64..=2],
        proptest::bool::weighted(0.12),
        proptest::bool::weighted(0.04),
    );
    let owner = (
        prop_oneof![98 => 1u64..=3, 2 => Just(0)],
        prop_oneof![60 => Just(0u64), 40 => 1u64..=4],
        prop_oneof![
            85 => Just(OrderId::Auto),
            10 => (1u64..=300).prop_map(OrderId::Explicit),
            1 => select(vec![u64::MAX - 1, u64::MAX]).prop_map(OrderId::Explicit),
            5 => any::<Index>().prop_map(OrderId::Live),
        ],
    );
    let amounts = (
        price(),
        proptest::bool::ANY,
        prop_oneof![92 => 95i64..=105, 8 => select(vec![0, -1, 89, 90, 110, 111])],
        proptest::bool::weighted(0.03),
        prop_oneof![95 => 1i64..=12, 5 => select(vec![0, -1, -12])],
        prop_oneof![
            75 => Just(Display::Plain),
            22 => (0u8..=100).prop_map(Display::Iceberg),
            3 => select(vec![-1i64, 12, 13, 100]).prop_map(Display::Bad),
        ],
        prop_oneof![90 => 1u64..=40, 5 => Just(0u64), 5 => Just(u64::MAX / 2)],
    );
    (kinds, owner, amounts).prop_map(|(k, o, a)| NewOp {
        side: k.0,
        ord_type: k.1,
        tif: k.2,
        fit_tif: k.3,
        stp: k.4,
        stp_group: k.5,
        post_only: k.6,
        odd_flags: k.7,
        account: o.0,
        client_id: o.1,
        id: o.2,
        price: a.0,
        protect: a.1,
        stop_price: a.2,
        stray_stop: a.3,
        qty: a.4,
        display: a.5,
        expire_in: a.6,
    })
}

#[derive(Clone, Debug)]
pub enum Target {
    /// A live order (or an unknown id when none is live), by id or client id, from its own or
    /// (sometimes) another account.
    Live {
        pick: Index,
        by_client: bool,
        wrong_account: bool,
    },
    /// Whatever these fields find (usually nothing: 3003).
    Raw {
        order_id: u64,
        account: u64,
        client_id: u64,
    },
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        85 => (any::<Index>(), proptest::bool::weighted(0.25), proptest::bool::weighted(0.05))
            .prop_map(|(pick, by_client, wrong_account)| Target::Live { pick, by_client, wrong_account }),
        15 => (0u64..=400, 0u64..=3, 0u64..=4)
            .prop_map(|(order_id, account, client_id)| Target::Raw { order_id, account, client_id }),
    ]
}

#[derive(Clone, Copy, Debug)]
pub enum AmendPrice {
    Keep,
    Same,
    To(i64),
    By(i64),
}

#[derive(Clone, Copy, Debug)]
pub enum AmendQty {
    Same,
    Down(i64),
    Up(i64),
    To(i64),
}

#[derive(Clone, Debug)]
pub enum Op {
    New(NewOp),
    Cancel(Target),
    Amend(Target, AmendPrice, AmendQty),
    MassCancel { account: u64, side: u8 },
    AdvanceTime { dt: u64, flags: u8 },
    BadKind(u8),
}

pub fn op() -> impl Strategy<Value = Op> {
    let amend_price = prop_oneof![
        40 => Just(AmendPrice::Keep),
        10 => Just(AmendPrice::Same),
        40 => price().prop_map(AmendPrice::To),
        10 => (-2i64..=2).prop_map(AmendPrice::By),
    ];
    let amend_qty = prop_oneof![
        15 => Just(AmendQty::Same),
        30 => (1i64..=4).prop_map(AmendQty::Down),
        30 => (1i64..=6).prop_map(AmendQty::Up),
        20 => (1i64..=12).prop_map(AmendQty::To),
        5 => select(vec![0i64, -1]).prop_map(AmendQty::To),
    ];
    prop_oneof![
        55 => new_op().prop_map(Op::New),
        12 => target().prop_map(Op::Cancel),
        16 => (target(), amend_price, amend_qty).prop_map(|(t, p, q)| Op::Amend(t, p, q)),
        3 => (prop_oneof![95 => 1u64..=3, 5 => Just(0)], prop_oneof![40 => Just(0u8), 28 => Just(1), 28 => Just(2), 4 => Just(3)])
            .prop_map(|(account, side)| Op::MassCancel { account, side }),
        6 => (0u64..=30, prop_oneof![6 => Just(0u8), 3 => Just(FLAG_END_OF_DAY), 1 => Just(0x81)])
            .prop_map(|(dt, flags)| Op::AdvanceTime { dt, flags }),
        1 => select(vec![0u8, 6, 7, 200, 255]).prop_map(Op::BadKind),
    ]
}

/// Every live order of `book`: bids and asks best level first in queue order, then stops.
pub fn live_orders(book: &dyn OrderBook) -> Vec<OrderView> {
    let mut all = Vec::new();
    for side in [Side::Buy, Side::Sell] {
        for level in book.depth(side, 1000) {
            all.extend(book.level_orders(side, level.price));
        }
    }
    all.extend(book.stop_orders(Side::Buy));
    all.extend(book.stop_orders(Side::Sell));
    all
}

fn pick(pick: &Index, live: &[OrderView]) -> Option<OrderView> {
    if live.is_empty() {
        None
    } else {
        live.get(pick.index(live.len())).copied()
    }
}

/// Stamps seq 1, 2, 3... and a ts that grows by 1 per command (AdvanceTime: by its `dt`).
pub struct Driver {
    seq: u64,
    ts: u64,
}

impl Driver {
    pub fn new() -> Self {
        Driver { seq: 0, ts: 1_000 }
    }

    pub fn command(&mut self, op: &Op, reference: &ReferenceBook) -> Command {
        self.seq += 1;
        self.ts += 1;
        let base = Command {
            seq: self.seq,
            ts: self.ts,
            ..Command::default()
        };
        let live = live_orders(reference);
        match op {
            Op::New(n) => self.new_order(n, &live, base),
            Op::Cancel(t) => Command {
                kind: 2,
                ..aim(t, &live, base)
            },
            Op::Amend(t, p, q) => {
                let c = aim(t, &live, base);
                let found = live.iter().find(|o| o.order_id == c.order_id);
                let (price, open) = found.map_or((100, 5), |o| (o.price, o.visible + o.hidden));
                let price = match *p {
                    AmendPrice::Keep => 0,
                    AmendPrice::Same => price,
                    AmendPrice::To(p) => p,
                    AmendPrice::By(d) => price.saturating_add(d),
                };
                let qty = match *q {
                    AmendQty::Same => open,
                    AmendQty::Down(d) => (open - d).max(1),
                    AmendQty::Up(u) => open + u,
                    AmendQty::To(q) => q,
                };
                Command {
                    kind: 3,
                    price,
                    qty,
                    ..c
                }
            }
            Op::MassCancel { account, side } => Command {
                kind: 4,
                account: *account,
                side: *side,
                ..base
            },
            Op::AdvanceTime { dt, flags } => {
                self.ts += dt;
                Command {
                    kind: 5,
                    ts: self.ts,
                    flags: *flags,
                    ..base
                }
            }
            Op::BadKind(kind) => Command {
                kind: *kind,
                side: 1,
                account: 1,
                qty: 1,
                price: 100,
                ..base
            },
        }
    }

    fn new_order(&self, n: &NewOp, live: &[OrderView], base: Command) -> Command {
        let market = matches!(n.ord_type, 2 | 3);
        let stop = matches!(n.ord_type, 3 | 4);
        let tif = if n.fit_tif && market && !matches!(n.tif, 4 | 5) {
            4 + n.tif % 2
        } else {
            n.tif
        };
        let price = if market && !n.protect { 0 } else { n.price };
        let stop_price = if stop || n.stray_stop {
            n.stop_price
        } else {
            0
        };
        let display_qty = match n.display {
            Display::Plain => 0,
            Display::Iceberg(_) if n.ord_type != 1 || n.qty < 2 => 0,
            Display::Iceberg(pct) => 1 + (n.qty - 2) * i64::from(pct) / 100,
            Display::Bad(d) => d,
        };
        let expire_ts = match (tif, n.expire_in) {
            (3, 0) => self.ts,
            (3, e) => self.ts.saturating_add(e),
            (_, e) if e > 30 => self.ts + e,
            _ => 0,
        };
        let order_id = match &n.id {
            OrderId::Auto => 0,
            OrderId::Explicit(id) => *id,
            OrderId::Live(p) => pick(p, live).map_or(0, |o| o.order_id),
        };
        let mut flags = if n.post_only { FLAG_POST_ONLY } else { 0 };
        if n.odd_flags {
            flags |= 0x80 | FLAG_END_OF_DAY;
        }
        Command {
            kind: 1,
            side: n.side,
            ord_type: n.ord_type,
            tif,
            stp: n.stp,
            flags,
            order_id,
            account: n.account,
            client_id: n.client_id,
            price,
            stop_price,
            qty: n.qty,
            display_qty,
            expire_ts,
            stp_group: n.stp_group,
            ..base
        }
    }
}

/// Fill in the target fields (order_id / account / client_id) of a cancel or amend.
fn aim(t: &Target, live: &[OrderView], base: Command) -> Command {
    match t {
        Target::Raw {
            order_id,
            account,
            client_id,
        } => Command {
            order_id: *order_id,
            account: *account,
            client_id: *client_id,
            ..base
        },
        Target::Live {
            pick: p,
            by_client,
            wrong_account,
        } => match pick(p, live) {
            None => Command {
                order_id: 999,
                account: 1,
                ..base
            },
            Some(o) => {
                let account = if *wrong_account {
                    o.account % 3 + 1
                } else {
                    o.account
                };
                if *by_client && o.client_id != 0 {
                    Command {
                        account,
                        client_id: o.client_id,
                        ..base
                    }
                } else {
                    Command {
                        order_id: o.order_id,
                        account,
                        ..base
                    }
                }
            }
        },
    }
}

/// Commands with any field at extreme values, for the no-panic property.
pub fn wild_command() -> impl Strategy<Value = Command> {
    fn wild_i64() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            select(vec![
                i64::MIN,
                i64::MIN + 1,
                -1,
                0,
                1,
                2,
                i64::MAX / 4,
                i64::MAX - 1,
                i64::MAX
            ]),
            1i64..=20,
        ]
    }
    fn wild_u64() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            select(vec![0, 1, 2, u64::MAX - 1, u64::MAX]),
            1u64..=5
        ]
    }
    let enums = (0u8..=6, 0u8..=3, 0u8..=5, 0u8..=6, 0u8..=5, any::<u8>());
    let ids = (
        wild_u64(),
        wild_u64(),
        wild_u64(),
        wild_u64(),
        wild_u64(),
        wild_u64(),
    );
    let amounts = (wild_i64(), wild_i64(), wild_i64(), wild_i64());
    (enums, ids, amounts).prop_map(|(e, i, a)| Command {
        kind: e.0,
        side: e.1,
        ord_type: e.2,
        tif: e.3,
        stp: e.4,
        flags: e.5,
        seq: i.0,
        ts: i.1,
        order_id: i.2,
        account: i.3 % 4,
        client_id: i.4,
        price: a.0,
        stop_price: a.1,
        qty: a.2,
        display_qty: a.3,
        expire_ts: i.5,
        stp_group: i.0 % 3,
    })
}
