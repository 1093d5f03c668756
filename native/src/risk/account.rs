//! Per-account state (limits, switches, rate bucket, usage) and per-account-and-symbol
//! holdings (position and live order quantity), with the account-level pre-trade checks.

use super::codes::RiskReject;
use super::config::AccountLimits;
use super::position::Position;
use crate::types::Side;

/// One message in rate-bucket units. A rate of `r` messages per second refills `r` units per
/// nanosecond, so the bucket is exact in integers.
pub(crate) const TOKEN: u64 = 1_000_000_000;

/// Index of a side in per-side arrays.
#[inline]
pub(crate) fn ix(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// Three whole cache lines (192 bytes, aligned), not four.
#[derive(Clone, Debug)]
#[repr(align(64))]
pub(crate) struct Account {
    pub id: u64,
    pub limits: AccountLimits,
    /// Limits set for this account (else it follows the engine's defaults).
    pub custom: bool,
    pub enabled: bool,
    pub killed: bool,
    /// Rate bucket level (units of `TOKEN`) at `last_ts`.
    pub tokens: u64,
    pub last_ts: u64,
    // Usage, derived from live orders, pending amends and holdings (recomputed on restore).
    pub open_orders: u32,
    pub open_notional: [i128; 2],
    /// Sum over symbols of |position cost|.
    pub position_cost: i128,
    /// (symbol index, holding index) of the last holding used: a lookup cache, not state.
    pub last_holding: (u32, u32),
}

/// What a check needs to know of an account's holding in one symbol.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Exposure {
    pub net: i64,
    pub open_qty: [i64; 2],
}

/// A quantity and notional an order or amend would add (each >= 0), and whether it adds an
/// order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delta {
    pub side: Side,
    pub qty: i64,
    pub notional: i128,
    pub new_order: bool,
}

impl Account {
    pub fn new(id: u64, limits: AccountLimits) -> Account {
        Account {
            id,
            limits,
            custom: false,
            enabled: true,
            killed: false,
            tokens: full_bucket(&limits),
            last_ts: 0,
            open_orders: 0,
            open_notional: [0, 0],
            position_cost: 0,
            last_holding: (u32::MAX, u32::MAX),
        }
    }

    /// Change the limits; a bucket that was off starts full, else it is capped to the new burst.
    pub fn set_limits(&mut self, limits: AccountLimits, custom: bool) {
        self.tokens = match (self.limits.rate, limits.rate) {
            (Some(_), Some(_)) => self.tokens.min(full_bucket(&limits)),
            _ => full_bucket(&limits),
        };
        self.limits = limits;
        self.custom = custom;
    }

    #[inline]
    pub fn switches(&self) -> Result<(), RiskReject> {
        if !self.enabled {
            return Err(RiskReject::AccountDisabled);
        }
        if self.killed {
            return Err(RiskReject::KillSwitch);
        }
        Ok(())
    }

    /// Bucket level at `ts` after taking one message, or `RateLimit`. `None` = no rate limit.
    #[inline]
    pub fn take_token(&self, ts: u64) -> Result<Option<u64>, RiskReject> {
        let Some(rate) = self.limits.rate else {
            return Ok(None);
        };
        let elapsed = ts.saturating_sub(self.last_ts);
        let level = self
            .tokens
            .saturating_add(elapsed.saturating_mul(rate.per_sec))
            .min(rate.burst.saturating_mul(TOKEN));
        match level.checked_sub(TOKEN) {
            Some(left) => Ok(Some(left)),
            None => Err(RiskReject::RateLimit),
        }
    }

    /// Store the bucket level returned by `take_token`.
    #[inline]
    pub fn commit_token(&mut self, ts: u64, level: Option<u64>) {
        if let Some(level) = level {
            self.tokens = level;
            self.last_ts = self.last_ts.max(ts);
        }
    }

    /// The capacity checks, in order: open orders, open notional of the side, position (worst
    /// case with live orders), credit (orders that only reduce the position are exempt).
    #[inline(always)]
    pub fn capacity(&self, held: Exposure, d: Delta) -> Result<(), RiskReject> {
        let l = &self.limits;
        if !d.new_order && d.qty <= 0 && d.notional <= 0 {
            return Ok(()); // an amend that adds nothing
        }
        if d.new_order && self.open_orders >= l.max_open_orders {
            return Err(RiskReject::MaxOpenOrders);
        }
        let s = ix(d.side);
        if d.notional > 0 {
            let (max, code) = match d.side {
                Side::Buy => (l.max_open_buy_notional, RiskReject::OpenBuyNotional),
                Side::Sell => (l.max_open_sell_notional, RiskReject::OpenSellNotional),
            };
            if self.open_notional[s].saturating_add(d.notional) > max {
                return Err(code);
            }
        }
        let net = i128::from(held.net);
        let open = i128::from(held.open_qty[s]);
        let dq = i128::from(d.qty);
        if dq > 0 {
            let worst = match d.side {
                Side::Buy => net + open + dq,
                Side::Sell => open + dq - net,
            };
            if worst > i128::from(l.max_position) {
                return Err(RiskReject::PositionLimit);
            }
        }
        let reducing = match d.side {
            Side::Buy => net < 0 && open + dq <= -net,
            Side::Sell => net > 0 && open + dq <= net,
        };
        if d.notional > 0
            && !reducing
            && self.credit_used().saturating_add(d.notional) > l.credit_limit
        {
            return Err(RiskReject::CreditLimit);
        }
        Ok(())
    }

    /// Positions at cost plus live orders of both sides.
    pub fn credit_used(&self) -> i128 {
        self.position_cost
            .saturating_add(self.open_notional[0])
            .saturating_add(self.open_notional[1])
    }
}

fn full_bucket(limits: &AccountLimits) -> u64 {
    limits.rate.map_or(0, |r| r.burst.saturating_mul(TOKEN))
}

/// One account's position and live order quantity in one symbol.
/// 96 bytes aligned to 32: at most two cache lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(align(32))]
pub(crate) struct Holding {
    pub acct: u32,
    pub sym: u32,
    pub pos: Position,
    /// Open quantity of live orders and pending amends, per side (derived).
    pub open_qty: [i64; 2],
    /// New orders in flight whose order id the book has not given yet (derived).
    pub unassigned: u32,
}

impl Holding {
    pub fn exposure(&self) -> Exposure {
        Exposure {
            net: self.pos.net,
            open_qty: self.open_qty,
        }
    }
}
