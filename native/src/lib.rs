//! cift-engine native core.
//!
//! - `types`: commands, events, reject codes and their fixed binary records (the contract).
//! - `book`: the fast limit order book (price-time priority, slab storage).
//! - `reference`: a deliberately simple book with the same semantics, the oracle for tests.
//! - `synth`: deterministic synthetic order flow (benchmarks, tests).
//! - `sinks`: event records -> database rows (columns, PostgreSQL binary COPY) for the sinks.
//! - `wire`: Cap'n Proto frame decoding/encoding for the TCP gateway (whole buffers at once).
//! - `python` (feature `python`): the PyO3 binding, built by maturin as `engine._native`.
//!
//! The core is free of Python: `cargo test` builds and tests it without the `python` feature.

pub mod book;
mod codec;
pub mod journal;
pub mod reference;
pub mod risk;
pub mod sinks;
pub mod synth;
pub mod types;
pub mod wire;

#[cfg(feature = "python")]
mod python;
