//! PyO3 binding of the risk engine (`crate::risk`), registered from `python/mod.rs` with
//! `risk::register(m)?`.
//!
//! The hot path is `RiskEngine.check_batch(symbols, records) -> verdicts` and
//! `RiskEngine.on_events(symbol, records)`, both with the GIL released. Configuration objects
//! (`SymbolRisk`, `AccountLimits`) take the config keys of `docs/risk.md` as keyword arguments;
//! `None` means "no limit". Views are plain dicts (for `cift-engine risk show`). Bad arguments
//! are `ValueError`; a rejected command is a verdict code, not an exception.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::input_bytes;
use crate::risk::{
    calculate_position_stats, calculate_sharpe, risk_reject_text, AccountLimits, AccountView, Band,
    OrderRiskView, PositionView, RateLimit, RiskEngine, RiskError, RiskReject, SymbolRisk,
    SymbolView, TradingState,
};
use crate::types::{Command, Side, COMMAND_SIZE, EVENT_SIZE};

/// Batches smaller than this are checked without releasing the GIL: releasing and taking it back
/// costs more than checking a few commands.
const GIL_RELEASE_MIN: usize = 32;

fn value_error(e: RiskError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn band(ticks: Option<i64>, bps: Option<i64>, what: &str) -> PyResult<Band> {
    match (ticks, bps) {
        (None, None) => Ok(Band::Off),
        (Some(t), None) => Ok(Band::Ticks(t)),
        (None, Some(b)) => Ok(Band::Bps(b)),
        (Some(_), Some(_)) => Err(PyValueError::new_err(format!(
            "{what}: give {what}_ticks or {what}_bps, not both"
        ))),
    }
}

fn band_parts(b: Band) -> (Option<i64>, Option<i64>) {
    match b {
        Band::Off => (None, None),
        Band::Ticks(t) => (Some(t), None),
        Band::Bps(b) => (None, Some(b)),
    }
}

fn state_arg(state: u8) -> PyResult<TradingState> {
    TradingState::from_u8(state)
        .ok_or_else(|| PyValueError::new_err("state must be 1 (open), 2 (halted) or 3 (closed)"))
}

/// Per-symbol checks. Keyword arguments are the config keys; `None` = no limit / no band.
#[pyclass(name = "SymbolRisk", module = "engine._native", frozen, eq)]
#[derive(Clone, Copy, PartialEq, Eq)]
struct PySymbolRisk(SymbolRisk);

#[pymethods]
impl PySymbolRisk {
    #[new]
    #[pyo3(signature = (
        symbol, *, tick = 1, lot = 1, min_qty = 1, max_qty = None, max_notional = None,
        reference_price = 0, band_ticks = None, band_bps = None, market_band_ticks = None,
        market_band_bps = None, state = 1,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        symbol: u32,
        tick: i64,
        lot: i64,
        min_qty: i64,
        max_qty: Option<i64>,
        max_notional: Option<i128>,
        reference_price: i64,
        band_ticks: Option<i64>,
        band_bps: Option<i64>,
        market_band_ticks: Option<i64>,
        market_band_bps: Option<i64>,
        state: u8,
    ) -> PyResult<Self> {
        let cfg = SymbolRisk {
            symbol,
            tick,
            lot,
            min_qty,
            max_qty: max_qty.unwrap_or(i64::MAX),
            max_notional: max_notional.unwrap_or(i128::MAX),
            reference_price,
            band: band(band_ticks, band_bps, "band")?,
            market_band: band(market_band_ticks, market_band_bps, "market_band")?,
            state: state_arg(state)?,
        };
        // Validate now so that a bad config fails where it is written.
        RiskEngine::new(vec![cfg], AccountLimits::UNLIMITED).map_err(value_error)?;
        Ok(PySymbolRisk(cfg))
    }

    #[getter]
    fn symbol(&self) -> u32 {
        self.0.symbol
    }
    #[getter]
    fn tick(&self) -> i64 {
        self.0.tick
    }
    #[getter]
    fn lot(&self) -> i64 {
        self.0.lot
    }
    #[getter]
    fn min_qty(&self) -> i64 {
        self.0.min_qty
    }
    #[getter]
    fn max_qty(&self) -> Option<i64> {
        (self.0.max_qty != i64::MAX).then_some(self.0.max_qty)
    }
    #[getter]
    fn max_notional(&self) -> Option<i128> {
        (self.0.max_notional != i128::MAX).then_some(self.0.max_notional)
    }
    #[getter]
    fn reference_price(&self) -> i64 {
        self.0.reference_price
    }
    #[getter]
    fn band_ticks(&self) -> Option<i64> {
        band_parts(self.0.band).0
    }
    #[getter]
    fn band_bps(&self) -> Option<i64> {
        band_parts(self.0.band).1
    }
    #[getter]
    fn market_band_ticks(&self) -> Option<i64> {
        band_parts(self.0.market_band).0
    }
    #[getter]
    fn market_band_bps(&self) -> Option<i64> {
        band_parts(self.0.market_band).1
    }
    #[getter]
    fn state(&self) -> u8 {
        self.0.state as u8
    }

    fn __repr__(&self) -> String {
        format!("SymbolRisk({:?})", self.0)
    }
}

