//! The risk engine: pre-trade checks on sequenced commands, post-trade state from the book's
//! events, and the trading controls an operator needs. Python-free, integer-only inside the
//! checks, deterministic (a pure function of the commands it checked and the events it was fed,
//! in order; no clock, no hash-map order in any output).
//!
//! - `codes`: the numbered rejects (2001..2099) and their texts;
//! - `config`: per-symbol checks (`SymbolRisk`), per-account limits (`AccountLimits`), errors;
//! - `account`: account state, rate bucket and the account-level checks;
//! - `position`: the average-cost position ledger;
//! - `orders`: live orders and in-flight commands;
//! - `pretrade`: `check` and `check_batch`;
//! - `posttrade`: `on_events`;
//! - `admin`: limits, switches, kill switch, symbol state, trading day;
//! - `views`: what `risk show` prints;
//! - `snapshot`: canonical versioned snapshot, restore, digest;
//! - `analytics`: position statistics and Sharpe ratio (floats allowed here only).
//!
//! The daemon calls `check_batch` on each sequenced batch before routing it to the books, feeds
//! every book's event records back through `on_events`, and journals admin calls as sequenced
//! commands so that replay rebuilds the same state. A command that fails a check changes
//! nothing; a command that passes reserves its exposure at once, so later commands of the same
//! batch see it. Semantics and codes: `docs/risk.md`.

mod account;
mod admin;
pub mod analytics;
mod codes;
mod config;
mod orders;
mod position;
mod posttrade;
mod pretrade;
mod snapshot;
mod views;

pub use analytics::{calculate_position_stats, calculate_sharpe, PositionStats};
pub use codes::{risk_reject_text, RiskReject};
pub use config::{AccountLimits, Band, RateLimit, RiskError, SymbolRisk, TradingState};
pub use position::Position;
pub use snapshot::SnapshotError;
pub use views::{AccountView, OrderRiskView, PositionView, SymbolView};

use rustc_hash::FxHashMap;

use crate::types::Side;
use account::{ix, Account, Holding};
use orders::{ClientIdSet, LiveOrder, Orders};

/// One symbol's configuration and market state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SymbolState {
    cfg: SymbolRisk,
    /// Last trade price seen in the book's events (0 before the first trade).
    last_price: i64,
}

impl SymbolState {
    /// Collar reference and mark price: the last trade, else the configured reference (0 = none).
    fn reference(&self) -> i64 {
        if self.last_price > 0 {
            self.last_price
        } else {
            self.cfg.reference_price
        }
    }
}

/// Pre-trade and post-trade risk for a set of symbols and every account that trades them.
#[derive(Clone, Debug)]
pub struct RiskEngine {
    symbols: Vec<SymbolState>,
    symbol_ix: DenseIndex,
    defaults: AccountLimits,
    accounts: Vec<Account>,
    account_ix: DenseIndex,
    holdings: Vec<Holding>,
    /// (account index << 32 | symbol index) -> holding index.
    holding_ix: FxHashMap<u64, u32>,
    orders: Orders,
    /// (account index, client id) used today.
    client_ids: ClientIdSet,
    /// Trading day counter (advanced by `start_day`).
    day: u32,
}

impl RiskEngine {
    /// An engine for `symbols`; accounts appear on first use with the `defaults` limits.
    pub fn new(symbols: Vec<SymbolRisk>, defaults: AccountLimits) -> Result<RiskEngine, RiskError> {
        defaults.validate()?;
        let mut engine = RiskEngine {
            symbols: Vec::with_capacity(symbols.len()),
            symbol_ix: DenseIndex::default(),
            defaults,
            accounts: Vec::new(),
            account_ix: DenseIndex::default(),
            holdings: Vec::new(),
            holding_ix: FxHashMap::default(),
            orders: Orders::default(),
            client_ids: ClientIdSet::default(),
            day: 0,
        };
        for cfg in symbols {
            if engine.symbol_ix.contains(cfg.symbol.into()) {
                return Err(RiskError::DuplicateSymbol(cfg.symbol));
            }
            engine.add_symbol(cfg)?;
        }
        Ok(engine)
    }

    fn add_symbol(&mut self, cfg: SymbolRisk) -> Result<u32, RiskError> {
        cfg.validate()?;
        let si = index(self.symbols.len());
        self.symbols.push(SymbolState { cfg, last_price: 0 });
        self.symbol_ix.insert(cfg.symbol.into(), si);
        Ok(si)
    }

    fn symbol_index(&self, symbol: u32) -> Result<u32, RiskError> {
        self.symbol_ix
            .get(symbol.into())
            .ok_or(RiskError::UnknownSymbol(symbol))
    }

    /// The index of account `id`, created with the default limits if new.
    fn account_index(&mut self, id: u64) -> u32 {
        if let Some(a) = self.account_ix.get(id) {
            return a;
        }
        let a = index(self.accounts.len());
        self.accounts.push(Account::new(id, self.defaults));
        self.account_ix.insert(id, a);
        a
    }

    /// The holding of account index `a` in symbol index `si`, if any. Each account remembers its
    /// last holding, which spares the hash lookup when it trades one symbol at a time.
    #[inline]
    fn find_holding(&self, a: u32, si: u32) -> Option<u32> {
        if let Some(acct) = self.accounts.get(a as usize) {
            if acct.last_holding.0 == si {
                return Some(acct.last_holding.1);
            }
        }
        self.holding_ix.get(&holding_key(a, si)).copied()
    }

