//! Canonical, versioned snapshots of the whole risk state.
//!
//! Layout (little endian): magic `CIFTRISK`, version u32, trading day u32, default limits, then
//! symbols by id (config, last price), accounts by id (limits, switches, rate bucket), holdings
//! by (account, symbol) (position), live orders by (symbol, order id, seq), amend reservations by
//! seq, today's client ids by (account, client id), and an FNV-1a 64 checksum of everything
//! before it. Entries are keyed by external ids, never internal indices, and usage totals are
//! not written (restore recomputes them), so equal states give equal bytes.

use super::account::{Account, Holding};
use super::config::{AccountLimits, Band, RateLimit, RiskError, SymbolRisk, TradingState};
use super::orders::{LiveOrder, Pending};
use super::position::Position;
use super::RiskEngine;
use crate::types::{OrdType, Side};

const MAGIC: &[u8; 8] = b"CIFTRISK";
const VERSION: u32 = 1;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a risk snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported risk snapshot version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    #[error("risk snapshot truncated")]
    Truncated,
    #[error("risk snapshot checksum mismatch")]
    Checksum,
    #[error("corrupt risk snapshot: {0}")]
    Corrupt(String),
}

use crate::codec::{fnv1a, Reader, Truncated, Writer};

impl From<Truncated> for SnapshotError {
    fn from(_: Truncated) -> SnapshotError {
        SnapshotError::Truncated
    }
}

impl From<Truncated> for RiskError {
    fn from(t: Truncated) -> RiskError {
        SnapshotError::from(t).into()
    }
}

fn corrupt<T>(msg: impl Into<String>) -> Result<T, RiskError> {
    Err(SnapshotError::Corrupt(msg.into()).into())
}

impl RiskEngine {
    /// The whole state as canonical versioned bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u32(self.day);
        w.limits(&self.defaults);

        let mut symbols: Vec<_> = self.symbols.iter().collect();
        symbols.sort_unstable_by_key(|s| s.cfg.symbol);
        w.count(symbols.len());
        for s in symbols {
            w.symbol(&s.cfg);
            w.i64(s.last_price);
        }

        let mut accounts: Vec<&Account> = self.accounts.iter().collect();
        accounts.sort_unstable_by_key(|a| a.id);
        w.count(accounts.len());
        for a in accounts {
            w.u64(a.id);
            w.limits(&a.limits);
            for flag in [a.custom, a.enabled, a.killed] {
                w.u8(u8::from(flag));
            }
            w.u64(a.tokens);
            w.u64(a.last_ts);
        }

        let mut holdings: Vec<(u64, u32, &Holding)> = self
            .holdings
            .iter()
            .map(|h| (self.account_id(h.acct), self.symbol_id(h.sym), h))
            .collect();
        holdings.sort_unstable_by_key(|&(a, s, _)| (a, s));
        w.count(holdings.len());
        for (a, s, h) in holdings {
            w.u64(a);
            w.u32(s);
            w.i64(h.pos.net);
            w.i128(h.pos.cost);
            w.i128(h.pos.realized);
            w.i64(h.pos.bought);
            w.i64(h.pos.sold);
        }

        let mut orders: Vec<(u32, &LiveOrder)> = self
            .orders
            .iter()
            .map(|o| (self.symbol_id(o.sym), o))
            .collect();
        orders.sort_unstable_by_key(|&(s, o)| (s, o.order_id, o.seq));
        w.count(orders.len());
        for (s, o) in orders {
            let day = match self.orders.pending.get(o.seq) {
                Some(Pending::New { day, .. }) if o.seq != 0 => *day,
                _ => 0,
            };
            w.u32(s);
            w.u64(self.account_id(o.acct));
            for v in [o.side as u8, o.ord_type as u8, u8::from(o.triggered)] {
                w.u8(v);
            }
            for v in [o.price, o.stop_price, o.open] {
                w.i64(v);
            }
            for v in [o.client_id, o.order_id, o.seq] {
                w.u64(v);
            }
            w.u32(day);
        }

        let mut amends: Vec<(u64, u64, u32, Side, i64, i128)> = self
            .orders
            .pending
            .iter()
            .filter_map(|(seq, p)| match *p {
                Pending::Amend {
                    acct,
                    holding,
                    side,
                    qty,
                    notional,
                    ..
                } => {
                    let sym = self
                        .holdings
                        .get(holding as usize)
                        .map_or(0, |h| self.symbol_id(h.sym));
                    Some((seq, self.account_id(acct), sym, side, qty, notional))
                }
                Pending::New { .. } => None,
            })
            .collect();
        amends.sort_unstable_by_key(|a| a.0);
        w.count(amends.len());
        for (seq, acct, sym, side, qty, notional) in amends {
            w.u64(seq);
            w.u64(acct);
            w.u32(sym);
            w.u8(side as u8);
            w.i64(qty);
            w.i128(notional);
        }

