//! Live orders as the risk engine sees them: a slab of orders with lookups by engine order id,
//! by client id, and by the sequence number of the command still waiting for the book's answer.
//!
//! A new order that passes the checks is inserted at once (so that the next command of the same
//! batch sees its exposure) with `seq` set; the book's `Accepted` gives it its order id, its
//! `Rejected` removes it. A passed amend leaves a reservation of the quantity and notional it may
//! add until its `Replaced` or `Rejected`.

use std::collections::hash_map::Entry;

use rustc_hash::{FxHashMap, FxHashSet};

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
    by_id: DirectIndex<IdKey>,
    by_client: DirectIndex<ClientKey>,
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
            self.by_id.insert(IdKey(o.sym, o.order_id), h);
        }
        if o.client_id != 0 {
            self.by_client
                .insert(ClientKey(o.sym, o.acct, o.client_id), h);
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
        self.by_id.get(IdKey(sym, order_id))
    }

    #[inline]
    pub fn find_client(&self, sym: u32, acct: u32, client_id: u64) -> Option<u32> {
        self.by_client.get(ClientKey(sym, acct, client_id))
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
            self.by_id.remove_if(IdKey(sym, old), h);
        }
        if order_id != 0 {
            self.by_id.insert(IdKey(sym, order_id), h);
        }
        if client_id != 0 {
            self.by_client.insert(ClientKey(sym, acct, client_id), h);
        }
    }

    pub fn remove(&mut self, h: u32) -> Option<LiveOrder> {
        let o = self.slots.get_mut(h as usize)?.take()?;
        if o.order_id != 0 {
            self.by_id.remove_if(IdKey(o.sym, o.order_id), h);
        }
        if o.client_id != 0 {
            self.by_client
                .remove_if(ClientKey(o.sym, o.acct, o.client_id), h);
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

/// The 64-bit golden-ratio multiplier (2^64 / phi): spreads keys over slots and shards.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A key of a [`DirectIndex`]: where its slot is, and the one value never indexed (id 0).
pub(crate) trait SlotKey: Copy + Eq + std::hash::Hash + Default {
    fn slot(&self) -> usize;
    fn is_none(&self) -> bool;
}

/// (symbol index, engine order id). Books number their orders from a counter, so the ids in use
/// sit close together: the slot is the id itself (offset per symbol), and a run of live ids
/// fills neighbouring slots without collisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct IdKey(pub u32, pub u64);

impl SlotKey for IdKey {
    #[inline]
    fn slot(&self) -> usize {
        // Each symbol's ids start at its own offset; the cast keeps the low bits.
        self.1.wrapping_add(u64::from(self.0).wrapping_mul(GOLDEN)) as usize
    }

    #[inline]
    fn is_none(&self) -> bool {
        self.1 == 0
    }
}

/// (symbol index, account index, client id): arbitrary client ids, spread by a multiplicative
/// hash (its top bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ClientKey(pub u32, pub u32, pub u64);

impl SlotKey for ClientKey {
    #[inline]
    fn slot(&self) -> usize {
        let mixed = self.2 ^ (u64::from(self.1) << 32 | u64::from(self.0));
        (mixed.wrapping_mul(GOLDEN) >> 40) as usize
    }

    #[inline]
    fn is_none(&self) -> bool {
        self.2 == 0
    }
}

/// Key -> slab handle: a direct-mapped table (one probe, no hash-table machinery) in front of a
/// map. A key whose slot is taken by another moves the older one to the map (newer orders are
/// the busier ones); a key is in one place only. Keys whose `is_none()` are never indexed.
#[derive(Clone, Debug, Default)]
pub(crate) struct DirectIndex<K: SlotKey> {
    /// `SLOTS` entries once the first key is inserted (empty before); a none key is a free slot.
    table: Vec<(K, u32)>,
    spill: FxHashMap<K, u32>,
}

impl<K: SlotKey> DirectIndex<K> {
    const SLOTS: usize = 1 << 16;

    #[inline]
    fn index(key: &K) -> usize {
        key.slot() & (Self::SLOTS - 1)
    }

    #[inline]
    pub fn get(&self, key: K) -> Option<u32> {
        if let Some((k, h)) = self.table.get(Self::index(&key)) {
            if *k == key && !key.is_none() {
                return Some(*h);
            }
        }
        if self.spill.is_empty() {
            None
        } else {
            self.spill.get(&key).copied()
        }
    }

    /// Map `key` (not none) to `handle`, replacing what it mapped to.
    pub fn insert(&mut self, key: K, handle: u32) {
        if key.is_none() {
            return;
        }
        if self.table.is_empty() {
            self.table.resize(Self::SLOTS, (K::default(), 0));
        }
        let Some(e) = self.table.get_mut(Self::index(&key)) else {
            return;
        };
        if e.0 == key {
            e.1 = handle; // (then not in the map)
            return;
        }
        let evicted = std::mem::replace(e, (key, handle));
        if !self.spill.is_empty() {
            self.spill.remove(&key);
        }
        if !evicted.0.is_none() {
            self.spill.insert(evicted.0, evicted.1);
        }
    }

    /// Remove `key` if it maps to `handle`.
    pub fn remove_if(&mut self, key: K, handle: u32) {
        if let Some(e) = self.table.get_mut(Self::index(&key)) {
            if e.0 == key && !key.is_none() {
                if e.1 == handle {
                    *e = (K::default(), 0);
                }
                return;
            }
        }
        if !self.spill.is_empty() {
            remove_if(&mut self.spill, key, handle);
        }
    }

    /// Every entry, in no particular order.
    #[cfg(test)]
    fn entries(&self) -> Vec<(K, u32)> {
        let table = self.table.iter().filter(|e| !e.0.is_none()).copied();
        table
            .chain(self.spill.iter().map(|(&k, &h)| (k, h)))
            .collect()
    }
}

/// (account index, client id) pairs used today, in 256 hash sets chosen by the key's hash. The
/// set grows all day; one hash set rehashes all of it at each doubling (measured: a 144 ms
/// stall of the risk actor at 3.7 M ids, 80 ms at 1.8 M). Shards of equal weight would fill in
/// lockstep and double within the same few batches, so shard `i` gets a share proportional to
/// `1 + i / 256`: their sizes span an octave, and their doublings spread over each doubling period
/// of the whole, one shard (1/256 to 1/128 of it) at a time.
#[derive(Clone, Debug)]
pub(crate) struct ClientIdSet {
    shards: Vec<FxHashSet<(u32, u64)>>,
}

impl Default for ClientIdSet {
    fn default() -> Self {
        ClientIdSet {
            shards: vec![FxHashSet::default(); Self::SHARDS],
        }
    }
}

impl ClientIdSet {
    const SHARDS: usize = 256;
    const FIRST_CAPACITY: usize = 48;

    /// The shard of `key`: `u`, the top 32 bits of its hash as a fraction of 2^32, falls in
    /// shard `floor(256 x)` where `x = sqrt(1 + 3u) - 1` inverts the share `(x + x^2 / 2) / 1.5`
    /// of weights `1 + x`; in integers: `(isqrt(2^32 + 3 U) - 2^16) >> 8`.
    #[inline]
    fn shard(key: &(u32, u64)) -> usize {
        let mixed = key.1 ^ (u64::from(key.0) << 40);
        let u = mixed.wrapping_mul(GOLDEN) >> 32;
        let root = ((1u64 << 32) + 3 * u).isqrt(); // in [2^16, 2^17)
        ((root - (1 << 16)) >> 8) as usize
    }

    /// Add `key`; false if it was there.
    #[inline]
    pub fn insert(&mut self, key: (u32, u64)) -> bool {
        let i = Self::shard(&key);
        self.shards.get_mut(i).is_some_and(|s| {
            if s.capacity() == 0 {
                // Start past the smallest sizes: 256 shards would each grow 4 times early.
                s.reserve(Self::FIRST_CAPACITY);
            }
            s.insert(key)
        })
    }

    /// Remove `key`; false if it was not there.
    #[inline]
    pub fn remove(&mut self, key: &(u32, u64)) -> bool {
        let i = Self::shard(key);
        self.shards.get_mut(i).is_some_and(|s| s.remove(key))
    }

    /// Empty every shard, keeping its capacity (tomorrow uses about as many ids as today).
    pub fn clear(&mut self) {
        self.shards.iter_mut().for_each(FxHashSet::clear);
    }

    /// Every key, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &(u32, u64)> {
        self.shards.iter().flatten()
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

    /// The table's size in slots.
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::{ClientIdSet, ClientKey, DirectIndex, IdKey, Pending, PendingSet, SlotKey};

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

    /// Run `ops` on a `DirectIndex` and a model map; both must agree throughout.
    fn direct_index_against_model<K: SlotKey + Ord + std::fmt::Debug>(
        ops: &[(u8, K, u32)],
    ) -> Result<(), TestCaseError> {
        let mut index = DirectIndex::<K>::default();
        let mut model: BTreeMap<K, u32> = BTreeMap::new();
        for &(op, key, handle) in ops {
            if op == 0 {
                index.insert(key, handle);
                if !key.is_none() {
                    model.insert(key, handle);
                }
            } else if op == 1 {
                index.remove_if(key, handle);
                if model.get(&key) == Some(&handle) {
                    model.remove(&key);
                }
            }
            prop_assert_eq!(index.get(key), model.get(&key).copied());
        }
        let mut all = index.entries();
        all.sort_unstable();
        let n = all.len();
        all.dedup_by_key(|e| e.0);
        prop_assert_eq!(all.len(), n, "a key held twice");
        prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        Ok(())
    }

    proptest! {
        /// The indexes behave like maps from key to handle with "remove if it maps to this
        /// handle", whatever the collisions (ids a multiple of the table apart, symbols sharing
        /// slots, client keys hashed to one slot) and with the none key never held.
        #[test]
        fn prop_id_index_is_a_map(
            ops in proptest::collection::vec(
                (0u8..3, 0u32..3, 0u64..3, 0u64..30, 0u32..4), 1..400),
        ) {
            let slots = DirectIndex::<IdKey>::SLOTS as u64;
            let ops: Vec<_> = ops
                .into_iter()
                .map(|(op, sym, lap, low, h)| (op, IdKey(sym, lap * slots + low), h))
                .collect();
            direct_index_against_model(&ops)?;
        }

        #[test]
        fn prop_client_index_is_a_map(
            ops in proptest::collection::vec(
                (0u8..3, 0u32..2, 0u32..3, 0u64..20, 0u32..4), 1..400),
            colliding in proptest::collection::vec(any::<u64>(), 1..4),
        ) {
            // Client ids that share one slot with id 1 of (0, 0): found by search.
            let slot = ClientKey(0, 0, 1).slot() & (DirectIndex::<ClientKey>::SLOTS - 1);
            let mut same: Vec<u64> = (2u64..)
                .filter(|&c| {
                    ClientKey(0, 0, c).slot() & (DirectIndex::<ClientKey>::SLOTS - 1) == slot
                })
                .take(3)
                .collect();
            same.push(1);
            let ops: Vec<_> = ops
                .into_iter()
                .zip(colliding.iter().cycle())
                .map(|((op, sym, acct, c, h), pick)| {
                    let client = if c < 4 { same[(*pick % 4) as usize] } else { c };
                    (op, ClientKey(sym, acct, client), h)
                })
                .collect();
            direct_index_against_model(&ops)?;
        }
    }

    #[test]
    fn test_client_id_shards_get_shares_from_one_to_two() {
        // The shard of every 2^32 / 2^20-th hash fraction: shares grow from 1 to 2 across
        // the shards, every shard is used, and the last shard is the last.
        let mut owned = vec![0u32; ClientIdSet::SHARDS];
        let mut last = 0;
        for step in 0..1u64 << 20 {
            let u = step << 12;
            let root = ((1u64 << 32) + 3 * u).isqrt();
            let shard = ((root - (1 << 16)) >> 8) as usize;
            assert!(shard >= last && shard < ClientIdSet::SHARDS);
            last = shard;
            owned[shard] += 1;
        }
        let (first, end) = (f64::from(owned[0]), f64::from(owned[255]));
        assert!((1.9..2.1).contains(&(end / first)), "{first} {end}");
        // And keys spread the same way: 256 k keys, the last 32 shards hold ~1.8x the first 32.
        let mut held = vec![0u32; ClientIdSet::SHARDS];
        for c in 1..=1u64 << 18 {
            held[ClientIdSet::shard(&(7, c))] += 1;
        }
        let ratio =
            f64::from(held[224..].iter().sum::<u32>()) / f64::from(held[..32].iter().sum::<u32>());
        assert!((1.6..2.0).contains(&ratio), "{ratio}");
    }

    proptest! {
        /// The sharded set of today's client ids behaves like one set.
        #[test]
        fn prop_client_id_set_is_a_set(
            ops in proptest::collection::vec((0u8..3, 0u32..4, 0u64..40), 1..400),
        ) {
            let mut set = ClientIdSet::default();
            let mut model = std::collections::BTreeSet::new();
            for (op, a, c) in ops {
                match op {
                    0 => prop_assert_eq!(set.insert((a, c)), model.insert((a, c))),
                    1 => prop_assert_eq!(set.remove(&(a, c)), model.remove(&(a, c))),
                    _ => {
                        set.clear();
                        model.clear();
                    }
                }
            }
            let mut all: Vec<(u32, u64)> = set.iter().copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        }
    }
}
