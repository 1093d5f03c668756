//! The client side of the codec, for tools and benchmarks that need more speed than pycapnp
//! (the load generator of `perf/tcp.py`, the recorded streams of `perf/pipeline.py`). The
//! Python client library (`engine.client`) uses pycapnp with the same schema.

use capnp::message::{Builder, ReaderOptions, ScratchSpaceHeapAllocator};
use capnp::serialize::{
    compute_serialized_size_in_words, read_message_from_flat_slice_no_alloc, write_message,
};

use super::cift_capnp::{
    client_message, server_message, AdminAction, LimitKey, OrdType, Side, Stp, Tif,
};
use super::decode::{FrameError, FRAME_HEADER, MIN_FRAME};
use super::enum_byte;
use crate::types::{CmdKind, Command, COMMAND_SIZE, FLAG_POST_ONLY};

/// Size of one compact report record produced by `decode_replies`. Layout (offset: field):
/// 0 kind u8 (`ReportKind`), 1 side u8, 2 reason u8, 3 flags u8 (bit0: ack isStop, fill
/// aggressor, replaced priorityKept), 4 code u16, 6..8 reserved, 8 out seq u64, 16 order_id u64
/// (heartbeat: id; logon ack: session id), 24 client_id u64 (logon ack: account), 32 price i64,
/// 40 qty i64, 48 leaves i64, 56 cmd_seq u64.
pub const REPORT_SIZE: usize = 64;

/// `kind` byte of a report record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ReportKind {
    Unknown = 0,
    LogonAck = 1,
    Heartbeat = 2,
    Ack = 3,
    Reject = 4,
    Fill = 5,
    Cancelled = 6,
    Replaced = 7,
    Triggered = 8,
    Logout = 9,
    /// Admin reply: reason = action, code, order_id = account acted on, client_id = request id.
    AdminReply = 10,
}

fn frame_of(msg: &Builder<&mut ScratchSpaceHeapAllocator<'_>>, out: &mut Vec<u8>) {
    let len = compute_serialized_size_in_words(msg) * 8;
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    // Writing into a Vec cannot fail.
    let _ = write_message(out, msg);
}

