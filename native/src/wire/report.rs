//! Execution reports (Ack, Fill, Cancelled, Replaced, Triggered) as reply frames, fast.
//!
//! A report of a given kind for a given symbol always has the same Cap'n Proto layout: fixed-size
//! fields and the same symbol text. So each (kind, symbol) frame is built once with the capnp
//! builder with every field zero (the *template*), and where each field lives in it is found by
//! building it again with that one field set to a sentinel and comparing. Encoding a report is
//! then a copy of the template and a few little-endian stores, about ten times cheaper than
//! building the message. The builder (`fill`) stays the single definition of what goes where; a
//! kind whose template cannot be derived falls back to it, and a test checks that both paths
//! give identical bytes.

use capnp::message::{Builder, ScratchSpaceHeapAllocator};
use capnp::serialize::{compute_serialized_size_in_words, write_message};

use super::cift_capnp::{server_message, CancelReason, Side};

/// Everything an execution report carries, already mapped from the event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub seq: u64,
    pub order_id: u64,
    pub client_id: u64,
    pub price: i64,
    pub qty: i64,
    pub leaves: i64,
    pub cmd_seq: u64,
    /// Ack, Triggered: stop price; Fill: trade id; Replaced: old price.
    pub aux: i64,
    /// Replaced: old quantity; Triggered: last price.
    pub aux2: i64,
    /// Side enum value (0 none, 1 buy, 2 sell).
    pub side: u16,
    /// CancelReason enum value.
    pub reason: u16,
    /// Ack: is stop; Fill: aggressor; Replaced: priority kept.
    pub flag: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ack = 0,
    Fill = 1,
    Cancelled = 2,
    Replaced = 3,
    Triggered = 4,
}

pub const KINDS: [Kind; 5] = [
    Kind::Ack,
    Kind::Fill,
    Kind::Cancelled,
    Kind::Replaced,
    Kind::Triggered,
];

/// Set every field of a `kind` report: the one definition of the report layouts.
pub fn fill(kind: Kind, m: server_message::Builder<'_>, f: &Fields, symbol: &str) {
    let mut m = m;
    m.set_seq(f.seq);
    let side = Side::try_from(f.side).unwrap_or(Side::None);
    match kind {
        Kind::Ack => {
            let mut a = m.init_ack();
            a.set_symbol(symbol);
            a.set_order_id(f.order_id);
            a.set_client_order_id(f.client_id);
            a.set_side(side);
            a.set_price(f.price);
            a.set_qty(f.qty);
            a.set_leaves(f.leaves);
            a.set_stop_price(f.aux);
            a.set_is_stop(f.flag);
            a.set_cmd_seq(f.cmd_seq);
        }
        Kind::Fill => {
            let mut x = m.init_fill();
            x.set_symbol(symbol);
            x.set_order_id(f.order_id);
            x.set_client_order_id(f.client_id);
            x.set_side(side);
            x.set_price(f.price);
            x.set_qty(f.qty);
            x.set_leaves(f.leaves);
            x.set_trade_id(f.aux as u64);
            x.set_aggressor(f.flag);
            x.set_cmd_seq(f.cmd_seq);
        }
        Kind::Cancelled => {
            let mut c = m.init_cancelled();
            c.set_symbol(symbol);
            c.set_order_id(f.order_id);
            c.set_client_order_id(f.client_id);
            c.set_side(side);
            c.set_price(f.price);
            c.set_qty(f.qty);
            c.set_leaves(f.leaves);
            c.set_reason(CancelReason::try_from(f.reason).unwrap_or(CancelReason::None));
            c.set_cmd_seq(f.cmd_seq);
        }
        Kind::Replaced => {
            let mut r = m.init_replaced();
            r.set_symbol(symbol);
            r.set_order_id(f.order_id);
            r.set_client_order_id(f.client_id);
            r.set_side(side);
            r.set_price(f.price);
            r.set_qty(f.qty);
            r.set_leaves(f.leaves);
            r.set_old_price(f.aux);
            r.set_old_qty(f.aux2);
            r.set_priority_kept(f.flag);
            r.set_cmd_seq(f.cmd_seq);
        }
        Kind::Triggered => {
            let mut t = m.init_triggered();
            t.set_symbol(symbol);
            t.set_order_id(f.order_id);
            t.set_client_order_id(f.client_id);
            t.set_side(side);
            t.set_price(f.price);
            t.set_qty(f.qty);
            t.set_stop_price(f.aux);
            t.set_last_price(f.aux2);
            t.set_cmd_seq(f.cmd_seq);
        }
    }
}

/// Append one frame (u32 length + message) built by `build` to `out`; returns its size.
pub fn frame(
    out: &mut Vec<u8>,
    alloc: &mut ScratchSpaceHeapAllocator<'_>,
    build: impl FnOnce(server_message::Builder<'_>),
) -> usize {
    let mut msg = Builder::new(alloc);
    build(msg.init_root::<server_message::Builder>());
    let len = compute_serialized_size_in_words(&msg) * 8;
    let start = out.len();
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    // Writing into a Vec cannot fail.
    let _ = write_message(&mut *out, &msg);
    out.len() - start
}

/// Where one field lives in a template frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Absent,
    U64(usize),
    U16(usize),
    Bit(usize, u8),
}

const WORDS: usize = 9;
const SENTINEL: u64 = 0x0102_0304_0506_0708;

fn words(f: &Fields) -> [u64; WORDS] {
    [
        f.seq,
        f.order_id,
        f.client_id,
        f.price as u64,
        f.qty as u64,
        f.leaves as u64,
        f.cmd_seq,
        f.aux as u64,
        f.aux2 as u64,
    ]
}

