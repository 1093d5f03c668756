//! PyO3 binding of the sink row builder (`crate::sinks`): `SymbolRows` (one per symbol of a
//! sink) and `pgcopy`. Conversion runs with the GIL released; contract violations of a batch are
//! `ValueError`s (the Python converter turns them into `BatchError`).

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::sinks::{self, ColKind, OpenOrder, Position, TopState};

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

type Level = (i64, i64, i64);
type TopTuple = (i64, u64, u64, i64, Vec<Level>, Vec<Level>);
type PositionTuple = (u64, u64, u64, i64, i64, i64, i128, i128, u64);

/// The sink rows of one symbol and the state they depend on.
#[pyclass(name = "SymbolRows", module = "engine._native")]
pub struct PySymbolRows {
    inner: sinks::SymbolRows,
}

fn columns<'py>(py: Python<'py>, t: sinks::Table) -> (Vec<Bound<'py, PyBytes>>, usize) {
    let cols = t.cols.iter().map(|c| PyBytes::new(py, c)).collect();
    (cols, t.rows)
}

#[pymethods]
impl PySymbolRows {
    #[new]
    fn new(interval_ns: u64) -> PyResult<Self> {
        let inner = sinks::SymbolRows::new(interval_ns).map_err(value_error)?;
        Ok(PySymbolRows { inner })
    }

    /// Add the rows of command and event records (seqs <= `after` skipped); the ts of the last
    /// command applied, or None.
    fn apply(
        &mut self,
        py: Python<'_>,
        commands: &[u8],
        events: &[u8],
        after: u64,
        through: u64,
    ) -> PyResult<Option<u64>> {
        let inner = &mut self.inner;
        py.allow_threads(|| inner.apply(commands, events, after, through))
            .map_err(value_error)
    }

    /// Rows waiting to be taken (orders + trades + book_top + order_ends).
    fn rows(&self) -> usize {
        let s = &self.inner;
        s.orders.rows + s.trades.rows + s.top.rows + s.ends.rows
    }

    /// (orders, trades, book_top, order_ends): each (column buffers in table order, rows);
    /// empties them.
    #[allow(clippy::type_complexity)]
    fn take<'py>(&mut self, py: Python<'py>) -> [(Vec<Bound<'py, PyBytes>>, usize); 4] {
        [
            columns(py, self.inner.orders.take()),
            columns(py, self.inner.trades.take()),
            columns(py, self.inner.top.take()),
            columns(py, self.inner.ends.take()),
        ]
    }

    /// A live order accepted before the checkpoint: its acceptance (seq, ts, account).
    fn restore_open(&mut self, order_id: u64, seq: u64, ts: u64, account: u64) {
        self.inner
            .restore_open(order_id, OpenOrder { seq, ts, account });
    }

    /// Live orders tracked for `order_ends`.
    fn open_orders(&self) -> usize {
        self.inner.open_orders()
    }

    /// Positions changed since the last call: (account, seq, ts, position, buy_qty, sell_qty,
    /// buy_notional, sell_notional, trades), by account.
    fn take_positions(&mut self) -> Vec<PositionTuple> {
        self.inner
            .take_positions()
            .into_iter()
            .map(|r| {
                let p = r.pos;
                (
                    r.account,
                    r.seq,
                    r.ts,
                    p.position,
                    p.buy_qty,
                    p.sell_qty,
                    p.buy_notional,
                    p.sell_notional,
                    p.trades,
                )
            })
            .collect()
    }

    /// (bucket, bucket_seq, bucket_ts, last_price, bids, asks); levels (price, qty, count).
    fn top_state(&self) -> TopTuple {
        let s = self.inner.top_state();
        (
            s.bucket,
            s.bucket_seq,
            s.bucket_ts,
            s.last_price,
            s.bids,
            s.asks,
        )
    }

    fn restore_top(&mut self, state: TopTuple) {
        let (bucket, bucket_seq, bucket_ts, last_price, bids, asks) = state;
        self.inner.restore_top(&TopState {
            bucket,
            bucket_seq,
            bucket_ts,
            last_price,
            bids,
            asks,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn restore_position(
        &mut self,
        account: u64,
        position: i64,
        buy_qty: i64,
        sell_qty: i64,
        buy_notional: i128,
        sell_notional: i128,
        trades: u64,
    ) {
        self.inner.restore_position(
            account,
            Position {
                position,
                buy_qty,
                sell_qty,
                buy_notional,
                sell_notional,
                trades,
            },
        );
    }
}

/// PostgreSQL binary COPY data: `text` as the first column of every row, then `columns`
/// (little-endian buffers; `kinds` one letter each: B u8, H u16, I u32, Q u64, q i64).
#[pyfunction]
fn pgcopy<'py>(
    py: Python<'py>,
    text: &str,
    kinds: &str,
    columns: Vec<PyBuffer<u8>>,
    rows: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let kinds: Vec<ColKind> = kinds
        .bytes()
        .map(|c| ColKind::from_code(c).ok_or(sinks::TableError::Kind(char::from(c))))
        .collect::<Result<_, _>>()
        .map_err(value_error)?;
    let owned: Vec<Vec<u8>> = columns
        .iter()
        .map(|b| b.to_vec(py))
        .collect::<PyResult<_>>()?;
    let slices: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let out = py
        .allow_threads(|| sinks::pgcopy::pgcopy(text.as_bytes(), &kinds, &slices, rows))
        .map_err(value_error)?;
    Ok(PyBytes::new(py, &out))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySymbolRows>()?;
    m.add_function(wrap_pyfunction!(pgcopy, m)?)?;
    Ok(())
}
