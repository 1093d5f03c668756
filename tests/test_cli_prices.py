"""Prices typed on the command line: decimals in display precision, or integer price units."""

from __future__ import annotations

import pytest

from engine.cli import parse_price


@pytest.mark.parametrize(
    ("text", "precision", "units"),
    [
        ("150.25", 2, 15025),
        ("150.2", 2, 15020),
        ("150.", 2, 15000),
        ("15025", 2, 15025),
        ("0.5", 0, None),
        ("42000.5", 1, 420005),
        ("-1.25", 2, -125),
    ],
)
def test_decimal_prices_scale_by_the_symbols_precision(
    text: str, precision: int, units: int | None
) -> None:
    if units is None:
        with pytest.raises(ValueError, match="more than 0 decimals"):
            parse_price(text, precision)
    else:
        assert parse_price(text, precision) == units


def test_a_price_finer_than_the_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="more than 2 decimals"):
        parse_price("150.001", 2)