/// Per-account limits. Keyword arguments are the config keys; `None` = no limit.
#[pyclass(name = "AccountLimits", module = "engine._native", frozen, eq)]
#[derive(Clone, Copy, PartialEq, Eq)]
struct PyAccountLimits(AccountLimits);

#[pymethods]
impl PyAccountLimits {
    #[new]
    #[pyo3(signature = (
        *, max_open_orders = None, max_open_buy_notional = None, max_open_sell_notional = None,
        credit_limit = None, max_position = None, rate_per_sec = None, rate_burst = None,
    ))]
    fn new(
        max_open_orders: Option<u32>,
        max_open_buy_notional: Option<i128>,
        max_open_sell_notional: Option<i128>,
        credit_limit: Option<i128>,
        max_position: Option<i64>,
        rate_per_sec: Option<u64>,
        rate_burst: Option<u64>,
    ) -> PyResult<Self> {
        let rate = match (rate_per_sec, rate_burst) {
            (None, None) => None,
            (Some(per_sec), burst) => Some(RateLimit {
                per_sec,
                burst: burst.unwrap_or(per_sec),
            }),
            (None, Some(_)) => {
                return Err(PyValueError::new_err("rate_burst needs rate_per_sec"));
            }
        };
        let u = AccountLimits::UNLIMITED;
        let limits = AccountLimits {
            max_open_orders: max_open_orders.unwrap_or(u.max_open_orders),
            max_open_buy_notional: max_open_buy_notional.unwrap_or(u.max_open_buy_notional),
            max_open_sell_notional: max_open_sell_notional.unwrap_or(u.max_open_sell_notional),
            credit_limit: credit_limit.unwrap_or(u.credit_limit),
            max_position: max_position.unwrap_or(u.max_position),
            rate,
        };
        RiskEngine::new(Vec::new(), limits).map_err(value_error)?;
        Ok(PyAccountLimits(limits))
    }

    #[getter]
    fn max_open_orders(&self) -> Option<u32> {
        (self.0.max_open_orders != u32::MAX).then_some(self.0.max_open_orders)
    }
    #[getter]
    fn max_open_buy_notional(&self) -> Option<i128> {
        unlimited_none(self.0.max_open_buy_notional)
    }
    #[getter]
    fn max_open_sell_notional(&self) -> Option<i128> {
        unlimited_none(self.0.max_open_sell_notional)
    }
    #[getter]
    fn credit_limit(&self) -> Option<i128> {
        unlimited_none(self.0.credit_limit)
    }
    #[getter]
    fn max_position(&self) -> Option<i64> {
        (self.0.max_position != i64::MAX).then_some(self.0.max_position)
    }
    #[getter]
    fn rate_per_sec(&self) -> Option<u64> {
        self.0.rate.map(|r| r.per_sec)
    }
    #[getter]
    fn rate_burst(&self) -> Option<u64> {
        self.0.rate.map(|r| r.burst)
    }

    fn __repr__(&self) -> String {
        format!("AccountLimits({:?})", self.0)
    }
}

fn unlimited_none(v: i128) -> Option<i128> {
    (v != i128::MAX).then_some(v)
}

