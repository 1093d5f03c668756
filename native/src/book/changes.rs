//! Level-change coalescing: the (visible total, count) of every level a command touches is
//! recorded on first touch; at the end of the command one `Level` event is emitted per level
//! whose state differs, bids first then asks, best price first.
//!
//! "First touch" is detected with a per-command epoch stamped on the level (`Level::mark`), so
//! recording is O(1) however many levels a sweep crosses. A level created during the command
//! may have existed earlier in the same command (emptied, then re-created), so creation looks
//! the price up in the (short) list instead. Each record keeps the level's slot, so the end of
//! the command reads the final state without a price lookup while the slot still holds it.

use super::side::{Level, Levels};
use super::sink::{level_event, Sink};
use crate::types::Side;

#[derive(Clone, Copy, Debug)]
struct Before {
    side: Side,
    price: i64,
    qty: i64,
    count: u32,
    slot: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Changes {
    list: Vec<Before>,
    /// Current command's epoch; never 0, so fresh levels (mark 0) are untouched.
    pub epoch: u64,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            list: Vec::with_capacity(16),
            epoch: 1,
        }
    }
}

impl Changes {
    /// Record `level`'s state before its first change in this command.
    #[inline]
    pub(crate) fn touch(&mut self, side: Side, slot: u32, level: &mut Level) {
        if level.mark != self.epoch {
            level.mark = self.epoch;
            self.list.push(Before {
                side,
                price: level.price,
                qty: level.qty,
                count: level.count,
                slot,
            });
        }
    }

    /// A level at `price` is being created: it was empty before unless this command already
    /// recorded it (and since emptied it).
    #[inline]
    pub(crate) fn created(&mut self, side: Side, price: i64, slot: u32) {
        match self
            .list
            .iter_mut()
            .find(|b| b.side == side && b.price == price)
        {
            Some(b) => b.slot = slot,
            None => self.list.push(Before {
                side,
                price,
                qty: 0,
                count: 0,
                slot,
            }),
        }
    }

    /// Emit the `Level` events of the command that just ended and start a new epoch.
    pub(crate) fn flush<S: Sink>(&mut self, seq: u64, bids: &Levels, asks: &Levels, out: &mut S) {
        self.epoch = self.epoch.wrapping_add(1).max(1);
        if self.list.is_empty() {
            return;
        }
        if self.list.len() > 1 {
            self.list.sort_unstable_by(|a, b| {
                a.side.cmp(&b.side).then_with(|| match a.side {
                    Side::Buy => b.price.cmp(&a.price),
                    Side::Sell => a.price.cmp(&b.price),
                })
            });
        }
        for b in &self.list {
            let levels = match b.side {
                Side::Buy => bids,
                Side::Sell => asks,
            };
            let l = levels.at(b.slot);
            let (qty, count) = if l.live && l.price == b.price {
                (l.qty, l.count)
            } else {
                levels.state_at(b.price)
            };
            if (qty, count) != (b.qty, b.count) {
                out.push(&level_event(seq, b.side, b.price, qty, count));
            }
        }
        self.list.clear();
    }
}
