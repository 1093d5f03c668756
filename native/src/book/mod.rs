//! Fast order book. (being written)
