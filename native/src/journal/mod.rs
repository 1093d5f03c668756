//! Write-ahead journal: append-only files of framed, CRC32C-checked records.
//!
//! The journal is payload-agnostic: a record carries a kind, the sequence number of its first
//! command, a command count and opaque payload bytes (the daemon's packed command envelopes). One
//! record is one group-committed batch. Format (little endian), version 1:
//!
//! ```text
//! file   = header record*
//! header = magic "CIFTJNL1" (8) | version u32 | header_len u32 (=32) | first_seq u64
//!          | reserved u32 (=0) | crc32c u32 (of bytes 0..28)
//! record = payload_len u32 | kind u16 | flags u16 | first_seq u64 | count u32
//!          | crc32c u32 (of the 20 header bytes before it, then the payload) | payload
//! ```
//!
//! Files are named `{first_seq:020}.cjl` and roll at a configured size. Sequence numbers are
//! contiguous across records and files: a record's `first_seq` must equal the previous record's
//! `first_seq + count`. See `reader` for how torn tails and corruption are told apart.

mod reader;
mod writer;

pub use reader::{scan, truncate_tail, JournalReader, RecordRef, ScanReport, TailState};
pub use writer::sync_dir;
pub use writer::JournalWriter;

use std::path::{Path, PathBuf};

pub const FILE_MAGIC: &[u8; 8] = b"CIFTJNL1";
pub const FORMAT_VERSION: u32 = 1;
pub const FILE_HEADER_SIZE: usize = 32;
pub const RECORD_HEADER_SIZE: usize = 24;
/// Largest payload accepted by the writer and believed by the reader.
pub const MAX_PAYLOAD: usize = 256 << 20;
pub const FILE_SUFFIX: &str = "cjl";

/// Everything that can go wrong with a journal, as data.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a journal file (bad magic or header checksum)")]
    BadHeader { path: PathBuf },
    #[error("{path}: journal format version {found} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("{path} at byte {offset}: corrupt record in the middle of the journal ({detail}); valid records follow it, so this is not a torn tail")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("{path}: sequence gap: expected first_seq {expected}, found {found}")]
    SequenceGap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte record limit")]
    PayloadTooLarge(usize),
    #[error("append out of sequence: expected first_seq {expected}, got {got}")]
    OutOfSequence { expected: u64, got: u64 },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.{FILE_SUFFIX}")
}

pub(crate) fn file_header(first_seq: u64) -> [u8; FILE_HEADER_SIZE] {
    let mut h = [0u8; FILE_HEADER_SIZE];
    h[0..8].copy_from_slice(FILE_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(FILE_HEADER_SIZE as u32).to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

pub(crate) fn record_header(
    kind: u16,
    flags: u16,
    first_seq: u64,
    count: u32,
    payload: &[u8],
) -> [u8; RECORD_HEADER_SIZE] {
    let mut h = [0u8; RECORD_HEADER_SIZE];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..6].copy_from_slice(&kind.to_le_bytes());
    h[6..8].copy_from_slice(&flags.to_le_bytes());
    h[8..16].copy_from_slice(&first_seq.to_le_bytes());
    h[16..20].copy_from_slice(&count.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[0..20]), payload);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Journal files in `dir`, ordered by their first sequence number.
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut files = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(FILE_SUFFIX) {
            continue;
        }
        let Some(seq) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        files.push((seq, path));
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
