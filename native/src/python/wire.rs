//! PyO3 binding of the wire codec (`crate::wire`), registered from `python/mod.rs`.
//!
//! Batches cross the boundary as `bytes` of fixed-size records (`COMMAND_SIZE`, `EVENT_SIZE`,
//! `JOURNAL_ENTRY_SIZE`, `REPORT_SIZE`) and `u32` symbol-index arrays; never one object per
//! message. Typed stubs: `engine/_native_wire.pyi`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::risk::PyRiskEngine;
use crate::risk::{RiskEngine, RiskReject};
use crate::wire::client::{self, REPORT_SIZE};
use crate::wire::codes::{all_codes, reject_text};
use crate::wire::{
    Control, Decoded, Decoder, Publisher, Sequenced, Sequencer, SymbolRules, SymbolSpec, SymbolsOf,
    ADMIN_SYMBOL, ALL_SYMBOLS, JOURNAL_ENTRY_SIZE, NO_SYMBOL,
};

fn bytes<'py>(py: Python<'py>, b: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, b)
}

/// The gateway's frame decoder, shared by every session.
#[pyclass(name = "WireDecoder", module = "engine._native")]
struct PyWireDecoder {
    inner: Decoder,
    out: Decoded,
}

type DecodeResult<'py> = (
    usize,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Option<PyObject>,
    Option<(u16, String)>,
);

#[pymethods]
impl PyWireDecoder {
    #[new]
    fn new(symbols: Vec<String>, max_frame: usize) -> Self {
        PyWireDecoder {
            inner: Decoder::new(&symbols, max_frame),
            out: Decoded::default(),
        }
    }

    /// Decode the complete frames of `buf` for a session logged on as `account` (0 = not yet);
    /// `admin`: the session may send admin messages (else each gets an AdminReply, 1016).
    /// Returns `(consumed, commands, symbols, rejects, control, error)`: command records with a
    /// u32 symbol index each, gateway `Rejected` event records, the control message the walk
    /// stopped at (`("logon", account, token, version)`, `("heartbeat", id)`,
    /// `("logout", code, text)`) and a framing error `(code, text)` that ends the session.
    #[pyo3(signature = (buf, account, admin = false))]
    fn decode<'py>(
        &mut self,
        py: Python<'py>,
        buf: &[u8],
        account: u64,
        admin: bool,
    ) -> PyResult<DecodeResult<'py>> {
        self.inner.decode_as(buf, account, admin, &mut self.out);
        let o = &mut self.out;
        let control = match o.control.take() {
            None => None,
            Some(Control::Logon {
                account,
                token,
                version,
            }) => Some(
                ("logon", account, token, version)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind(),
            ),
            Some(Control::Heartbeat { id }) => {
                Some(("heartbeat", id).into_pyobject(py)?.into_any().unbind())
            }
            Some(Control::Logout { code, text }) => Some(
                ("logout", code, text)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind(),
            ),
        };
        let error = o.error.map(|e| (e.code().code(), e.to_string()));
        Ok((
            o.consumed,
            bytes(py, &o.commands),
            bytes(py, &o.symbols),
            bytes(py, &o.rejects),
            control,
            error,
        ))
    }

    #[getter]
    fn max_frame(&self) -> usize {
        self.inner.max_frame()
    }

    /// Turn the template fast path for standard-layout trading messages on (the default) or
    /// off (every frame through the full Cap'n Proto reader: same results, slower).
    fn set_fast_path(&mut self, on: bool) {
        self.inner.set_fast_path(on);
    }

    /// Cumulative counters: frames, bytes, messages by type, rejects by code.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("frames", s.frames)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("new_order", s.new_orders)?;
        d.set_item("cancel", s.cancels)?;
        d.set_item("replace", s.replaces)?;
        d.set_item("mass_cancel", s.mass_cancels)?;
        d.set_item("admin", s.admins)?;
        d.set_item("fast_path", s.fast_path)?;
        d.set_item("logon", s.logons)?;
        d.set_item("heartbeat", s.heartbeats)?;
        d.set_item("logout", s.logouts)?;
        d.set_item("frame_errors", s.frame_errors)?;
        let rejects = PyDict::new(py);
        for (code, n) in (1001u16..).zip(s.rejects.iter()) {
            if *n > 0 {
                rejects.set_item(code, *n)?;
            }
        }
        d.set_item("rejects", rejects)?;
        Ok(d)
    }
}

