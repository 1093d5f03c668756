//! `cift-floor [PORT]`: the machine's latency floor for `perf.tcp --floor`.
//!
//! Listens on 127.0.0.1:PORT (0 or none: any free port), prints `PORT <n>` on stdout, serves one
//! connection with `FloorResponder` (one blocking read, one write of every reply it completes;
//! TCP_NODELAY), and exits when the client closes it. See native/src/wire/floor.rs.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use cift_native::wire::floor::FloorResponder;

fn serve(port: u16) -> std::io::Result<u64> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "PORT {}", listener.local_addr()?.port())?;
    stdout.flush()?;
    let (mut sock, _) = listener.accept()?;
    sock.set_nodelay(true)?;
    let mut responder = FloorResponder::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::with_capacity(1 << 16);
    loop {
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Ok(responder.frames());
        }
        out.clear();
        let data = buf.get(..n).unwrap_or_default();
        responder
            .on_read(data, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        if !out.is_empty() {
            sock.write_all(&out)?;
        }
    }
}

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|a| a.parse::<u16>()) {
        None => 0,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("cift-floor: bad port: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(port) {
        Ok(frames) => {
            eprintln!("cift-floor: {frames} frames answered");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cift-floor: {e}");
            ExitCode::FAILURE
        }
    }
}