    /// The index of the holding of account index `a` in symbol index `si`, created if new.
    fn holding_index(&mut self, a: u32, si: u32) -> u32 {
        let h = match self.find_holding(a, si) {
            Some(h) => h,
            None => {
                let h = index(self.holdings.len());
                self.holdings.push(Holding {
                    acct: a,
                    sym: si,
                    ..Holding::default()
                });
                self.holding_ix.insert(holding_key(a, si), h);
                h
            }
        };
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.last_holding = (si, h);
        }
        h
    }

    /// Add (or with negative values remove) live quantity, notional and order count.
    #[inline(always)]
    fn usage(&mut self, a: u32, h: u32, side: Side, qty: i64, notional: i128, orders: i32) {
        let s = ix(side);
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.open_notional[s] = acct.open_notional[s].saturating_add(notional);
            acct.open_orders = acct.open_orders.saturating_add_signed(orders);
        }
        if let Some(held) = self.holdings.get_mut(h as usize) {
            held.open_qty[s] = held.open_qty[s].saturating_add(qty);
        }
    }

    fn insert_order(&mut self, o: LiveOrder) -> u32 {
        self.usage(o.acct, o.holding, o.side, o.open, o.notional(), 1);
        if o.order_id == 0 {
            self.unassigned(o.holding, 1);
        }
        self.orders.insert(o)
    }

    fn remove_order(&mut self, h: u32) -> Option<LiveOrder> {
        let o = self.orders.remove(h)?;
        self.usage(o.acct, o.holding, o.side, -o.open, -o.notional(), -1);
        if o.order_id == 0 {
            self.unassigned(o.holding, -1);
        }
        Some(o)
    }

    /// Give an in-flight order the order id from the book's `Accepted`.
    fn assign_id(&mut self, h: u32, order_id: u64) {
        let Some(o) = self.orders.get(h) else {
            return;
        };
        if o.order_id == 0 && order_id != 0 {
            self.unassigned(o.holding, -1);
        }
        self.orders.set_id(h, order_id);
    }

    fn unassigned(&mut self, h: u32, delta: i32) {
        if let Some(held) = self.holdings.get_mut(h as usize) {
            held.unassigned = held.unassigned.saturating_add_signed(delta);
        }
    }

    /// Set a live order's price and open quantity; an order left with nothing is removed.
    fn update_order(&mut self, h: u32, price: i64, open: i64) {
        self.resize_order(h, price, open, 0, 0);
    }

    /// `update_order`, releasing in the same change of usage a reservation of `held_qty` and
    /// `held_notional` made for this order (an amend's, on its `Replaced`).
    fn resize_order(&mut self, h: u32, price: i64, open: i64, held_qty: i64, held_notional: i128) {
        let Some(o) = self.orders.get_mut(h) else {
            return;
        };
        let (old_qty, old_notional) = (o.open, o.notional());
        o.price = price;
        o.open = open.max(0);
        let (a, held, side, qty, notional) = (o.acct, o.holding, o.side, o.open, o.notional());
        let dq = (qty - old_qty).saturating_sub(held_qty);
        let dn = (notional - old_notional).saturating_sub(held_notional);
        if dq != 0 || dn != 0 {
            self.usage(a, held, side, dq, dn, 0);
        }
        if qty == 0 {
            self.remove_order(h);
        }
    }

    /// Apply a fill to account `id`'s position in symbol index `si`.
    fn fill(&mut self, id: u64, si: u32, side: Side, qty: i64, price: i64) {
        if id == 0 || qty <= 0 {
            return;
        }
        let a = self.account_index(id);
        let h = self.holding_index(a, si);
        self.fill_holding(a, h, side, qty, price);
    }

    /// Apply a fill to holding `h` of account index `a`.
    fn fill_holding(&mut self, a: u32, h: u32, side: Side, qty: i64, price: i64) {
        let Some(held) = self.holdings.get_mut(h as usize) else {
            return;
        };
        let before = held.pos.cost.saturating_abs();
        held.pos.fill(side, qty, price);
        let after = held.pos.cost.saturating_abs();
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.position_cost = acct.position_cost.saturating_add(after - before);
        }
    }
}

/// External id (symbol or account) -> internal index: a direct table for small ids (symbol
/// indexes of the daemon's config, configured account ids), a hash map for the rest.
#[derive(Clone, Debug, Default)]
struct DenseIndex {
    small: Vec<u32>,
    large: FxHashMap<u64, u32>,
}

impl DenseIndex {
    /// Ids below this are kept in the direct table.
    const SMALL: u64 = 1 << 16;

    #[inline]
    fn get(&self, id: u64) -> Option<u32> {
        if id < Self::SMALL {
            // `id` < 2^16 fits any usize.
            self.small
                .get(id as usize)
                .copied()
                .filter(|&i| i != u32::MAX)
        } else {
            self.large.get(&id).copied()
        }
    }

    fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    fn insert(&mut self, id: u64, i: u32) {
        if id < Self::SMALL {
            let slot = id as usize;
            if self.small.len() <= slot {
                self.small.resize(slot + 1, u32::MAX);
            }
            if let Some(s) = self.small.get_mut(slot) {
                *s = i;
            }
        } else {
            self.large.insert(id, i);
        }
    }
}

#[inline]
fn holding_key(a: u32, si: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(si)
}

/// A `Vec` length as a u32 index (the engine never holds 2^32 symbols, accounts or holdings).
fn index(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}
