//! Publishing hot path: event records in, per-session reply frames out.
//!
//! The publisher owns the account -> session routing table and each session's output sequence
//! number, so every frame a session receives (execution reports, logon ack, heartbeats,
//! gateway rejects, logout) is numbered by one counter with no gaps. Frames accumulate per
//! session until `drain`, which hands each session's bytes to the caller once (one transport
//! write per session per batch). `Level` events are market data and are not sent to sessions.
//! Execution reports are written from per-symbol templates (`report`); rejects, whose text
//! varies, and session messages are built with the Cap'n Proto builder.

use capnp::message::ScratchSpaceHeapAllocator;
use rustc_hash::FxHashMap;

use super::cift_capnp::{server_message, AdminAction, CancelReason, Side};
use super::report::{self, Fields, Kind, Template, KINDS};
use super::{SymbolSpec, NO_SYMBOL};
use crate::types::{Event, EventKind, EVENT_SIZE};

/// Bytes of the reusable first segment for one reply (enough for every execution report).
const SCRATCH_BYTES: usize = 1024;

/// Which symbol each event of a batch belongs to.
#[derive(Clone, Copy, Debug)]
pub enum SymbolsOf<'a> {
    /// Every event is of this symbol index.
    One(u32),
    /// One little-endian u32 symbol index per event.
    Each(&'a [u8]),
}

/// Cumulative counters, read by the metrics collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherStats {
    pub acks: u64,
    pub rejects: u64,
    pub fills: u64,
    pub cancels: u64,
    pub replaces: u64,
    pub triggers: u64,
    pub logon_acks: u64,
    pub heartbeats: u64,
    pub logouts: u64,
    pub admin_replies: u64,
    /// Level events skipped (market data is not sent to sessions).
    pub levels: u64,
    /// Reports for an account with no session (disconnected): dropped.
    pub unroutable: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Output {
    seq: u64,
    account: u64,
    buf: Vec<u8>,
}

/// Report templates of one symbol, by `report::Kind`.
type Templates = [Option<Template>; 5];

#[derive(Debug)]
pub struct Publisher {
    symbols: Vec<SymbolSpec>,
    /// Per symbol index, then one more for reports without a symbol.
    templates: Vec<Templates>,
    texts: FxHashMap<u16, String>,
    out: Sessions,
}

/// The mutable part: routes, per-session output, counters.
#[derive(Debug, Default)]
struct Sessions {
    routes: FxHashMap<u64, u64>,
    sessions: FxHashMap<u64, Output>,
    dirty: Vec<u64>,
    stats: PublisherStats,
    /// Rejects seen (routed or not) by code, every stage.
    reject_codes: FxHashMap<u16, u64>,
}

fn side(raw: u8) -> Side {
    Side::try_from(u16::from(raw)).unwrap_or(Side::None)
}

fn reason(raw: u8) -> CancelReason {
    CancelReason::try_from(u16::from(raw)).unwrap_or(CancelReason::None)
}

fn templates(symbol: &str) -> Templates {
    KINDS.map(|k| Template::derive(k, symbol))
}

/// The execution report an event becomes for the order's owner (trades: the maker's fill).
fn report_of(ev: &Event) -> Option<(Kind, Fields)> {
    let f = Fields {
        order_id: ev.order_id,
        client_id: ev.client_id,
        price: ev.price,
        qty: ev.qty,
        leaves: ev.leaves,
        cmd_seq: ev.seq,
        side: side(ev.side) as u16,
        ..Fields::default()
    };
    let flag = ev.flags & 1 != 0;
    Some(match EventKind::from_u8(ev.kind)? {
        EventKind::Accepted => (
            Kind::Ack,
            Fields {
                aux: ev.aux,
                flag,
                ..f
            },
        ),
        EventKind::Trade => (Kind::Fill, Fields { aux: ev.aux, ..f }),
        EventKind::Cancelled => (
            Kind::Cancelled,
            Fields {
                reason: reason(ev.reason) as u16,
                ..f
            },
        ),
        EventKind::Replaced => (
            Kind::Replaced,
            Fields {
                aux: ev.aux,
                aux2: ev.aux2,
                flag,
                ..f
            },
        ),
        EventKind::Triggered => (
            Kind::Triggered,
            Fields {
                aux: ev.aux,
                aux2: ev.aux2,
                ..f
            },
        ),
        EventKind::Rejected | EventKind::Level | EventKind::Admin => return None,
    })
}

