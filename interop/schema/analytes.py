"""Analyte equivalences: LOINC codes that measure the same analyte, and the one code and unit it is kept in.

Creatinine comes as LOINC 2160-0 (mg/dL, serum), 38483-4 (mg/dL, blood) or 14682-9 (µmol/L);
a record keeps every one of them as the analyte's canonical code in its canonical unit, so a
covariate bound to any of the codes sees every value. Converters use :func:`analyte_of` to
normalise; the twin uses :func:`same_analyte` and the molar mass to bind. One table, no
per-code special cases: a new equivalence is one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from interop.schema.base import LOINC, Coding
from interop.schema.units import convert

__all__ = ["ANALYTES", "ANALYTES_VERSION", "Analyte", "analyte_of", "convert_analyte", "same_analyte"]

ANALYTES_VERSION = "analytes@2026.11-1"


@dataclass(frozen=True)
class Analyte:
    name: str
    code: str  # canonical LOINC code the record keeps
    unit: str  # canonical UCUM unit
    molar_mass: float | None  # g/mol, for mass <-> substance conversions
    members: tuple[str, ...]  # every LOINC code that measures it (the canonical one included)


# name, canonical LOINC, unit, molar mass (g/mol), member LOINC codes
ANALYTES: tuple[Analyte, ...] = (
    Analyte("creatinine", "14682-9", "umol/L", 113.12, ("14682-9", "2160-0", "38483-4", "59826-8")),
)


@cache
def _by_code() -> dict[str, Analyte]:
    return {code: a for a in ANALYTES for code in a.members}


def analyte_of(coding: Coding | tuple[str | None, str | None]) -> Analyte | None:
    """The analyte a LOINC coding measures, if the table lists it."""
    system, code = (coding.system, coding.code) if isinstance(coding, Coding) else coding
    if system != LOINC or not code:
        return None
    return _by_code().get(code)


def same_analyte(a: Coding, b: Coding) -> bool:
    """The same code, or two codes of one analyte."""
    if a.matches(b):
        return True
    x = analyte_of(a)
    return x is not None and x is analyte_of(b)


def convert_analyte(value: float, from_unit: str, to_unit: str, coding: Coding) -> float:
    """``value`` of the analyte ``coding`` measures, in ``to_unit`` (mass <-> moles by its molar mass)."""
    analyte = analyte_of(coding)
    return convert(value, from_unit, to_unit, molar_mass=analyte.molar_mass if analyte else None)
