//! Trading controls. Each call is an operator action the daemon journals as a sequenced command,
//! so that replay makes the same calls at the same points.

use super::config::{AccountLimits, RiskError, SymbolRisk, TradingState};
use super::RiskEngine;

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
        let Some(&a) = self.account_ix.get(&account) else {
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

    /// Replace a symbol's checks (its last price is kept), or add a new symbol.
    pub fn set_symbol(&mut self, cfg: SymbolRisk) -> Result<(), RiskError> {
        cfg.validate()?;
        match self.symbol_ix.get(cfg.symbol) {
            Some(si) => {
                if let Some(s) = self.symbols.get_mut(si as usize) {
                    s.cfg = cfg;
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

    fn admin_account(&mut self, account: u64) -> Result<u32, RiskError> {
        if account == 0 {
            return Err(RiskError::ZeroAccount);
        }
        Ok(self.account_index(account))
    }
}