        let mut ids: Vec<(u64, u64)> = self
            .client_ids
            .iter()
            .map(|&(a, c)| (self.account_id(a), c))
            .collect();
        ids.sort_unstable();
        w.count(ids.len());
        for (a, c) in ids {
            w.u64(a);
            w.u64(c);
        }

        let sum = fnv1a(&w.0);
        w.u64(sum);
        w.0
    }

    /// FNV-1a 64 of `snapshot()`: equal for equal states.
    pub fn digest(&self) -> u64 {
        fnv1a(&self.snapshot())
    }

    /// Rebuild an engine from `snapshot()` bytes; usage totals are recomputed.
    pub fn restore(bytes: &[u8]) -> Result<RiskEngine, RiskError> {
        let body_len = bytes.len().checked_sub(8).ok_or(SnapshotError::Truncated)?;
        let (body, tail) = bytes.split_at(body_len);
        let mut stored = [0u8; 8];
        stored.copy_from_slice(tail);
        if !body.starts_with(MAGIC) {
            return Err(SnapshotError::BadMagic.into());
        }
        let mut r = Reader(body.get(MAGIC.len()..).ok_or(SnapshotError::Truncated)?);
        let version = r.u32()?;
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion(version).into());
        }
        if u64::from_le_bytes(stored) != fnv1a(body) {
            return Err(SnapshotError::Checksum.into());
        }
        let day = r.u32()?;
        let defaults = r.limits()?;

        let n = r.count(1)?;
        let mut symbols = Vec::with_capacity(n.min(r.0.len()));
        let mut last_prices = Vec::with_capacity(n.min(r.0.len()));
        for _ in 0..n {
            symbols.push(r.symbol()?);
            last_prices.push(r.i64()?);
        }
        let mut e = RiskEngine::new(symbols, defaults)?;
        e.day = day;
        for (s, last) in e.symbols.iter_mut().zip(last_prices) {
            s.last_price = last;
        }

        for _ in 0..r.count(1)? {
            let id = r.u64()?;
            let limits = r.limits()?;
            let (custom, enabled, killed) = (r.flag()?, r.flag()?, r.flag()?);
            let (tokens, last_ts) = (r.u64()?, r.u64()?);
            if id == 0 || e.account_ix.contains(id) {
                return corrupt(format!("account {id} zero or repeated"));
            }
            let a = e.account_index(id);
            if let Some(acct) = e.accounts.get_mut(a as usize) {
                *acct = Account {
                    limits,
                    custom,
                    enabled,
                    killed,
                    tokens,
                    last_ts,
                    ..Account::new(id, limits)
                };
            }
        }

        for _ in 0..r.count(1)? {
            let (a, si) = (r.u64()?, r.u32()?);
            let (a, si) = (e.known_account(a)?, e.symbol_index(si)?);
            let pos = Position {
                net: r.i64()?,
                cost: r.i128()?,
                realized: r.i128()?,
                bought: r.i64()?,
                sold: r.i64()?,
            };
            if e.holding_ix.contains_key(&super::holding_key(a, si)) {
                return corrupt("repeated holding");
            }
            let h = e.holding_index(a, si);
            if let Some(held) = e.holdings.get_mut(h as usize) {
                held.pos = pos;
            }
            if let Some(acct) = e.accounts.get_mut(a as usize) {
                acct.position_cost = acct.position_cost.saturating_add(pos.cost.saturating_abs());
            }
        }

        for _ in 0..r.count(1)? {
            let si = r.u32()?;
            let a = r.u64()?;
            let (si, a) = (e.symbol_index(si)?, e.known_account(a)?);
            let side = Side::from_u8(r.u8()?);
            let ord_type = OrdType::from_u8(r.u8()?);
            let triggered = r.flag()?;
            let (price, stop_price, open) = (r.i64()?, r.i64()?, r.i64()?);
            let (client_id, order_id, seq) = (r.u64()?, r.u64()?, r.u64()?);
            let day = r.u32()?;
            let (Some(side), Some(ord_type)) = (side, ord_type) else {
                return corrupt(format!("order {order_id}: bad side or type"));
            };
            if open <= 0
                || (order_id != 0 && e.orders.find_id(si, order_id).is_some())
                || (client_id != 0 && e.orders.find_client(si, a, client_id).is_some())
                || (order_id == 0 && seq == 0)
            {
                return corrupt(format!("order {order_id} (seq {seq}): bad or repeated"));
            }
            let holding = e.holding_index(a, si);
            let order = LiveOrder {
                sym: si,
                acct: a,
                holding,
                side,
                ord_type,
                triggered,
                price,
                stop_price,
                open,
                client_id,
                order_id,
                seq,
            };
            let handle = e.insert_order(order);
            if seq != 0
                && e.orders
                    .pending
                    .insert(seq, Pending::New { handle, day })
                    .is_some()
            {
                return corrupt(format!("seq {seq} repeated"));
            }
        }

        for _ in 0..r.count(1)? {
            let (seq, a, si) = (r.u64()?, r.u64()?, r.u32()?);
            let (a, si) = (e.known_account(a)?, e.symbol_index(si)?);
            let side = Side::from_u8(r.u8()?);
            let (qty, notional) = (r.i64()?, r.i128()?);
            let Some(side) = side.filter(|_| qty >= 0 && notional >= 0) else {
                return corrupt(format!("amend seq {seq}: bad side or amounts"));
            };
            let holding = e.holding_index(a, si);
            e.usage(a, holding, side, qty, notional, 0);
            let p = Pending::Amend {
                order: u32::MAX,
                acct: a,
                holding,
                side,
                qty,
                notional,
            };
            if e.orders.pending.insert(seq, p).is_some() {
                return corrupt(format!("seq {seq} repeated"));
            }
        }

        for _ in 0..r.count(1)? {
            let (a, c) = (r.u64()?, r.u64()?);
            let a = e.known_account(a)?;
            if c == 0 || !e.client_ids.insert((a, c)) {
                return corrupt("bad or repeated client id");
            }
        }
        if !r.0.is_empty() {
            return corrupt("trailing bytes");
        }
        Ok(e)
    }

    fn account_id(&self, a: u32) -> u64 {
        self.accounts.get(a as usize).map_or(0, |a| a.id)
    }

    fn symbol_id(&self, si: u32) -> u32 {
        self.symbols.get(si as usize).map_or(0, |s| s.cfg.symbol)
    }

    fn known_account(&self, id: u64) -> Result<u32, RiskError> {
        match self.account_ix.get(id) {
            Some(a) => Ok(a),
            None => corrupt(format!("unknown account {id}")),
        }
    }
}