fn limits_dict<'py>(py: Python<'py>, l: &AccountLimits) -> PyResult<Bound<'py, PyDict>> {
    let p = PyAccountLimits(*l);
    let d = PyDict::new(py);
    d.set_item("max_open_orders", p.max_open_orders())?;
    d.set_item("max_open_buy_notional", p.max_open_buy_notional())?;
    d.set_item("max_open_sell_notional", p.max_open_sell_notional())?;
    d.set_item("credit_limit", p.credit_limit())?;
    d.set_item("max_position", p.max_position())?;
    d.set_item("rate_per_sec", p.rate_per_sec())?;
    d.set_item("rate_burst", p.rate_burst())?;
    Ok(d)
}

fn account_dict<'py>(py: Python<'py>, a: &AccountView) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("account", a.account)?;
    d.set_item("limits", limits_dict(py, &a.limits)?)?;
    d.set_item("custom_limits", a.custom_limits)?;
    d.set_item("enabled", a.enabled)?;
    d.set_item("killed", a.killed)?;
    d.set_item("open_orders", a.open_orders)?;
    d.set_item("open_buy_notional", a.open_buy_notional)?;
    d.set_item("open_sell_notional", a.open_sell_notional)?;
    d.set_item("position_cost", a.position_cost)?;
    d.set_item("credit_used", a.credit_used)?;
    d.set_item("rate_tokens", a.rate_tokens)?;
    Ok(d)
}

fn position_dict<'py>(py: Python<'py>, p: &PositionView) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("symbol", p.symbol)?;
    d.set_item("net_qty", p.position.net)?;
    d.set_item("cost", p.position.cost)?;
    d.set_item("avg_price", p.avg_price)?;
    d.set_item("realized_pnl", p.position.realized)?;
    d.set_item("mark_price", p.mark_price)?;
    d.set_item("unrealized_pnl", p.unrealized)?;
    d.set_item("bought", p.position.bought)?;
    d.set_item("sold", p.position.sold)?;
    d.set_item("open_buy_qty", p.open_buy_qty)?;
    d.set_item("open_sell_qty", p.open_sell_qty)?;
    Ok(d)
}

fn order_dict<'py>(py: Python<'py>, o: &OrderRiskView) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("symbol", o.symbol)?;
    d.set_item("order_id", o.order_id)?;
    d.set_item("client_id", o.client_id)?;
    d.set_item("side", o.side as u8)?;
    d.set_item("price", o.price)?;
    d.set_item("open", o.open)?;
    d.set_item("in_flight", o.in_flight)?;
    Ok(d)
}

fn symbol_dict<'py>(py: Python<'py>, s: &SymbolView) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("config", PySymbolRisk(s.config))?;
    d.set_item("state", s.config.state as u8)?;
    d.set_item("last_price", s.last_price)?;
    d.set_item("reference_price", s.reference_price)?;
    Ok(d)
}

/// Pre-trade and post-trade risk for a set of symbols.
#[pyclass(name = "RiskEngine", module = "engine._native")]
pub(crate) struct PyRiskEngine {
    pub(crate) engine: RiskEngine,
    symbols: Vec<u32>,
    verdicts: Vec<u16>,
    out: Vec<u8>,
    scratch: Vec<u8>,
}

