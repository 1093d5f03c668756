//! Canonical, versioned snapshots.
//!
//! Layout (little endian): magic `CIFTBOOK`, version u32, config (min, max price), counters
//! (next order id, next trade id, next stop arrival), statistics (last price, volume, notional
//! i128, trade count), then bid levels best first, ask levels best first (each: price, order
//! count, orders in queue order), buy stops and sell stops in trigger order (count, orders),
//! and finally an FNV-1a 64 checksum of everything before it. Orders are written field by field
//! (never slab indices), so equal states give equal bytes whatever the storage history.

use super::side::{push_back, Levels};
use super::slab::{Order, Place, NIL};
use super::Book;
use crate::types::{BookConfig, OrdType, Side, StpMode, Tif, TradeStats};

const MAGIC: &[u8; 8] = b"CIFTBOOK";
const VERSION: u32 = 2;
/// Encoded size of one order.
const ORDER_SIZE: usize = 12 * 8 + 5;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a book snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot version {0} (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    #[error("snapshot truncated")]
    Truncated,
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
}

pub(crate) use crate::codec::fnv1a;
use crate::codec::{Reader, Truncated, Writer};

impl From<Truncated> for SnapshotError {
    fn from(_: Truncated) -> SnapshotError {
        SnapshotError::Truncated
    }
}

fn corrupt<T>(msg: impl Into<String>) -> Result<T, SnapshotError> {
    Err(SnapshotError::Corrupt(msg.into()))
}

impl Writer {
    fn order(&mut self, o: &Order) {
        for v in [o.id, o.account, o.client_id, o.stp_group] {
            self.u64(v);
        }
        for v in [
            o.price,
            o.stop_price,
            o.visible,
            o.hidden,
            o.display,
            o.filled,
        ] {
            self.i64(v);
        }
        self.u64(o.expire_ts);
        self.u64(o.arrival);
        for v in [
            o.side as u8,
            o.ord_type as u8,
            o.tif as u8,
            o.stp as u8,
            u8::from(o.post_only),
        ] {
            self.u8(v);
        }
    }
}

impl Reader<'_> {
    fn order(&mut self, place: Place) -> Result<Order, SnapshotError> {
        let (id, account, client_id, stp_group) =
            (self.u64()?, self.u64()?, self.u64()?, self.u64()?);
        let (price, stop_price, visible) = (self.i64()?, self.i64()?, self.i64()?);
        let (hidden, display, filled) = (self.i64()?, self.i64()?, self.i64()?);
        let (expire_ts, arrival) = (self.u64()?, self.u64()?);
        let bad = |what: &str| SnapshotError::Corrupt(format!("order {id}: bad {what}"));
        let side = Side::from_u8(self.u8()?).ok_or_else(|| bad("side"))?;
        let ord_type = OrdType::from_u8(self.u8()?).ok_or_else(|| bad("order type"))?;
        let tif = Tif::from_u8(self.u8()?).ok_or_else(|| bad("time in force"))?;
        let stp = StpMode::from_u8(self.u8()?).ok_or_else(|| bad("STP mode"))?;
        let post_only = match self.u8()? {
            0 => false,
            1 => true,
            _ => return Err(bad("post-only flag")),
        };
        Ok(Order {
            id,
            account,
            client_id,
            stp_group,
            price,
            stop_price,
            visible,
            hidden,
            display,
            filled,
            expire_ts,
            arrival,
            prev: NIL,
            next: NIL,
            level: NIL,
            side,
            ord_type,
            tif,
            stp,
            post_only,
            place,
        })
    }
}

