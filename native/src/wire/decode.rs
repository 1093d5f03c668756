//! Gateway hot path: a session's whole receive buffer in, command records out.
//!
//! One call walks every complete frame in the buffer. Trading messages become `COMMAND_SIZE`
//! records (the session's account filled in, `seq`/`ts`/`order_id` left for the sequencer) with
//! a `u32` symbol index beside each; a per-frame problem becomes a `Rejected` event record with
//! a gateway code (the session goes on); a control message (logon, heartbeat, logout) stops the
//! walk so the caller handles it before the frames after it; a framing error stops the walk for
//! good (the caller disconnects with the reason).

use std::sync::atomic::{AtomicU32, Ordering};

use capnp::message::ReaderOptions;
use capnp::serialize::read_message_from_flat_slice_no_alloc;
use rustc_hash::FxHashMap;

use super::cift_capnp::{admin, cancel, client_message, mass_cancel, new_order, replace};
use super::codes::GatewayCode;
use super::fast::FastPath;
use super::{enum_byte, Control, ADMIN_SYMBOL, ALL_SYMBOLS, NO_SYMBOL};
use crate::types::{CmdKind, Command, Event, EventKind, FLAG_POST_ONLY};

/// Length prefix size of every frame.
pub const FRAME_HEADER: usize = 4;
/// Smallest valid frame body: a one-segment table (8 bytes) and an empty segment.
pub const MIN_FRAME: usize = 8;

/// A framing error: the byte stream can no longer be trusted, the session must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("frame length {len} is not a Cap'n Proto message size")]
    BadLength { len: usize },
}

impl FrameError {
    pub fn code(self) -> GatewayCode {
        match self {
            FrameError::TooLarge { .. } => GatewayCode::FrameTooLarge,
            FrameError::BadLength { .. } => GatewayCode::BadFrameLength,
        }
    }
}

/// What one `decode` call produced. Reused between calls (`clear`) to avoid allocation.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Bytes of `buf` fully handled; the caller keeps `buf[consumed..]` for the next call.
    pub consumed: usize,
    /// Command records, `COMMAND_SIZE` bytes each.
    pub commands: Vec<u8>,
    /// One little-endian `u32` symbol index per command (`NO_SYMBOL`, `ALL_SYMBOLS` or an index).
    pub symbols: Vec<u8>,
    /// `Rejected` event records (`EVENT_SIZE` each) with gateway codes, for this session.
    pub rejects: Vec<u8>,
    /// The control message the walk stopped at, if any.
    pub control: Option<Control>,
    /// The framing error the walk stopped at, if any.
    pub error: Option<FrameError>,
}

impl Decoded {
    pub fn clear(&mut self) {
        self.consumed = 0;
        self.commands.clear();
        self.symbols.clear();
        self.rejects.clear();
        self.control = None;
        self.error = None;
    }

    pub fn command_count(&self) -> usize {
        self.symbols.len() / 4
    }
}

/// Cumulative counters, read by the metrics collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecoderStats {
    pub frames: u64,
    pub bytes: u64,
    pub new_orders: u64,
    pub cancels: u64,
    pub replaces: u64,
    pub mass_cancels: u64,
    pub admins: u64,
    /// Trading messages decoded by the template fast path (`fast.rs`).
    pub fast_path: u64,
    pub logons: u64,
    pub heartbeats: u64,
    pub logouts: u64,
    /// Per-frame rejects by gateway code (index = code - 1001).
    pub rejects: [u64; 16],
    pub frame_errors: u64,
}

/// One decoder serves every session (the session's account is an argument).
#[derive(Debug)]
pub struct Decoder {
    symbols: FxHashMap<Box<[u8]>, u32>,
    /// Names by index, and the index last found: consecutive frames mostly repeat a symbol.
    names: Vec<Box<[u8]>>,
    last: AtomicU32,
    max_frame: usize,
    options: ReaderOptions,
    stats: DecoderStats,
    /// Template decoding of standard-layout trading messages (`fast.rs`); None: always the
    /// full reader.
    fast: Option<FastPath>,
}

