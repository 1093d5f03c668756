//! The decoder's fast path for the three messages that make up almost all order flow (new
//! order, cancel, replace), the mirror image of the report templates in `report.rs`.
//!
//! A message built by a standard Cap'n Proto builder (every client library, and ours) for a
//! given kind and symbol always has the same bytes apart from its data fields: the segment
//! table, the pointers and the symbol text are fixed. So for each (kind, symbol) of the table
//! the decoder builds that message once with every field zero (the *template*), and finds where
//! each field lives by building it again with that one field set and comparing. A frame is then
//! decoded by looking its symbol text (at the kind's fixed offset) up among the templates,
//! comparing every word before it with the template's outside the field bytes (the kind's
//! *mask*), and reading each field at its offset: no pointer chasing, no traversal accounting. Anything else — another layout, an unknown symbol, a
//! different struct size, extra bytes — is not found and takes the full Cap'n Proto reader,
//! which stays the one definition of the format; a property test checks that both paths give
//! the same commands for any field values and for corrupted frames.

use rustc_hash::FxHashMap;

use super::client::encode_request;
use super::decode::FRAME_HEADER;
use crate::types::{CmdKind, Command, FLAG_POST_ONLY};

/// Frames longer than this are never templates (the longest symbol is far shorter).
const MAX_BODY: usize = 512;
const SENTINEL: u64 = 0x0102_0304_0506_0708;

/// A field of a command record that a request message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Side,
    OrdType,
    Tif,
    Stp,
    PostOnly,
    OrderId,
    ClientId,
    Price,
    StopPrice,
    Qty,
    DisplayQty,
    ExpireTs,
    StpGroup,
}

/// Where a field lives in a message body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// A little-endian u64 at this offset.
    U64(usize),
    /// A little-endian u16 (an enum) at this offset.
    U16(usize),
    /// One bit of the byte at this offset.
    Bit(usize, u8),
}

impl Slot {
    fn bytes(self) -> (usize, usize) {
        match self {
            Slot::U64(o) => (o, 8),
            Slot::U16(o) => (o, 2),
            Slot::Bit(o, _) => (o, 1),
        }
    }
}

const NEW_FIELDS: &[Field] = &[
    Field::Side,
    Field::OrdType,
    Field::Tif,
    Field::Stp,
    Field::PostOnly,
    Field::ClientId,
    Field::Price,
    Field::StopPrice,
    Field::Qty,
    Field::DisplayQty,
    Field::ExpireTs,
    Field::StpGroup,
];
const CANCEL_FIELDS: &[Field] = &[Field::OrderId, Field::ClientId];
const REPLACE_FIELDS: &[Field] = &[Field::OrderId, Field::ClientId, Field::Price, Field::Qty];

/// Set field `f` of `c` to the raw value `v`: an enum's raw value clamped to a byte as the full
/// reader does (`enum_byte`), a flag set when non-zero, a number as it is.
#[inline]
fn set_field(c: &mut Command, f: Field, v: u64) {
    match f {
        Field::Side => c.side = byte(v),
        Field::OrdType => c.ord_type = byte(v),
        Field::Tif => c.tif = byte(v),
        Field::Stp => c.stp = byte(v),
        Field::PostOnly => c.flags = if v != 0 { FLAG_POST_ONLY } else { 0 },
        Field::OrderId => c.order_id = v,
        Field::ClientId => c.client_id = v,
        Field::Price => c.price = v as i64,
        Field::StopPrice => c.stop_price = v as i64,
        Field::Qty => c.qty = v as i64,
        Field::DisplayQty => c.display_qty = v as i64,
        Field::ExpireTs => c.expire_ts = v,
        Field::StpGroup => c.stp_group = v,
    }
}

fn with_field(kind: CmdKind, f: Field, v: u64) -> Command {
    let mut c = Command {
        kind: kind as u8,
        ..Command::default()
    };
    set_field(&mut c, f, v);
    c
}

/// The message body (no length prefix) of `c` for `symbol`, as the standard builder lays it out.
fn body(c: &Command, symbol: &str) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(c, symbol, &mut out);
    out.split_off(FRAME_HEADER.min(out.len()))
}

/// The one slot where `with` differs from `base`, if the difference is a field of this shape.
fn find_slot(base: &[u8], with: &[u8], f: Field) -> Option<Slot> {
    if base.len() != with.len() {
        return None;
    }
    let diff: Vec<usize> = (0..base.len()).filter(|&i| base[i] != with[i]).collect();
    let first = *diff.first()?;
    match f {
        Field::Side | Field::OrdType | Field::Tif | Field::Stp => {
            // A known enum value (1) fits the low byte of an aligned u16.
            (diff.len() == 1 && first.is_multiple_of(2) && with[first] == 1)
                .then_some(Slot::U16(first))
        }
        Field::PostOnly => {
            let bit = (base[first] ^ with[first]).trailing_zeros();
            (diff.len() == 1 && (base[first] ^ with[first]).count_ones() == 1)
                .then(|| Slot::Bit(first, u8::try_from(bit).unwrap_or(0)))
        }
        _ => {
            let at = with.windows(8).position(|w| w == SENTINEL.to_le_bytes())?;
            (diff.iter().all(|&i| (at..at + 8).contains(&i)) && at.is_multiple_of(8))
                .then_some(Slot::U64(at))
        }
    }
}