impl Book {
    /// The whole state as versioned, canonical bytes (equal states give equal bytes).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(128 + self.order_count() * ORDER_SIZE));
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.i64(self.cfg.min_price);
        w.i64(self.cfg.max_price);
        w.i64(self.cfg.max_qty);
        w.u64(self.next_id);
        w.u64(self.next_trade_id);
        w.u64(self.next_arrival);
        w.i64(self.stats.last_price);
        w.i64(self.stats.volume);
        w.0.extend_from_slice(&self.stats.notional.to_le_bytes());
        w.u64(self.stats.trades);
        for levels in [&self.bids, &self.asks] {
            w.count(levels.len());
            for level in levels.best_first() {
                w.i64(level.price);
                w.u32(level.count);
                for i in super::side::queue(&self.slab, level) {
                    w.order(self.slab.at(i));
                }
            }
        }
        for side in [Side::Buy, Side::Sell] {
            w.count(self.stops.in_trigger_order(side).count());
            for i in self.stops.in_trigger_order(side) {
                w.order(self.slab.at(i));
            }
        }
        let sum = fnv1a(&w.0);
        w.u64(sum);
        w.0
    }

    /// Rebuild a book from `snapshot()` bytes. The result is checked for consistency, so a
    /// restored book is one that commands could have produced.
    pub fn restore(bytes: &[u8]) -> Result<Book, SnapshotError> {
        let mut r = Reader(bytes);
        if &r.take::<8>().map_err(|_| SnapshotError::BadMagic)? != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let (body, sum) = match bytes.split_last_chunk::<8>() {
            Some((body, sum)) if body.len() >= 12 => (body, u64::from_le_bytes(*sum)),
            _ => return Err(SnapshotError::Truncated),
        };
        let cfg = BookConfig {
            min_price: r.i64()?,
            max_price: r.i64()?,
            max_qty: r.i64()?,
        };
        let mut book = Book::new(cfg);
        book.next_id = r.u64()?;
        book.next_trade_id = r.u64()?;
        book.next_arrival = r.u64()?;
        book.stats = TradeStats {
            last_price: r.i64()?,
            volume: r.i64()?,
            notional: i128::from_le_bytes(r.take()?),
            trades: r.u64()?,
        };
        for side in [Side::Buy, Side::Sell] {
            let n = r.count(12)?;
            for _ in 0..n {
                let price = r.i64()?;
                let count = r.count(ORDER_SIZE)?;
                if count == 0 {
                    return corrupt(format!("empty {side:?} level {price}"));
                }
                let slot = book.restore_level(side, price)?;
                for _ in 0..count {
                    let o = r.order(Place::Resting)?;
                    if o.side != side || o.price != price {
                        return corrupt(format!(
                            "order {} does not belong to {side:?} level {price}",
                            o.id
                        ));
                    }
                    book.restore_resting(o, slot)?;
                }
            }
        }
        for side in [Side::Buy, Side::Sell] {
            let n = r.count(ORDER_SIZE)?;
            for _ in 0..n {
                let o = r.order(Place::Stop)?;
                if o.side != side {
                    return corrupt(format!("stop {} on the wrong side", o.id));
                }
                book.restore_stop(o)?;
            }
        }
        let stored = r.u64()?;
        if !r.0.is_empty() {
            return corrupt("trailing bytes");
        }
        if stored != sum || fnv1a(body) != sum {
            return corrupt("checksum mismatch");
        }
        book.check_invariants()
            .map_err(|e| SnapshotError::Corrupt(e.0))?;
        Ok(book)
    }

    fn restore_index(&mut self, o: &Order) -> Result<u32, SnapshotError> {
        if self.index.by_id(o.id).is_some() {
            return corrupt(format!("duplicate order id {}", o.id));
        }
        if o.client_id != 0 && self.index.by_client(o.account, o.client_id).is_some() {
            return corrupt(format!(
                "duplicate client id {} for account {}",
                o.client_id, o.account
            ));
        }
        let i = match self.slab.insert(*o) {
            Some(i) => i,
            None => return corrupt("too many orders"),
        };
        self.index.add(o, i);
        Ok(i)
    }

    fn side_mut(&mut self, side: Side) -> &mut Levels {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Open a level; levels arrive best first, so each new one must be worse than the last.
    fn restore_level(&mut self, side: Side, price: i64) -> Result<u32, SnapshotError> {
        let levels = self.side_mut(side);
        if levels
            .sorted()
            .first()
            .is_some_and(|&(worst, _)| levels.key(price) >= worst)
        {
            return corrupt(format!("{side:?} level {price} out of order"));
        }
        match levels.open(price, 0) {
            Some((slot, true)) => Ok(slot),
            _ => corrupt(format!("{side:?} level {price} cannot be opened")),
        }
    }

    /// Append a resting order to the back of the level in `slot`.
    fn restore_resting(&mut self, o: Order, slot: u32) -> Result<(), SnapshotError> {
        let i = self.restore_index(&o)?;
        let levels = match o.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        push_back(&mut self.slab, levels, slot, i);
        Ok(())
    }

    fn restore_stop(&mut self, o: Order) -> Result<(), SnapshotError> {
        let i = self.restore_index(&o)?;
        if !self.stops.insert(&o, i) {
            return corrupt(format!("duplicate stop key for order {}", o.id));
        }
        Ok(())
    }
}