fn with_word(i: usize, v: u64) -> Fields {
    let mut f = Fields::default();
    match i {
        0 => f.seq = v,
        1 => f.order_id = v,
        2 => f.client_id = v,
        3 => f.price = v as i64,
        4 => f.qty = v as i64,
        5 => f.leaves = v as i64,
        6 => f.cmd_seq = v,
        7 => f.aux = v as i64,
        _ => f.aux2 = v as i64,
    }
    f
}

/// One (kind, symbol) template and its field slots.
#[derive(Clone, Debug)]
pub struct Template {
    frame: Vec<u8>,
    words: [Slot; WORDS],
    side: Slot,
    reason: Slot,
    flag: Slot,
}

fn build(kind: Kind, f: &Fields, symbol: &str) -> Vec<u8> {
    let mut scratch = [0u8; 1024];
    let mut alloc = ScratchSpaceHeapAllocator::new(&mut scratch);
    let mut out = Vec::new();
    frame(&mut out, &mut alloc, |m| fill(kind, m, f, symbol));
    out
}

/// The differing byte positions of two equally long frames.
fn diff(a: &[u8], b: &[u8]) -> Option<Vec<usize>> {
    (a.len() == b.len()).then(|| (0..a.len()).filter(|&i| a.get(i) != b.get(i)).collect())
}

impl Template {
    /// Derive the template of `kind` for `symbol`; None if the layout is not the plain one
    /// expected (then the builder is used).
    pub fn derive(kind: Kind, symbol: &str) -> Option<Template> {
        let base = build(kind, &Fields::default(), symbol);
        let mut slots = [Slot::Absent; WORDS];
        for (i, slot) in slots.iter_mut().enumerate() {
            let probe = build(kind, &with_word(i, SENTINEL), symbol);
            let d = diff(&base, &probe)?;
            *slot = match d.as_slice() {
                [] => Slot::Absent,
                [first, .., last] if last - first == 7 && d.len() == 8 => {
                    let got = probe.get(*first..first + 8)?;
                    (got == SENTINEL.to_le_bytes()).then_some(Slot::U64(*first))?
                }
                _ => return None,
            };
        }
        let side = Self::probe_u16(
            &base,
            &build(
                kind,
                &Fields {
                    side: 2,
                    ..Fields::default()
                },
                symbol,
            ),
        )?;
        let reason = Self::probe_u16(
            &base,
            &build(
                kind,
                &Fields {
                    reason: 2,
                    ..Fields::default()
                },
                symbol,
            ),
        )?;
        let flagged = build(
            kind,
            &Fields {
                flag: true,
                ..Fields::default()
            },
            symbol,
        );
        let flag = match diff(&base, &flagged)?.as_slice() {
            [] => Slot::Absent,
            [i] => {
                let bits = flagged.get(*i)? ^ base.get(*i)?;
                (bits.count_ones() == 1).then_some(Slot::Bit(*i, bits))?
            }
            _ => return None,
        };
        Some(Template {
            frame: base,
            words: slots,
            side,
            reason,
            flag,
        })
    }

    /// The slot of a u16 enum field probed with value 2.
    fn probe_u16(base: &[u8], probe: &[u8]) -> Option<Slot> {
        match diff(base, probe)?.as_slice() {
            [] => Some(Slot::Absent),
            [i] if i % 2 == 0 && probe.get(*i) == Some(&2) => Some(Slot::U16(*i)),
            _ => None,
        }
    }

    /// Append the frame for `f`; returns its size.
    pub fn write(&self, f: &Fields, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.extend_from_slice(&self.frame);
        let Some(buf) = out.get_mut(start..) else {
            return 0;
        };
        for (slot, v) in self.words.iter().zip(words(f)) {
            if let Slot::U64(o) = *slot {
                if let Some(dst) = buf.get_mut(o..o + 8) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        for (slot, v) in [(self.side, f.side), (self.reason, f.reason)] {
            if let Slot::U16(o) = slot {
                if let Some(dst) = buf.get_mut(o..o + 2) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        if let (Slot::Bit(o, mask), true) = (self.flag, f.flag) {
            if let Some(b) = buf.get_mut(o) {
                *b |= mask;
            }
        }
        self.frame.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields() -> impl Strategy<Value = Fields> {
        (any::<[u64; 9]>(), 0u16..4, 0u16..9, any::<bool>()).prop_map(|(w, side, reason, flag)| {
            Fields {
                seq: w[0],
                order_id: w[1],
                client_id: w[2],
                price: w[3] as i64,
                qty: w[4] as i64,
                leaves: w[5] as i64,
                cmd_seq: w[6],
                aux: w[7] as i64,
                aux2: w[8] as i64,
                side,
                reason,
                flag,
            }
        })
    }

    #[test]
    fn every_report_kind_has_a_template() {
        for kind in KINDS {
            for symbol in ["", "AAPL", "BTC-USD", "A-VERY-LONG-SYMBOL-NAME-0123456789"] {
                assert!(
                    Template::derive(kind, symbol).is_some(),
                    "{kind:?} {symbol}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn templates_give_the_builders_bytes(f in fields(), k in 0usize..5) {
            let kind = KINDS[k];
            // The builder maps out-of-schema enum values to `none`; so does the publisher
            // before it calls either path.
            let f = Fields {
                side: if f.side > 2 { 0 } else { f.side },
                reason: if f.reason > 7 { 0 } else { f.reason },
                ..f
            };
            let t = Template::derive(kind, "MSFT").unwrap_or_else(|| panic!("{kind:?}"));
            let mut fast = Vec::new();
            t.write(&f, &mut fast);
            prop_assert_eq!(fast, build(kind, &f, "MSFT"));
        }
    }
}