impl PyRiskEngine {
    fn wrap(engine: RiskEngine) -> Self {
        PyRiskEngine {
            engine,
            symbols: Vec::new(),
            verdicts: Vec::new(),
            out: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

#[pymethods]
impl PyRiskEngine {
    #[new]
    #[pyo3(signature = (symbols, defaults = None))]
    fn new(symbols: Vec<PySymbolRisk>, defaults: Option<PyAccountLimits>) -> PyResult<Self> {
        let cfgs = symbols.into_iter().map(|s| s.0).collect();
        let defaults = defaults.map_or(AccountLimits::UNLIMITED, |d| d.0);
        let engine = RiskEngine::new(cfgs, defaults).map_err(value_error)?;
        Ok(PyRiskEngine::wrap(engine))
    }

    /// Check one command record for `symbol`: 0 = pass, else the reject code.
    fn check(&mut self, symbol: u32, record: &[u8]) -> PyResult<u16> {
        if record.len() != COMMAND_SIZE {
            return Err(PyValueError::new_err(format!(
                "a command record is {COMMAND_SIZE} bytes, got {}",
                record.len()
            )));
        }
        let cmd = Command::decode(record)
            .ok_or_else(|| PyValueError::new_err("command record too short"))?;
        Ok(self
            .engine
            .check(symbol, &cmd)
            .err()
            .map_or(0, RiskReject::code))
    }

    /// Check command records. `symbols` is one symbol id for every record, or little-endian
    /// u32 symbol ids (one per record, e.g. `array('I', ...)`). Returns the verdicts as
    /// little-endian u16 (one per record: 0 = pass, else the reject code).
    fn check_batch<'py>(
        &mut self,
        py: Python<'py>,
        symbols: &Bound<'py, PyAny>,
        records: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let PyRiskEngine {
            engine,
            symbols: syms,
            verdicts,
            out,
            scratch,
        } = self;
        let input = input_bytes(records, scratch)?;
        syms.clear();
        if let Ok(one) = symbols.extract::<u32>() {
            syms.resize(input.len() / COMMAND_SIZE, one);
        } else {
            let mut tmp = Vec::new();
            let raw = input_bytes(symbols, &mut tmp)?;
            if raw.len() % 4 != 0 {
                return Err(PyValueError::new_err(
                    "symbols must be little-endian u32 values",
                ));
            }
            let words = raw
                .chunks_exact(4)
                .filter_map(|c| <[u8; 4]>::try_from(c).ok());
            syms.extend(words.map(u32::from_le_bytes));
        }
        let checked = if syms.len() >= GIL_RELEASE_MIN {
            py.allow_threads(|| engine.check_batch(syms, input, verdicts))
        } else {
            engine.check_batch(syms, input, verdicts)
        };
        checked.map_err(value_error)?;
        out.clear();
        out.extend(verdicts.iter().flat_map(|v| v.to_le_bytes()));
        Ok(PyBytes::new(py, out))
    }

    /// Feed the event records `symbol`'s book produced, in order.
    fn on_events(
        &mut self,
        py: Python<'_>,
        symbol: u32,
        records: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let PyRiskEngine {
            engine, scratch, ..
        } = self;
        let input = input_bytes(records, scratch)?;
        let fed = if input.len() >= GIL_RELEASE_MIN * EVENT_SIZE {
            py.allow_threads(|| engine.on_events(symbol, input))
        } else {
            engine.on_events(symbol, input)
        };
        fed.map_err(value_error)
    }

    fn set_default_limits(&mut self, limits: PyAccountLimits) -> PyResult<()> {
        self.engine
            .set_default_limits(limits.0)
            .map_err(value_error)
    }

    fn set_limits(&mut self, account: u64, limits: PyAccountLimits) -> PyResult<()> {
        self.engine
            .set_limits(account, limits.0)
            .map_err(value_error)
    }

    fn reset_limits(&mut self, account: u64) -> PyResult<()> {
        self.engine.reset_limits(account).map_err(value_error)
    }

    fn set_enabled(&mut self, account: u64, enabled: bool) -> PyResult<()> {
        self.engine
            .set_enabled(account, enabled)
            .map_err(value_error)
    }

    /// Returns the symbols to send a mass cancel for the account (when turning it on).
    fn set_killed(&mut self, account: u64, killed: bool) -> PyResult<Vec<u32>> {
        self.engine.set_killed(account, killed).map_err(value_error)
    }

    fn live_symbols(&self, account: u64) -> Vec<u32> {
        self.engine.live_symbols(account)
    }

    fn set_symbol_state(&mut self, symbol: u32, state: u8) -> PyResult<()> {
        self.engine
            .set_symbol_state(symbol, state_arg(state)?)
            .map_err(value_error)
    }

    fn set_symbol(&mut self, config: PySymbolRisk) -> PyResult<()> {
        self.engine.set_symbol(config.0).map_err(value_error)
    }

    fn start_day(&mut self) {
        self.engine.start_day();
    }

    #[getter]
    fn defaults(&self) -> PyAccountLimits {
        PyAccountLimits(self.engine.defaults())
    }

    fn account_ids(&self) -> Vec<u64> {
        self.engine.account_ids()
    }

    fn symbol_ids(&self) -> Vec<u32> {
        self.engine.symbol_ids()
    }

    /// Limits, switches and usage of an account; None if the engine has never seen it.
    fn account<'py>(&self, py: Python<'py>, account: u64) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.engine
            .account(account)
            .map(|a| account_dict(py, &a))
            .transpose()
    }

