//! One side of the book: price levels, each the head/tail of an intrusive FIFO of slab orders.
//!
//! Levels live in their own slab (stable `u32` slots; every resting order knows its level's
//! slot, so taking an order off its level needs no search). Price priority is a compact
//! `Vec<(key, slot)>` sorted so the best level is at the END (bids ascending, asks descending,
//! via `key = price` / `!price`): the busy top of the book is `last()`, and inserting or
//! removing a level near the top is a short memmove found by a short scan from the end. A
//! price -> slot map answers "which level is at this price" in O(1).

use rustc_hash::FxHashMap;

use super::slab::{Slab, NIL};
use crate::types::{LevelView, Side};

/// How many levels from the best end are scanned linearly before binary search.
const SCAN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    pub price: i64,
    /// Sum of the visible quantity of the orders at this level.
    pub qty: i64,
    pub count: u32,
    pub head: u32,
    pub tail: u32,
    /// False once the slot is back on the free list.
    pub live: bool,
    /// Command epoch in which this level's "before" state was recorded (see `changes`).
    pub mark: u64,
}

impl Level {
    const EMPTY: Level = Level {
        price: 0,
        qty: 0,
        count: 0,
        head: NIL,
        tail: NIL,
        live: false,
        mark: 0,
    };

    #[inline]
    pub(crate) fn view(&self) -> LevelView {
        LevelView {
            price: self.price,
            qty: self.qty,
            count: self.count,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Levels {
    pub side: Side,
    slots: Vec<Level>,
    free: Vec<u32>,
    /// (key, slot) worst first, best last.
    sorted: Vec<(i64, u32)>,
    by_price: FxHashMap<i64, u32>,
    /// Target of out-of-range slot accesses (only a bug could make one).
    sentinel: Level,
}

impl Levels {
    pub(crate) fn new(side: Side) -> Levels {
        Levels {
            side,
            slots: Vec::new(),
            free: Vec::new(),
            sorted: Vec::new(),
            by_price: FxHashMap::default(),
            sentinel: Level::EMPTY,
        }
    }

    /// Sort key: "better" is always "greater".
    #[inline]
    pub(crate) fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => !price,
        }
    }

    #[inline]
    pub(crate) fn at(&self, slot: u32) -> &Level {
        self.slots.get(slot as usize).unwrap_or(&self.sentinel)
    }

    #[inline]
    pub(crate) fn at_mut(&mut self, slot: u32) -> &mut Level {
        match self.slots.get_mut(slot as usize) {
            Some(l) => l,
            None => &mut self.sentinel,
        }
    }

    /// The slot of the level at `price`, if there is one.
    #[inline]
    pub(crate) fn slot_of(&self, price: i64) -> Option<u32> {
        self.by_price.get(&price).copied()
    }

    /// Position in `sorted` where `key` is or would be.
    #[inline]
    fn position(&self, key: i64) -> Result<usize, usize> {
        let n = self.sorted.len();
        let lo = n.saturating_sub(SCAN);
        for i in (lo..n).rev() {
            if let Some(&(k, _)) = self.sorted.get(i) {
                if k == key {
                    return Ok(i);
                }
                if k < key {
                    return Err(i + 1);
                }
            }
        }
        match self.sorted.get(..lo) {
            Some(rest) => rest.binary_search_by(|&(k, _)| k.cmp(&key)),
            None => Err(0),
        }
    }

    /// The level at `price`, created empty (with `mark`) if missing: `(slot, created)`.
    /// `None` only when the slot space (u32) is exhausted.
    #[inline]
    pub(crate) fn open(&mut self, price: i64, mark: u64) -> Option<(u32, bool)> {
        if let Some(slot) = self.slot_of(price) {
            return Some((slot, false));
        }
        let level = Level {
            price,
            live: true,
            mark,
            ..Level::EMPTY
        };
        let slot = match self.free.pop() {
            Some(s) => {
                *self.at_mut(s) = level;
                s
            }
            None => {
                let s = u32::try_from(self.slots.len()).ok().filter(|&s| s != NIL)?;
                self.slots.push(level);
                s
            }
        };
        let key = self.key(price);
        let pos = self.position(key).unwrap_or_else(|p| p);
        self.sorted.insert(pos, (key, slot));
        self.by_price.insert(price, slot);
        Some((slot, true))
    }

    /// Remove the level in `slot` if it has no orders left.
    #[inline]
    pub(crate) fn close_if_empty(&mut self, slot: u32) {
        let l = self.at(slot);
        if !l.live || l.count != 0 {
            return;
        }
        let price = l.price;
        if let Ok(pos) = self.position(self.key(price)) {
            if pos + 1 == self.sorted.len() {
                self.sorted.pop();
            } else {
                self.sorted.remove(pos);
            }
        }
        self.by_price.remove(&price);
        let l = self.at_mut(slot);
        l.live = false;
        l.qty = 0;
        l.head = NIL;
        l.tail = NIL;
        self.free.push(slot);
    }

    #[inline]
    pub(crate) fn best_slot(&self) -> Option<u32> {
        self.sorted.last().map(|&(_, s)| s)
    }

    #[inline]
    pub(crate) fn best(&self) -> Option<&Level> {
        self.best_slot().map(|s| self.at(s))
    }

    /// Levels best first.
    pub(crate) fn best_first(&self) -> impl Iterator<Item = &Level> + '_ {
        self.sorted.iter().rev().map(|&(_, s)| self.at(s))
    }