fn with_message(out: &mut Vec<u8>, fill: impl FnOnce(client_message::Builder<'_>)) {
    let mut scratch = [0u8; 512];
    let mut alloc = ScratchSpaceHeapAllocator::new(&mut scratch);
    let mut msg = Builder::new(&mut alloc);
    fill(msg.init_root::<client_message::Builder>());
    frame_of(&msg, out);
}

/// Encode command records (New, Cancel, Amend, MassCancel; other kinds are skipped) as request
/// frames, each for symbol `names[symbols[i]]` (an index outside `names`: empty symbol).
pub fn encode_requests(commands: &[u8], symbols: &[u8], names: &[String], out: &mut Vec<u8>) {
    for (i, rec) in commands.chunks_exact(COMMAND_SIZE).enumerate() {
        let Some(c) = Command::decode(rec) else {
            continue;
        };
        let sym = symbols
            .get(i * 4..i * 4 + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
            .and_then(|s| names.get(s))
            .map(String::as_str)
            .unwrap_or("");
        encode_request(&c, sym, out);
    }
}

/// Encode one command record as a request frame.
pub fn encode_request(c: &Command, symbol: &str, out: &mut Vec<u8>) {
    match CmdKind::from_u8(c.kind) {
        Some(CmdKind::New) => with_message(out, |m| {
            let mut o = m.init_new_order();
            o.set_symbol(symbol);
            o.set_client_order_id(c.client_id);
            o.set_side(Side::try_from(u16::from(c.side)).unwrap_or(Side::None));
            o.set_ord_type(OrdType::try_from(u16::from(c.ord_type)).unwrap_or(OrdType::None));
            o.set_tif(Tif::try_from(u16::from(c.tif)).unwrap_or(Tif::None));
            o.set_price(c.price);
            o.set_stop_price(c.stop_price);
            o.set_qty(c.qty);
            o.set_display_qty(c.display_qty);
            o.set_expire_ts(c.expire_ts);
            o.set_stp(Stp::try_from(u16::from(c.stp)).unwrap_or(Stp::None));
            o.set_stp_group(c.stp_group);
            o.set_post_only(c.flags & FLAG_POST_ONLY != 0);
        }),
        Some(CmdKind::Cancel) => with_message(out, |m| {
            let mut o = m.init_cancel();
            o.set_symbol(symbol);
            o.set_order_id(c.order_id);
            o.set_client_order_id(c.client_id);
        }),
        Some(CmdKind::Amend) => with_message(out, |m| {
            let mut o = m.init_replace();
            o.set_symbol(symbol);
            o.set_order_id(c.order_id);
            o.set_client_order_id(c.client_id);
            o.set_price(c.price);
            o.set_qty(c.qty);
        }),
        Some(CmdKind::MassCancel) => with_message(out, |m| {
            let mut o = m.init_mass_cancel();
            o.set_symbol(symbol);
            o.set_side(Side::try_from(u16::from(c.side)).unwrap_or(Side::None));
        }),
        Some(CmdKind::Admin) => with_message(out, |m| {
            let mut o = m.init_admin();
            o.set_request_id(c.client_id);
            o.set_action(AdminAction::try_from(u16::from(c.ord_type)).unwrap_or(AdminAction::None));
            o.set_account(c.account);
            o.set_symbol(symbol);
            o.set_side(Side::try_from(u16::from(c.side)).unwrap_or(Side::None));
            o.set_limit(LimitKey::try_from(u16::from(c.tif)).unwrap_or(LimitKey::None));
            o.set_value(c.price);
        }),
        Some(CmdKind::AdvanceTime) | None => {}
    }
}

/// A logon request frame.
pub fn encode_logon(account: u64, token: &str, out: &mut Vec<u8>) {
    with_message(out, |m| {
        let mut l = m.init_logon();
        l.set_account(account);
        l.set_token(token);
        l.set_protocol_version(super::cift_capnp::PROTOCOL_VERSION);
    });
}

/// A heartbeat request frame.
pub fn encode_heartbeat(id: u64, out: &mut Vec<u8>) {
    with_message(out, |m| m.init_heartbeat().set_id(id));
}

#[derive(Default)]
struct Report {
    kind: u8,
    side: u8,
    reason: u8,
    flags: u8,
    code: u16,
    seq: u64,
    order_id: u64,
    client_id: u64,
    price: i64,
    qty: i64,
    leaves: i64,
    cmd_seq: u64,
}

impl Report {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.kind, self.side, self.reason, self.flags]);
        out.extend_from_slice(&self.code.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for w in [
            self.seq,
            self.order_id,
            self.client_id,
            self.price as u64,
            self.qty as u64,
            self.leaves as u64,
            self.cmd_seq,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }
}

fn parse_reply(frame: &[u8]) -> capnp::Result<Report> {
    let mut slice = frame;
    let message = read_message_from_flat_slice_no_alloc(&mut slice, ReaderOptions::new())?;
    let root: server_message::Reader = message.get_root()?;
    let mut r = Report {
        seq: root.get_seq(),
        ..Report::default()
    };
    use server_message::Which;
    let Ok(which) = root.which() else {
        return Ok(r);
    };
    match which {
        Which::LogonAck(a) => {
            let a = a?;
            r.kind = ReportKind::LogonAck as u8;
            r.order_id = a.get_session_id();
            r.client_id = a.get_account();
        }
        Which::Heartbeat(h) => {
            r.kind = ReportKind::Heartbeat as u8;
            r.order_id = h?.get_id();
        }
        Which::Ack(a) => {
            let a = a?;
            r.kind = ReportKind::Ack as u8;
            r.side = enum_byte(a.get_side().map(|v| v as u16));
            r.flags = u8::from(a.get_is_stop());
            (r.order_id, r.client_id, r.price, r.qty, r.leaves) = (
                a.get_order_id(),
                a.get_client_order_id(),
                a.get_price(),
                a.get_qty(),
                a.get_leaves(),
            );
            r.cmd_seq = a.get_cmd_seq();
        }
        Which::Reject(x) => {
            let x = x?;
            r.kind = ReportKind::Reject as u8;
            r.side = enum_byte(x.get_side().map(|v| v as u16));
            r.code = x.get_code();
            (r.order_id, r.client_id, r.price, r.qty) = (
                x.get_order_id(),
                x.get_client_order_id(),
                x.get_price(),
                x.get_qty(),
            );
            r.cmd_seq = x.get_cmd_seq();
        }
        Which::Fill(f) => {
            let f = f?;
            r.kind = ReportKind::Fill as u8;
            r.side = enum_byte(f.get_side().map(|v| v as u16));
            r.flags = u8::from(f.get_aggressor());
            (r.order_id, r.client_id, r.price, r.qty, r.leaves) = (
                f.get_order_id(),
                f.get_client_order_id(),
                f.get_price(),
                f.get_qty(),
                f.get_leaves(),
            );
            r.cmd_seq = f.get_cmd_seq();
        }
        Which::Cancelled(c) => {
            let c = c?;
            r.kind = ReportKind::Cancelled as u8;
            r.side = enum_byte(c.get_side().map(|v| v as u16));
            r.reason = enum_byte(c.get_reason().map(|v| v as u16));
            (r.order_id, r.client_id, r.price, r.qty, r.leaves) = (
                c.get_order_id(),
                c.get_client_order_id(),
                c.get_price(),
                c.get_qty(),
                c.get_leaves(),
            );
            r.cmd_seq = c.get_cmd_seq();
        }
        Which::Replaced(x) => {
            let x = x?;
            r.kind = ReportKind::Replaced as u8;
            r.side = enum_byte(x.get_side().map(|v| v as u16));
            r.flags = u8::from(x.get_priority_kept());
            (r.order_id, r.client_id, r.price, r.qty, r.leaves) = (
                x.get_order_id(),
                x.get_client_order_id(),
                x.get_price(),
                x.get_qty(),
                x.get_leaves(),
            );
            r.cmd_seq = x.get_cmd_seq();
        }
        Which::Triggered(t) => {
            let t = t?;
            r.kind = ReportKind::Triggered as u8;
            r.side = enum_byte(t.get_side().map(|v| v as u16));
            (r.order_id, r.client_id, r.price, r.qty) = (
                t.get_order_id(),
                t.get_client_order_id(),
                t.get_price(),
                t.get_qty(),
            );
            r.cmd_seq = t.get_cmd_seq();
        }
        Which::Logout(l) => {
            r.kind = ReportKind::Logout as u8;
            r.code = l?.get_code();
        }
        Which::AdminReply(a) => {
            let a = a?;
            r.kind = ReportKind::AdminReply as u8;
            r.reason = enum_byte(a.get_action().map(|v| v as u16));
            r.code = a.get_code();
            (r.order_id, r.client_id, r.cmd_seq) =
                (a.get_account(), a.get_request_id(), a.get_cmd_seq());
        }
    }
    Ok(r)
}

/// Decode every complete reply frame of `buf` into `REPORT_SIZE` records appended to `out`.
/// Returns the bytes consumed; a frame that fails to parse yields a record of kind `Unknown`.
pub fn decode_replies(
    buf: &[u8],
    max_frame: usize,
    out: &mut Vec<u8>,
) -> Result<usize, FrameError> {
    let mut pos = 0usize;
    while let Some(header) = buf.get(pos..pos + FRAME_HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: max_frame,
            });
        }
        if len < MIN_FRAME || !len.is_multiple_of(8) {
            return Err(FrameError::BadLength { len });
        }
        let Some(frame) = buf.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len) else {
            break;
        };
        pos += FRAME_HEADER + len;
        parse_reply(frame).unwrap_or_default().write(out);
    }
    Ok(pos)
}
