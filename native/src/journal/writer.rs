//! Appending to the journal: one `append` per group-committed batch, `sync` per fsync policy.

use super::{
    file_header, file_name, io_err, list_files, record_header, JournalError, FILE_HEADER_SIZE,
    MAX_PAYLOAD,
};
use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Appends records to the newest journal file of a directory, rolling to a new file once the
/// current one reaches `roll_bytes`. Open it only after recovery has scanned the journal and
/// truncated any torn tail (`scan` + `TailState`), so appends continue a valid file.
pub struct JournalWriter {
    dir: PathBuf,
    roll_bytes: u64,
    file: File,
    path: PathBuf,
    size: u64,
    next_seq: u64,
    /// Bytes written since the last sync.
    dirty: bool,
}

impl JournalWriter {
    /// Open `dir` for appending; the next record must start at `next_seq`.
    pub fn open(dir: &Path, roll_bytes: u64, next_seq: u64) -> Result<JournalWriter, JournalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let files = list_files(dir)?;
        match files.last() {
            Some((_, path)) => {
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                let size = file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
                let mut w = JournalWriter {
                    dir: dir.to_path_buf(),
                    roll_bytes,
                    file,
                    path: path.clone(),
                    size,
                    next_seq,
                    dirty: false,
                };
                if size < FILE_HEADER_SIZE as u64 {
                    // A file whose header never made it to disk holds nothing: start it again.
                    w.file.set_len(0).map_err(io_err(path))?;
                    w.file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
                    w.file
                        .write_all(&file_header(next_seq))
                        .map_err(io_err(path))?;
                    w.size = FILE_HEADER_SIZE as u64;
                    w.file.sync_data().map_err(io_err(path))?;
                }
                Ok(w)
            }
            None => {
                let (file, path) = create_file(dir, next_seq)?;
                Ok(JournalWriter {
                    dir: dir.to_path_buf(),
                    roll_bytes,
                    file,
                    path,
                    size: FILE_HEADER_SIZE as u64,
                    next_seq,
                    dirty: false,
                })
            }
        }
    }

    /// Sequence number the next record must start with.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Path of the file being appended to.
    pub fn current_path(&self) -> &Path {
        &self.path
    }

    /// Append one record (written to the OS, not yet durable: call `sync`).
    pub fn append(
        &mut self,
        kind: u16,
        first_seq: u64,
        count: u32,
        payload: &[u8],
    ) -> Result<(), JournalError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(JournalError::PayloadTooLarge(payload.len()));
        }
        if first_seq != self.next_seq {
            return Err(JournalError::OutOfSequence {
                expected: self.next_seq,
                got: first_seq,
            });
        }
        if self.size >= self.roll_bytes && self.size > FILE_HEADER_SIZE as u64 {
            self.roll()?;
        }
        let header = record_header(kind, 0, first_seq, count, payload);
        // One writev of header + payload: no copy of the payload into a buffer of ours.
        write_both(&mut self.file, &header, payload).map_err(io_err(&self.path))?;
        self.size += (header.len() + payload.len()) as u64;
        self.next_seq = first_seq + u64::from(count);
        self.dirty = true;
        Ok(())
    }

    /// Make everything appended so far durable (fdatasync). Returns whether a sync was needed.
    pub fn sync(&mut self) -> Result<bool, JournalError> {
        if !self.dirty {
            return Ok(false);
        }
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.dirty = false;
        Ok(true)
    }

    fn roll(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(io_err(&self.path))?;
        let (file, path) = create_file(&self.dir, self.next_seq)?;
        self.file = file;
        self.path = path;
        self.size = FILE_HEADER_SIZE as u64;
        self.dirty = false;
        Ok(())
    }
}

/// Create a journal file with its header, durable together with its directory entry.
fn create_file(dir: &Path, first_seq: u64) -> Result<(File, PathBuf), JournalError> {
    let path = dir.join(file_name(first_seq));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    file.write_all(&file_header(first_seq))
        .map_err(io_err(&path))?;
    file.sync_data().map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok((file, path))
}

/// fsync a directory so that a new or renamed entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Write all of `a` then all of `b` (vectored; partial writes continue where they stopped).
fn write_both(file: &mut File, a: &[u8], b: &[u8]) -> std::io::Result<()> {
    let mut done = 0usize;
    let total = a.len() + b.len();
    while done < total {
        let n = if done < a.len() {
            file.write_vectored(&[IoSlice::new(&a[done..]), IoSlice::new(b)])?
        } else {
            file.write(&b[done - a.len()..])?
        };
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
        }
        done += n;
    }
    Ok(())
}
