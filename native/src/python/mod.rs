//! PyO3 binding, built by maturin as `engine._native` (feature `python`).
//!
//! The primary interface is `Book.apply(records) -> records`: many command records in, all event
//! records out, matching with the GIL released. Everything else (queries, snapshots, the synthetic
//! flow) is for tools, tests and the book actor's slow paths. Bad arguments from Python are
//! `ValueError`/`TypeError`; a rejected order is an event, not an exception.

mod journal;
mod lane;
mod risk;
mod sinks;
mod wire;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::book::Book;
use crate::synth::{synthetic_flow, Mix, SynthConfig};
use crate::types::{BookConfig, BookReject, OrderBook, OrderView, Side, COMMAND_SIZE, EVENT_SIZE};

/// The fast order book of one symbol.
#[pyclass(name = "Book", module = "engine._native")]
struct PyBook {
    book: Book,
    /// Event records of the last `apply`, reused so that steady-state calls do not allocate.
    out: Vec<u8>,
    /// Copy of a mutable input buffer (bytearray, memoryview) taken before the GIL is released.
    scratch: Vec<u8>,
}

impl PyBook {
    fn wrap(book: Book) -> PyBook {
        PyBook {
            book,
            out: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

/// One resting or stop order, as returned by `Book.order`, `level_orders` and `stop_orders`.
#[pyclass(
    name = "OrderInfo",
    module = "engine._native",
    frozen,
    eq,
    hash,
    get_all
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct PyOrderInfo {
    order_id: u64,
    account: u64,
    client_id: u64,
    side: u8,
    ord_type: u8,
    tif: u8,
    price: i64,
    stop_price: i64,
    visible: i64,
    hidden: i64,
    display_qty: i64,
    filled: i64,
    expire_ts: u64,
    is_stop: bool,
}

impl From<OrderView> for PyOrderInfo {
    fn from(o: OrderView) -> Self {
        PyOrderInfo {
            order_id: o.order_id,
            account: o.account,
            client_id: o.client_id,
            side: o.side as u8,
            ord_type: o.ord_type as u8,
            tif: o.tif as u8,
            price: o.price,
            stop_price: o.stop_price,
            visible: o.visible,
            hidden: o.hidden,
            display_qty: o.display_qty,
            filled: o.filled,
            expire_ts: o.expire_ts,
            is_stop: o.is_stop,
        }
    }
}

#[pymethods]
impl PyOrderInfo {
    /// Open quantity: visible plus iceberg reserve.
    #[getter]
    fn open(&self) -> i64 {
        self.visible + self.hidden
    }

    fn __repr__(&self) -> String {
        format!(
            "OrderInfo(order_id={}, account={}, client_id={}, side={}, ord_type={}, tif={}, \
             price={}, stop_price={}, visible={}, hidden={}, display_qty={}, filled={}, \
             expire_ts={}, is_stop={})",
            self.order_id,
            self.account,
            self.client_id,
            self.side,
            self.ord_type,
            self.tif,
            self.price,
            self.stop_price,
            self.visible,
            self.hidden,
            self.display_qty,
            self.filled,
            self.expire_ts,
            if self.is_stop { "True" } else { "False" },
        )
    }
}

type LevelTuple = (i64, i64, u32);

fn side_arg(side: i64) -> PyResult<Side> {
    u8::try_from(side)
        .ok()
        .and_then(Side::from_u8)
        .ok_or_else(|| PyValueError::new_err("side must be 1 (buy) or 2 (sell)"))
}

fn orders(views: Vec<OrderView>) -> Vec<PyOrderInfo> {
    views.into_iter().map(PyOrderInfo::from).collect()
}

/// The bytes of `obj`: borrowed when it is `bytes` (immutable), else copied into `scratch`,
/// because a bytearray or memoryview may be written by another thread once the GIL is released.
pub(crate) fn input_bytes<'a>(
    obj: &'a Bound<'_, PyAny>,
    scratch: &'a mut Vec<u8>,
) -> PyResult<&'a [u8]> {
    if let Ok(b) = obj.downcast::<PyBytes>() {
        return Ok(b.as_bytes());
    }
    let buf = PyBuffer::<u8>::get(obj)?;
    scratch.clear();
    scratch.resize(buf.len_bytes(), 0);
    buf.copy_to_slice(obj.py(), scratch)?;
    Ok(scratch)
}

#[pymethods]
impl PyBook {
    #[new]
    #[pyo3(signature = (
        min_price = BookConfig::default().min_price,
        max_price = BookConfig::default().max_price,
        max_qty = BookConfig::default().max_qty,
    ))]
    fn new(min_price: i64, max_price: i64, max_qty: i64) -> PyResult<PyBook> {
        if min_price < 1 || max_price < min_price {
            return Err(PyValueError::new_err("need 1 <= min_price <= max_price"));
        }
        if max_qty < 1 {
            return Err(PyValueError::new_err("need max_qty >= 1"));
        }
        Ok(PyBook::wrap(Book::new(BookConfig {
            min_price,
            max_price,
            max_qty,
        })))
    }

    /// Apply command records (a multiple of COMMAND_SIZE bytes); return all event records.
    /// Matching runs with the GIL released; meanwhile another thread's call on this same book
    /// fails with "Already borrowed" (one book has one owner: its actor).
    fn apply<'py>(
        &mut self,
        py: Python<'py>,
        cmds: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let PyBook { book, out, scratch } = self;
        let input = input_bytes(cmds, scratch)?;
        if input.len() % COMMAND_SIZE != 0 {
            return Err(PyValueError::new_err(format!(
                "command buffer length {} is not a multiple of COMMAND_SIZE ({COMMAND_SIZE})",
                input.len()
            )));
        }
        out.clear();
        py.allow_threads(|| book.apply_batch(input, out));
        Ok(PyBytes::new(py, out))
    }

    fn best_bid(&self) -> Option<LevelTuple> {
        self.book.best_bid().map(|l| (l.price, l.qty, l.count))
    }

    fn best_ask(&self) -> Option<LevelTuple> {
        self.book.best_ask().map(|l| (l.price, l.qty, l.count))
    }

    /// Best `n` levels of `side` as (price, visible qty, order count), best first.
    fn depth(&self, side: i64, n: usize) -> PyResult<Vec<LevelTuple>> {
        let levels = self.book.depth(side_arg(side)?, n);
        Ok(levels
            .into_iter()
            .map(|l| (l.price, l.qty, l.count))
            .collect())
    }

    fn level_orders(&self, side: i64, price: i64) -> PyResult<Vec<PyOrderInfo>> {
        Ok(orders(self.book.level_orders(side_arg(side)?, price)))
    }

    fn stop_orders(&self, side: i64) -> PyResult<Vec<PyOrderInfo>> {
        Ok(orders(self.book.stop_orders(side_arg(side)?)))
    }

    fn order(&self, order_id: u64) -> Option<PyOrderInfo> {
        self.book.order(order_id).map(PyOrderInfo::from)
    }

    /// (last_price, volume, notional, trades).
    fn stats(&self) -> (i64, i64, i128, u64) {
        let s = self.book.stats();
        (s.last_price, s.volume, s.notional, s.trades)
    }

    /// Visible quantity over the best `levels` levels: (bid total, ask total).
    fn depth_totals(&self, levels: usize) -> (i64, i64) {
        self.book.depth_totals(levels)
    }

    fn order_count(&self) -> usize {
        self.book.order_count()
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.book.snapshot())
    }

    #[staticmethod]
    fn restore(data: &Bound<'_, PyAny>) -> PyResult<PyBook> {
        let mut scratch = Vec::new();
        let bytes = input_bytes(data, &mut scratch)?;
        let book = Book::restore(bytes).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyBook::wrap(book))
    }

    fn digest(&self) -> u64 {
        self.book.digest()
    }

    #[getter]
    fn min_price(&self) -> i64 {
        self.book.config().min_price
    }

    #[getter]
    fn max_price(&self) -> i64 {
        self.book.config().max_price
    }

    fn __repr__(&self) -> String {
        let c = self.book.config();
        format!(
            "Book(min_price={}, max_price={}, orders={})",
            c.min_price,
            c.max_price,
            self.book.order_count()
        )
    }
}