/// One message kind: its field slots, where the symbol text starts, the mask of the words
/// before it, and per symbol (keyed by the text bytes) the template of those words.
#[derive(Debug)]
struct KindLayout {
    kind: CmdKind,
    slots: Vec<(Field, Slot)>,
    /// Offset of the symbol text (word-aligned; the same for every symbol of this kind).
    text_at: usize,
    /// Per word before `text_at`: 1 bits where the bytes must equal the template's.
    mask: Vec<u64>,
    templates: FxHashMap<Box<[u8]>, Template>,
}

/// A symbol's index and its template's masked words before the text.
type Template = (u32, Box<[u64]>);

fn word(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(i * 8..i * 8 + 8)?.try_into().ok()?,
    ))
}

impl KindLayout {
    /// Derived from the builder for `symbols`; None if the layout is not as expected (then
    /// this kind always takes the full reader).
    fn new(kind: CmdKind, fields: &[Field], symbols: &[Box<[u8]>]) -> Option<KindLayout> {
        let zero = with_field(kind, Field::ClientId, 0);
        let base = body(&zero, "X");
        let mut slots = Vec::with_capacity(fields.len());
        for &f in fields {
            let v = match f {
                Field::Side | Field::OrdType | Field::Tif | Field::Stp | Field::PostOnly => 1,
                _ => SENTINEL,
            };
            let slot = find_slot(&base, &body(&with_field(kind, f, v), "X"), f)?;
            slots.push((f, slot));
        }
        // The text: the one byte "X" and "Y" differ in; the same length, so nothing else moves.
        let other = body(&zero, "Y");
        let text_at = find_slot_byte(&base, &other)?;
        if !text_at.is_multiple_of(8) || slots.iter().any(|(_, s)| s.bytes().0 >= text_at) {
            return None;
        }
        let mut mask = vec![u64::MAX; text_at / 8];
        for (_, s) in &slots {
            let (o, n) = s.bytes();
            for i in o..o + n {
                let w = mask.get_mut(i / 8)?;
                *w &= !(0xffu64 << ((i % 8) * 8));
            }
        }
        let mut templates = FxHashMap::default();
        for (i, name) in symbols.iter().enumerate() {
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            let t = body(&zero, name);
            if t.len() > MAX_BODY || t.len() < text_at {
                continue;
            }
            let words: Option<Box<[u64]>> = (0..text_at / 8)
                .map(|w| word(&t, w).map(|v| v & mask[w]))
                .collect();
            let (Some(words), Ok(sym)) = (words, u32::try_from(i)) else {
                continue;
            };
            templates.insert(t[text_at..].into(), (sym, words));
        }
        Some(KindLayout {
            kind,
            slots,
            text_at,
            mask,
            templates,
        })
    }

    #[inline]
    fn decode(&self, body: &[u8]) -> Option<(Command, u32)> {
        let (symbol, words) = self.templates.get(body.get(self.text_at..)?)?;
        for (i, (&t, &m)) in words.iter().zip(&self.mask).enumerate() {
            if word(body, i)? & m != t {
                return None;
            }
        }
        let mut c = Command {
            kind: self.kind as u8,
            ..Command::default()
        };
        for &(f, slot) in &self.slots {
            set_field(&mut c, f, read(body, slot)?);
        }
        Some((c, *symbol))
    }
}

/// The only offset where `a` and `b` differ.
fn find_slot_byte(a: &[u8], b: &[u8]) -> Option<usize> {
    if a.len() != b.len() {
        return None;
    }
    let mut diff = (0..a.len()).filter(|&i| a[i] != b[i]);
    let first = diff.next()?;
    diff.next().is_none().then_some(first)
}

fn byte(v: u64) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

fn read(body: &[u8], slot: Slot) -> Option<u64> {
    Some(match slot {
        Slot::U64(o) => u64::from_le_bytes(body.get(o..o + 8)?.try_into().ok()?),
        Slot::U16(o) => u64::from(u16::from_le_bytes(body.get(o..o + 2)?.try_into().ok()?)),
        Slot::Bit(o, b) => u64::from((body.get(o)? >> b) & 1),
    })
}

/// The fast path of one decoder (its symbol table).
#[derive(Debug)]
pub struct FastPath {
    kinds: Vec<KindLayout>,
    /// The kind that matched last: order flow repeats kinds.
    last: usize,
}

impl FastPath {
    pub fn new(symbols: &[Box<[u8]>]) -> FastPath {
        let kinds = [
            (CmdKind::New, NEW_FIELDS),
            (CmdKind::Amend, REPLACE_FIELDS),
            (CmdKind::Cancel, CANCEL_FIELDS),
        ]
        .into_iter()
        .filter_map(|(k, f)| KindLayout::new(k, f, symbols))
        .collect();
        FastPath { kinds, last: 0 }
    }

    /// The command (account 0) and symbol index of a trading message of the standard layout
    /// for a known symbol; None: use the full reader.
    #[inline]
    pub fn decode(&mut self, body: &[u8]) -> Option<(Command, u32)> {
        if body.len() > MAX_BODY {
            return None;
        }
        let n = self.kinds.len();
        for step in 0..n {
            let i = (self.last + step) % n;
            if let Some(found) = self.kinds.get(i).and_then(|k| k.decode(body)) {
                self.last = i;
                return Some(found);
            }
        }
        None
    }

    /// How many (kind, symbol) templates there are.
    #[cfg(test)]
    pub fn templates(&self) -> usize {
        self.kinds.iter().map(|k| k.templates.len()).sum()
    }
}
