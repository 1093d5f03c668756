//! Read-only views for tools and `cift-engine risk show ACCOUNT`: limits, usage, positions.

use super::account::TOKEN;
use super::config::{AccountLimits, SymbolRisk};
use super::position::Position;
use super::RiskEngine;
use crate::types::Side;

/// An account's limits, switches and usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountView {
    pub account: u64,
    pub limits: AccountLimits,
    /// The account has limits of its own (else it follows the defaults).
    pub custom_limits: bool,
    pub enabled: bool,
    pub killed: bool,
    /// Live orders, including ones in flight to the book.
    pub open_orders: u32,
    /// Notional of live orders (and pending amend increases), per side.
    pub open_buy_notional: i128,
    pub open_sell_notional: i128,
    /// Sum over symbols of |position cost|.
    pub position_cost: i128,
    /// What the credit limit is compared with: position cost plus open notional of both sides.
    pub credit_used: i128,
    /// Whole messages left in the rate bucket as of its last use (`None`: no rate limit).
    pub rate_tokens: Option<u64>,
}

/// An account's position in one symbol.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PositionView {
    pub symbol: u32,
    pub position: Position,
    /// Average price of the open position (`None` when flat).
    pub avg_price: Option<f64>,
    /// Mark price: the symbol's last trade, else its reference price (0 = none).
    pub mark_price: i64,
    /// Unrealized P&L at the mark price (ticks x lots).
    pub unrealized: i128,
    /// Open quantity of live orders, per side.
    pub open_buy_qty: i64,
    pub open_sell_qty: i64,
}

/// One live order as the risk engine counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderRiskView {
    pub symbol: u32,
    /// Engine order id (0 while in flight without an explicit id).
    pub order_id: u64,
    pub client_id: u64,
    pub side: Side,
    /// The price its notional is counted at.
    pub price: i64,
    /// Open quantity (visible plus reserve).
    pub open: i64,
    /// Passed the checks, not yet answered by the book.
    pub in_flight: bool,
}

/// A symbol's checks and market state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolView {
    pub config: SymbolRisk,
    /// Last trade price (0 before the first trade).
    pub last_price: i64,
    /// The band reference now: the last trade, else the configured reference (0 = none).
    pub reference_price: i64,
}

impl RiskEngine {
    pub fn defaults(&self) -> AccountLimits {
        self.defaults
    }

    /// Account ids known to the engine, ascending.
    pub fn account_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.accounts.iter().map(|a| a.id).collect();
        ids.sort_unstable();
        ids
    }

    /// Symbol ids, ascending.
    pub fn symbol_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.symbols.iter().map(|s| s.cfg.symbol).collect();
        ids.sort_unstable();
        ids
    }

    /// `None` for an account the engine has never seen (it would get the default limits).
    pub fn account(&self, account: u64) -> Option<AccountView> {
        let a = self.accounts.get(self.account_ix.get(account)? as usize)?;
        Some(AccountView {
            account,
            limits: a.limits,
            custom_limits: a.custom,
            enabled: a.enabled,
            killed: a.killed,
            open_orders: a.open_orders,
            open_buy_notional: a.open_notional[0],
            open_sell_notional: a.open_notional[1],
            position_cost: a.position_cost,
            credit_used: a.credit_used(),
            rate_tokens: a.limits.rate.map(|_| a.tokens / TOKEN),
        })
    }

    /// The account's positions (every symbol it has traded or has orders in), by symbol.
    pub fn positions(&self, account: u64) -> Vec<PositionView> {
        let Some(a) = self.account_ix.get(account) else {
            return Vec::new();
        };
        let mut out: Vec<PositionView> = self
            .holdings
            .iter()
            .filter(|h| h.acct == a)
            .filter_map(|h| {
                let s = self.symbols.get(h.sym as usize)?;
                let mark = s.reference();
                Some(PositionView {
                    symbol: s.cfg.symbol,
                    position: h.pos,
                    avg_price: h.pos.avg_price(),
                    mark_price: mark,
                    unrealized: h.pos.unrealized(mark),
                    open_buy_qty: h.open_qty[0],
                    open_sell_qty: h.open_qty[1],
                })
            })
            .collect();
        out.sort_unstable_by_key(|p| p.symbol);
        out
    }

    pub fn symbol(&self, symbol: u32) -> Option<SymbolView> {
        let s = self
            .symbols
            .get(self.symbol_ix.get(symbol.into())? as usize)?;
        Some(SymbolView {
            config: s.cfg,
            last_price: s.last_price,
            reference_price: s.reference(),
        })
    }

    /// The account's live orders, by (symbol, order id).
    pub fn orders(&self, account: u64) -> Vec<OrderRiskView> {
        let Some(a) = self.account_ix.get(account) else {
            return Vec::new();
        };
        let mut out: Vec<(u64, OrderRiskView)> = self
            .orders
            .iter()
            .filter(|o| o.acct == a)
            .filter_map(|o| {
                let view = OrderRiskView {
                    symbol: self.symbols.get(o.sym as usize)?.cfg.symbol,
                    order_id: o.order_id,
                    client_id: o.client_id,
                    side: o.side,
                    price: o.price,
                    open: o.open,
                    in_flight: o.seq != 0,
                };
                Some((o.seq, view))
            })
            .collect();
        out.sort_unstable_by_key(|(seq, v)| (v.symbol, v.order_id, *seq));
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// Number of live orders (including ones in flight) over all accounts.
    pub fn live_orders(&self) -> usize {
        self.orders.len()
    }
}
