//! Cancel, amend, mass cancel and time (docs/book.md "Cancel, amend, mass cancel", "Time").

use super::matching::reduce;
use super::{Order, Place, ReferenceBook};
use crate::types::{
    BookReject, CancelReason, Command, Event, EventKind, Side, Tif, FLAG_END_OF_DAY,
};

impl ReferenceBook {
    /// The live order a cancel/amend targets: by `order_id`, or with `order_id = 0` by
    /// `(account, client_id)`. Unknown: 3003; another account's: 3019.
    fn target(&self, cmd: &Command) -> Result<(Order, Place), BookReject> {
        let found = if cmd.order_id != 0 {
            self.find(cmd.order_id)
        } else if cmd.client_id != 0 {
            self.find_client(cmd.account, cmd.client_id)
        } else {
            None
        };
        let (order, place) = found.ok_or(BookReject::UnknownOrder)?;
        if order.account != cmd.account {
            return Err(BookReject::AccountMismatch);
        }
        Ok((order.clone(), place))
    }

    pub(super) fn cancel(&mut self, cmd: &Command, out: &mut Vec<Event>) -> Result<(), BookReject> {
        let (order, _) = self.target(cmd)?;
        self.remove(order.id);
        out.push(order.cancelled(CancelReason::User, order.open(), 0));
        Ok(())
    }

    pub(super) fn amend(&mut self, cmd: &Command, out: &mut Vec<Event>) -> Result<(), BookReject> {
        let (mut order, place) = self.target(cmd)?;
        if cmd.qty <= 0 || cmd.qty > self.cfg.max_qty {
            return Err(BookReject::InvalidAmendQty);
        }
        if cmd.price != 0 && !self.in_range(cmd.price) {
            return Err(BookReject::InvalidPrice);
        }
        let (old_price, old_open) = (order.price, order.open());
        let new_price = if cmd.price == 0 { old_price } else { cmd.price };
        if new_price == old_price && cmd.qty == old_open {
            return Err(BookReject::AmendNoChange);
        }
        let resting = matches!(place, Place::Resting(_));
        if resting && order.post_only && self.crosses(order.side, new_price) {
            return Err(BookReject::PostOnlyWouldTake);
        }
        let keep = new_price == old_price && cmd.qty < old_open;
        order.price = new_price;
        out.push(Event {
            qty: cmd.qty,
            leaves: cmd.qty,
            aux: old_price,
            aux2: old_open,
            flags: u8::from(keep),
            ..order.event(EventKind::Replaced)
        });
        match place {
            Place::Resting(side) if keep => {
                reduce(&mut order, old_open - cmd.qty);
                self.replace_in_place(side, order);
            }
            Place::Resting(_) => {
                self.remove(order.id);
                order.visible = cmd.qty;
                order.hidden = 0;
                let trades_before = self.stats.trades;
                self.enter(order, out);
                self.run_stops(trades_before, out);
            }
            Place::Stop(side) => {
                order.visible = cmd.qty;
                if !keep {
                    order.priority = self.take_arrival();
                }
                let stops = self.stop_vec_mut(side);
                if let Some(slot) = stops.iter_mut().find(|o| o.id == order.id) {
                    *slot = order;
                }
                self.sort_stops(side);
            }
        }
        Ok(())
    }

    fn replace_in_place(&mut self, side: Side, order: Order) {
        if let Some(slot) = self
            .side_vec_mut(side)
            .iter_mut()
            .find(|o| o.id == order.id)
        {
            *slot = order;
        }
    }

    pub(super) fn mass_cancel(
        &mut self,
        cmd: &Command,
        out: &mut Vec<Event>,
    ) -> Result<(), BookReject> {
        if cmd.account == 0 {
            return Err(BookReject::InvalidAccount);
        }
        let (buys, sells) = match cmd.side {
            0 => (true, true),
            1 => (true, false),
            2 => (false, true),
            _ => return Err(BookReject::InvalidSide),
        };
        let mut victims: Vec<Order> = Vec::new();
        for (wanted, orders) in [
            (buys, &self.bids),
            (sells, &self.asks),
            (buys, &self.buy_stops),
            (sells, &self.sell_stops),
        ] {
            if wanted {
                victims.extend(orders.iter().filter(|o| o.account == cmd.account).cloned());
            }
        }
        for o in victims {
            self.remove(o.id);
            out.push(o.cancelled(CancelReason::MassCancel, o.open(), 0));
        }
        Ok(())
    }

    pub(super) fn advance_time(&mut self, cmd: &Command, out: &mut Vec<Event>) {
        let end_of_day = cmd.flags & FLAG_END_OF_DAY != 0;
        let mut victims: Vec<Order> = self
            .live()
            .map(|(o, _)| o)
            .filter(|o| {
                (o.tif == Tif::Gtd && o.expire_ts <= cmd.ts) || (end_of_day && o.tif == Tif::Day)
            })
            .cloned()
            .collect();
        victims.sort_by_key(|o| o.id);
        for o in victims {
            self.remove(o.id);
            out.push(o.cancelled(CancelReason::Expired, o.open(), 0));
        }
    }
}
