//! Pre-trade checks. First failing check wins, in the order of the codes (docs/risk.md):
//! symbol (known, state), account switches, the symbol's static checks (tick, lot, quantity,
//! reference, notional, bands), then the account's rate, open orders, open notional, position,
//! credit and duplicate client id.
//!
//! Commands the book will reject for being malformed (bad side or type, account 0, missing or
//! negative prices, unknown amend target, live explicit order id) pass without touching risk
//! state; the book gives them their 3xxx code.

use super::account::{Account, Delta, Exposure, Holding};
use super::codes::RiskReject;
use super::config::{Band, RiskError, TradingState};
use super::orders::{LiveOrder, Pending};
use super::{RiskEngine, SymbolState};
use crate::types::{CmdKind, Command, OrdType, Side, COMMAND_SIZE, FLAG_END_OF_DAY};

impl RiskEngine {
    /// Check one sequenced command for `symbol`. `Ok` reserves the command's exposure (new
    /// orders, amends); `Err` changes nothing. Cancels pass unless the symbol is closed;
    /// `AdvanceTime` always passes (whatever `symbol`) and with the end-of-day flag starts a new
    /// trading day.
    pub fn check(&mut self, symbol: u32, cmd: &Command) -> Result<(), RiskReject> {
        let kind = CmdKind::from_u8(cmd.kind);
        if kind == Some(CmdKind::AdvanceTime) {
            // The engine's own command (possibly broadcast to every book): always passes.
            if cmd.flags & FLAG_END_OF_DAY != 0 {
                self.start_day();
            }
            return Ok(());
        }
        if kind == Some(CmdKind::Admin) {
            // A trading control: executed here, at its place in the sequence (any `symbol`).
            return self.apply_admin(cmd);
        }
        let (si, state) = self.symbol_state(symbol)?;
        match kind {
            Some(CmdKind::New) => {
                trading(state)?;
                self.check_new(si, cmd)
            }
            Some(CmdKind::Amend) => {
                trading(state)?;
                self.check_amend(si, cmd)
            }
            Some(CmdKind::Cancel | CmdKind::MassCancel | CmdKind::AdvanceTime | CmdKind::Admin)
            | None => match state {
                TradingState::Closed => Err(RiskReject::SymbolClosed),
                TradingState::Open | TradingState::Halted => Ok(()),
            },
        }
    }

    /// Check packed command records (`COMMAND_SIZE` bytes each; `symbols[i]` is the symbol of
    /// record `i`). `verdicts` is cleared and gets one code per record: 0 = pass, else the
    /// reject code.
    pub fn check_batch(
        &mut self,
        symbols: &[u32],
        cmds: &[u8],
        verdicts: &mut Vec<u16>,
    ) -> Result<(), RiskError> {
        if !cmds.len().is_multiple_of(COMMAND_SIZE) {
            return Err(RiskError::BadBuffer {
                what: "command",
                len: cmds.len(),
                size: COMMAND_SIZE,
            });
        }
        let n = cmds.len() / COMMAND_SIZE;
        if symbols.len() != n {
            return Err(RiskError::BatchMismatch {
                symbols: symbols.len(),
                commands: n,
            });
        }
        verdicts.clear();
        verdicts.resize(n, 0);
        let records = cmds.chunks_exact(COMMAND_SIZE).zip(symbols);
        for ((rec, &symbol), verdict) in records.zip(verdicts.iter_mut()) {
            let Ok(rec) = <&[u8; COMMAND_SIZE]>::try_from(rec) else {
                continue;
            };
            let checked = match CmdKind::from_u8(rec[0]) {
                // `check`'s path for orders and amends, on the record itself: only the fields
                // a check reads are loaded.
                Some(kind @ (CmdKind::New | CmdKind::Amend)) => {
                    self.symbol_state(symbol).and_then(|(si, state)| {
                        trading(state)?;
                        if kind == CmdKind::New {
                            self.check_new_record(si, rec)
                        } else {
                            self.check_amend_record(si, rec)
                        }
                    })
                }
                _ => self.check(symbol, &Command::from_record(rec)),
            };
            *verdict = checked.err().map_or(0, RiskReject::code);
        }
        Ok(())
    }