/// The text of a reject code.
#[pyfunction]
fn reject_text(code: i64) -> String {
    u16::try_from(code)
        .ok()
        .and_then(BookReject::from_code)
        .map_or_else(|| format!("unknown reject code {code}"), |r| r.to_string())
}

/// Deterministic synthetic order flow (see `synth.rs`): `depth` fill records, then `commands`
/// mix records. Omitted parameters take the generator's defaults.
#[pyfunction(name = "synthetic_flow")]
#[pyo3(signature = (
    seed, commands, depth = None, *, accounts = None, center_price = None, band = None,
    max_qty = None, protection = None, mix = None,
))]
#[allow(clippy::too_many_arguments)]
fn py_synthetic_flow<'py>(
    py: Python<'py>,
    seed: u64,
    commands: usize,
    depth: Option<usize>,
    accounts: Option<u64>,
    center_price: Option<i64>,
    band: Option<i64>,
    max_qty: Option<i64>,
    protection: Option<i64>,
    mix: Option<(u32, u32, u32, u32, u32)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let d = SynthConfig::default();
    let cfg = SynthConfig {
        seed,
        commands,
        depth: depth.unwrap_or(d.depth),
        accounts: accounts.unwrap_or(d.accounts),
        center_price: center_price.unwrap_or(d.center_price),
        band: band.unwrap_or(d.band),
        max_qty: max_qty.unwrap_or(d.max_qty),
        protection: protection.unwrap_or(d.protection),
        mix: mix.map_or(d.mix, |(gtc, ioc, cancel, amend, market)| Mix {
            gtc,
            ioc,
            cancel,
            amend,
            market,
        }),
        ..d
    };
    let flow = py.allow_threads(|| synthetic_flow(&cfg));
    let flow = flow.map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &flow))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBook>()?;
    m.add_class::<PyOrderInfo>()?;
    m.add_function(wrap_pyfunction!(reject_text, m)?)?;
    m.add_function(wrap_pyfunction!(py_synthetic_flow, m)?)?;
    m.add("COMMAND_SIZE", COMMAND_SIZE)?;
    m.add("EVENT_SIZE", EVENT_SIZE)?;
    wire::register(m)?;
    journal::register(m)?;
    risk::register(m)?;
    sinks::register(m)?;
    lane::register(m)?;
    Ok(())
}
