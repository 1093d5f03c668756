//! Trading controls. Each call is an operator action the daemon journals as a sequenced command,
//! so that replay makes the same calls at the same points.

use super::codes::RiskReject;
use super::config::{AccountLimits, RateLimit, RiskError, SymbolRisk, TradingState};
use super::RiskEngine;
use crate::types::{AdminAction, Command, LimitKey, Side};
use crate::wire::ALL_SYMBOLS;

impl RiskEngine {
    /// Limits of every account without limits of its own (and of accounts created later).
    pub fn set_default_limits(&mut self, limits: AccountLimits) -> Result<(), RiskError> {
        limits.validate()?;
        self.defaults = limits;
        for acct in self.accounts.iter_mut().filter(|a| !a.custom) {
            acct.set_limits(limits, false);
        }
        Ok(())
    }

    /// Give `account` limits of its own.
    pub fn set_limits(&mut self, account: u64, limits: AccountLimits) -> Result<(), RiskError> {
        limits.validate()?;
        let a = self.admin_account(account)?;
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.set_limits(limits, true);
        }
        Ok(())
    }

    /// Make `account` follow the default limits again.
    pub fn reset_limits(&mut self, account: u64) -> Result<(), RiskError> {
        let a = self.admin_account(account)?;
        let defaults = self.defaults;
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.set_limits(defaults, false);
        }
        Ok(())
    }

    /// Enable or disable `account`: a disabled account's new orders and amends are refused
    /// (2004); its live orders stay.
    pub fn set_enabled(&mut self, account: u64, enabled: bool) -> Result<(), RiskError> {
        let a = self.admin_account(account)?;
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.enabled = enabled;
        }
        Ok(())
    }

    /// Turn `account`'s kill switch on or off. While on, its new orders and amends are refused
    /// (2005). Returns the symbols (ascending) where the account has live orders: the daemon
    /// sends each of them a mass cancel for the account (empty when turning the switch off).
    pub fn set_killed(&mut self, account: u64, killed: bool) -> Result<Vec<u32>, RiskError> {
        let a = self.admin_account(account)?;
        if let Some(acct) = self.accounts.get_mut(a as usize) {
            acct.killed = killed;
        }
        Ok(if killed {
            self.live_symbols(account)
        } else {
            Vec::new()
        })
    }

    /// Symbols (ascending) where `account` has live orders, including ones in flight.
    pub fn live_symbols(&self, account: u64) -> Vec<u32> {
        let Some(a) = self.account_ix.get(account) else {
            return Vec::new();
        };
        let mut out: Vec<u32> = self
            .orders
            .iter()
            .filter(|o| o.acct == a)
            .filter_map(|o| self.symbols.get(o.sym as usize).map(|s| s.cfg.symbol))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Open, halt or close `symbol`. Halted: new orders and amends refused (2003), cancels
    /// accepted. Closed: every order command refused (2002).
    pub fn set_symbol_state(&mut self, symbol: u32, state: TradingState) -> Result<(), RiskError> {
        let si = self.symbol_index(symbol)?;
        if let Some(s) = self.symbols.get_mut(si as usize) {
            s.cfg.state = state;
        }
        Ok(())
    }

    /// Replace a symbol's checks, or add a new symbol. The last price and the trading state of
    /// a known symbol are kept: the state is a control (`set_symbol_state`), not configuration.
    pub fn set_symbol(&mut self, cfg: SymbolRisk) -> Result<(), RiskError> {
        cfg.validate()?;
        match self.symbol_ix.get(cfg.symbol.into()) {
            Some(si) => {
                if let Some(s) = self.symbols.get_mut(si as usize) {
                    s.cfg = SymbolRisk {
                        state: s.cfg.state,
                        ..cfg
                    };
                }
            }
            None => {
                self.add_symbol(cfg)?;
            }
        }
        Ok(())
    }

    /// Start a new trading day: client order ids may be used again. An `AdvanceTime` command
    /// with the end-of-day flag does this when it passes `check`.
    pub fn start_day(&mut self) {
        self.day = self.day.wrapping_add(1);
        self.client_ids.clear();
    }

    /// The limits `account` has now (the defaults for an account not seen yet).
    pub fn limits_of(&self, account: u64) -> AccountLimits {
        self.account_ix
            .get(account)
            .and_then(|a| self.accounts.get(a as usize))
            .map_or(self.defaults, |acct| acct.limits)
    }

    /// Execute an `Admin` command (`CmdKind::Admin`, fields in `types.rs`) at its place in the
    /// sequence: the control calls above, from the command's fields. `Err` changes nothing.
    /// A mass cancel only validates here; the sequencer sequences the mass cancel itself (and
    /// one for every symbol after turning a kill switch on).
    pub fn apply_admin(&mut self, cmd: &Command) -> Result<(), RiskReject> {
        use AdminAction::*;
        let action = AdminAction::from_u8(cmd.ord_type).ok_or(RiskReject::BadAdmin)?;
        if action.on_symbol() {
            let symbol = u32::try_from(cmd.stp_group).map_err(|_| RiskReject::UnknownSymbol)?;
            let state = match action {
                HaltSymbol => TradingState::Halted,
                OpenSymbol => TradingState::Open,
                _ => TradingState::Closed,
            };
            return self
                .set_symbol_state(symbol, state)
                .map_err(|_| RiskReject::UnknownSymbol);
        }
        let account = cmd.account;
        if account == 0 {
            return Err(RiskReject::BadAdmin);
        }
        let done = match action {
            KillSwitchOn | KillSwitchOff => {
                self.set_killed(account, action == KillSwitchOn).map(drop)
            }
            DisableAccount | EnableAccount => self.set_enabled(account, action == EnableAccount),
            MassCancel => {
                let all = cmd.stp_group == u64::from(ALL_SYMBOLS);
                let known = u32::try_from(cmd.stp_group)
                    .ok()
                    .and_then(|s| self.symbol_ix.get(s.into()))
                    .is_some();
                if !all && !known {
                    return Err(RiskReject::UnknownSymbol);
                }
                if cmd.side != 0 && Side::from_u8(cmd.side).is_none() {
                    return Err(RiskReject::BadAdmin);
                }
                Ok(())
            }
            SetLimit => {
                let key = LimitKey::from_u8(cmd.tif).ok_or(RiskReject::BadAdmin)?;
                let limits = with_limit(self.limits_of(account), key, cmd.price)?;
                self.set_limits(account, limits)
            }
            ResetLimits => self.reset_limits(account),
            HaltSymbol | OpenSymbol | CloseSymbol => Err(RiskError::ZeroAccount),
        };
        done.map_err(|_| RiskReject::BadLimitValue)
    }

    fn admin_account(&mut self, account: u64) -> Result<u32, RiskError> {
        if account == 0 {
            return Err(RiskError::ZeroAccount);
        }
        Ok(self.account_index(account))
    }
}