/// The taker's fill of a trade (sent to the counter account).
fn taker_fill(ev: &Event) -> Fields {
    let taker = match side(ev.side) {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
        Side::None => Side::None,
    };
    Fields {
        order_id: ev.counter_id,
        client_id: ev.counter_client_id,
        price: ev.price,
        qty: ev.qty,
        leaves: ev.aux2,
        cmd_seq: ev.seq,
        aux: ev.aux,
        side: taker as u16,
        flag: true,
        ..Fields::default()
    }
}

impl Publisher {
    pub fn new(symbols: Vec<SymbolSpec>) -> Publisher {
        let texts = super::codes::all_codes()
            .into_iter()
            .map(|(c, _, t)| (c, t))
            .collect();
        let mut t: Vec<Templates> = symbols.iter().map(|s| templates(&s.name)).collect();
        t.push(templates(""));
        Publisher {
            symbols,
            templates: t,
            texts,
            out: Sessions::default(),
        }
    }

    pub fn stats(&self) -> PublisherStats {
        self.out.stats
    }

    /// Rejects counted by code (every stage, routed or not), in code order.
    pub fn reject_counts(&self) -> Vec<(u16, u64)> {
        let mut v: Vec<(u16, u64)> = self
            .out
            .reject_codes
            .iter()
            .map(|(c, n)| (*c, *n))
            .collect();
        v.sort_unstable();
        v
    }

    /// A new connection: it may receive frames (gateway rejects, logon ack) before logon.
    pub fn open_session(&mut self, sid: u64) {
        self.out.sessions.entry(sid).or_default();
    }

    /// After a successful logon: reports for `account` go to `sid`. Returns false if another
    /// session holds the account or `sid` is not open.
    pub fn bind(&mut self, sid: u64, account: u64) -> bool {
        let o = &mut self.out;
        if o.routes.contains_key(&account) {
            return false;
        }
        let Some(session) = o.sessions.get_mut(&sid) else {
            return false;
        };
        session.account = account;
        o.routes.insert(account, sid);
        true
    }

    /// The session that holds `account`, if any.
    pub fn session_of(&self, account: u64) -> Option<u64> {
        self.out.routes.get(&account).copied()
    }

    /// The connection is gone: forget its route and any undrained output.
    pub fn close_session(&mut self, sid: u64) {
        let o = &mut self.out;
        if let Some(session) = o.sessions.remove(&sid) {
            if o.routes.get(&session.account) == Some(&sid) {
                o.routes.remove(&session.account);
            }
        }
        o.dirty.retain(|s| *s != sid);
    }

    pub fn session_count(&self) -> usize {
        self.out.sessions.len()
    }

    /// Route each event of `events` to its account's session.
    pub fn add_events(&mut self, events: &[u8], symbols: SymbolsOf<'_>) {
        let mut scratch = [0u8; SCRATCH_BYTES];
        let mut alloc = ScratchSpaceHeapAllocator::new(&mut scratch);
        let no_symbol = self.symbols.len();
        for (i, rec) in events.chunks_exact(EVENT_SIZE).enumerate() {
            let Some(ev) = Event::decode(rec) else {
                continue;
            };
            let sym = match symbols {
                SymbolsOf::One(s) => s,
                SymbolsOf::Each(b) => b
                    .get(i * 4..i * 4 + 4)
                    .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
                    .unwrap_or(NO_SYMBOL),
            };
            let idx = if (sym as usize) < no_symbol {
                sym as usize
            } else {
                no_symbol
            };
            let symbol = self.symbols.get(idx).map(|s| s.name.as_str()).unwrap_or("");
            let Some(t) = self.templates.get(idx) else {
                continue;
            };
            self.out
                .event(&ev, symbol, t, None, &self.texts, &mut alloc);
        }
    }

    /// Send `events` (gateway rejects) to session `sid` whatever their account.
    pub fn add_for_session(&mut self, sid: u64, events: &[u8]) {
        let mut scratch = [0u8; SCRATCH_BYTES];
        let mut alloc = ScratchSpaceHeapAllocator::new(&mut scratch);
        let Some(t) = self.templates.last() else {
            return;
        };
        for rec in events.chunks_exact(EVENT_SIZE) {
            let Some(ev) = Event::decode(rec) else {
                continue;
            };
            self.out
                .event(&ev, "", t, Some(sid), &self.texts, &mut alloc);
        }
    }

