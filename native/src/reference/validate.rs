//! New-order validation: the sixteen checks of docs/book.md "Validation", first failure wins.

use super::ReferenceBook;
use crate::types::{BookReject, Command, OrdType, Side, StpMode, Tif, FLAG_POST_ONLY};

/// The enum fields of a new order that passed validation.
pub(super) struct Valid {
    pub side: Side,
    pub ord_type: OrdType,
    pub tif: Tif,
    pub stp: StpMode,
    pub post_only: bool,
}

impl ReferenceBook {
    pub(super) fn in_range(&self, price: i64) -> bool {
        self.cfg.min_price <= price && price <= self.cfg.max_price
    }

    /// Whether a limit order at `price` on `side` would take liquidity (meets the opposite best).
    pub(super) fn crosses(&self, side: Side, price: i64) -> bool {
        match (side, self.best(side.opposite())) {
            (Side::Buy, Some(ask)) => price >= ask,
            (Side::Sell, Some(bid)) => price <= bid,
            (_, None) => false,
        }
    }

    /// Checks 2..16 (check 1, the command kind, is the caller's dispatch).
    pub(super) fn validate_new(&self, cmd: &Command) -> Result<Valid, BookReject> {
        use BookReject::*;
        if cmd.account == 0 {
            return Err(InvalidAccount);
        }
        let side = Side::from_u8(cmd.side).ok_or(InvalidSide)?;
        let ord_type = OrdType::from_u8(cmd.ord_type).ok_or(InvalidOrderType)?;
        let tif = Tif::from_u8(cmd.tif).ok_or(InvalidTif)?;
        let stp = StpMode::from_u8(cmd.stp).ok_or(InvalidStpMode)?;
        if cmd.qty <= 0 || cmd.qty > self.cfg.max_qty {
            return Err(InvalidQuantity);
        }
        let iceberg_ok =
            ord_type == OrdType::Limit && 0 < cmd.display_qty && cmd.display_qty < cmd.qty;
        if cmd.display_qty != 0 && !iceberg_ok {
            return Err(InvalidDisplayQty);
        }
        let price_ok = match ord_type {
            OrdType::Limit | OrdType::StopLimit => self.in_range(cmd.price),
            OrdType::Market | OrdType::StopMarket => cmd.price == 0 || self.in_range(cmd.price),
        };
        if !price_ok {
            return Err(InvalidPrice);
        }
        let stop_ok = match ord_type {
            OrdType::StopMarket | OrdType::StopLimit => self.in_range(cmd.stop_price),
            OrdType::Limit | OrdType::Market => cmd.stop_price == 0,
        };
        if !stop_ok {
            return Err(InvalidStopPrice);
        }
        let immediate = matches!(tif, Tif::Ioc | Tif::Fok);
        if matches!(ord_type, OrdType::Market | OrdType::StopMarket) && !immediate {
            return Err(TifNotAllowed);
        }
        if tif == Tif::Gtd && cmd.expire_ts <= cmd.ts {
            return Err(InvalidExpiry);
        }
        let post_only = cmd.flags & FLAG_POST_ONLY != 0;
        if post_only && (ord_type != OrdType::Limit || immediate) {
            return Err(PostOnlyNotAllowed);
        }
        // Check 14 is about an explicit id; the counter's id is checked too, which can only
        // fail once the counter has saturated at u64::MAX (the spec is silent on that case).
        let id = if cmd.order_id == 0 {
            self.next_id
        } else {
            cmd.order_id
        };
        if self.find(id).is_some() {
            return Err(DuplicateOrderId);
        }
        if cmd.client_id != 0 && self.find_client(cmd.account, cmd.client_id).is_some() {
            return Err(DuplicateClientId);
        }
        if post_only && self.crosses(side, cmd.price) {
            return Err(PostOnlyWouldTake);
        }
        Ok(Valid {
            side,
            ord_type,
            tif,
            stp,
            post_only,
        })
    }
}
