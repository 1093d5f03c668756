"""Exact integer arithmetic on numpy arrays, as fast as the values allow.

Each operation stays in int64 when the operands' magnitudes prove the result fits (|x| < 2^62),
else it works on Python ints (object arrays: exact, slower). `quot` divides to float64 rounded
once: numpy's division when both sides are below 2^53 (their float64 conversions are exact,
so the one IEEE division is the correctly rounded quotient), else Python's int / int (also
correctly rounded). So every figure equals the exact rational rounded to float once, whatever
the sizes, and the common case (quantities, prices, notionals of a day's trading) runs at
numpy speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["add", "ints", "mul", "quot", "sub", "where"]

_FITS = 2**62
_EXACT_FLOAT = 2**53


def _top(a: Any) -> int:
    """The largest magnitude in `a` (0 when empty)."""
    if not a.size:
        return 0
    return max(abs(int(a.max())), abs(int(a.min())))


def _wide(a: Any) -> Any:
    return a if a.dtype == object else a.astype(object)


def ints(a: Any) -> Any:
    """An integer array (or scalar, or list) as int64 if every value fits, else Python ints."""
    arr = np.asarray(a)
    if arr.dtype == object:
        try:
            return arr.astype(np.int64)
        except OverflowError:
            return np.array([int(v) for v in arr.ravel()], dtype=object).reshape(arr.shape)
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) >= 2**63:
        return arr.astype(object)
    return arr.astype(np.int64)


def _both_int64(a: Any, b: Any) -> bool:
    return bool(a.dtype == np.int64 and b.dtype == np.int64)


def mul(a: Any, b: Any) -> Any:
    if _both_int64(a, b) and _top(a) * _top(b) < _FITS:
        return a * b
    return _wide(a) * _wide(b)


def add(a: Any, b: Any) -> Any:
    if _both_int64(a, b) and _top(a) + _top(b) < _FITS:
        return a + b
    return _wide(a) + _wide(b)


def sub(a: Any, b: Any) -> Any:
    if _both_int64(a, b) and _top(a) + _top(b) < _FITS:
        return a - b
    return _wide(a) - _wide(b)


def where(cond: Any, a: Any, b: Any) -> Any:
    if _both_int64(a, b):
        return np.where(cond, a, b)
    return np.where(cond, _wide(a), _wide(b))


def quot(a: Any, b: Any) -> Any:
    """a / b as float64, each the exact quotient rounded once (b must not hold 0)."""
    if _both_int64(a, b) and _top(a) < _EXACT_FLOAT and _top(b) < _EXACT_FLOAT:
        return a / b
    out = _wide(a) / _wide(b)
    return np.asarray(out.tolist() if out.ndim else float(out), dtype=np.float64)
