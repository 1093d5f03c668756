//! Live orders as the risk engine sees them: a slab of orders with lookups by engine order id,
//! by client id, and by the sequence number of the command still waiting for the book's answer.
//!
//! A new order that passes the checks is inserted at once (so that the next command of the same
//! batch sees its exposure) with `seq` set; the book's `Accepted` gives it its order id, its
//! `Rejected` removes it. A passed amend leaves a reservation of the quantity and notional it may
//! add until its `Replaced` or `Rejected`.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::types::{OrdType, Side};

/// One cache line each (64 bytes, aligned): a check or an event reads one line per order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(align(64))]
pub(crate) struct LiveOrder {
    pub sym: u32,
    pub acct: u32,
    pub holding: u32,
    pub side: Side,
    pub ord_type: OrdType,
    /// A stop order that has triggered (its band reference is now the symbol's).
    pub triggered: bool,
    /// Price used for notional: the limit, else the protection price, else the stop price, else
    /// the market band's edge at entry.
    pub price: i64,
    pub stop_price: i64,
    /// Open quantity (visible plus reserve).
    pub open: i64,
    pub client_id: u64,
    /// Engine order id; 0 while waiting for acceptance unless the command carried one.
    pub order_id: u64,
    /// Sequence number of the new-order command while waiting for the book; 0 once accepted.
    pub seq: u64,
}

impl LiveOrder {
    pub fn notional(&self) -> i128 {
        i128::from(self.price) * i128::from(self.open)
    }
}

/// A command waiting for the book's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// A new order (slab handle), and the trading day its client id was recorded in.
    New { handle: u32, day: u32 },
    /// An amend's reservation of the quantity and notional it may add (each >= 0), and the
    /// slab handle of the order it targets: a hint that spares the book's answer a lookup by
    /// id (checked against the slot before use; `u32::MAX` after a restore).
    Amend {
        order: u32,
        acct: u32,
        holding: u32,
        side: Side,
        qty: i64,
        notional: i128,
    },
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Orders {
    slots: Vec<Option<LiveOrder>>,
    free: Vec<u32>,
    by_id: FxHashMap<(u32, u64), u32>,
    by_client: FxHashMap<(u32, u32, u64), u32>,
    pub pending: PendingSet,
}

