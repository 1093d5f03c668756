//! `cift-load HOST PORT FRAMES RATE WARMUP OUT [ACCOUNT TOKEN]`: the native open-loop load
//! generator of `perf.tcp --client native`.
//!
//! Logs on (ACCOUNT, TOKEN; default 1, "bench"), waits for the logon ack, then sends the request
//! frames of the file FRAMES at RATE commands per second from one busy-polling thread over a
//! non-blocking socket: every turn it writes everything due (one write) and reads whatever has
//! arrived, stamping it with the time the read returned. The latency of every command after the
//! first WARMUP ones (ns from its planned send time to its first report, `wire::load`) is
//! written to OUT as little-endian u64s in command order. Exit 0 when every command has been
//! answered, with `{"commands": N, "measured": M, "seconds": S}` on stdout (S: from the first
//! send to the last answer); 1 with a message on stderr otherwise (connection lost, 60 s without progress).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cift_native::wire::client::{decode_replies, encode_logon};
use cift_native::wire::load::{Matcher, Schedule};

const MAX_REPLY_FRAME: usize = 1 << 20;
const STALL: Duration = Duration::from_secs(60);

struct Args {
    host: String,
    port: u16,
    frames: String,
    rate: f64,
    warmup: usize,
    out: String,
    account: u64,
    token: String,
}

fn parse() -> Result<Args, String> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 6 && a.len() != 8 {
        return Err("usage: cift-load HOST PORT FRAMES RATE WARMUP OUT [ACCOUNT TOKEN]".into());
    }
    let num = |i: usize, what: &str| -> Result<f64, String> {
        a[i].parse::<f64>().map_err(|e| format!("{what}: {e}"))
    };
    Ok(Args {
        host: a[0].clone(),
        port: a[1].parse().map_err(|e| format!("PORT: {e}"))?,
        frames: a[2].clone(),
        rate: num(3, "RATE")?,
        warmup: a[4].parse().map_err(|e| format!("WARMUP: {e}"))?,
        out: a[5].clone(),
        account: a
            .get(6)
            .map_or(Ok(1), |s| s.parse())
            .map_err(|e| format!("ACCOUNT: {e}"))?,
        token: a.get(7).cloned().unwrap_or_else(|| "bench".into()),
    })
}

/// Start offsets of the frames in `frames`, and the end.
fn offsets(frames: &[u8]) -> Result<Vec<usize>, String> {
    let mut out = vec![0];
    let mut pos = 0usize;
    while pos < frames.len() {
        let head = frames
            .get(pos..pos + 4)
            .ok_or_else(|| format!("truncated frame header at byte {pos}"))?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        pos += 4 + len;
        if pos > frames.len() {
            return Err(format!("truncated frame ending at byte {pos}"));
        }
        out.push(pos);
    }
    Ok(out)
}

/// Read replies into `pending` and feed them to `m`; false when the peer closed.
fn pump(
    sock: &mut TcpStream,
    buf: &mut [u8],
    pending: &mut Vec<u8>,
    records: &mut Vec<u8>,
    m: &mut Matcher,
    t0: Instant,
) -> Result<bool, String> {
    match sock.read(buf) {
        Ok(0) => Ok(false),
        Ok(n) => {
            let now = t0.elapsed().as_nanos() as u64;
            pending.extend_from_slice(buf.get(..n).unwrap_or_default());
            records.clear();
            let used =
                decode_replies(pending, MAX_REPLY_FRAME, records).map_err(|e| e.to_string())?;
            pending.drain(..used);
            m.on_reports(records, now);
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
            Ok(true)
        }
        Err(e) => Err(format!("read: {e}")),
    }
}

fn run(a: &Args) -> Result<(), String> {
    let frames = std::fs::read(&a.frames).map_err(|e| format!("{}: {e}", a.frames))?;
    let off = offsets(&frames)?;
    let total = off.len() - 1;
    let schedule = Schedule::new(a.rate, total);
    let mut m = Matcher::new(schedule, a.warmup);
    let mut sock =
        TcpStream::connect((a.host.as_str(), a.port)).map_err(|e| format!("connect: {e}"))?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut logon = Vec::new();
    encode_logon(a.account, &a.token, &mut logon);
    sock.write_all(&logon).map_err(|e| format!("logon: {e}"))?;
    let (mut buf, mut pending, mut records) = (vec![0u8; 1 << 16], Vec::new(), Vec::new());
    let start = Instant::now();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    while !m.logged_on() {
        if !pump(
            &mut sock,
            &mut buf,
            &mut pending,
            &mut records,
            &mut m,
            start,
        )? {
            return Err("connection closed before the logon ack".into());
        }
        if start.elapsed() > Duration::from_secs(10) {
            return Err("no logon ack in 10 s".into());
        }
    }
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (mut written, mut progress, mut last_answered) = (0usize, Instant::now(), 0usize);
    while !m.done() {
        let target = off[schedule.due(t0.elapsed().as_nanos() as u64)];
        if target > written {
            match sock.write(frames.get(written..target).unwrap_or_default()) {
                Ok(n) => written += n,
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("write: {e}")),
            }
        }
        if !pump(&mut sock, &mut buf, &mut pending, &mut records, &mut m, t0)? {
            return Err(format!(
                "connection closed after {} of {total} answers",
                m.answered()
            ));
        }
        if m.answered() != last_answered {
            (last_answered, progress) = (m.answered(), Instant::now());
        } else if progress.elapsed() > STALL {
            return Err(format!(
                "no answer for {STALL:?} after {} of {total}",
                m.answered()
            ));
        }
    }
    let send_s = t0.elapsed().as_secs_f64();
    let mut out = Vec::with_capacity(m.latencies().len() * 8);
    for v in m.latencies() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&a.out, out).map_err(|e| format!("{}: {e}", a.out))?;
    println!(
        "{{\"commands\": {total}, \"measured\": {}, \"seconds\": {send_s}}}",
        m.latencies().len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("cift-load: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cift-load: {e}");
            ExitCode::FAILURE
        }
    }
}
