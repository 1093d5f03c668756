//! Reading and verifying the journal.
//!
//! Torn tail versus corruption: a crash can leave the last record of the last file partly
//! written (it was never acknowledged, because acks wait for the fsync that covers them). So an
//! invalid record in the **last** file, with no valid record anywhere after it, is a torn tail: it
//! is reported and may be truncated. An invalid record that is followed by a valid one, or that
//! sits in any file but the last, is corruption in the middle: recovery stops with an error.

use super::{
    io_err, list_files, JournalError, FILE_HEADER_SIZE, FILE_MAGIC, FORMAT_VERSION, MAX_PAYLOAD,
    RECORD_HEADER_SIZE,
};
use std::path::{Path, PathBuf};

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef {
    pub kind: u16,
    pub first_seq: u64,
    pub count: u32,
    pub payload: Vec<u8>,
}

/// What lies after the last valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailState {
    Clean,
    /// The last file has `bytes` invalid bytes from `offset` on (a torn, never-acknowledged write).
    Torn {
        path: PathBuf,
        offset: u64,
        bytes: u64,
    },
}

/// Summary of a verified journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub files: usize,
    pub records: u64,
    pub commands: u64,
    pub bytes: u64,
    /// First sequence number held (None for an empty journal).
    pub first_seq: Option<u64>,
    /// Sequence number the next record must start with (0 for an empty journal).
    pub next_seq: u64,
    pub tail: TailState,
}

struct FileScan {
    records: Vec<RecordRef>,
    tail: TailState,
    next_seq: u64,
}

fn parse_header(path: &Path, b: &[u8]) -> Result<u64, JournalError> {
    if b.len() < FILE_HEADER_SIZE || &b[0..8] != FILE_MAGIC {
        return Err(JournalError::BadHeader {
            path: path.to_path_buf(),
        });
    }
    let crc = u32::from_le_bytes([b[28], b[29], b[30], b[31]]);
    if crc32c::crc32c(&b[0..28]) != crc {
        return Err(JournalError::BadHeader {
            path: path.to_path_buf(),
        });
    }
    let version = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    if version != FORMAT_VERSION {
        return Err(JournalError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
        });
    }
    Ok(u64::from_le_bytes([
        b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23],
    ]))
}

/// Try to read a valid record at `off`; `None` if the bytes there are not one.
fn record_at(b: &[u8], off: usize) -> Option<(RecordRef, usize)> {
    let h = b.get(off..off.checked_add(RECORD_HEADER_SIZE)?)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let end = off + RECORD_HEADER_SIZE + len;
    let payload = b.get(off + RECORD_HEADER_SIZE..end)?;
    let crc = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if crc32c::crc32c_append(crc32c::crc32c(&h[0..20]), payload) != crc {
        return None;
    }
    let rec = RecordRef {
        kind: u16::from_le_bytes([h[4], h[5]]),
        first_seq: u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
        count: u32::from_le_bytes([h[16], h[17], h[18], h[19]]),
        payload: payload.to_vec(),
    };
    Some((rec, end))
}

fn scan_file(path: &Path, expected: Option<u64>, is_last: bool) -> Result<FileScan, JournalError> {
    let b = std::fs::read(path).map_err(io_err(path))?;
    if is_last && b.len() < FILE_HEADER_SIZE {
        // The header itself never reached the disk: an empty torn file.
        return Ok(FileScan {
            records: Vec::new(),
            tail: TailState::Torn {
                path: path.to_path_buf(),
                offset: 0,
                bytes: b.len() as u64,
            },
            next_seq: expected.unwrap_or(0),
        });
    }
    let first = parse_header(path, &b)?;
    if let Some(exp) = expected {
        if first != exp {
            return Err(JournalError::SequenceGap {
                path: path.to_path_buf(),
                expected: exp,
                found: first,
            });
        }
    }
    let mut next = first;
    let mut off = FILE_HEADER_SIZE;
    let mut records = Vec::new();
    while off < b.len() {
        match record_at(&b, off) {
            Some((rec, end)) => {
                if rec.first_seq != next {
                    return Err(JournalError::SequenceGap {
                        path: path.to_path_buf(),
                        expected: next,
                        found: rec.first_seq,
                    });
                }
                next = rec.first_seq + u64::from(rec.count);
                records.push(rec);
                off = end;
            }
            None => {
                let later_valid = (off + 1..b.len())
                    .any(|q| record_at(&b, q).is_some_and(|(r, _)| r.first_seq >= next));
                if !is_last || later_valid {
                    let detail = if later_valid {
                        "bad checksum or length"
                    } else {
                        "invalid record before the last file"
                    };
                    return Err(JournalError::Corrupt {
                        path: path.to_path_buf(),
                        offset: off as u64,
                        detail: detail.into(),
                    });
                }
                let tail = TailState::Torn {
                    path: path.to_path_buf(),
                    offset: off as u64,
                    bytes: (b.len() - off) as u64,
                };
                return Ok(FileScan {
                    records,
                    tail,
                    next_seq: next,
                });
            }
        }
    }
    Ok(FileScan {
        records,
        tail: TailState::Clean,
        next_seq: next,
    })
}