impl Writer {
    fn band(&mut self, b: Band) {
        let (kind, v) = match b {
            Band::Off => (0, 0),
            Band::Ticks(n) => (1, n),
            Band::Bps(n) => (2, n),
        };
        self.u8(kind);
        self.i64(v);
    }
    fn limits(&mut self, l: &AccountLimits) {
        self.u32(l.max_open_orders);
        self.i128(l.max_open_buy_notional);
        self.i128(l.max_open_sell_notional);
        self.i128(l.credit_limit);
        self.i64(l.max_position);
        let (on, r) = match l.rate {
            Some(r) => (1, r),
            None => (
                0,
                RateLimit {
                    per_sec: 0,
                    burst: 0,
                },
            ),
        };
        self.u8(on);
        self.u64(r.per_sec);
        self.u64(r.burst);
    }
    fn symbol(&mut self, c: &SymbolRisk) {
        self.u32(c.symbol);
        for v in [c.tick, c.lot, c.min_qty, c.max_qty] {
            self.i64(v);
        }
        self.i128(c.max_notional);
        self.i64(c.reference_price);
        self.band(c.band);
        self.band(c.market_band);
        self.u8(c.state as u8);
    }
}

impl Reader<'_> {
    fn flag(&mut self) -> Result<bool, RiskError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => corrupt(format!("bad flag {v}")),
        }
    }
    fn band(&mut self) -> Result<Band, RiskError> {
        let (kind, v) = (self.u8()?, self.i64()?);
        match kind {
            0 => Ok(Band::Off),
            1 => Ok(Band::Ticks(v)),
            2 => Ok(Band::Bps(v)),
            _ => corrupt(format!("bad band kind {kind}")),
        }
    }
    fn limits(&mut self) -> Result<AccountLimits, RiskError> {
        let max_open_orders = self.u32()?;
        let (buy, sell, credit) = (self.i128()?, self.i128()?, self.i128()?);
        let max_position = self.i64()?;
        let on = self.flag()?;
        let rate = RateLimit {
            per_sec: self.u64()?,
            burst: self.u64()?,
        };
        let limits = AccountLimits {
            max_open_orders,
            max_open_buy_notional: buy,
            max_open_sell_notional: sell,
            credit_limit: credit,
            max_position,
            rate: on.then_some(rate),
        };
        limits.validate()?;
        Ok(limits)
    }
    fn symbol(&mut self) -> Result<SymbolRisk, RiskError> {
        let symbol = self.u32()?;
        let (tick, lot, min_qty, max_qty) = (self.i64()?, self.i64()?, self.i64()?, self.i64()?);
        let max_notional = self.i128()?;
        let reference_price = self.i64()?;
        let (band, market_band) = (self.band()?, self.band()?);
        let Some(state) = TradingState::from_u8(self.u8()?) else {
            return corrupt(format!("symbol {symbol}: bad trading state"));
        };
        Ok(SymbolRisk {
            symbol,
            tick,
            lot,
            min_qty,
            max_qty,
            max_notional,
            reference_price,
            band,
            market_band,
            state,
        })
    }
}