    /// The index and trading state of `symbol`.
    #[inline]
    fn symbol_state(&self, symbol: u32) -> Result<(u32, TradingState), RiskReject> {
        let si = self
            .symbol_ix
            .get(symbol.into())
            .ok_or(RiskReject::UnknownSymbol)?;
        let s = self
            .symbols
            .get(si as usize)
            .ok_or(RiskReject::UnknownSymbol)?;
        Ok((si, s.cfg.state))
    }

    #[inline(never)]
    fn check_new_record(&mut self, si: u32, rec: &[u8; COMMAND_SIZE]) -> Result<(), RiskReject> {
        self.check_new(si, &Command::from_record(rec))
    }

    #[inline(never)]
    fn check_amend_record(&mut self, si: u32, rec: &[u8; COMMAND_SIZE]) -> Result<(), RiskReject> {
        self.check_amend(si, &Command::from_record(rec))
    }

    #[inline(always)]
    fn check_new(&mut self, si: u32, cmd: &Command) -> Result<(), RiskReject> {
        let (Some(side), Some(ord_type)) =
            (Side::from_u8(cmd.side), OrdType::from_u8(cmd.ord_type))
        else {
            return Ok(());
        };
        if cmd.account == 0 {
            return Ok(());
        }
        let ai = self.account_ix.get(cmd.account);
        let hi = ai.and_then(|a| self.find_holding(a, si));
        let (price, level) = {
            let sym = self
                .symbols
                .get(si as usize)
                .ok_or(RiskReject::UnknownSymbol)?;
            let fresh;
            let acct = match ai.and_then(|a| self.accounts.get(a as usize)) {
                Some(acct) => acct,
                None => {
                    fresh = Account::new(cmd.account, self.defaults);
                    &fresh
                }
            };
            acct.switches()?;
            let Some((price, notional)) = new_order_terms(sym, side, ord_type, cmd)? else {
                return Ok(());
            };
            let held = hi
                .and_then(|h| self.holdings.get(h as usize))
                .map_or_else(Exposure::default, Holding::exposure);
            let level = acct.take_token(cmd.ts)?;
            acct.capacity(
                held,
                Delta {
                    side,
                    qty: cmd.qty,
                    notional,
                    new_order: true,
                },
            )?;
            (price, level)
        };
        // Last: a client id used today or still live, an order id still live. (Leaving these
        // to the book's 3004/3005 is not safe: an earlier command of the same batch may free the
        // id, and the book would then accept an order risk never reserved.)
        // The day's set is probed by inserting (one lookup instead of two); the insert is
        // undone below if the order is rejected after all. A new account has used no id.
        let recorded = match ai {
            Some(a) if cmd.client_id != 0 => {
                if !self.client_ids.insert((a, cmd.client_id)) {
                    return Err(RiskReject::DuplicateClientId);
                }
                true
            }
            _ => false,
        };
        let live_client = cmd.client_id != 0
            && ai.is_some_and(|a| self.orders.find_client(si, a, cmd.client_id).is_some());
        let refused = if live_client {
            Some(RiskReject::DuplicateClientId)
        } else if cmd.order_id != 0 && self.orders.find_id(si, cmd.order_id).is_some() {
            Some(RiskReject::OrderIdInUse)
        } else {
            None
        };
        if let Some(code) = refused {
            if let (true, Some(a)) = (recorded, ai) {
                self.client_ids.remove(&(a, cmd.client_id));
            }
            return Err(code);
        }
        let a = match ai {
            Some(a) => a,
            None => self.account_index(cmd.account),
        };
        if cmd.client_id != 0 && !recorded {
            self.client_ids.insert((a, cmd.client_id));
        }
        // Passed: commit.
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.commit_token(cmd.ts, level);
        }
        let holding = match hi {
            Some(h) => h,
            None => self.holding_index(a, si),
        };
        let handle = self.insert_order(LiveOrder {
            sym: si,
            acct: a,
            holding,
            side,
            ord_type,
            triggered: false,
            price,
            stop_price: cmd.stop_price,
            open: cmd.qty,
            client_id: cmd.client_id,
            order_id: cmd.order_id,
            seq: cmd.seq,
        });
        let previous = self.orders.pending.insert(
            cmd.seq,
            Pending::New {
                handle,
                day: self.day,
            },
        );
        if let Some(previous) = previous {
            // A reused sequence number (a caller bug): the earlier command can no longer be
            // matched to its answer, so treat it as rejected rather than leak its exposure.
            self.release(previous);
        }
        Ok(())
    }

    #[inline(always)]
    fn check_amend(&mut self, si: u32, cmd: &Command) -> Result<(), RiskReject> {
        if cmd.account == 0 || cmd.qty <= 0 || cmd.price < 0 {
            return Ok(());
        }
        let target = if cmd.order_id != 0 {
            self.orders.find_id(si, cmd.order_id)
        } else {
            let Some(a) = self.account_ix.get(cmd.account) else {
                return Ok(());
            };
            self.orders.find_client(si, a, cmd.client_id)
        };
        let Some((handle, o)) = target.and_then(|h| Some((h, *self.orders.get(h)?))) else {
            return self.unknown_amend_target(si, cmd);
        };
        let a = o.acct;
        if self.accounts.get(a as usize).map(|acct| acct.id) != Some(cmd.account) {
            return Ok(()); // another account's order: the book rejects it (3019)
        }
        let (d, level) = {
            let sym = self
                .symbols
                .get(si as usize)
                .ok_or(RiskReject::UnknownSymbol)?;
            let acct = self
                .accounts
                .get(a as usize)
                .ok_or(RiskReject::AccountDisabled)?;
            acct.switches()?;
            let c = &sym.cfg;
            if !multiple(cmd.price, c.tick) {
                return Err(RiskReject::TickMultiple);
            }
            if !multiple(cmd.qty, c.lot) {
                return Err(RiskReject::LotMultiple);
            }
            if cmd.qty > c.max_qty {
                return Err(RiskReject::QtyAboveMax);
            }
            let price = if cmd.price != 0 { cmd.price } else { o.price };
            let notional = i128::from(price) * i128::from(cmd.qty);
            if notional > c.max_notional {
                return Err(RiskReject::NotionalAboveMax);
            }
            if cmd.price != 0 {
                amend_band(sym, &o, cmd.price)?;
            }
            let level = acct.take_token(cmd.ts)?;
            let d = Delta {
                side: o.side,
                qty: (cmd.qty - o.open).max(0),
                notional: (notional - o.notional()).max(0),
                new_order: false,
            };
            if d.qty > 0 || d.notional > 0 {
                // (An amend that adds nothing passes the capacity checks.)
                let held = self
                    .holdings
                    .get(o.holding as usize)
                    .map_or_else(Exposure::default, Holding::exposure);
                acct.capacity(held, d)?;
            }
            (d, level)
        };
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.commit_token(cmd.ts, level);
        }
        if d.qty > 0 || d.notional > 0 {
            // Reserve what the amend may add until the book answers (an amend that adds
            // nothing needs no reservation).
            self.usage(a, o.holding, d.side, d.qty, d.notional, 0);
            let reservation = Pending::Amend {
                order: handle,
                acct: a,
                holding: o.holding,
                side: d.side,
                qty: d.qty,
                notional: d.notional,
            };
            if let Some(previous) = self.orders.pending.insert(cmd.seq, reservation) {
                self.release(previous);
            }
        }
        Ok(())
    }
}

