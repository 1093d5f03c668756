//! Validation of new orders (docs/book.md, "Validation": first failing check wins, in order)
//! and target lookup for cancel and amend.

use super::Book;
use crate::types::{BookReject, Command, OrdType, Side, StpMode, Tif, FLAG_POST_ONLY};

/// The typed fields of a new order that passed validation, and the id it will get.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Valid {
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: Tif,
    pub stp: StpMode,
    pub id: u64,
}

impl Book {
    #[inline]
    pub(super) fn in_range(&self, price: i64) -> bool {
        self.cfg.min_price <= price && price <= self.cfg.max_price
    }

    /// Checks 2..16 of the spec (the command kind was checked by the caller).
    #[inline]
    pub(super) fn validate_new(&self, c: &Command) -> Result<Valid, BookReject> {
        use BookReject::*;
        if c.account == 0 {
            return Err(InvalidAccount);
        }
        let side = Side::from_u8(c.side).ok_or(InvalidSide)?;
        let ord_type = OrdType::from_u8(c.ord_type).ok_or(InvalidOrderType)?;
        let tif = Tif::from_u8(c.tif).ok_or(InvalidTif)?;
        let stp = StpMode::from_u8(c.stp).ok_or(InvalidStpMode)?;
        if c.qty <= 0 || c.qty > self.cfg.max_qty {
            return Err(InvalidQuantity);
        }
        if c.display_qty != 0
            && !(ord_type == OrdType::Limit && 0 < c.display_qty && c.display_qty < c.qty)
        {
            return Err(InvalidDisplayQty);
        }
        let price_ok = match ord_type {
            OrdType::Limit | OrdType::StopLimit => self.in_range(c.price),
            OrdType::Market | OrdType::StopMarket => c.price == 0 || self.in_range(c.price),
        };
        if !price_ok {
            return Err(InvalidPrice);
        }
        let is_stop = matches!(ord_type, OrdType::StopMarket | OrdType::StopLimit);
        let stop_ok = if is_stop {
            self.in_range(c.stop_price)
        } else {
            c.stop_price == 0
        };
        if !stop_ok {
            return Err(InvalidStopPrice);
        }
        if matches!(ord_type, OrdType::Market | OrdType::StopMarket)
            && !matches!(tif, Tif::Ioc | Tif::Fok)
        {
            return Err(TifNotAllowed);
        }
        if tif == Tif::Gtd && c.expire_ts <= c.ts {
            return Err(InvalidExpiry);
        }
        let post_only = c.flags & FLAG_POST_ONLY != 0;
        if post_only
            && !(ord_type == OrdType::Limit && matches!(tif, Tif::Gtc | Tif::Day | Tif::Gtd))
        {
            return Err(PostOnlyNotAllowed);
        }
        // With order_id = 0 the id comes from the counter, which is above every live id
        // (a checked invariant) unless it has saturated at u64::MAX; only an explicit id or a
        // saturated counter needs the lookup.
        let id = if c.order_id == 0 {
            self.next_id
        } else {
            c.order_id
        };
        if (c.order_id != 0 || id == u64::MAX) && self.index.by_id(id).is_some() {
            return Err(DuplicateOrderId);
        }
        if c.client_id != 0 && self.index.by_client(c.account, c.client_id).is_some() {
            return Err(DuplicateClientId);
        }
        if post_only && self.levels(side.opposite()).crossed_by(c.price) {
            return Err(PostOnlyWouldTake);
        }
        Ok(Valid {
            side,
            ord_type,
            tif,
            stp,
            id,
        })
    }

    /// The live order a cancel/amend addresses: by `order_id`, or with `order_id = 0` by
    /// `(account, client_id)`. Unknown: 3003; another account's: 3019 (an account of 0 owns
    /// nothing, so it gets one of those two).
    #[inline]
    pub(super) fn find_target(&self, c: &Command) -> Result<u32, BookReject> {
        if c.order_id != 0 {
            let i = self
                .index
                .by_id(c.order_id)
                .ok_or(BookReject::UnknownOrder)?;
            if self.slab.at(i).account != c.account {
                return Err(BookReject::AccountMismatch);
            }
            Ok(i)
        } else if c.client_id != 0 {
            self.index
                .by_client(c.account, c.client_id)
                .ok_or(BookReject::UnknownOrder)
        } else {
            Err(BookReject::UnknownOrder)
        }
    }
}