/// Verify the whole journal in `dir`: headers, checksums, sequence continuity, tail state.
pub fn scan(dir: &Path) -> Result<ScanReport, JournalError> {
    let files = list_files(dir)?;
    let mut report = ScanReport {
        files: files.len(),
        records: 0,
        commands: 0,
        bytes: 0,
        first_seq: None,
        next_seq: 0,
        tail: TailState::Clean,
    };
    let mut expected = None;
    for (i, (_, path)) in files.iter().enumerate() {
        let is_last = i + 1 == files.len();
        let fs = scan_file(path, expected, is_last)?;
        report.bytes += std::fs::metadata(path).map_err(io_err(path))?.len();
        if report.first_seq.is_none() {
            report.first_seq = fs.records.first().map(|r| r.first_seq);
        }
        report.records += fs.records.len() as u64;
        report.commands += fs.records.iter().map(|r| u64::from(r.count)).sum::<u64>();
        report.next_seq = fs.next_seq;
        report.tail = fs.tail;
        expected = Some(fs.next_seq);
    }
    Ok(report)
}

/// Cut a torn tail off (after `scan` reported it). Durable when this returns.
pub fn truncate_tail(tail: &TailState) -> Result<(), JournalError> {
    if let TailState::Torn { path, offset, .. } = tail {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        if *offset == 0 {
            drop(f);
            std::fs::remove_file(path).map_err(io_err(path))?;
        } else {
            f.set_len(*offset).map_err(io_err(path))?;
            f.sync_all().map_err(io_err(path))?;
        }
    }
    Ok(())
}

/// Reads records in order, file by file, starting with the first record that holds a sequence
/// number `>= from_seq`. Stops at a torn tail (use `scan` to learn about it).
pub struct JournalReader {
    files: Vec<PathBuf>,
    next_file: usize,
    from_seq: u64,
    expected: Option<u64>,
    pending: std::vec::IntoIter<RecordRef>,
}

impl JournalReader {
    pub fn open(dir: &Path, from_seq: u64) -> Result<JournalReader, JournalError> {
        let files: Vec<(u64, PathBuf)> = list_files(dir)?;
        // Skip whole files that end before from_seq: a file ends where the next one begins.
        let mut start = 0;
        for i in 0..files.len() {
            if let Some((next_first, _)) = files.get(i + 1) {
                if *next_first <= from_seq {
                    start = i + 1;
                }
            }
        }
        Ok(JournalReader {
            files: files.into_iter().skip(start).map(|(_, p)| p).collect(),
            next_file: 0,
            from_seq,
            expected: None,
            pending: Vec::new().into_iter(),
        })
    }
}

impl Iterator for JournalReader {
    type Item = Result<RecordRef, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(rec) = self.pending.next() {
                if rec.first_seq + u64::from(rec.count) <= self.from_seq && rec.count > 0 {
                    continue;
                }
                return Some(Ok(rec));
            }
            let path = self.files.get(self.next_file)?.clone();
            let is_last = self.next_file + 1 == self.files.len();
            self.next_file += 1;
            match scan_file(&path, self.expected, is_last) {
                Ok(fs) => {
                    self.expected = Some(fs.next_seq);
                    self.pending = fs.records.into_iter();
                }
                Err(e) => {
                    self.next_file = self.files.len();
                    return Some(Err(e));
                }
            }
        }
    }
}
