//! Reference order book. (being written)
