"""UCUM conversions through ucumvert, including the molar-mass ones, both ways."""

from __future__ import annotations

import pytest

from interop.schema.units import UnitError, convert, is_ucum

CREATININE_G_PER_MOL = 113.12


def test_creatinine_both_ways() -> None:
    umol = convert(1.0, "mg/dL", "umol/L", molar_mass=CREATININE_G_PER_MOL)
    assert umol == pytest.approx(10_000 / CREATININE_G_PER_MOL, rel=1e-12)
    assert convert(umol, "umol/L", "mg/dL", molar_mass=CREATININE_G_PER_MOL) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (150, "[lb_av]", "kg", 150 * 0.45359237),
        (70, "[in_i]", "cm", 177.8),
        (2, "ug/mL", "mg/L", 2),
        (1, "g/dL", "mg/dL", 1000),
        (90, "min", "h", 1.5),
    ],
)
def test_plain_conversions(value: float, src: str, dst: str, expected: float) -> None:
    assert convert(value, src, dst) == pytest.approx(expected, rel=1e-12)


def test_errors() -> None:
    assert not is_ucum("TAB")
    with pytest.raises(UnitError, match="TAB"):
        convert(1, "TAB", "mg")
    with pytest.raises(UnitError, match="different dimensions"):
        convert(1, "mg/dL", "umol/L")
