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
            let taken = cost_share(self.cost, closed, net.abs());
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

/// `cost * closed / open` rounded toward zero (saturating in i128), with `0 < closed <= open`.
/// In 64-bit arithmetic when the product fits, which it does for any realistic position: an
/// i128 division is a library call of some hundred instructions, an i64 one a single one.
#[inline]
fn cost_share(cost: i128, closed: i128, open: i128) -> i128 {
    if let (Ok(c), Ok(k), Ok(n)) = (
        i64::try_from(cost),
        i64::try_from(closed),
        i64::try_from(open),
    ) {
        if let Some(share) = c.checked_mul(k).and_then(|product| product.checked_div(n)) {
            return i128::from(share);
        }
    }
    cost.saturating_mul(closed) / open
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::cost_share;

    proptest! {
        /// The 64-bit path gives what the i128 expression gives, at and past the i64 edges.
        #[test]
        fn prop_cost_share_is_the_i128_quotient(
            cost in prop_oneof![
                any::<i64>().prop_map(i128::from),
                any::<i128>(),
                (-3i128..3).prop_map(|d| i128::from(i64::MAX) + d),
                (-3i128..3).prop_map(|d| i128::from(i64::MIN) + d),
            ],
            open in prop_oneof![1i128..1_000, 1i128..=i128::from(i64::MAX), (1i128..4).prop_map(|d| i128::from(i64::MAX) + d)],
            frac in 0.0f64..=1.0,
        ) {
            let closed = ((open as f64 * frac) as i128).clamp(1, open);
            prop_assert_eq!(cost_share(cost, closed, open), cost.saturating_mul(closed) / open);
        }
    }
}