enum Parsed {
    Command(Command, u32),
    Control(Control),
    Reject(GatewayCode, Command),
}

impl Decoder {
    /// `symbols`: the symbol table (index = position); `max_frame`: the largest accepted frame
    /// body in bytes.
    pub fn new<S: AsRef<str>>(symbols: &[S], max_frame: usize) -> Decoder {
        let names: Vec<Box<[u8]>> = symbols
            .iter()
            .map(|s| s.as_ref().as_bytes().into())
            .collect();
        let mut table = FxHashMap::default();
        for (i, n) in names.iter().enumerate() {
            table.insert(n.clone(), u32::try_from(i).unwrap_or(NO_SYMBOL));
        }
        let mut options = ReaderOptions::new();
        // A frame is at most `max_frame` bytes; allow a generous multiple for traversal
        // (re-reading the same pointer), which still bounds a hostile message's cost.
        options.traversal_limit_in_words(Some(max_frame / 8 * 4 + 64));
        options.nesting_limit(16);
        let fast = Some(FastPath::new(&names));
        Decoder {
            fast,
            symbols: table,
            names,
            last: AtomicU32::new(0),
            max_frame,
            options,
            stats: DecoderStats::default(),
        }
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Turn the template fast path on or off (off: every frame takes the full reader; the
    /// results are the same, only slower).
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast = on.then(|| FastPath::new(&self.names));
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Walk the complete frames of `buf` for a session logged on as `account` (0 = not yet).
    /// Admin messages are refused (1016): see `decode_as`.
    pub fn decode(&mut self, buf: &[u8], account: u64, out: &mut Decoded) {
        self.decode_as(buf, account, false, out)
    }

    /// `decode` for a session that may (`admin`) or may not send admin messages: an admin
    /// message becomes an `Admin` command record (symbol index `ADMIN_SYMBOL`) or, from a
    /// session that may not, an `Admin` event with code 1016.
    pub fn decode_as(&mut self, buf: &[u8], account: u64, admin: bool, out: &mut Decoded) {
        out.clear();
        let mut pos = 0usize;
        while let Some(rest) = buf.get(pos..) {
            let Some(header) = rest.get(..FRAME_HEADER) else {
                break;
            };
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            if len > self.max_frame {
                out.error = Some(FrameError::TooLarge {
                    len,
                    max: self.max_frame,
                });
                self.stats.frame_errors += 1;
                break;
            }
            if len < MIN_FRAME || !len.is_multiple_of(8) {
                out.error = Some(FrameError::BadLength { len });
                self.stats.frame_errors += 1;
                break;
            }
            let Some(frame) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
                break;
            };
            pos += FRAME_HEADER + len;
            self.stats.frames += 1;
            self.stats.bytes += (FRAME_HEADER + len) as u64;
            let fast = self.fast.as_mut().and_then(|f| f.decode(frame));
            let parsed = match fast {
                Some((cmd, symbol)) => self.fast_parsed(cmd, symbol, account),
                None => self.parse(frame, account, admin),
            };
            let parsed = parsed.unwrap_or_else(|_| {
                Parsed::Reject(
                    GatewayCode::MalformedMessage,
                    Command {
                        account,
                        ..Command::default()
                    },
                )
            });
            match parsed {
                Parsed::Command(cmd, symbol) => {
                    cmd.encode(&mut out.commands);
                    out.symbols.extend_from_slice(&symbol.to_le_bytes());
                }
                Parsed::Reject(code, cmd) => {
                    self.count_reject(code);
                    if cmd.kind == CmdKind::Admin as u8 {
                        admin_event(code, &cmd).encode(&mut out.rejects);
                    } else {
                        reject_event(code, &cmd).encode(&mut out.rejects);
                    }
                }
                Parsed::Control(c) => {
                    out.control = Some(c);
                    break;
                }
            }
        }
        out.consumed = pos;
    }

    /// A command the fast path decoded: counted and checked as `parse` would.
    fn fast_parsed(&mut self, cmd: Command, symbol: u32, account: u64) -> capnp::Result<Parsed> {
        self.stats.fast_path += 1;
        match CmdKind::from_u8(cmd.kind) {
            Some(CmdKind::New) => self.stats.new_orders += 1,
            Some(CmdKind::Cancel) => self.stats.cancels += 1,
            _ => self.stats.replaces += 1,
        }
        Ok(Self::trading(Command { account, ..cmd }, symbol))
    }

    fn count_reject(&mut self, code: GatewayCode) {
        let i = usize::from(code.code().saturating_sub(1001));
        if let Some(n) = self.stats.rejects.get_mut(i) {
            *n += 1;
        }
    }

    fn symbol(&self, name: &[u8]) -> u32 {
        let last = self.last.load(Ordering::Relaxed);
        if self.names.get(last as usize).is_some_and(|n| **n == *name) {
            return last;
        }
        let found = self.symbols.get(name).copied().unwrap_or(NO_SYMBOL);
        if found != NO_SYMBOL {
            self.last.store(found, Ordering::Relaxed);
        }
        found
    }

    fn parse(&mut self, frame: &[u8], account: u64, admin: bool) -> capnp::Result<Parsed> {
        let mut slice = frame;
        let message = read_message_from_flat_slice_no_alloc(&mut slice, self.options)?;
        if !slice.is_empty() {
            // The frame holds more than one message (or trailing bytes): not ours to guess.
            return Ok(Parsed::Reject(
                GatewayCode::MalformedMessage,
                Command {
                    account,
                    ..Command::default()
                },
            ));
        }
        let root: client_message::Reader = message.get_root()?;
        let which = match root.which() {
            Ok(w) => w,
            Err(_) => {
                return Ok(Parsed::Reject(
                    GatewayCode::UnknownMessage,
                    Command {
                        account,
                        ..Command::default()
                    },
                ))
            }
        };
        use client_message::Which;
        let parsed = match which {
            Which::Logon(r) => {
                self.stats.logons += 1;
                let r = r?;
                let token = String::from_utf8_lossy(r.get_token()?.as_bytes()).into_owned();
                Parsed::Control(Control::Logon {
                    account: r.get_account(),
                    token,
                    version: r.get_protocol_version(),
                })
            }
            Which::Heartbeat(r) => {
                self.stats.heartbeats += 1;
                Parsed::Control(Control::Heartbeat { id: r?.get_id() })
            }
            Which::Logout(r) => {
                self.stats.logouts += 1;
                let r = r?;
                let text = String::from_utf8_lossy(r.get_text()?.as_bytes()).into_owned();
                Parsed::Control(Control::Logout {
                    code: r.get_code(),
                    text,
                })
            }
            Which::NewOrder(r) => {
                self.stats.new_orders += 1;
                self.new_order(r?, account)?
            }
            Which::Cancel(r) => {
                self.stats.cancels += 1;
                self.cancel(r?, account)?
            }
            Which::Replace(r) => {
                self.stats.replaces += 1;
                self.replace(r?, account)?
            }
            Which::MassCancel(r) => {
                self.stats.mass_cancels += 1;
                self.mass_cancel(r?, account)?
            }
            Which::Admin(r) => {
                self.stats.admins += 1;
                self.admin(r?, account, admin)?
            }
        };
        Ok(parsed)
    }

    fn trading(cmd: Command, symbol: u32) -> Parsed {
        if cmd.account == 0 {
            Parsed::Reject(GatewayCode::NotLoggedOn, cmd)
        } else {
            Parsed::Command(cmd, symbol)
        }
    }

    fn new_order(&self, r: new_order::Reader, account: u64) -> capnp::Result<Parsed> {
        let symbol = self.symbol(r.get_symbol()?.as_bytes());
        let cmd = Command {
            kind: CmdKind::New as u8,
            side: enum_byte(r.get_side().map(|v| v as u16)),
            ord_type: enum_byte(r.get_ord_type().map(|v| v as u16)),
            tif: enum_byte(r.get_tif().map(|v| v as u16)),
            stp: enum_byte(r.get_stp().map(|v| v as u16)),
            flags: if r.get_post_only() { FLAG_POST_ONLY } else { 0 },
            account,
            client_id: r.get_client_order_id(),
            price: r.get_price(),
            stop_price: r.get_stop_price(),
            qty: r.get_qty(),
            display_qty: r.get_display_qty(),
            expire_ts: r.get_expire_ts(),
            stp_group: r.get_stp_group(),
            ..Command::default()
        };
        Ok(Self::trading(cmd, symbol))
    }

    fn cancel(&self, r: cancel::Reader, account: u64) -> capnp::Result<Parsed> {
        let symbol = self.symbol(r.get_symbol()?.as_bytes());
        let cmd = Command {
            kind: CmdKind::Cancel as u8,
            account,
            order_id: r.get_order_id(),
            client_id: r.get_client_order_id(),
            ..Command::default()
        };
        Ok(Self::trading(cmd, symbol))
    }

    fn replace(&self, r: replace::Reader, account: u64) -> capnp::Result<Parsed> {
        let symbol = self.symbol(r.get_symbol()?.as_bytes());
        let cmd = Command {
            kind: CmdKind::Amend as u8,
            account,
            order_id: r.get_order_id(),
            client_id: r.get_client_order_id(),
            price: r.get_price(),
            qty: r.get_qty(),
            ..Command::default()
        };
        Ok(Self::trading(cmd, symbol))
    }

    fn mass_cancel(&self, r: mass_cancel::Reader, account: u64) -> capnp::Result<Parsed> {
        let name = r.get_symbol()?.as_bytes();
        let symbol = if name.is_empty() {
            ALL_SYMBOLS
        } else {
            self.symbol(name)
        };
        let cmd = Command {
            kind: CmdKind::MassCancel as u8,
            side: enum_byte(r.get_side().map(|v| v as u16)),
            account,
            ..Command::default()
        };
        Ok(Self::trading(cmd, symbol))
    }
}

impl Decoder {
    fn admin(&self, r: admin::Reader, account: u64, allowed: bool) -> capnp::Result<Parsed> {
        let name = r.get_symbol()?.as_bytes();
        let symbol = if name.is_empty() {
            ALL_SYMBOLS
        } else {
            self.symbol(name)
        };
        let cmd = Command {
            kind: CmdKind::Admin as u8,
            ord_type: enum_byte(r.get_action().map(|v| v as u16)),
            tif: enum_byte(r.get_limit().map(|v| v as u16)),
            side: enum_byte(r.get_side().map(|v| v as u16)),
            account: r.get_account(),
            order_id: account,
            client_id: r.get_request_id(),
            price: r.get_value(),
            stp_group: u64::from(symbol),
            ..Command::default()
        };
        Ok(if account == 0 {
            Parsed::Reject(GatewayCode::NotLoggedOn, cmd)
        } else if !allowed {
            Parsed::Reject(GatewayCode::NotAdmin, cmd)
        } else {
            Parsed::Command(cmd, ADMIN_SYMBOL)
        })
    }
}

/// The `Rejected` event record for a command refused before sequencing (seq 0).
pub fn reject_event(code: impl Into<u16>, cmd: &Command) -> Event {
    Event {
        kind: EventKind::Rejected as u8,
        side: cmd.side,
        code: code.into(),
        order_id: cmd.order_id,
        account: cmd.account,
        client_id: cmd.client_id,
        price: cmd.price,
        qty: cmd.qty,
        ..Event::default()
    }
}

/// The `Admin` event answering admin command `cmd` (`code` 0 = done, with the command's seq).
pub fn admin_event(code: impl Into<u16>, cmd: &Command) -> Event {
    Event {
        kind: EventKind::Admin as u8,
        side: cmd.side,
        reason: cmd.ord_type,
        flags: cmd.tif,
        code: code.into(),
        seq: cmd.seq,
        order_id: cmd.account,
        account: cmd.order_id,
        client_id: cmd.client_id,
        price: cmd.price,
        aux: i64::try_from(cmd.stp_group).unwrap_or(-1),
        ..Event::default()
    }
}

impl From<GatewayCode> for u16 {
    fn from(c: GatewayCode) -> u16 {
        c.code()
    }
}