/// The risk actor's batch step: checks, sequence numbers, timestamps, routing.
#[pyclass(name = "Sequencer", module = "engine._native")]
pub(crate) struct PySequencer {
    pub(crate) inner: Sequencer,
    pub(crate) out: Sequenced,
}

type SequenceResult<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyList>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    u64,
    u64,
);

impl PySequencer {
    /// Check, stamp and route one batch into `self.out`, each command that passes the basic
    /// checks also checked by `risk` when given (the risk actor's and the lane's step).
    pub(crate) fn run(
        &mut self,
        commands: &[u8],
        symbols: &[u8],
        now_ns: u64,
        risk: Option<&mut RiskEngine>,
    ) -> PyResult<()> {
        let done = match risk {
            Some(engine) => {
                self.inner
                    .sequence_with(commands, symbols, now_ns, &mut self.out, |sym, cmd| {
                        engine.check(sym, cmd).map_err(RiskReject::code)
                    })
            }
            None => self
                .inner
                .sequence(commands, symbols, now_ns, &mut self.out),
        };
        done.map_err(|e| PyValueError::new_err(e.to_string()))
    }
}

#[pymethods]
impl PySequencer {
    /// `rules`: per symbol index `(tick_size, lot_size, min_price, max_price, reference_price,
    /// band_bps, max_order_qty)`; `next_seq`: the first sequence number to give; `last_ts`:
    /// engine time continues from here (the newest stamp before a restart).
    #[new]
    #[pyo3(signature = (rules, next_seq, last_ts = 0))]
    fn new(
        rules: Vec<(i64, i64, i64, i64, i64, i64, i64)>,
        next_seq: u64,
        last_ts: u64,
    ) -> PyResult<Self> {
        let rules = rules
            .into_iter()
            .map(
                |(
                    tick_size,
                    lot_size,
                    min_price,
                    max_price,
                    reference_price,
                    band_bps,
                    max_order_qty,
                )| {
                    SymbolRules {
                        tick_size,
                        lot_size,
                        min_price,
                        max_price,
                        reference_price,
                        band_bps,
                        max_order_qty,
                    }
                },
            )
            .collect();
        let mut inner =
            Sequencer::new(rules, next_seq).map_err(|e| PyValueError::new_err(e.to_string()))?;
        inner.resume_time(last_ts);
        Ok(PySequencer {
            inner,
            out: Sequenced::default(),
        })
    }

    /// Check, stamp and route one batch at engine time `now_ns`. Returns `(journal, per_symbol,
    /// rejects, reject_symbols, first_seq, last_seq)`: journal entries of the accepted commands,
    /// a list (by symbol index) of command-record bytes or None, risk `Rejected` event records
    /// with a u32 symbol index each, and the range of sequence numbers given (0, 0 if none).
    /// With `risk` (a `RiskEngine` whose symbol ids are the symbol indexes), every command that
    /// passes the basic checks is also checked by it, stamped with the seq and ts it would get;
    /// a refused one is a reject with the engine's code and takes no sequence number.
    #[pyo3(signature = (commands, symbols, now_ns, risk = None))]
    fn sequence<'py>(
        &mut self,
        py: Python<'py>,
        commands: &[u8],
        symbols: &[u8],
        now_ns: u64,
        mut risk: Option<PyRefMut<'py, PyRiskEngine>>,
    ) -> PyResult<SequenceResult<'py>> {
        self.run(
            commands,
            symbols,
            now_ns,
            risk.as_mut().map(|r| &mut r.engine),
        )?;
        let o = &self.out;
        let per_symbol = PyList::empty(py);
        for b in &o.per_symbol {
            if b.is_empty() {
                per_symbol.append(py.None())?;
            } else {
                per_symbol.append(bytes(py, b))?;
            }
        }
        Ok((
            bytes(py, &o.journal),
            per_symbol,
            bytes(py, &o.rejects),
            bytes(py, &o.reject_symbols),
            o.first_seq,
            o.last_seq,
        ))
    }

    #[getter]
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    /// The newest engine time stamped (0 before the first batch unless resumed).
    #[getter]
    fn last_ts(&self) -> u64 {
        self.inner.last_ts()
    }

    /// Cumulative counters: sequenced, batches, rejects by code.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("sequenced", s.sequenced)?;
        d.set_item("batches", s.batches)?;
        let rejects = PyDict::new(py);
        for (code, n) in s.rejects() {
            rejects.set_item(code, n)?;
        }
        d.set_item("rejects", rejects)?;
        Ok(d)
    }
}

