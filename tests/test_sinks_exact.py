"""`engine.sinks.exact`: int64 where the sizes prove it exact, Python ints beyond; every quotient
the exact one rounded once (equal to Python's int / int, not approximately)."""

from __future__ import annotations

import numpy as np

from engine.sinks import exact as x


def test_results_equal_python_integer_arithmetic_at_every_size() -> None:
    rng = np.random.default_rng(3)
    for top in (10**3, 2**40, 2**61, 2**62 + 5):
        a = [int(v) for v in rng.integers(-(2**62), 2**62, 500) % top]
        b = [int(v) or 1 for v in rng.integers(1, 2**62, 500) % top]
        A, B = x.ints(a), x.ints(b)
        assert x.mul(A, B).tolist() == [p * q for p, q in zip(a, b, strict=True)]
        assert x.add(A, B).tolist() == [p + q for p, q in zip(a, b, strict=True)]
        assert x.sub(A, B).tolist() == [p - q for p, q in zip(a, b, strict=True)]
        big = x.mul(x.mul(A, B), B)  # beyond int64: Python ints
        assert big.tolist() == [p * q * q for p, q in zip(a, b, strict=True)]
        assert x.quot(A, B).tolist() == [p / q for p, q in zip(a, b, strict=True)]
        assert x.quot(big, B).tolist() == [p * q * q / q for p, q in zip(a, b, strict=True)]


def test_int64_is_kept_while_it_is_provably_exact() -> None:
    small = x.ints([3, -7, 2**20])
    assert x.mul(small, small).dtype == np.int64
    assert x.mul(x.ints([2**40]), x.ints([2**30])).dtype == object
    assert x.ints([2**70]).dtype == object
    assert x.ints(np.array([2**64 - 1], dtype=np.uint64)).tolist() == [2**64 - 1]
    assert x.where(np.array([True, False]), x.ints([1, 2]), x.ints([2**70, 3])).tolist() == [1, 3]
