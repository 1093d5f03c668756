//! Cancel, amend (cancel/replace), mass cancel and time.

use super::side::unlink;
use super::sink::{cancelled, rejected, replaced, Sink};
use super::slab::Place;
use super::Book;
use crate::types::{BookReject, CancelReason, Command, Side, Tif, FLAG_END_OF_DAY};

impl Book {
    /// Take live order `i` off the book (level or stop book) and forget it.
    fn remove_live(&mut self, i: u32) {
        let o = *self.slab.at(i);
        match o.place {
            Place::Resting => {
                let levels = match o.side {
                    Side::Buy => &mut self.bids,
                    Side::Sell => &mut self.asks,
                };
                self.changes.touch(o.side, o.level, levels.at_mut(o.level));
                unlink(&mut self.slab, levels, i);
                levels.close_if_empty(o.level);
            }
            Place::Stop => self.stops.remove(&o),
            Place::Free | Place::Incoming => {}
        }
        self.index.remove(&o);
        self.slab.free(i);
    }

    /// Cancel live order `i` with `reason`: `Cancelled` for its whole open quantity.
    fn cancel_live<S: Sink>(&mut self, i: u32, reason: CancelReason, out: &mut S) {
        let o = self.slab.at(i);
        out.push(&cancelled(self.seq, o, reason, o.open(), 0));
        self.remove_live(i);
    }

    pub(super) fn on_cancel<S: Sink>(&mut self, c: &Command, out: &mut S) {
        match self.find_target(c) {
            Ok(i) => self.cancel_live(i, CancelReason::User, out),
            Err(r) => out.push(&rejected(c, r.code())),
        }
    }

    pub(super) fn on_amend<S: Sink>(&mut self, c: &Command, out: &mut S) {
        let i = match self.amend_target(c) {
            Ok(i) => i,
            Err(r) => return out.push(&rejected(c, r.code())),
        };
        let o = *self.slab.at(i);
        let new_price = if c.price == 0 { o.price } else { c.price };
        let old_open = o.open();
        let kept = new_price == o.price && c.qty < old_open;
        let mut n = o;
        n.price = new_price;
        out.push(&replaced(self.seq, &n, c.qty, o.price, old_open, kept));
        if o.place == Place::Stop {
            // Stops: a quantity decrease keeps the arrival number, anything else takes a new one.
            if !kept {
                self.stops.remove(&o);
                n.arrival = self.next_arrival;
                self.next_arrival = self.next_arrival.wrapping_add(1);
            }
            n.visible = c.qty;
            *self.slab.at_mut(i) = n;
            if !kept {
                self.stops.insert(&n, i);
            }
            return;
        }
        let levels = match o.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        self.changes.touch(o.side, o.level, levels.at_mut(o.level));
        if kept {
            let off = self.slab.at_mut(i).reduce(old_open - c.qty);
            let level = levels.at_mut(o.level);
            level.qty = level.qty.wrapping_sub(off);
            return;
        }
        // Loses priority: leave the level and come back as an incoming order at the new price.
        unlink(&mut self.slab, levels, i);
        levels.close_if_empty(o.level);
        n.visible = c.qty;
        n.hidden = 0;
        n.place = Place::Incoming;
        self.slab.at_mut(i).place = Place::Incoming;
        self.enter(n, Some(i), out);
    }

    /// Amend checks after the target lookup: quantity, price, no-op, post-only crossing.
    fn amend_target(&self, c: &Command) -> Result<u32, BookReject> {
        let i = self.find_target(c)?;
        if c.qty <= 0 || c.qty > self.cfg.max_qty {
            return Err(BookReject::InvalidAmendQty);
        }
        if c.price != 0 && !self.in_range(c.price) {
            return Err(BookReject::InvalidPrice);
        }
        let o = self.slab.at(i);
        let new_price = if c.price == 0 { o.price } else { c.price };
        if new_price == o.price && c.qty == o.open() {
            return Err(BookReject::AmendNoChange);
        }
        if o.place == Place::Resting
            && o.post_only
            && self.levels(o.side.opposite()).crossed_by(new_price)
        {
            return Err(BookReject::PostOnlyWouldTake);
        }
        Ok(i)
    }

    pub(super) fn on_mass_cancel<S: Sink>(&mut self, c: &Command, out: &mut S) {
        if c.account == 0 {
            return out.push(&rejected(c, BookReject::InvalidAccount.code()));
        }
        let (buy, sell) = match c.side {
            0 => (true, true),
            1 => (true, false),
            2 => (false, true),
            _ => return out.push(&rejected(c, BookReject::InvalidSide.code())),
        };
        let mut victims = std::mem::take(&mut self.scratch);
        victims.clear();
        let slab = &self.slab;
        let mine = |i: &u32| slab.at(*i).account == c.account;
        for (wanted, levels) in [(buy, &self.bids), (sell, &self.asks)] {
            if wanted {
                for level in levels.best_first() {
                    victims.extend(super::side::queue(slab, level).filter(mine));
                }
            }
        }
        for (wanted, side) in [(buy, Side::Buy), (sell, Side::Sell)] {
            if wanted {
                victims.extend(self.stops.in_trigger_order(side).filter(mine));
            }
        }
        for &i in &victims {
            self.cancel_live(i, CancelReason::MassCancel, out);
        }
        self.scratch = victims;
    }

    pub(super) fn on_advance_time<S: Sink>(&mut self, c: &Command, out: &mut S) {
        let mut ids = std::mem::take(&mut self.scratch_ids);
        ids.clear();
        ids.extend(self.index.gtd.range(..=(c.ts, u64::MAX)).map(|&(_, id)| id));
        if c.flags & FLAG_END_OF_DAY != 0 {
            ids.extend(
                self.slab
                    .iter()
                    .filter(|(_, o)| {
                        matches!(o.place, Place::Resting | Place::Stop) && o.tif == Tif::Day
                    })
                    .map(|(_, o)| o.id),
            );
        }
        ids.sort_unstable();
        ids.dedup();
        for &id in &ids {
            if let Some(i) = self.index.by_id(id) {
                self.cancel_live(i, CancelReason::Expired, out);
            }
        }
        self.scratch_ids = ids;
    }
}
