"""UCUM units: parse, check, convert — through ucumvert's pint registry.

Units are part of the contract (every unit in the schema is UCUM), so this lives beside it
and both converters and the twin use it. Conversions between mass and substance
concentration (creatinine mg/dL <-> umol/L) need the analyte's molar mass.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from interop.errors import SchemaError

__all__ = ["UnitError", "convert", "is_ucum", "same_dimension"]


class UnitError(SchemaError):
    """A unit is not UCUM, or two units cannot be converted into each other."""


@lru_cache(maxsize=1)
def _registry() -> Any:
    from ucumvert import PintUcumRegistry  # slow import (builds a lark parser): on first use

    return PintUcumRegistry()


@lru_cache(maxsize=4096)
def _quantity(unit: str) -> Any:
    try:
        return _registry().from_ucum(unit)
    except Exception as exc:  # ucumvert raises lark and pint errors of many types
        raise UnitError(f"{unit!r} is not a valid UCUM unit") from exc


def is_ucum(unit: str) -> bool:
    """True when ``unit`` parses as UCUM."""
    try:
        _quantity(unit)
    except UnitError:
        return False
    return True


def same_dimension(a: str, b: str) -> bool:
    return bool(_quantity(a).dimensionality == _quantity(b).dimensionality)


@lru_cache(maxsize=4096)
def _factor(from_unit: str, to_unit: str, molar_mass: float | None) -> float:
    src, dst = _quantity(from_unit), _quantity(to_unit)
    if src.dimensionality == dst.dimensionality:
        return float(src.to(dst.units).magnitude / dst.magnitude)
    if molar_mass is None:
        raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r} (different dimensions)")
    reg = src._REGISTRY  # from_ucum's quantities live in their own pint registry
    g_per_mol = reg.Quantity(molar_mass, "gram / mole")
    for q in (src * g_per_mol, src / g_per_mol):
        if q.dimensionality == dst.dimensionality:
            return float(q.to(dst.units).magnitude / dst.magnitude)
    raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}, even with molar mass {molar_mass} g/mol")


def convert(value: float, from_unit: str, to_unit: str, *, molar_mass: float | None = None) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (molar mass in g/mol when needed)."""
    if from_unit == to_unit:
        return value
    return value * _factor(from_unit, to_unit, molar_mass)
