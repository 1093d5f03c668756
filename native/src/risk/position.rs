//! One account's position in one symbol, from its fills: average-cost accounting in integers.
//!
//! `cost` is the signed cost of the open position (sum of signed qty x price of the fills that
//! opened it, minus what closing fills took out), so the average price is `cost / net`.
//! A fill that reduces the position takes out `cost * closed / |net|` (i128 division, rounded
//! toward zero) and realizes `sign(net) * price * closed - taken`. A fill that flips the
//! position first closes it completely, then opens the rest at the fill price. All amounts
//! are ticks x lots.

use crate::types::Side;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Position {
    /// Net quantity in lots: > 0 long, < 0 short.
    pub net: i64,
    /// Signed cost of the open position (same sign as `net`, 0 when flat).
    pub cost: i128,
    /// Realized profit and loss.
    pub realized: i128,
    /// Total bought and sold quantity.
    pub bought: i64,
    pub sold: i64,
}

impl Position {
    /// Apply one fill of `qty` lots at `price` ticks on `side`.
    pub fn fill(&mut self, side: Side, qty: i64, price: i64) {
        if qty <= 0 {
            return;
        }
        let dq = match side {
            Side::Buy => {
                self.bought = self.bought.saturating_add(qty);
                i128::from(qty)
            }
            Side::Sell => {
                self.sold = self.sold.saturating_add(qty);
                -i128::from(qty)
            }
        };
        let net = i128::from(self.net);
        let p = i128::from(price);
        if net == 0 || (net > 0) == (dq > 0) {
            self.cost = self.cost.saturating_add(dq * p);
        } else {
            let closed = dq.abs().min(net.abs());
            let taken = self.cost.saturating_mul(closed) / net.abs();
            self.realized = self
                .realized
                .saturating_add(net.signum() * p * closed - taken);
            self.cost -= taken;
            let rest = dq.abs() - closed;
            if rest > 0 {
                // Flipped: the old position is closed (cost 0), the rest opens at `price`.
                self.cost = dq.signum() * rest * p;
            }
        }
        let new_net = net + dq;
        self.net = i64::try_from(new_net).unwrap_or(if new_net > 0 { i64::MAX } else { i64::MIN });
    }

    /// Average price of the open position; `None` when flat.
    pub fn avg_price(&self) -> Option<f64> {
        (self.net != 0).then(|| self.cost as f64 / self.net as f64)
    }

    /// Unrealized P&L of the open position marked at `mark` (0 when flat or no mark).
    pub fn unrealized(&self, mark: i64) -> i128 {
        if self.net == 0 || mark <= 0 {
            return 0;
        }
        i128::from(self.net) * i128::from(mark) - self.cost
    }
}
