//! Analytics over fills and return series: the seeds' `calculate_position_stats` and
//! `calculate_sharpe`, now in Rust. Position figures use the same integer ledger as the engine
//! (`Position`); floats appear only in averages and ratios.

use super::position::Position;
use crate::types::Side;

/// Statistics of a sequence of fills. Amounts are ticks x lots.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PositionStats {
    pub position: Position,
    /// Average price of the open position (`None` when flat).
    pub avg_price: Option<f64>,
    pub mark_price: i64,
    /// Unrealized P&L at `mark_price` (0 when flat or without a mark).
    pub unrealized: i128,
    /// Realized plus unrealized.
    pub total_pnl: i128,
    pub fills: u64,
    pub buy_notional: i128,
    pub sell_notional: i128,
    /// Volume-weighted prices of all buys and all sells (`None` without any).
    pub vwap_buy: Option<f64>,
    pub vwap_sell: Option<f64>,
}

/// Run `fills` (side, quantity in lots > 0, price in ticks) through the position ledger and mark
/// what is left at `mark_price` (0 = no mark). Fills with a non-positive quantity are skipped.
pub fn calculate_position_stats(fills: &[(Side, i64, i64)], mark_price: i64) -> PositionStats {
    let mut s = PositionStats {
        mark_price,
        ..PositionStats::default()
    };
    for &(side, qty, price) in fills {
        if qty <= 0 {
            continue;
        }
        s.position.fill(side, qty, price);
        s.fills += 1;
        let notional = i128::from(qty) * i128::from(price);
        match side {
            Side::Buy => s.buy_notional = s.buy_notional.saturating_add(notional),
            Side::Sell => s.sell_notional = s.sell_notional.saturating_add(notional),
        }
    }
    let p = &s.position;
    s.avg_price = p.avg_price();
    s.unrealized = p.unrealized(mark_price);
    s.total_pnl = p.realized.saturating_add(s.unrealized);
    s.vwap_buy = (p.bought > 0).then(|| s.buy_notional as f64 / p.bought as f64);
    s.vwap_sell = (p.sold > 0).then(|| s.sell_notional as f64 / p.sold as f64);
    s
}

/// Annualized Sharpe ratio of a series of per-period returns: mean excess return over the
/// sample standard deviation (n - 1), times `sqrt(periods_per_year)`. `risk_free` is the
/// risk-free return per period. `None` with fewer than two returns, zero variance, a
/// non-finite input or `periods_per_year <= 0`.
pub fn calculate_sharpe(returns: &[f64], risk_free: f64, periods_per_year: f64) -> Option<f64> {
    if returns.len() < 2
        || !risk_free.is_finite()
        || !periods_per_year.is_finite()
        || periods_per_year <= 0.0
    {
        return None;
    }
    // Welford's running mean and variance: stable for long series.
    let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for &r in returns {
        if !r.is_finite() {
            return None;
        }
        let x = r - risk_free;
        n += 1.0;
        let d = x - mean;
        mean += d / n;
        m2 += d * (x - mean);
    }
    let sd = (m2 / (n - 1.0)).sqrt();
    let ratio = mean / sd * periods_per_year.sqrt();
    (sd > 0.0 && ratio.is_finite()).then_some(ratio)
}

/// A ticks x lots amount in currency, for display: `amount * tick_size * lot_size`.
pub fn amount_to_f64(amount: i128, tick_size: f64, lot_size: f64) -> f64 {
    amount as f64 * tick_size * lot_size
}