    /// A reject with `code` for a session-level request (no order involved).
    pub fn add_reject(&mut self, sid: u64, code: u16) {
        let account = self.out.sessions.get(&sid).map(|o| o.account).unwrap_or(0);
        let ev = Event {
            kind: EventKind::Rejected as u8,
            code,
            account,
            ..Event::default()
        };
        let mut events = Vec::with_capacity(EVENT_SIZE);
        ev.encode(&mut events);
        self.add_for_session(sid, &events);
    }

    /// Logon accepted: tell the session its id, limits and the symbol table.
    pub fn add_logon_ack(&mut self, sid: u64, account: u64, idle_timeout_ms: u32) {
        let symbols = &self.symbols;
        self.out.control(sid, |m, seq| {
            let mut m = m;
            m.set_seq(seq);
            let mut a = m.init_logon_ack();
            a.set_account(account);
            a.set_session_id(sid);
            a.set_protocol_version(super::cift_capnp::PROTOCOL_VERSION);
            a.set_idle_timeout_ms(idle_timeout_ms);
            let mut list = a.init_symbols(u32::try_from(symbols.len()).unwrap_or(u32::MAX));
            for (i, s) in (0u32..).zip(symbols.iter()) {
                let mut e = list.reborrow().get(i);
                e.set_name(s.name.as_str());
                e.set_tick_size(s.tick_size);
                e.set_lot_size(s.lot_size);
                e.set_price_precision(s.price_precision);
                e.set_min_price(s.min_price);
                e.set_max_price(s.max_price);
                e.set_max_order_qty(s.max_order_qty);
            }
        });
        self.out.stats.logon_acks += 1;
    }

    /// Answer a client heartbeat with the same id.
    pub fn add_heartbeat(&mut self, sid: u64, id: u64) {
        self.out.control(sid, |m, seq| {
            let mut m = m;
            m.set_seq(seq);
            m.init_heartbeat().set_id(id);
        });
        self.out.stats.heartbeats += 1;
    }

    /// The last frame before the engine closes a session: why.
    pub fn add_logout(&mut self, sid: u64, code: u16, text: &str) {
        self.out.control(sid, |m, seq| {
            let mut m = m;
            m.set_seq(seq);
            let mut l = m.init_logout();
            l.set_code(code);
            l.set_text(text);
        });
        self.out.stats.logouts += 1;
    }

    /// Hand each session's pending frames to `write` (once per session, in first-touch order)
    /// and clear them.
    pub fn drain(&mut self, mut write: impl FnMut(u64, &[u8])) {
        let o = &mut self.out;
        for sid in o.dirty.drain(..) {
            if let Some(session) = o.sessions.get_mut(&sid) {
                if !session.buf.is_empty() {
                    write(sid, &session.buf);
                    session.buf.clear();
                }
            }
        }
    }
}

impl Sessions {
    /// The output of `sid` (marked dirty) and its next sequence number.
    fn next(&mut self, sid: u64) -> Option<(&mut Output, u64)> {
        next_in(&mut self.sessions, &mut self.dirty, sid)
    }

    /// The output of `to`, else of `account`'s session, and its next sequence number; None
    /// (counted as unroutable) when there is no such session.
    fn route(&mut self, account: u64, to: Option<u64>) -> Option<(&mut Output, u64)> {
        let sid = to.or_else(|| self.routes.get(&account).copied());
        let found = sid.and_then(|sid| next_in(&mut self.sessions, &mut self.dirty, sid));
        if found.is_none() {
            self.stats.unroutable += 1;
        }
        found
    }

    fn control(&mut self, sid: u64, build: impl FnOnce(server_message::Builder<'_>, u64)) {
        let Some((out, seq)) = self.next(sid) else {
            return;
        };
        let mut scratch = [0u8; SCRATCH_BYTES];
        let mut alloc = ScratchSpaceHeapAllocator::new(&mut scratch);
        let n = report::frame(&mut out.buf, &mut alloc, |m| build(m, seq));
        self.stats.bytes += n as u64;
    }

    /// One execution report of `kind` to `account`'s session (or `to`).
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        kind: Kind,
        fields: Fields,
        account: u64,
        to: Option<u64>,
        symbol: &str,
        templates: &Templates,
        alloc: &mut ScratchSpaceHeapAllocator<'_>,
    ) {
        let Some((out, seq)) = self.route(account, to) else {
            return;
        };
        let f = Fields { seq, ..fields };
        let n = match templates.get(kind as usize) {
            Some(Some(t)) => t.write(&f, &mut out.buf),
            _ => report::frame(&mut out.buf, alloc, |m| report::fill(kind, m, &f, symbol)),
        };
        let st = &mut self.stats;
        st.bytes += n as u64;
        match kind {
            Kind::Ack => st.acks += 1,
            Kind::Fill => st.fills += 1,
            Kind::Cancelled => st.cancels += 1,
            Kind::Replaced => st.replaces += 1,
            Kind::Triggered => st.triggers += 1,
        }
    }

