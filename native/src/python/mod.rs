//! PyO3 binding. (being written)
