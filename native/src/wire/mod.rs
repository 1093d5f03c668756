//! Cap'n Proto wire codec for the TCP gateway. (being written)