/// `limits` with the one limit `key` set to `value` (-1 = no limit).
fn with_limit(
    limits: AccountLimits,
    key: LimitKey,
    value: i64,
) -> Result<AccountLimits, RiskReject> {
    let bad: Result<AccountLimits, RiskReject> = Err(RiskReject::BadLimitValue);
    if value < -1 {
        return bad;
    }
    let unlimited = value == -1;
    let wide = |max: i128| if unlimited { max } else { i128::from(value) };
    let mut l = limits;
    match key {
        LimitKey::MaxOpenOrders => {
            l.max_open_orders = if unlimited {
                u32::MAX
            } else {
                u32::try_from(value).map_err(|_| RiskReject::BadLimitValue)?
            }
        }
        LimitKey::MaxOpenBuyNotional => l.max_open_buy_notional = wide(i128::MAX),
        LimitKey::MaxOpenSellNotional => l.max_open_sell_notional = wide(i128::MAX),
        LimitKey::CreditLimit => l.credit_limit = wide(i128::MAX),
        LimitKey::MaxPosition => l.max_position = if unlimited { i64::MAX } else { value },
        LimitKey::RatePerSec => {
            l.rate = match (unlimited, u64::try_from(value)) {
                (true, _) => None,
                (false, Ok(per_sec)) if per_sec >= 1 => Some(RateLimit {
                    per_sec,
                    burst: l.rate.map_or(per_sec, |r| r.burst),
                }),
                _ => return bad,
            }
        }
        LimitKey::RateBurst => {
            let Some(rate) = l.rate else {
                return bad;
            };
            let burst = if unlimited {
                rate.per_sec
            } else {
                u64::try_from(value).map_err(|_| RiskReject::BadLimitValue)?
            };
            if burst < 1 {
                return bad;
            }
            l.rate = Some(RateLimit { burst, ..rate });
        }
    }
    Ok(l)
}