impl RiskEngine {
    /// An amend whose target the engine does not know is left to the book (3003), unless the
    /// account has new orders in flight in this symbol whose ids the book has not given yet:
    /// the amend may target one of them, and cannot be checked until it is acknowledged.
    fn unknown_amend_target(&self, si: u32, cmd: &Command) -> Result<(), RiskReject> {
        let waiting = self
            .account_ix
            .get(cmd.account)
            .and_then(|a| self.find_holding(a, si))
            .and_then(|h| self.holdings.get(h as usize))
            .is_some_and(|held| held.unassigned > 0);
        if cmd.order_id != 0 && waiting {
            return Err(RiskReject::AmendUnacknowledged);
        }
        Ok(())
    }
}

/// `v` is a multiple of `m` (>= 1); no division for the common `m == 1`.
#[inline]
fn multiple(v: i64, m: i64) -> bool {
    m <= 1 || v % m == 0
}

fn trading(state: TradingState) -> Result<(), RiskReject> {
    match state {
        TradingState::Open => Ok(()),
        TradingState::Halted => Err(RiskReject::SymbolHalted),
        TradingState::Closed => Err(RiskReject::SymbolClosed),
    }
}

/// The symbol's static checks of a new order. Returns the order's price for notional and its
/// notional, or `None` when the book will reject the order as malformed.
#[inline]
fn new_order_terms(
    sym: &SymbolState,
    side: Side,
    ord_type: OrdType,
    cmd: &Command,
) -> Result<Option<(i64, i128)>, RiskReject> {
    let c = &sym.cfg;
    let stop = matches!(ord_type, OrdType::StopMarket | OrdType::StopLimit);
    let limit = matches!(ord_type, OrdType::Limit | OrdType::StopLimit);
    if cmd.price < 0 || (limit && cmd.price == 0) || (stop && cmd.stop_price <= 0) {
        return Ok(None);
    }
    if !multiple(cmd.price, c.tick) || !multiple(cmd.stop_price, c.tick) {
        return Err(RiskReject::TickMultiple);
    }
    if !multiple(cmd.qty, c.lot) || !multiple(cmd.display_qty, c.lot) {
        return Err(RiskReject::LotMultiple);
    }
    if cmd.qty < c.min_qty {
        return Err(RiskReject::QtyBelowMin);
    }
    if cmd.qty > c.max_qty {
        return Err(RiskReject::QtyAboveMax);
    }
    let reference = sym.reference();
    let price = match ord_type {
        OrdType::Market if cmd.price == 0 => {
            if reference <= 0 {
                return Err(RiskReject::NoReferencePrice);
            }
            band_edge(c.market_band, reference, side)
        }
        OrdType::StopMarket if cmd.price == 0 => cmd.stop_price,
        _ => cmd.price,
    };
    let notional = i128::from(price) * i128::from(cmd.qty);
    if notional > c.max_notional {
        return Err(RiskReject::NotionalAboveMax);
    }
    let inside = match ord_type {
        OrdType::Limit => reference <= 0 || c.band.contains(reference, cmd.price),
        OrdType::StopLimit => c.band.contains(cmd.stop_price, cmd.price),
        OrdType::Market => {
            cmd.price == 0 || reference <= 0 || c.market_band.contains(reference, cmd.price)
        }
        OrdType::StopMarket => cmd.price == 0 || c.market_band.contains(cmd.stop_price, cmd.price),
    };
    if !inside {
        return Err(match ord_type {
            OrdType::Limit | OrdType::StopLimit => RiskReject::PriceBand,
            OrdType::Market | OrdType::StopMarket => RiskReject::MarketPriceBand,
        });
    }
    Ok(Some((price, notional)))
}