    fn event(
        &mut self,
        ev: &Event,
        symbol: &str,
        templates: &Templates,
        to: Option<u64>,
        texts: &FxHashMap<u16, String>,
        alloc: &mut ScratchSpaceHeapAllocator<'_>,
    ) {
        match EventKind::from_u8(ev.kind) {
            None => {}
            Some(EventKind::Level) => self.stats.levels += 1,
            Some(EventKind::Rejected) => self.reject(ev, symbol, to, texts, alloc),
            Some(EventKind::Admin) => self.admin_reply(ev, symbol, to, texts, alloc),
            Some(kind) => {
                if let Some((k, f)) = report_of(ev) {
                    self.report(k, f, ev.account, to, symbol, templates, alloc);
                }
                if kind == EventKind::Trade {
                    let f = taker_fill(ev);
                    self.report(
                        Kind::Fill,
                        f,
                        ev.counter_account,
                        to,
                        symbol,
                        templates,
                        alloc,
                    );
                }
            }
        }
    }

    fn admin_reply(
        &mut self,
        ev: &Event,
        symbol: &str,
        to: Option<u64>,
        texts: &FxHashMap<u16, String>,
        alloc: &mut ScratchSpaceHeapAllocator<'_>,
    ) {
        if ev.code != 0 {
            *self.reject_codes.entry(ev.code).or_default() += 1;
        }
        let Some((out, seq)) = self.route(ev.account, to) else {
            return;
        };
        let text = match ev.code {
            0 => "done",
            c => texts.get(&c).map_or("unknown reject code", String::as_str),
        };
        let n = report::frame(&mut out.buf, alloc, |m| {
            let mut m = m;
            m.set_seq(seq);
            let mut r = m.init_admin_reply();
            r.set_request_id(ev.client_id);
            r.set_action(AdminAction::try_from(u16::from(ev.reason)).unwrap_or(AdminAction::None));
            r.set_account(ev.order_id);
            r.set_symbol(symbol);
            r.set_code(ev.code);
            r.set_text(text);
            r.set_cmd_seq(ev.seq);
        });
        self.stats.admin_replies += 1;
        self.stats.bytes += n as u64;
    }

    fn reject(
        &mut self,
        ev: &Event,
        symbol: &str,
        to: Option<u64>,
        texts: &FxHashMap<u16, String>,
        alloc: &mut ScratchSpaceHeapAllocator<'_>,
    ) {
        *self.reject_codes.entry(ev.code).or_default() += 1;
        let Some((out, seq)) = self.route(ev.account, to) else {
            return;
        };
        let text = texts
            .get(&ev.code)
            .map(String::as_str)
            .unwrap_or("unknown reject code");
        let n = report::frame(&mut out.buf, alloc, |m| {
            let mut m = m;
            m.set_seq(seq);
            let mut r = m.init_reject();
            r.set_symbol(symbol);
            r.set_order_id(ev.order_id);
            r.set_client_order_id(ev.client_id);
            r.set_code(ev.code);
            r.set_text(text);
            r.set_side(side(ev.side));
            r.set_price(ev.price);
            r.set_qty(ev.qty);
            r.set_cmd_seq(ev.seq);
        });
        self.stats.rejects += 1;
        self.stats.bytes += n as u64;
    }
}

/// The output of session `sid` (marked dirty when it was empty) and its next sequence number.
fn next_in<'a>(
    sessions: &'a mut FxHashMap<u64, Output>,
    dirty: &mut Vec<u64>,
    sid: u64,
) -> Option<(&'a mut Output, u64)> {
    let out = sessions.get_mut(&sid)?;
    if out.buf.is_empty() {
        dirty.push(sid);
    }
    out.seq += 1;
    let seq = out.seq;
    Some((out, seq))
}