impl Orders {
    pub fn insert(&mut self, o: LiveOrder) -> u32 {
        let h = match self.free.pop() {
            Some(h) => {
                if let Some(slot) = self.slots.get_mut(h as usize) {
                    *slot = Some(o);
                }
                h
            }
            None => {
                self.slots.push(Some(o));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        if o.order_id != 0 {
            self.by_id.insert((o.sym, o.order_id), h);
        }
        if o.client_id != 0 {
            self.by_client.insert((o.sym, o.acct, o.client_id), h);
        }
        h
    }

    pub fn get(&self, h: u32) -> Option<&LiveOrder> {
        self.slots.get(h as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, h: u32) -> Option<&mut LiveOrder> {
        self.slots.get_mut(h as usize).and_then(Option::as_mut)
    }

    /// `find_id(sym, order_id)`, trying slab handle `hint` first: a live order with id
    /// `order_id` in `sym` at `hint` is the one the index holds (ids are unique per symbol).
    #[inline]
    pub fn find_id_hinted(&self, hint: u32, sym: u32, order_id: u64) -> Option<u32> {
        match self.get(hint) {
            Some(o) if order_id != 0 && o.order_id == order_id && o.sym == sym => Some(hint),
            _ => self.find_id(sym, order_id),
        }
    }

    #[inline]
    pub fn find_id(&self, sym: u32, order_id: u64) -> Option<u32> {
        self.by_id.get(&(sym, order_id)).copied()
    }

    #[inline]
    pub fn find_client(&self, sym: u32, acct: u32, client_id: u64) -> Option<u32> {
        self.by_client.get(&(sym, acct, client_id)).copied()
    }

    /// Give an order its engine order id at acceptance, and index it by id and client id.
    pub fn set_id(&mut self, h: u32, order_id: u64) {
        let Some(o) = self.get_mut(h) else {
            return;
        };
        let (sym, acct, client_id, old) = (o.sym, o.acct, o.client_id, o.order_id);
        o.order_id = order_id;
        o.seq = 0;
        if old != order_id && old != 0 {
            remove_if(&mut self.by_id, (sym, old), h);
        }
        if order_id != 0 {
            self.by_id.insert((sym, order_id), h);
        }
        if client_id != 0 {
            self.by_client.insert((sym, acct, client_id), h);
        }
    }

    pub fn remove(&mut self, h: u32) -> Option<LiveOrder> {
        let o = self.slots.get_mut(h as usize)?.take()?;
        if o.order_id != 0 {
            remove_if(&mut self.by_id, (o.sym, o.order_id), h);
        }
        if o.client_id != 0 {
            remove_if(&mut self.by_client, (o.sym, o.acct, o.client_id), h);
        }
        self.free.push(h);
        Some(o)
    }

    pub fn iter(&self) -> impl Iterator<Item = &LiveOrder> {
        self.slots.iter().flatten()
    }

    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// Remove `key` if it maps to handle `h` (one lookup).
#[inline]
fn remove_if<K: std::hash::Hash + Eq>(map: &mut FxHashMap<K, u32>, key: K, h: u32) {
    if let Entry::Occupied(e) = map.entry(key) {
        if *e.get() == h {
            e.remove();
        }
    }
}

/// Commands waiting for the book's answer, by sequence number: a map from `seq` to `Pending`.
/// Sequence numbers are checked in increasing order and answered soon after, so a direct-mapped
/// table indexed by `seq % len` holds them (no hashing, sequential memory, no shifting).
///
/// The table starts small ([`PendingSet::MIN_SLOTS`], 32 KiB: a batch in flight stays in L1/L2
/// instead of sweeping a ring through the whole L2, which cost the book its cache) and doubles,
/// up to [`PendingSet::MAX_SLOTS`], whenever a command finds its slot taken by an older one still
/// waiting (more commands in flight than slots). Past the largest size, or when the doubled table
/// still collides (sequence numbers a multiple of its length apart), the older entry moves to a
/// map. Every 65 536 sequence numbers a table that did not grow since the last look and is less
/// than a quarter full halves back, so one large batch (a recovery, a burst) does not leave it
/// large. The layout changes no answer: the set is a map whatever its size.
#[derive(Clone, Debug, Default)]
pub(crate) struct PendingSet {
    /// A power of two of entries (at least `MIN_SLOTS`) once the first command is inserted.
    table: Vec<Option<(u64, Pending)>>,
    spill: FxHashMap<u64, Pending>,
    /// `seq >> 16` at the last look at the size (a look every 65 536 sequence numbers), and
    /// whether the table grew since.
    epoch: u64,
    grew: bool,
}

impl PendingSet {
    pub(crate) const MIN_SLOTS: usize = 1 << 9;
    pub(crate) const MAX_SLOTS: usize = 1 << 14;
    const RESIZE_SHIFT: u32 = 16;

    #[inline]
    fn index(&self, seq: u64) -> usize {
        // The low bits of `seq`: the cast keeps them (the table is far below usize::MAX).
        (seq as usize) & self.table.len().wrapping_sub(1)
    }

    /// Insert; returns what was pending under `seq` before (a reused sequence number).
    #[inline(always)]
    pub fn insert(&mut self, seq: u64, p: Pending) -> Option<Pending> {
        if self.table.is_empty() {
            self.table.resize(Self::MIN_SLOTS, None);
        }
        if seq >> Self::RESIZE_SHIFT != self.epoch {
            self.review(seq >> Self::RESIZE_SHIFT);
        }
        let previous = if self.spill.is_empty() {
            None
        } else {
            self.spill.remove(&seq)
        };
        let i = self.index(seq);
        let i = match self.table.get(i) {
            Some(Some((s, _))) if *s != seq && self.table.len() < Self::MAX_SLOTS => {
                // An older command still waits in this slot: more in flight than slots.
                self.grow();
                self.index(seq)
            }
            _ => i,
        };
        let slot = self.table.get_mut(i)?;
        match slot {
            Some((s, old)) if *s == seq => Some(std::mem::replace(old, p)),
            Some(_) => {
                // The slot holds an older command still waiting: it moves to the map.
                if let Some((s, old)) = slot.replace((seq, p)) {
                    self.spill.insert(s, old);
                }
                previous
            }
            None => {
                *slot = Some((seq, p));
                previous
            }
        }
    }

    /// Double the table, keeping every entry (distinct `seq % len` stay distinct modulo `2 len`).
    #[cold]
    fn grow(&mut self) {
        self.grew = true;
        self.resize(self.table.len() * 2);
    }

    /// Halve a table that did not grow since the last look and is less than a quarter full.
    #[cold]
    fn review(&mut self, epoch: u64) {
        self.epoch = epoch;
        let len = self.table.len();
        let held = self.table.iter().filter(|e| e.is_some()).count() + self.spill.len();
        if !self.grew && len > Self::MIN_SLOTS && held < len / 4 {
            self.resize(len / 2);
        }
        self.grew = false;
    }

    /// Move every table entry into a table of `len` slots; an entry whose new slot is taken goes
    /// to the map.
    fn resize(&mut self, len: usize) {
        let old = std::mem::replace(&mut self.table, vec![None; len]);
        for (seq, p) in old.into_iter().flatten() {
            let i = self.index(seq);
            if let Some(slot) = self.table.get_mut(i) {
                match slot {
                    Some(_) => {
                        self.spill.insert(seq, p);
                    }
                    None => *slot = Some((seq, p)),
                }
            }
        }
    }

    #[inline]
    pub fn remove(&mut self, seq: u64) -> Option<Pending> {
        let i = self.index(seq);
        if let Some(slot) = self.table.get_mut(i) {
            if matches!(slot, Some((s, _)) if *s == seq) {
                return slot.take().map(|(_, p)| p);
            }
        }
        if self.spill.is_empty() {
            None
        } else {
            self.spill.remove(&seq)
        }
    }

    pub fn get(&self, seq: u64) -> Option<&Pending> {
        match self.table.get(self.index(seq)) {
            Some(Some((s, p))) if *s == seq => Some(p),
            _ => self.spill.get(&seq),
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Pending)> {
        let table = self.table.iter().flatten().map(|(seq, p)| (*seq, p));
        table.chain(self.spill.iter().map(|(&seq, p)| (seq, p)))
    }

    /// Entries in the table's slots (the rest are in the map).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::{Pending, PendingSet};

    fn amend(qty: i64) -> Pending {
        Pending::Amend {
            order: 0,
            acct: 0,
            holding: 0,
            side: crate::types::Side::Buy,
            qty,
            notional: i128::from(qty),
        }
    }

    fn entries(p: &PendingSet) -> BTreeMap<u64, Pending> {
        let all: Vec<(u64, Pending)> = p.iter().map(|(s, p)| (s, *p)).collect();
        let map: BTreeMap<u64, Pending> = all.iter().copied().collect();
        assert_eq!(map.len(), all.len(), "a sequence number held twice");
        map
    }

    #[test]
    fn test_pending_set_keeps_commands_whose_slot_is_reused() {
        // A multiple of the largest table apart: the same slot at every size.
        let slots = PendingSet::MAX_SLOTS as u64;
        let mut p = PendingSet::default();
        assert_eq!(p.insert(5, amend(1)), None);
        // Same slot, later sequence numbers: the older entries move to the map.
        assert_eq!(p.insert(5 + slots, amend(2)), None);
        assert_eq!(p.insert(5 + 2 * slots, amend(3)), None);
        assert_eq!(p.insert(5, amend(4)), Some(amend(1)));
        assert_eq!(p.get(5), Some(&amend(4)));
        assert_eq!(p.remove(5 + slots), Some(amend(2)));
        assert_eq!(p.remove(5 + slots), None);
        assert_eq!(p.remove(5 + 2 * slots), Some(amend(3)));
        assert_eq!(p.remove(5), Some(amend(4)));
        assert!(entries(&p).is_empty());
    }

    #[test]
    fn test_pending_set_grows_to_the_commands_in_flight() {
        let mut p = PendingSet::default();
        let in_flight = 3 * PendingSet::MIN_SLOTS as u64;
        for seq in 1..=in_flight {
            assert_eq!(p.insert(seq, amend(seq as i64)), None);
        }
        assert_eq!(p.slots(), 4 * PendingSet::MIN_SLOTS);
        assert!(p.spill.is_empty(), "every command fits the grown table");
        for seq in 1..=in_flight {
            assert_eq!(p.remove(seq), Some(amend(seq as i64)));
        }
        assert!(entries(&p).is_empty());
        // A batch answered before the next is checked never grows it.
        let mut q = PendingSet::default();
        for batch in 0..20u64 {
            for seq in batch * 256..(batch + 1) * 256 {
                q.insert(seq, amend(1));
            }
            for seq in batch * 256..(batch + 1) * 256 {
                assert_eq!(q.remove(seq), Some(amend(1)));
            }
        }
        assert_eq!(q.slots(), PendingSet::MIN_SLOTS);
        // A large table left by a burst halves once per look while the flow stays small (the
        // first look still remembers the burst).
        for seq in in_flight + 1..=in_flight + (3 << PendingSet::RESIZE_SHIFT) {
            p.insert(seq, amend(1));
            assert_eq!(p.remove(seq), Some(amend(1)));
        }
        assert_eq!(p.slots(), PendingSet::MIN_SLOTS);
    }

    proptest! {
        /// The set behaves like a map from sequence number to command, whatever the order of
        /// the sequence numbers and however far apart (slot collisions included).
        #[test]
        fn prop_pending_set_is_a_map(
            stride in prop_oneof![
                Just(PendingSet::MIN_SLOTS as u64),
                Just(PendingSet::MAX_SLOTS as u64),
                Just(7u64),
            ],
            ops in proptest::collection::vec(
                (any::<bool>(), 0u64..4, 0u64..40, 1i64..1000), 1..400),
        ) {
            let mut p = PendingSet::default();
            let mut model = BTreeMap::new();
            for (insert, lap, low, qty) in ops {
                let seq = lap * stride + low;
                if insert {
                    prop_assert_eq!(p.insert(seq, amend(qty)), model.insert(seq, amend(qty)));
                } else {
                    prop_assert_eq!(p.remove(seq), model.remove(&seq));
                }
                prop_assert_eq!(p.get(seq), model.get(&seq));
            }
            prop_assert_eq!(entries(&p), model);
        }
    }
}