/// The band check of an amend's new price: untriggered stops against their stop price, other
/// orders against the symbol's reference.
#[inline(always)]
fn amend_band(sym: &SymbolState, o: &LiveOrder, price: i64) -> Result<(), RiskReject> {
    let c = &sym.cfg;
    let reference =
        if matches!(o.ord_type, OrdType::StopMarket | OrdType::StopLimit) && !o.triggered {
            o.stop_price
        } else {
            sym.reference()
        };
    let (band, code) = match o.ord_type {
        OrdType::Limit | OrdType::StopLimit => (c.band, RiskReject::PriceBand),
        OrdType::Market | OrdType::StopMarket => (c.market_band, RiskReject::MarketPriceBand),
    };
    if reference > 0 && !band.contains(reference, price) {
        return Err(code);
    }
    Ok(())
}

/// The worst price a market order without protection may reach inside the market band: the
/// price its notional is reserved at.
fn band_edge(band: Band, reference: i64, side: Side) -> i64 {
    let w = band.width(reference);
    match side {
        Side::Buy => reference.saturating_add(w),
        Side::Sell => reference.saturating_sub(w).max(1),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{AccountLimits, Band, RiskEngine, SymbolRisk, TradingState};
    use crate::types::{Command, COMMAND_SIZE};

    fn engine() -> RiskEngine {
        let symbol = |id| SymbolRisk {
            tick: 2,
            lot: 5,
            min_qty: 5,
            max_qty: 500,
            max_notional: 40_000,
            reference_price: 100,
            band: Band::Bps(1_000),
            market_band: Band::Ticks(30),
            ..SymbolRisk::new(id)
        };
        let limits = AccountLimits {
            max_open_orders: 6,
            max_open_buy_notional: 60_000,
            max_open_sell_notional: 60_000,
            credit_limit: 90_000,
            max_position: 400,
            rate: None,
        };
        let mut e = match RiskEngine::new(vec![symbol(1), symbol(2)], limits) {
            Ok(e) => e,
            Err(err) => panic!("engine: {err}"),
        };
        assert!(e.set_symbol_state(2, TradingState::Halted).is_ok());
        e
    }

    fn command() -> impl Strategy<Value = (u32, Command)> {
        (
            prop_oneof![Just(1u32), Just(2), Just(9)],
            0u8..7,
            0u8..3,
            0u8..5,
            (0u64..4, 0u64..6, 0u64..4),
            (-2i64..130, 0i64..130, -5i64..600),
        )
            .prop_map(
                |(
                    symbol,
                    kind,
                    side,
                    ord_type,
                    (order_id, client_id, account),
                    (price, stop, qty),
                )| {
                    (
                        symbol,
                        Command {
                            kind,
                            side,
                            ord_type,
                            order_id,
                            client_id,
                            account,
                            price,
                            stop_price: stop,
                            qty,
                            ..Command::default()
                        },
                    )
                },
            )
    }

    proptest! {
        /// `check_batch` (which reads new orders and amends from the records) answers and ends
        /// in the state that `check` gives, command by command.
        #[test]
        fn prop_check_batch_is_check_in_order(cmds in proptest::collection::vec(command(), 1..60)) {
            let (mut batch, mut single) = (engine(), engine());
            let mut records = Vec::new();
            let mut symbols = Vec::new();
            let mut expected = Vec::new();
            for (i, (symbol, cmd)) in cmds.iter().enumerate() {
                let cmd = Command { seq: i as u64 + 1, ts: 1_000 * i as u64, ..*cmd };
                cmd.encode(&mut records);
                symbols.push(*symbol);
                expected.push(single.check(*symbol, &cmd).err().map_or(0, |r| r.code()));
            }
            prop_assert_eq!(records.len(), cmds.len() * COMMAND_SIZE);
            let mut verdicts = Vec::new();
            prop_assert!(batch.check_batch(&symbols, &records, &mut verdicts).is_ok());
            prop_assert_eq!(verdicts, expected);
            prop_assert_eq!(batch.snapshot(), single.snapshot());
        }
    }
}