    fn positions<'py>(&self, py: Python<'py>, account: u64) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.engine
            .positions(account)
            .iter()
            .map(|p| position_dict(py, p))
            .collect()
    }

    fn orders<'py>(&self, py: Python<'py>, account: u64) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.engine
            .orders(account)
            .iter()
            .map(|o| order_dict(py, o))
            .collect()
    }

    fn symbol<'py>(&self, py: Python<'py>, symbol: u32) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.engine
            .symbol(symbol)
            .map(|s| symbol_dict(py, &s))
            .transpose()
    }

    fn live_orders(&self) -> usize {
        self.engine.live_orders()
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.engine.snapshot())
    }

    #[staticmethod]
    fn restore(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut scratch = Vec::new();
        let bytes = input_bytes(data, &mut scratch)?;
        RiskEngine::restore(bytes)
            .map(PyRiskEngine::wrap)
            .map_err(value_error)
    }

    fn digest(&self) -> u64 {
        self.engine.digest()
    }

    fn __repr__(&self) -> String {
        format!(
            "RiskEngine(symbols={}, accounts={}, live_orders={})",
            self.engine.symbol_ids().len(),
            self.engine.account_ids().len(),
            self.engine.live_orders()
        )
    }
}

/// The text of a risk reject code (2001..2099).
#[pyfunction(name = "risk_reject_text")]
fn py_risk_reject_text(code: i64) -> String {
    u16::try_from(code)
        .ok()
        .and_then(risk_reject_text)
        .unwrap_or_else(|| format!("unknown risk reject code {code}"))
}

/// Statistics of fills `(side, qty, price)` (side 1 buy / 2 sell, qty lots > 0, price ticks),
/// marked at `mark_price` (0 = no mark). Amounts are ticks x lots.
#[pyfunction(name = "calculate_position_stats")]
#[pyo3(signature = (fills, mark_price = 0))]
fn py_calculate_position_stats<'py>(
    py: Python<'py>,
    fills: Vec<(u8, i64, i64)>,
    mark_price: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let fills = fills
        .into_iter()
        .map(|(side, qty, price)| match Side::from_u8(side) {
            Some(s) if qty > 0 && price > 0 => Ok((s, qty, price)),
            _ => Err(PyValueError::new_err(format!(
                "bad fill ({side}, {qty}, {price}): need side 1 or 2, qty > 0, price > 0"
            ))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    let s = calculate_position_stats(&fills, mark_price);
    let d = PyDict::new(py);
    d.set_item("net_qty", s.position.net)?;
    d.set_item("cost", s.position.cost)?;
    d.set_item("avg_price", s.avg_price)?;
    d.set_item("realized_pnl", s.position.realized)?;
    d.set_item("mark_price", s.mark_price)?;
    d.set_item("unrealized_pnl", s.unrealized)?;
    d.set_item("total_pnl", s.total_pnl)?;
    d.set_item("fills", s.fills)?;
    d.set_item("bought", s.position.bought)?;
    d.set_item("sold", s.position.sold)?;
    d.set_item("buy_notional", s.buy_notional)?;
    d.set_item("sell_notional", s.sell_notional)?;
    d.set_item("vwap_buy", s.vwap_buy)?;
    d.set_item("vwap_sell", s.vwap_sell)?;
    Ok(d)
}

/// Annualized Sharpe ratio of per-period returns (sample standard deviation); None when
/// undefined (fewer than two returns, zero variance, non-finite input).
#[pyfunction(name = "calculate_sharpe")]
#[pyo3(signature = (returns, risk_free = 0.0, periods_per_year = 252.0))]
fn py_calculate_sharpe(returns: Vec<f64>, risk_free: f64, periods_per_year: f64) -> Option<f64> {
    calculate_sharpe(&returns, risk_free, periods_per_year)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRiskEngine>()?;
    m.add_class::<PySymbolRisk>()?;
    m.add_class::<PyAccountLimits>()?;
    m.add_function(wrap_pyfunction!(py_risk_reject_text, m)?)?;
    m.add_function(wrap_pyfunction!(py_calculate_position_stats, m)?)?;
    m.add_function(wrap_pyfunction!(py_calculate_sharpe, m)?)?;
    let texts = PyDict::new(m.py());
    for r in RiskReject::ALL {
        texts.set_item(r.code(), r.to_string())?;
    }
    m.add("RISK_REJECT_TEXTS", texts)?;
    Ok(())
}
