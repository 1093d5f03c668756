//! PyO3 binding of the wire codec (owned by the gateway work). Registered from `python/mod.rs`.
use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
