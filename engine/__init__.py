"""cift-engine: the order-matching daemon of CIFT Markets."""

__version__ = "0.1.0"