/// Event records -> per-session reply frames; owns routing and output sequence numbers.
#[pyclass(name = "Publisher", module = "engine._native")]
pub(crate) struct PyPublisher {
    pub(crate) inner: Publisher,
}

#[pymethods]
impl PyPublisher {
    /// `symbols`: per symbol index `(name, tick_size, lot_size, price_precision, min_price,
    /// max_price, max_order_qty)`, told to sessions at logon.
    #[new]
    fn new(symbols: Vec<(String, i64, i64, u8, i64, i64, i64)>) -> Self {
        let specs = symbols
            .into_iter()
            .map(
                |(
                    name,
                    tick_size,
                    lot_size,
                    price_precision,
                    min_price,
                    max_price,
                    max_order_qty,
                )| SymbolSpec {
                    name,
                    tick_size,
                    lot_size,
                    price_precision,
                    min_price,
                    max_price,
                    max_order_qty,
                },
            )
            .collect();
        PyPublisher {
            inner: Publisher::new(specs),
        }
    }

    fn open_session(&mut self, sid: u64) {
        self.inner.open_session(sid);
    }

    /// Route `account`'s reports to `sid`; False if another session holds the account.
    fn bind(&mut self, sid: u64, account: u64) -> bool {
        self.inner.bind(sid, account)
    }

    fn session_of(&self, account: u64) -> Option<u64> {
        self.inner.session_of(account)
    }

    fn close_session(&mut self, sid: u64) {
        self.inner.close_session(sid);
    }

    #[getter]
    fn session_count(&self) -> usize {
        self.inner.session_count()
    }

    /// Add reports for `events` (all of symbol index `symbol`), routed by account.
    fn add_events(&mut self, events: &[u8], symbol: u32) {
        self.inner.add_events(events, SymbolsOf::One(symbol));
    }

    /// Add reports for `events` with one u32 symbol index per event in `symbols`.
    fn add_events_each(&mut self, events: &[u8], symbols: &[u8]) {
        self.inner.add_events(events, SymbolsOf::Each(symbols));
    }

    /// Add reports for `events` (gateway rejects) to session `sid` whatever their account.
    fn add_for_session(&mut self, sid: u64, events: &[u8]) {
        self.inner.add_for_session(sid, events);
    }

    /// A reject with `code` for a session-level request (e.g. a second logon).
    fn add_reject(&mut self, sid: u64, code: u16) {
        self.inner.add_reject(sid, code);
    }

    fn add_logon_ack(&mut self, sid: u64, account: u64, idle_timeout_ms: u32) {
        self.inner.add_logon_ack(sid, account, idle_timeout_ms);
    }

    fn add_heartbeat(&mut self, sid: u64, id: u64) {
        self.inner.add_heartbeat(sid, id);
    }

    fn add_logout(&mut self, sid: u64, code: u16, text: &str) {
        self.inner.add_logout(sid, code, text);
    }

