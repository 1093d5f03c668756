//! PyO3 binding of the write-ahead journal (`crate::journal`). File I/O and fsync run with the
//! GIL released, so the persistence actor can call them from a worker thread.

use crate::journal::{self, JournalError, TailState};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::path::PathBuf;

pyo3::create_exception!(
    _native,
    JournalCorrupt,
    PyException,
    "The journal cannot be read safely."
);

pub(crate) fn journal_error(e: JournalError) -> PyErr {
    JournalCorrupt::new_err(e.to_string())
}

/// Appends group-committed records to a journal directory.
#[pyclass(module = "engine._native")]
pub struct JournalWriter {
    pub(crate) inner: journal::JournalWriter,
}

#[pymethods]
impl JournalWriter {
    #[new]
    fn new(py: Python<'_>, dir: PathBuf, roll_bytes: u64, next_seq: u64) -> PyResult<Self> {
        let inner = py
            .allow_threads(|| journal::JournalWriter::open(&dir, roll_bytes, next_seq))
            .map_err(journal_error)?;
        Ok(JournalWriter { inner })
    }

    /// Append one record and, if `sync`, make it durable before returning (GIL released).
    #[pyo3(signature = (kind, first_seq, count, payload, sync))]
    fn append(
        &mut self,
        py: Python<'_>,
        kind: u16,
        first_seq: u64,
        count: u32,
        payload: &[u8],
        sync: bool,
    ) -> PyResult<()> {
        let w = &mut self.inner;
        py.allow_threads(|| {
            w.append(kind, first_seq, count, payload)?;
            if sync {
                w.sync()?;
            }
            Ok(())
        })
        .map_err(journal_error)
    }

    /// fdatasync what was appended since the last sync; False if nothing needed it.
    fn sync(&mut self, py: Python<'_>) -> PyResult<bool> {
        let w = &mut self.inner;
        py.allow_threads(|| w.sync()).map_err(journal_error)
    }

    #[getter]
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.current_path().to_path_buf()
    }
}

/// Verify a journal directory. Returns a dict: files, records, commands, bytes, first_seq
/// (None if empty), next_seq, torn (None, or a dict with path, offset, bytes).
/// Raises JournalCorrupt for corruption that is not a torn tail.
#[pyfunction]
fn journal_scan(py: Python<'_>, dir: PathBuf) -> PyResult<Py<PyDict>> {
    let r = py
        .allow_threads(|| journal::scan(&dir))
        .map_err(journal_error)?;
    let d = PyDict::new(py);
    d.set_item("files", r.files)?;
    d.set_item("records", r.records)?;
    d.set_item("commands", r.commands)?;
    d.set_item("bytes", r.bytes)?;
    d.set_item("first_seq", r.first_seq)?;
    d.set_item("next_seq", r.next_seq)?;
    match &r.tail {
        TailState::Clean => d.set_item("torn", py.None())?,
        TailState::Torn {
            path,
            offset,
            bytes,
        } => {
            let t = PyDict::new(py);
            t.set_item("path", path)?;
            t.set_item("offset", offset)?;
            t.set_item("bytes", bytes)?;
            d.set_item("torn", t)?;
        }
    }
    Ok(d.unbind())
}

/// Verify the journal and cut a torn tail off it. Returns the scan dict from before the cut.
#[pyfunction]
fn journal_recover(py: Python<'_>, dir: PathBuf) -> PyResult<Py<PyDict>> {
    let report = journal_scan(py, dir.clone())?;
    py.allow_threads(|| {
        let r = journal::scan(&dir)?;
        journal::truncate_tail(&r.tail)
    })
    .map_err(journal_error)?;
    Ok(report)
}

/// One record as Python sees it: (kind, first_seq, count, payload).
type PyRecord = (u16, u64, u32, Py<PyBytes>);

/// Iterates (kind, first_seq, count, payload) records holding sequence numbers >= from_seq.
#[pyclass(module = "engine._native")]
pub struct JournalReader {
    inner: journal::JournalReader,
}

#[pymethods]
impl JournalReader {
    #[new]
    #[pyo3(signature = (dir, from_seq = 0))]
    fn new(dir: PathBuf, from_seq: u64) -> PyResult<Self> {
        Ok(JournalReader {
            inner: journal::JournalReader::open(&dir, from_seq).map_err(journal_error)?,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<PyRecord>> {
        let it = &mut self.inner;
        match py.allow_threads(|| it.next()) {
            None => Ok(None),
            Some(Err(e)) => Err(journal_error(e)),
            Some(Ok(r)) => Ok(Some((
                r.kind,
                r.first_seq,
                r.count,
                PyBytes::new(py, &r.payload).unbind(),
            ))),
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<JournalWriter>()?;
    m.add_class::<JournalReader>()?;
    m.add_function(wrap_pyfunction!(journal_scan, m)?)?;
    m.add_function(wrap_pyfunction!(journal_recover, m)?)?;
    m.add("JournalCorrupt", m.py().get_type::<JournalCorrupt>())?;
    Ok(())
}
