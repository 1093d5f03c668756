//! Lookup structures over live orders: order id -> slab index, (account, client id) -> slab
//! index, and GTD expiries in (expire_ts, order id) order. Hash maps use the deterministic Fx
//! hasher and are only ever probed, never iterated to produce output.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use super::slab::Order;
use crate::types::Tif;

#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    pub ids: FxHashMap<u64, u32>,
    pub clients: FxHashMap<(u64, u64), u32>,
    pub gtd: BTreeSet<(u64, u64)>,
}

impl Index {
    /// Register a live order stored at slab index `i`.
    #[inline]
    pub(crate) fn add(&mut self, o: &Order, i: u32) {
        self.ids.insert(o.id, i);
        if o.client_id != 0 {
            self.clients.insert((o.account, o.client_id), i);
        }
        if o.tif == Tif::Gtd {
            self.gtd.insert((o.expire_ts, o.id));
        }
    }

    /// Forget an order that is done.
    #[inline]
    pub(crate) fn remove(&mut self, o: &Order) {
        self.ids.remove(&o.id);
        if o.client_id != 0 {
            self.clients.remove(&(o.account, o.client_id));
        }
        if o.tif == Tif::Gtd {
            self.gtd.remove(&(o.expire_ts, o.id));
        }
    }

    #[inline]
    pub(crate) fn by_id(&self, id: u64) -> Option<u32> {
        self.ids.get(&id).copied()
    }

    #[inline]
    pub(crate) fn by_client(&self, account: u64, client_id: u64) -> Option<u32> {
        self.clients.get(&(account, client_id)).copied()
    }
}