    /// Take every session's pending frames: `[(sid, bytes), ...]`, one entry per session.
    fn drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        let mut result = Ok(());
        self.inner.drain(|sid, b| {
            if result.is_ok() {
                result = list.append((sid, bytes(py, b)));
            }
        });
        result.map(|()| list)
    }

    /// Cumulative counters: reports by type, levels skipped, unroutable, bytes, and `rejects`:
    /// every reject (gateway, risk, book) by code.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        for (k, v) in [
            ("ack", s.acks),
            ("reject", s.rejects),
            ("fill", s.fills),
            ("cancelled", s.cancels),
            ("replaced", s.replaces),
            ("triggered", s.triggers),
            ("logon_ack", s.logon_acks),
            ("heartbeat", s.heartbeats),
            ("logout", s.logouts),
            ("admin_reply", s.admin_replies),
            ("levels", s.levels),
            ("unroutable", s.unroutable),
            ("bytes", s.bytes),
        ] {
            d.set_item(k, v)?;
        }
        let rejects = PyDict::new(py);
        for (code, n) in self.inner.reject_counts() {
            rejects.set_item(code, n)?;
        }
        d.set_item("rejects", rejects)?;
        Ok(d)
    }
}

/// Request frames for command records (New, Cancel, Amend, MassCancel), each for symbol
/// `names[symbols[i]]` (symbols: one u32 index per record). For tools and benchmarks.
#[pyfunction]
fn encode_requests<'py>(
    py: Python<'py>,
    commands: &[u8],
    symbols: &[u8],
    names: Vec<String>,
) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(commands.len() * 2);
    client::encode_requests(commands, symbols, &names, &mut out);
    bytes(py, &out)
}

/// A logon request frame.
#[pyfunction]
fn encode_logon<'py>(py: Python<'py>, account: u64, token: &str) -> Bound<'py, PyBytes> {
    let mut out = Vec::new();
    client::encode_logon(account, token, &mut out);
    bytes(py, &out)
}

/// A heartbeat request frame.
#[pyfunction]
fn encode_heartbeat(py: Python<'_>, id: u64) -> Bound<'_, PyBytes> {
    let mut out = Vec::new();
    client::encode_heartbeat(id, &mut out);
    bytes(py, &out)
}

/// Decode the complete reply frames of `buf` into `REPORT_SIZE` records: `(consumed, records)`.
/// A framing error raises ValueError.
#[pyfunction]
fn decode_replies<'py>(
    py: Python<'py>,
    buf: &[u8],
    max_frame: usize,
) -> PyResult<(usize, Bound<'py, PyBytes>)> {
    let mut out = Vec::new();
    let consumed = client::decode_replies(buf, max_frame, &mut out)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((consumed, bytes(py, &out)))
}

/// Every reject/disconnect code of every stage: `[(code, stage, text), ...]` in code order.
#[pyfunction]
fn wire_codes() -> Vec<(u16, &'static str, String)> {
    all_codes()
}

/// Text of any code of any stage (gateway, risk, book), None if unknown.
#[pyfunction]
fn code_text(code: u16) -> Option<String> {
    reject_text(code)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWireDecoder>()?;
    m.add_class::<PySequencer>()?;
    m.add_class::<PyPublisher>()?;
    m.add_function(wrap_pyfunction!(encode_requests, m)?)?;
    m.add_function(wrap_pyfunction!(encode_logon, m)?)?;
    m.add_function(wrap_pyfunction!(encode_heartbeat, m)?)?;
    m.add_function(wrap_pyfunction!(decode_replies, m)?)?;
    m.add_function(wrap_pyfunction!(wire_codes, m)?)?;
    m.add_function(wrap_pyfunction!(code_text, m)?)?;
    m.add("NO_SYMBOL", NO_SYMBOL)?;
    m.add("ALL_SYMBOLS", ALL_SYMBOLS)?;
    m.add("ADMIN_SYMBOL", ADMIN_SYMBOL)?;
    m.add("JOURNAL_ENTRY_SIZE", JOURNAL_ENTRY_SIZE)?;
    m.add("REPORT_SIZE", REPORT_SIZE)?;
    Ok(())
}