    /// (key, slot) pairs worst first (for the consistency check).
    pub(crate) fn sorted(&self) -> &[(i64, u32)] {
        &self.sorted
    }

    /// Number of price -> slot entries and of live slots (for the consistency check).
    pub(crate) fn census(&self) -> (usize, usize) {
        (
            self.by_price.len(),
            self.slots.iter().filter(|l| l.live).count(),
        )
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Current (visible total, count) at `price`; (0, 0) when there is no level.
    #[inline]
    pub(crate) fn state_at(&self, price: i64) -> (i64, u32) {
        self.slot_of(price).map_or((0, 0), |s| {
            let l = self.at(s);
            (l.qty, l.count)
        })
    }

    /// Is `price` (of an order on the other side) crossing this side's best level?
    /// For asks: a buy at `price` would trade; for bids: a sell at `price` would trade.
    #[inline]
    pub(crate) fn crossed_by(&self, price: i64) -> bool {
        match self.best() {
            None => false,
            Some(b) => match self.side {
                Side::Sell => price >= b.price,
                Side::Buy => price <= b.price,
            },
        }
    }
}

/// Append order `i` to the back of the queue of the level in `slot`.
#[inline]
pub(crate) fn push_back(slab: &mut Slab, levels: &mut Levels, slot: u32, i: u32) {
    let level = levels.at_mut(slot);
    let tail = level.tail;
    let o = slab.at_mut(i);
    o.prev = tail;
    o.next = NIL;
    o.level = slot;
    level.qty = level.qty.wrapping_add(o.visible);
    level.count += 1;
    level.tail = i;
    if tail == NIL {
        level.head = i;
    } else {
        slab.at_mut(tail).next = i;
    }
}

/// Take order `i` out of its level's queue (its visible quantity leaves the level total).
#[inline]
pub(crate) fn unlink(slab: &mut Slab, levels: &mut Levels, i: u32) {
    let o = slab.at_mut(i);
    let (prev, next, vis, slot) = (o.prev, o.next, o.visible, o.level);
    o.prev = NIL;
    o.next = NIL;
    let level = levels.at_mut(slot);
    level.count = level.count.saturating_sub(1);
    level.qty = level.qty.wrapping_sub(vis);
    if prev == NIL {
        level.head = next;
    } else {
        slab.at_mut(prev).next = next;
    }
    if next == NIL {
        level.tail = prev;
    } else {
        slab.at_mut(next).prev = prev;
    }
}

/// Move order `i` to the back of its level's queue (iceberg refresh).
#[inline]
pub(crate) fn move_to_back(slab: &mut Slab, levels: &mut Levels, i: u32) {
    let slot = slab.at(i).level;
    if levels.at(slot).tail != i {
        unlink(slab, levels, i);
        push_back(slab, levels, slot, i);
    }
}

/// Iterate the slab indices of `level`'s queue in priority order.
pub(crate) fn queue<'a>(slab: &'a Slab, level: &Level) -> impl Iterator<Item = u32> + 'a {
    let mut cur = level.head;
    std::iter::from_fn(move || {
        if cur == NIL {
            return None;
        }
        let i = cur;
        cur = slab.at(i).next;
        Some(i)
    })
}
