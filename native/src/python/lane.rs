//! The daemon's lane: a lone read's whole pipeline in one call, when every stage is idle.
//!
//! At low load a read holds one or a few commands and every actor is idle, so the actors run
//! to completion on one call stack anyway (actors/base.py `submit`): risk sequences, persistence
//! appends, each touched book matches and feeds the risk engine, publishing encodes. Done
//! through Python that is ~40 interpreter calls per read; this does the same steps on the same
//! native objects (the actors' own `Sequencer`, `RiskEngine`, `JournalWriter`, `Book`s and
//! `Publisher`) in one call, in the same order, so the state, the journal and every reply byte
//! are identical (tests/test_lane.py compares both paths byte for byte). Python keeps what the
//! actors account for (counters, durability marks, listeners): actors/lane.py. It is used only
//! when that is exactly what the actors would do: every stage idle, the journal policy `none`
//! (a reply needs only the append), nothing waiting anywhere.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use super::journal::{journal_error, JournalWriter};
use super::risk::PyRiskEngine;
use super::wire::{PyPublisher, PySequencer};
use super::PyBook;
use crate::types::{COMMAND_SIZE, EVENT_SIZE};
use crate::wire::{SymbolsOf, JOURNAL_ENTRY_SIZE};

/// `(first_seq, last_seq, books, rejects, reject_symbols)`: the sequence numbers given (0, 0 if
/// none); per touched symbol `(index, commands, events)` with the event records as bytes when
/// `keep`, else their count; the risk rejects (event records, u32 symbol indexes) when `keep`,
/// else their count and None.
type LaneOut<'py> = (
    u64,
    u64,
    Bound<'py, PyList>,
    Bound<'py, PyAny>,
    Option<Bound<'py, PyBytes>>,
    Option<Bound<'py, PyBytes>>,
);

#[pyclass(name = "Lane", module = "engine._native")]
pub(crate) struct PyLane {
    sequencer: Py<PySequencer>,
    risk: Option<Py<PyRiskEngine>>,
    journal: Py<JournalWriter>,
    journal_kind: u16,
    books: Vec<Py<PyBook>>,
    publisher: Py<PyPublisher>,
}

#[pymethods]
impl PyLane {
    /// The stages' native objects; `books` by symbol index; `journal_kind`: the record kind of
    /// command batches.
    #[new]
    #[pyo3(signature = (sequencer, risk, journal, journal_kind, books, publisher))]
    fn new(
        sequencer: Py<PySequencer>,
        risk: Option<Py<PyRiskEngine>>,
        journal: Py<JournalWriter>,
        journal_kind: u16,
        books: Vec<Py<PyBook>>,
        publisher: Py<PyPublisher>,
    ) -> PyLane {
        PyLane {
            sequencer,
            risk,
            journal,
            journal_kind,
            books,
            publisher,
        }
    }

    /// Sequence `commands` (u32 `symbols` beside them) at engine time `now_ns`, append the
    /// accepted ones to the journal, apply them to their books (events fed to the risk engine),
    /// and add every report to the publisher (books in symbol order, then risk rejects), as the
    /// actors do. A journal error is raised after sequencing (the daemon stops: fail fast).
    /// `direct` false (a reply must wait for an fsync): no append and no reports here; the
    /// journal entries come back (last item) for the persistence actor and the events (as with
    /// `keep`) for the publishing actor, which hold them as they would the actors'.
    #[pyo3(signature = (commands, symbols, now_ns, keep, direct = true))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        commands: &[u8],
        symbols: &[u8],
        now_ns: u64,
        keep: bool,
        direct: bool,
    ) -> PyResult<LaneOut<'py>> {
        let keep = keep || !direct;
        let mut seq = self.sequencer.borrow_mut(py);
        let seq = &mut *seq;
        let mut risk = self.risk.as_ref().map(|r| r.borrow_mut(py));
        seq.run(
            commands,
            symbols,
            now_ns,
            risk.as_mut().map(|r| &mut r.engine),
        )?;
        let out = &seq.out;
        if direct && !out.journal.is_empty() {
            let count = u32::try_from(out.journal.len() / JOURNAL_ENTRY_SIZE)
                .map_err(|_| PyValueError::new_err("batch too large for one journal record"))?;
            self.journal
                .borrow_mut(py)
                .inner
                .append(self.journal_kind, out.first_seq, count, &out.journal)
                .map_err(journal_error)?;
        }
        let mut publisher = self.publisher.borrow_mut(py);
        let touched = PyList::empty(py);
        for (index, records) in out.per_symbol.iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let book = self
                .books
                .get(index)
                .ok_or_else(|| PyValueError::new_err(format!("no book for symbol {index}")))?;
            let mut book = book.borrow_mut(py);
            let PyBook {
                book, out: events, ..
            } = &mut *book;
            events.clear();
            book.apply_batch(records, events);
            let sym = u32::try_from(index).unwrap_or(u32::MAX);
            if let Some(r) = risk.as_mut() {
                r.engine
                    .on_events(sym, events)
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
            }
            if direct {
                publisher.inner.add_events(events, SymbolsOf::One(sym));
            }
            let n = records.len() / COMMAND_SIZE;
            if keep {
                touched.append((index, n, PyBytes::new(py, events)))?;
            } else {
                touched.append((index, n, events.len() / EVENT_SIZE))?;
            }
        }
        let (rejects, reject_symbols) = if out.rejects.is_empty() {
            (0usize.into_pyobject(py)?.into_any(), None)
        } else {
            if direct {
                publisher
                    .inner
                    .add_events(&out.rejects, SymbolsOf::Each(&out.reject_symbols));
            }
            if keep {
                (
                    PyBytes::new(py, &out.rejects).into_any(),
                    Some(PyBytes::new(py, &out.reject_symbols)),
                )
            } else {
                (
                    (out.rejects.len() / EVENT_SIZE)
                        .into_pyobject(py)?
                        .into_any(),
                    None,
                )
            }
        };
        let journal = (!direct && !out.journal.is_empty()).then(|| PyBytes::new(py, &out.journal));
        Ok((
            out.first_seq,
            out.last_seq,
            touched,
            rejects,
            reject_symbols,
            journal,
        ))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLane>()
}
