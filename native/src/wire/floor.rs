//! The least a server can do for `perf.tcp`: answer every request frame with one report.
//!
//! `perf.tcp --floor` runs this (through the `cift-floor` binary) in place of the daemon to
//! measure what the machine, its kernel's loopback path and the load generator cost by
//! themselves: no decoding beyond the frame length, no matching, no journal, no Python. The
//! first frame of a connection is answered with a logon ack, every later frame N with an
//! `Ack` report whose `cmdSeq` is N, which is all `perf.tcp` reads. What the daemon adds to
//! the latency is its figure minus this one, on the same machine and rate.

use super::encode::Publisher;
use super::report::{Fields, Kind, Template};

/// Frames in, reply frames out; partial frames are kept for the next read.
pub struct FloorResponder {
    pending: Vec<u8>,
    frames: u64,
    ack: Option<Template>,
}

/// A frame whose length prefix is larger than this ends the connection (as the gateway's
/// frame limit does).
pub const MAX_FRAME: usize = 1 << 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FloorError {
    #[error("frame of {0} bytes is larger than {MAX_FRAME}")]
    Oversized(usize),
}

impl Default for FloorResponder {
    fn default() -> Self {
        Self::new()
    }
}

impl FloorResponder {
    pub fn new() -> FloorResponder {
        FloorResponder {
            pending: Vec::new(),
            frames: 0,
            ack: Template::derive(Kind::Ack, "BENCH"),
        }
    }

    /// Request frames seen so far (the logon included).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Take `data` (one read) and append the replies of every frame it completes to `out`.
    pub fn on_read(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), FloorError> {
        self.pending.extend_from_slice(data);
        let mut pos = 0;
        while let Some(head) = self.pending.get(pos..pos + 4) {
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len > MAX_FRAME {
                return Err(FloorError::Oversized(len));
            }
            if self.pending.len() < pos + 4 + len {
                break;
            }
            pos += 4 + len;
            self.reply(out);
        }
        self.pending.drain(..pos);
        Ok(())
    }

    fn reply(&mut self, out: &mut Vec<u8>) {
        let n = self.frames;
        self.frames += 1;
        if n == 0 {
            let mut p = Publisher::new(Vec::new());
            p.open_session(1);
            p.bind(1, 1);
            p.add_logon_ack(1, 1, 0);
            p.drain(|_, bytes| out.extend_from_slice(bytes));
            return;
        }
        let f = Fields {
            seq: n,
            cmd_seq: n,
            ..Fields::default()
        };
        if let Some(t) = &self.ack {
            t.write(&f, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::client::{decode_replies, ReportKind, REPORT_SIZE};

    fn frame(body: usize) -> Vec<u8> {
        let mut f = (body as u32).to_le_bytes().to_vec();
        f.extend(std::iter::repeat_n(7u8, body));
        f
    }

    #[test]
    fn every_frame_gets_one_reply_in_order_across_split_reads() {
        let stream: Vec<u8> = (0..50).flat_map(|i| frame(8 + i % 5 * 8)).collect();
        let mut r = FloorResponder::new();
        let mut out = Vec::new();
        for chunk in stream.chunks(7) {
            r.on_read(chunk, &mut out).expect("frames are small");
        }
        assert_eq!(r.frames(), 50);
        let mut reports = Vec::new();
        let consumed = decode_replies(&out, 1 << 20, &mut reports).expect("valid frames");
        assert_eq!(consumed, out.len());
        let records: Vec<&[u8]> = reports.chunks(REPORT_SIZE).collect();
        assert_eq!(records.len(), 50);
        assert_eq!(records[0][0], ReportKind::LogonAck as u8);
        let seqs: Vec<u64> = records[1..]
            .iter()
            .map(|r| u64::from_le_bytes(r[56..64].try_into().expect("8 bytes")))
            .collect();
        assert_eq!(seqs, (1..50).collect::<Vec<u64>>());
        assert!(records[1..].iter().all(|r| r[0] == ReportKind::Ack as u8));
    }

    #[test]
    fn an_oversized_length_is_an_error() {
        let mut r = FloorResponder::new();
        let mut out = Vec::new();
        let bad = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert_eq!(
            r.on_read(&bad, &mut out),
            Err(FloorError::Oversized(MAX_FRAME + 1))
        );
    }
}
